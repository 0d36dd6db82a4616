/*
 * gateway/privs.c: see privs.h.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cap-ng.h>

#include "gateway/privs.h"

static const struct {
	unsigned bit;
	unsigned cap;
	const char *name;
} caps[] = {
    {GW_PRIV_BIND, CAP_NET_BIND_SERVICE, "cap_net_bind_service"},
    {GW_PRIV_ADMIN, CAP_NET_ADMIN, "cap_net_admin"},
    {GW_PRIV_RAW, CAP_NET_RAW, "cap_net_raw"},
    {GW_PRIV_BPF, CAP_BPF, "cap_bpf"},
    {GW_PRIV_PERFMON, CAP_PERFMON, "cap_perfmon"},
};
#define NCAPS (sizeof(caps) / sizeof(caps[0]))

unsigned
gw_privs_needed(const struct gw_config *cfg)
{
	unsigned set = 0;

	/* No GW_PRIV_BIND: every listener is bound at start, workers'
	 * too (main.c keeps them for a restarted worker), and a reload
	 * binds nothing. */
	if (cfg->transparent)
		set |= GW_PRIV_ADMIN;
	if (cfg->packet.enable)
		set |= GW_PRIV_ADMIN | GW_PRIV_RAW;
	if (cfg->packet.enable && cfg->packet.engine == GW_PACKET_BPF)
		set |= GW_PRIV_BPF | GW_PRIV_PERFMON;
	return set;
}

char *
gw_privs_names(unsigned set, char *dst, size_t cap)
{
	size_t i, o = 0;
	int n;

	dst[0] = '\0';
	for (i = 0; i < NCAPS; i++) {
		if (!(set & caps[i].bit))
			continue;
		n = snprintf(
		    dst + o, cap - o, "%s%s", o > 0 ? "," : "", caps[i].name);
		if (n < 0 || (size_t)n >= cap - o) {
			dst[o] = '\0'; /* whole names only */
			break;
		}
		o += (size_t)n;
	}
	if (o == 0)
		(void)snprintf(dst, cap, "none");
	return dst;
}

/* A name, else a decimal number; 0 or -1. */
static int
lookup_user(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;
	char *end;
	unsigned long n;

	if ((pw = getpwnam(name)) != NULL) {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
		return 0;
	}
	errno = 0;
	n = strtoul(name, &end, 10);
	if (errno != 0 || *end != '\0' || end == name || n >= (uid_t)-1)
		return -1;
	*uid = (uid_t)n;
	*gid = (pw = getpwuid(*uid)) != NULL ? pw->pw_gid : (gid_t)n;
	return 0;
}

static int
lookup_group(const char *name, gid_t *gid)
{
	struct group *gr;
	char *end;
	unsigned long n;

	if ((gr = getgrnam(name)) != NULL) {
		*gid = gr->gr_gid;
		return 0;
	}
	errno = 0;
	n = strtoul(name, &end, 10);
	if (errno != 0 || *end != '\0' || end == name || n >= (gid_t)-1)
		return -1;
	*gid = (gid_t)n;
	return 0;
}

/*
 * Keeps, of need, what the process has: effective and permitted only;
 * inheritable and ambient emptied, the bounding set too where
 * CAP_SETPCAP allows.  Lowering needs no privilege.  0 or -1.
 */
static int
keep_only(unsigned need)
{
	unsigned have = gw_privs_current();
	int setpcap, rc;
	size_t i;

	if (capng_get_caps_process() != 0)
		return -1;
	setpcap = capng_have_capability(CAPNG_PERMITTED, CAP_SETPCAP);
	capng_clear(CAPNG_SELECT_ALL);
	for (i = 0; i < NCAPS; i++)
		if (need & have & caps[i].bit)
			(void)capng_update(CAPNG_ADD,
			    CAPNG_EFFECTIVE | CAPNG_PERMITTED, caps[i].cap);
	if (setpcap && (rc = capng_apply(CAPNG_SELECT_BOUNDS)) != 0)
		return rc;
	if ((rc = capng_apply(CAPNG_SELECT_CAPS)) != 0)
		return rc;
	return capng_apply(CAPNG_SELECT_AMBIENT);
}

