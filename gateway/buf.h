/*
 * gateway/buf.h: a fixed-capacity byte buffer for one direction of a
 * session.  Linear with compaction rather than a ring, so that a parser
 * always sees an unread line as one contiguous span.  Nothing grows on its
 * own: when it is full the session stops reading the peer that fills it
 * (gw_buf_grow raises the bound only when the owner asks).
 */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Every side of every session holds two: sizes are kept in 32 bits
 * (GW_BUF_MAX), which also leaves the struct without padding. */
struct gw_buf {
	char *data;   /* owned; NULL until first needed */
	uint32_t cap; /* capacity once allocated */
	uint32_t off; /* first unread byte */
	uint32_t len; /* unread bytes from off */
};

/* The largest capacity: far above buffer_bytes' limit (config.c) and a
 * message's data steps (session.c). */
#define GW_BUF_MAX UINT32_MAX

/* Allocates the storage lazily; 0 or -1 (ENOMEM, also for a cap over
 * GW_BUF_MAX). */
int gw_buf_alloc(struct gw_buf *b, size_t cap);
/* Raises the capacity to cap, keeping the bytes held (storage allocated
 * if there was none); never shrinks.  0, or -1 (ENOMEM: b unchanged). */
int gw_buf_grow(struct gw_buf *b, size_t cap);
/* Returns the storage when the buffer is empty (idle sessions hold none). */
void gw_buf_release(struct gw_buf *b);
void gw_buf_free(struct gw_buf *b);

static inline const char *
gw_buf_head(const struct gw_buf *b)
{
	return b->data + b->off;
}

/* Free room at the tail after compaction. */
size_t gw_buf_room(struct gw_buf *b);
/* Appends n bytes; the caller checked gw_buf_room. */
void gw_buf_put(struct gw_buf *b, const void *p, size_t n);
void gw_buf_drop(struct gw_buf *b, size_t n);

/* read(2)/write(2) with the buffer; return what the call returned. */
ssize_t gw_buf_read_fd(struct gw_buf *b, int fd);
ssize_t gw_buf_write_fd(struct gw_buf *b, int fd);

#endif
