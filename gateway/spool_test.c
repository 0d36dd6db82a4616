/*
 * gateway/spool_test.c: unit tests of gateway/spool.c, the hold of a
 * message until a server's final reply: memory, then a nameless file;
 * reads back byte for byte; bounds; a planted name is never written
 * through; a crash's leftovers are swept, and only those.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway/spool.h"

static char dir[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/smtp64-spooltest.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Entries in dir other than . and .. */
static int
entries(void)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void
fill(char *p, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (char)((i * 31 + seed) & 0xff);
}

/* Reads the whole spool back in steps of step bytes. */
static void
read_back(const struct gw_spool *s, const char *want, size_t n, size_t step)
{
	static char got[1 << 20];
	uint64_t off = 0;
	ssize_t r;

	assert_true(n <= sizeof(got));
	while ((r = gw_spool_read(s, off, got + off, step)) > 0)
		off += (uint64_t)r;
	assert_int_equal(r, 0);
	assert_int_equal(off, n);
	assert_memory_equal(got, want, n);
}

static void
test_memory_only(void **state)
{
	struct gw_spool_opts o = {dir, 64 * 1024, 1 << 20};
	struct gw_spool s;
	char msg[10000];

	(void)state;
	fill(msg, sizeof(msg), 1);
	gw_spool_init(&s, &o);
	assert_int_equal(gw_spool_append(&s, msg, 5000), 0);
	assert_int_equal(gw_spool_append(&s, msg + 5000, 5000), 0);
	assert_int_equal(gw_spool_size(&s), sizeof(msg));
	assert_int_equal(gw_spool_on_disk(&s), 0);
	assert_int_equal(entries(), 0);
	read_back(&s, msg, sizeof(msg), 777);
	gw_spool_clear(&s);
	assert_int_equal(gw_spool_size(&s), 0);
}

/* Past mem_max the rest goes to a file that has no name. */
static void
test_spill_to_nameless_file(void **state)
{
	struct gw_spool_opts o = {dir, 4096, 1 << 20};
	struct gw_spool s;
	static char msg[300000];
	size_t off;

	(void)state;
	fill(msg, sizeof(msg), 7);
	gw_spool_init(&s, &o);
	for (off = 0; off < sizeof(msg); off += 1000)
		assert_int_equal(
		    gw_spool_append(&s, msg + off,
		        sizeof(msg) - off < 1000 ? sizeof(msg) - off : 1000),
		    0);
	assert_int_equal(gw_spool_on_disk(&s), 1);
	assert_int_equal(entries(), 0); /* unlinked at once */
	read_back(&s, msg, sizeof(msg), 4096);
	read_back(&s, msg, sizeof(msg), 333);
	gw_spool_clear(&s);
	assert_int_equal(gw_spool_on_disk(&s), 0);
	/* Used again after clear. */
	assert_int_equal(gw_spool_append(&s, "abc", 3), 0);
	read_back(&s, "abc", 3, 2);
	gw_spool_clear(&s);
}

