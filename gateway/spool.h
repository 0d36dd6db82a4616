/*
 * gateway/spool.h: one message held while its outcome is unknown.  When a
 * server refuses a message after its data with 451 4.4.8 (or 456 4.4.8
 * once IPV6-IPV4-FALLBACK was negotiated; draft-martin-smtp-ipv6-to-ipv4-
 * fallback §3), the gateway sends it again over IPv4; so it keeps the
 * bytes it relayed until a server's final reply is in.  The client is
 * answered only then: it never gets 250 for a message no server took.
 *
 * Bytes stay in memory up to mem_max; beyond that they go to a file
 * created O_EXCL|O_NOFOLLOW, mode 0600, in the spool directory, and
 * unlinked at once, so the file has no name while it is used and a crash
 * leaves nothing to deliver twice.  gw_spool_sweep removes any file a
 * crash between create and unlink could leave.  Everything is bounded by
 * total_max.
 */
#ifndef GW_SPOOL_H
#define GW_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct gw_spool_opts {
	const char *dir;    /* spool directory (absolute); NULL: memory only */
	size_t mem_max;     /* bytes kept in memory before a file is used */
	uint64_t total_max; /* bytes a message may have at all */
};

struct gw_spool {
	const struct gw_spool_opts *o; /* outlives the spool */
	char *mem;                     /* owned, mem_cap bytes */
	size_t mem_len, mem_cap;
	int fd;         /* -1 until the message outgrows memory */
	uint64_t total; /* bytes held, memory and file */
};

/* Prepares an empty spool; allocates nothing yet. */
void gw_spool_init(struct gw_spool *s, const struct gw_spool_opts *o);

/*
 * Appends buf[0..len).  0, or -1 with errno: EFBIG past total_max, ENOSPC
 * (or another write error) when the file cannot take it, ENOMEM, or the
 * error of creating the file.  On failure nothing of buf is kept.
 */
int gw_spool_append(struct gw_spool *s, const char *buf, size_t len);

/* Bytes held. */
uint64_t gw_spool_size(const struct gw_spool *s);

/* 1 once the message has outgrown memory (a file holds the rest). */
int gw_spool_on_disk(const struct gw_spool *s);

/*
 * Copies up to cap bytes from offset off into dst; returns how many (0 at
 * the end), or -1 with errno on a read error.
 */
ssize_t gw_spool_read(
    const struct gw_spool *s, uint64_t off, char *dst, size_t cap);

/* Forgets the message: frees memory, closes the file.  The spool may be
 * used again. */
void gw_spool_clear(struct gw_spool *s);

/*
 * Start-up: removes the files a crash left in dir (regular files named
 * like ours, owned by this user; never follows a link).  Returns how many
 * were removed, or -1 with errno if dir cannot be read.
 */
int gw_spool_sweep(const char *dir);

/*
 * Start-up: makes dir (mode 0700) if absent, and checks that it is a
 * directory of this user's (never through a link) that no one else can
 * write to; then sweeps it.  Returns how many leftovers were removed, or
 * -1 with a message in err of capacity errcap.
 */
int gw_spool_dir_prepare(const char *dir, char *err, size_t errcap);

#endif
