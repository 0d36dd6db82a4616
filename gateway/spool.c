/*
 * gateway/spool.c: one message held until a server's final reply.  See
 * gateway/spool.h.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/spool.h"

#define PREFIX "smtp64-"
#define SUFFIX ".spool"

void
gw_spool_init(struct gw_spool *s, const struct gw_spool_opts *o)
{
	memset(s, 0, sizeof(*s));
	s->o = o;
	s->fd = -1;
}

/* A fresh file in dir, opened O_EXCL|O_NOFOLLOW so that nothing planted
 * at its name (a link, a file) is ever written through, then unlinked:
 * from here on it has no name. */
static int
spill_open(const char *dir)
{
	static unsigned long seq;
	char path[4096];
	int fd, n, tries;

	for (tries = 0; tries < 8; tries++) {
		n = snprintf(path, sizeof(path), "%s/" PREFIX "%ld-%lu" SUFFIX,
		    dir, (long)getpid(), ++seq);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = open(path,
		    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			if (unlink(path) != 0) {
				int e = errno;

				close(fd);
				errno = e;
				return -1;
			}
			return fd;
		}
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

static int
write_all(int fd, const char *p, size_t len, off_t at)
{
	ssize_t w;

	while (len > 0) {
		w = pwrite(fd, p, len, at);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = ENOSPC;
			return -1;
		}
		p += w;
		len -= (size_t)w;
		at += w;
	}
	return 0;
}

int
gw_spool_append(struct gw_spool *s, const char *buf, size_t len)
{
	const struct gw_spool_opts *o = s->o;
	size_t room, cap;
	char *m;

	if (len == 0)
		return 0;
	if (len > o->total_max || s->total > o->total_max - len) {
		errno = EFBIG;
		return -1;
	}
	if (s->fd < 0 && s->mem_len + len <= o->mem_max) {
		if (s->mem_len + len > s->mem_cap) {
			/* Grow by doubling, never past mem_max. */
			cap = s->mem_cap ? s->mem_cap : 4096;
			while (cap < s->mem_len + len)
				cap *= 2;
			if (cap > o->mem_max)
				cap = o->mem_max;
			if ((m = realloc(s->mem, cap)) == NULL) {
				errno = ENOMEM;
				return -1;
			}
			s->mem = m;
			s->mem_cap = cap;
		}
		memcpy(s->mem + s->mem_len, buf, len);
		s->mem_len += len;
		s->total += len;
		return 0;
	}
	if (s->fd < 0) {
		if (o->dir == NULL) {
			errno = EFBIG;
			return -1;
		}
		if ((s->fd = spill_open(o->dir)) < 0)
			return -1;
		/* Memory keeps what it has; the file holds what follows. */
	}
	room = (size_t)(s->total - s->mem_len);
	if (write_all(s->fd, buf, len, (off_t)room) != 0)
		return -1;
	s->total += len;
	return 0;
}

uint64_t
gw_spool_size(const struct gw_spool *s)
{
	return s->total;
}

int
gw_spool_on_disk(const struct gw_spool *s)
{
	return s->fd >= 0;
}

ssize_t
gw_spool_read(const struct gw_spool *s, uint64_t off, char *dst, size_t cap)
{
	size_t n = 0, k;
	ssize_t r;

	if (off >= s->total || cap == 0)
		return 0;
	if (off < s->mem_len) {
		k = s->mem_len - (size_t)off;
		n = k < cap ? k : cap;
		memcpy(dst, s->mem + off, n);
		return (ssize_t)n;
	}
	k = cap;
	if (k > s->total - off)
		k = (size_t)(s->total - off);
	do
		r = pread(s->fd, dst, k, (off_t)(off - s->mem_len));
	while (r < 0 && errno == EINTR);
	return r;
}

void
gw_spool_clear(struct gw_spool *s)
{
	const struct gw_spool_opts *o = s->o;

	free(s->mem);
	if (s->fd >= 0)
		close(s->fd);
	gw_spool_init(s, o);
}

/* "smtp64-<digits>-<digits>.spool": ours, and nothing else. */
static int
our_name(const char *n)
{
	size_t len = strlen(n), i = sizeof(PREFIX) - 1, end, a = 0, b = 0;

	if (len <= sizeof(PREFIX) - 1 + sizeof(SUFFIX) - 1 ||
	    strncmp(n, PREFIX, sizeof(PREFIX) - 1) != 0 ||
	    strcmp(n + len - (sizeof(SUFFIX) - 1), SUFFIX) != 0)
		return 0;
	end = len - (sizeof(SUFFIX) - 1);
	for (; i < end && n[i] >= '0' && n[i] <= '9'; i++)
		a++;
	if (i == end || n[i++] != '-')
		return 0;
	for (; i < end && n[i] >= '0' && n[i] <= '9'; i++)
		b++;
	return i == end && a > 0 && b > 0;
}

int
gw_spool_sweep(const char *dir)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int dfd, n = 0;

	if ((d = opendir(dir)) == NULL)
		return -1;
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		if (!our_name(de->d_name))
			continue;
		/* A link, a directory or someone else's file stays. */
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode) || st.st_uid != geteuid())
			continue;
		if (unlinkat(dfd, de->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	return n;
}

int
gw_spool_dir_prepare(const char *dir, char *err, size_t errcap)
{
	struct stat st;
	int n;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		(void)snprintf(
		    err, errcap, "spool_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) != 0) {
		(void)snprintf(
		    err, errcap, "spool_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022) != 0) {
		(void)snprintf(err, errcap,
		    "spool_dir %s: not a directory of this user's that only "
		    "it can write to (owner uid %ld, mode %03o; running as "
		    "uid %ld)",
		    dir, (long)st.st_uid, (unsigned)(st.st_mode & 07777),
		    (long)geteuid());
		return -1;
	}
	if ((n = gw_spool_sweep(dir)) < 0) {
		(void)snprintf(
		    err, errcap, "spool_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	return n;
}
