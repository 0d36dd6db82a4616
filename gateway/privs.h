/*
 * gateway/privs.h: who the daemon runs as once its sockets are open, and
 * which capabilities(7) it keeps (libcap-ng).
 */
#ifndef GW_PRIVS_H
#define GW_PRIVS_H

#include <stddef.h>

#include "gateway/config.h"

/* Capabilities a running daemon may still need, as a bit set. */
#define GW_PRIV_BIND 0x1     /* CAP_NET_BIND_SERVICE */
#define GW_PRIV_ADMIN 0x2    /* CAP_NET_ADMIN */
#define GW_PRIV_RAW 0x4      /* CAP_NET_RAW */
#define GW_PRIV_BPF 0x8      /* CAP_BPF */
#define GW_PRIV_PERFMON 0x10 /* CAP_PERFMON */

/*
 * What cfg needs after start: ADMIN with transparent (IP_TRANSPARENT on
 * upstream sockets) or the packet path (NFQUEUE, bound again by a reload
 * or a restarted worker 0), RAW with the packet path (its raw sockets),
 * BPF with engine = bpf (worker 0 loads the tc program and its maps after
 * the change, and a restarted worker 0 again: capabilities(7) asks for
 * CAP_BPF and CAP_NET_ADMIN to load a networking program).
 * Never BIND: every listening socket, workers' included, is bound at
 * start and kept, and a reload binds nothing (it keeps the listeners).
 */
unsigned gw_privs_needed(const struct gw_config *cfg);

/* Writes the set as "cap_net_bind_service,cap_net_admin" or "none" into
 * dst (capacity cap); returns dst. */
char *gw_privs_names(unsigned set, char *dst, size_t cap);

/* The set this process holds in its effective set now. */
unsigned gw_privs_current(void);

/*
 * Run as cfg->user (and cfg->group, else the user's group) with only the
 * capabilities gw_privs_needed names: supplementary groups dropped, then
 * setgid, setuid, keeping those capabilities, the bounding and ambient
 * sets cleared.  Without user: a process started unprivileged (file or
 * ambient capabilities, a sidecar) keeps only what it needs of what it
 * has; root stays root with every capability.  0, or -1 with a message in err
 * (capacity errcap).
 */
int gw_privs_drop(const struct gw_config *cfg, char *err, size_t errcap);

/*
 * Before gw_privs_drop, as root with a user set: makes dir (0700) if it
 * is absent and gives it to that user and group, so that the daemon can
 * still write there once it is that user.  A directory that exists is
 * left as it is (the caller's own checks judge it).  0, or -1 with err.
 */
int gw_privs_own_dir(
    const struct gw_config *cfg, const char *dir, char *err, size_t errcap);

#endif