static void
test_bounds(void **state)
{
	struct gw_spool_opts o = {dir, 100, 1000};
	struct gw_spool_opts mem = {NULL, 100, 1000};
	struct gw_spool s;
	char buf[1001];

	(void)state;
	fill(buf, sizeof(buf), 3);
	gw_spool_init(&s, &o);
	assert_int_equal(gw_spool_append(&s, buf, 999), 0);
	assert_int_equal(gw_spool_append(&s, buf, 2), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(gw_spool_size(&s), 999); /* nothing of it kept */
	assert_int_equal(gw_spool_append(&s, buf, 1), 0);
	gw_spool_clear(&s);
	/* No directory: memory only, so mem_max bounds the message. */
	gw_spool_init(&s, &mem);
	assert_int_equal(gw_spool_append(&s, buf, 100), 0);
	assert_int_equal(gw_spool_append(&s, buf, 1), -1);
	assert_int_equal(errno, EFBIG);
	gw_spool_clear(&s);
	/* A directory that does not exist: the error, nothing kept. */
	{
		struct gw_spool_opts gone = {"/nonexistent-smtp64", 10, 1000};

		gw_spool_init(&s, &gone);
		assert_int_equal(gw_spool_append(&s, buf, 50), -1);
		assert_int_equal(errno, ENOENT);
		assert_int_equal(gw_spool_size(&s), 0);
		gw_spool_clear(&s);
	}
}

/* A link planted where the next file would be: O_EXCL|O_NOFOLLOW never
 * writes through it (the spool takes another name), and its target is
 * untouched. */
static void
test_planted_link(void **state)
{
	struct gw_spool_opts o = {dir, 10, 1 << 20};
	struct gw_spool s;
	char path[256], target[256], buf[64];
	int i, fd;

	(void)state;
	snprintf(target, sizeof(target), "%s/target", dir);
	fd = open(target, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep", 4), 4);
	close(fd);
	/* Every name the next few spills could take. */
	for (i = 1; i < 64; i++) {
		snprintf(path, sizeof(path), "%s/smtp64-%ld-%d.spool", dir,
		    (long)getpid(), i);
		(void)symlink(target, path);
	}
	gw_spool_init(&s, &o);
	memset(buf, 'x', sizeof(buf));
	/* Either refused (every tried name taken) or written elsewhere. */
	(void)gw_spool_append(&s, buf, sizeof(buf));
	gw_spool_clear(&s);
	fd = open(target, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "keep", 4);
	close(fd);
	/* The sweep removes none of the links, nor the target. */
	assert_int_equal(gw_spool_sweep(dir), 0);
	assert_int_equal(entries(), 64);
	for (i = 1; i < 64; i++) {
		snprintf(path, sizeof(path), "%s/smtp64-%ld-%d.spool", dir,
		    (long)getpid(), i);
		unlink(path);
	}
	unlink(target);
}

/* A crash between create and unlink leaves a named file: the sweep at
 * start-up removes it, and only files named like ours. */
static void
test_sweep(void **state)
{
	static const char *const ours[] = {
	    "smtp64-123-4.spool", "smtp64-9-99999.spool"};
	static const char *const others[] = {"smtp64-1-2.spool.tmp",
	    "smtp64--2.spool", "smtp64-1-x.spool", "mail.spool",
	    "smtp64-12.spool"};
	char path[256];
	size_t i;
	int fd;

	(void)state;
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, ours[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		close(fd);
	}
	for (i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, others[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/smtp64-5-5.spool", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(gw_spool_sweep(dir), 2);
	assert_int_equal(entries(), 6);
	assert_int_equal(gw_spool_sweep("/nonexistent-smtp64"), -1);
}

/*
 * A crash between the two legs of a fallback: the process holding a
 * message (past memory, in a file) dies before the outcome.  Nothing is
 * left to deliver again: the file had no name from its first byte on, so
 * the directory is as empty as before, and the client, which never got a
 * final reply, keeps the message in its queue.
 */
static void
test_crash_leaves_nothing(void **state)
{
	struct gw_spool_opts o = {dir, 1024, 1 << 20};
	int status;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static char msg[64 * 1024];
		struct gw_spool s;

		fill(msg, sizeof(msg), 7);
		gw_spool_init(&s, &o);
		if (gw_spool_append(&s, msg, sizeof(msg)) != 0 ||
		    !gw_spool_on_disk(&s))
			_exit(2);
		raise(SIGKILL); /* no clean-up of any kind */
		_exit(3);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_int_equal(entries(), 0);
	assert_int_equal(gw_spool_sweep(dir), 0);
}

/* Start-up: the directory is made 0700, must be ours and writable by us
 * alone, is never a link, and is swept. */
static void
test_dir_prepare(void **state)
{
	char sub[128], link[128], path[256], err[256];
	int fd;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/spool", dir);
	assert_int_equal(gw_spool_dir_prepare(sub, err, sizeof(err)), 0);
	{
		struct stat st;

		assert_int_equal(lstat(sub, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0700);
	}
	snprintf(path, sizeof(path), "%s/smtp64-77-1.spool", sub);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(gw_spool_dir_prepare(sub, err, sizeof(err)), 1);
	/* A link to a directory is refused, never followed. */
	snprintf(link, sizeof(link), "%s/link", dir);
	assert_int_equal(symlink(sub, link), 0);
	assert_int_equal(gw_spool_dir_prepare(link, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a directory"));
	/* Others could plant files in a group- or world-writable one. */
	assert_int_equal(chmod(sub, 0770), 0);
	assert_int_equal(gw_spool_dir_prepare(sub, err, sizeof(err)), -1);
	assert_int_equal(chmod(sub, 0700), 0);
	unlink(link);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_memory_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_spill_to_nameless_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_planted_link, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_crash_leaves_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dir_prepare, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