unsigned
gw_privs_current(void)
{
	unsigned set = 0;
	size_t i;

	capng_setpid((int)getpid());
	if (capng_get_caps_process() != 0)
		return 0;
	for (i = 0; i < NCAPS; i++)
		if (capng_have_capability(CAPNG_EFFECTIVE, caps[i].cap))
			set |= caps[i].bit;
	return set;
}

/* The ids user = and group = name; 0, or -1 with err. */
static int
target_ids(const struct gw_config *cfg, uid_t *uid, gid_t *gid, char *err,
    size_t errcap)
{
	if (lookup_user(cfg->user, uid, gid) != 0) {
		(void)snprintf(
		    err, errcap, "user = %s: no such user", cfg->user);
		return -1;
	}
	if (cfg->group[0] != '\0' && lookup_group(cfg->group, gid) != 0) {
		(void)snprintf(
		    err, errcap, "group = %s: no such group", cfg->group);
		return -1;
	}
	return 0;
}

int
gw_privs_own_dir(
    const struct gw_config *cfg, const char *dir, char *err, size_t errcap)
{
	uid_t uid;
	gid_t gid;

	if (cfg->user[0] == '\0' || geteuid() != 0)
		return 0;
	if (target_ids(cfg, &uid, &gid, err, errcap) != 0)
		return -1;
	if (mkdir(dir, 0700) != 0) {
		if (errno == EEXIST)
			return 0;
		(void)snprintf(err, errcap, "%s", strerror(errno));
		return -1;
	}
	if (chown(dir, uid, gid) != 0) {
		(void)snprintf(
		    err, errcap, "chown to %s: %s", cfg->user, strerror(errno));
		(void)rmdir(dir);
		return -1;
	}
	return 0;
}

int
gw_privs_drop(const struct gw_config *cfg, char *err, size_t errcap)
{
	unsigned need = gw_privs_needed(cfg);
	uid_t uid;
	gid_t gid;
	size_t i;
	int rc;

	if (cfg->user[0] == '\0' && geteuid() == 0)
		return 0;
	if (cfg->user[0] == '\0')
		goto unprivileged;
	if (target_ids(cfg, &uid, &gid, err, errcap) != 0)
		return -1;
	if (geteuid() != 0) {
		if (geteuid() == uid && getegid() == gid)
			goto unprivileged;
		(void)snprintf(err, errcap,
		    "user = %s: only root can change to it (running as uid "
		    "%ld)",
		    cfg->user, (long)geteuid());
		return -1;
	}
	/* setgroups, setgid, setuid with PR_SET_KEEPCAPS in between, then
	 * the sets below applied; the bounding and ambient sets emptied,
	 * so nothing executed later regains a capability. */
	capng_clear(CAPNG_SELECT_ALL);
	for (i = 0; i < NCAPS; i++)
		if (need & caps[i].bit)
			(void)capng_update(CAPNG_ADD,
			    CAPNG_EFFECTIVE | CAPNG_PERMITTED, caps[i].cap);
	rc = capng_change_id((int)uid, (int)gid,
	    CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING | CAPNG_CLEAR_AMBIENT);
	if (rc != 0) {
		(void)snprintf(err, errcap,
		    "user = %s: changing to uid %ld gid %ld failed "
		    "(libcap-ng %d: %s)",
		    cfg->user, (long)uid, (long)gid, rc, strerror(errno));
		return -1;
	}
	return 0;
unprivileged:
	if ((rc = keep_only(need)) != 0) {
		(void)snprintf(err, errcap,
		    "capabilities: cannot keep only those needed "
		    "(libcap-ng %d)",
		    rc);
		return -1;
	}
	return 0;
}
