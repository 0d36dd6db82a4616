/*
 * gateway/buf.c: see buf.h.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/buf.h"

int
gw_buf_alloc(struct gw_buf *b, size_t cap)
{
	if (b->data != NULL)
		return 0;
	if (cap > GW_BUF_MAX) {
		errno = ENOMEM;
		return -1;
	}
	if ((b->data = malloc(cap)) == NULL)
		return -1;
	b->cap = (uint32_t)cap;
	b->off = b->len = 0;
	return 0;
}

int
gw_buf_grow(struct gw_buf *b, size_t cap)
{
	char *p;

	if (b->data == NULL)
		return gw_buf_alloc(b, cap);
	if (cap <= b->cap)
		return 0;
	if (cap > GW_BUF_MAX) {
		errno = ENOMEM;
		return -1;
	}
	if (b->off > 0) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	if ((p = realloc(b->data, cap)) == NULL)
		return -1;
	b->data = p;
	b->cap = (uint32_t)cap;
	return 0;
}

void
gw_buf_release(struct gw_buf *b)
{
	if (b->len == 0)
		gw_buf_free(b);
}

void
gw_buf_free(struct gw_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->cap = b->off = b->len = 0;
}

size_t
gw_buf_room(struct gw_buf *b)
{
	if (b->data == NULL)
		return 0;
	/* Compact once the tail is under half the buffer: moves are rare and
	 * short, since a busy buffer is usually drained to empty. */
	if (b->off > 0 && b->cap - b->off - b->len < b->cap / 2) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	return b->cap - b->off - b->len;
}

void
gw_buf_put(struct gw_buf *b, const void *p, size_t n)
{
	memcpy(b->data + b->off + b->len, p, n);
	b->len += n;
}

void
gw_buf_drop(struct gw_buf *b, size_t n)
{
	b->len -= n;
	b->off = b->len == 0 ? 0 : b->off + n;
}

ssize_t
gw_buf_read_fd(struct gw_buf *b, int fd)
{
	size_t room = gw_buf_room(b);
	ssize_t n;

	if (room == 0) {
		errno = ENOBUFS;
		return -1;
	}
	n = read(fd, b->data + b->off + b->len, room);
	if (n > 0)
		b->len += (size_t)n;
	return n;
}

ssize_t
gw_buf_write_fd(struct gw_buf *b, int fd)
{
	ssize_t n;

	if (b->len == 0)
		return 0;
	/* MSG_NOSIGNAL: a peer gone is an error to handle, not a signal. */
	n = send(fd, gw_buf_head(b), b->len, MSG_NOSIGNAL);
	if (n > 0)
		gw_buf_drop(b, (size_t)n);
	return n;
}
