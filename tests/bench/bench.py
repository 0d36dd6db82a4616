#!/usr/bin/env python3
"""tests/bench/bench.py: helpers of make bench (issue 5).

  bench.py descendants PID        PIDs below PID
  bench.py tree PID               cpu_us pss_kib rss_kib nproc of PID
                                  and its descendants
  bench.py sinkcount FILE         messages smtp-sink -c has counted
  bench.py pfdelay MAILLOG        Postfix delivery delays (status=sent)
  bench.py rtt FILE               smtp64-rtt output as metric lines
  bench.py report --tsv T --meta M --confdir D [--analysis A]
                  [--md OUT.md] [--tsv-out OUT.tsv]
                                  the table: printed, and written to docs

Standard library only (Debian 12's python3).
"""
import argparse
import math
import os
import re
import statistics
import sys

# ------------------------------------------------------------------ /proc


TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")


def _stat(pid):
    """(ppid, utime+stime+cutime+cstime in ticks) or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # comm may hold spaces and parentheses: split after the last ')'.
    rest = s[s.rfind(")") + 2:].split()
    # rest[0] is field 3 (state): ppid is field 4, utime..cstime 14..17.
    ppid = int(rest[1])
    ticks = sum(int(x) for x in rest[11:15])
    return ppid, ticks


def _children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = _stat(d)
        if st is None:
            continue
        kids.setdefault(st[0], []).append(int(d))
    return kids


def descendants(pid):
    kids = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for k in kids.get(p, []):
            out.append(k)
            todo.append(k)
    return out


def _cpu_us(pid):
    """CPU time of PID in µs: its own (user + system, live threads from
    /proc/PID/task/*/schedstat, in ns, unless /proc/PID/stat's utime +
    stime, in clock ticks, is larger, i.e. threads have exited) plus its
    reaped children's (cutime + cstime, ticks).  /proc/PID/stat alone
    counts in 10 ms ticks, too coarse for W2's ~0.1 s of relay CPU."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = s[s.rfind(")") + 2:].split()
    own_ticks = int(rest[11]) + int(rest[12])
    kids_ticks = int(rest[13]) + int(rest[14])
    ns = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    ns += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        pass
    return max(ns / 1000.0, own_ticks * TICK_US) + kids_ticks * TICK_US


def _rollup(pid):
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def tree(pid):
    """CPU (µs) over PID's tree: each live process's own and reaped
    children's time.  A child's time moves into its parent's cutime when
    it is reaped, so the sum is conserved across exits inside the tree
    (to a clock tick per process and reading)."""
    procs = [pid] + descendants(pid)
    us = 0.0
    pss = rss = n = 0
    for p in procs:
        c = _cpu_us(p)
        if c is None:
            continue
        us += c
        a, b = _rollup(p)
        pss += a
        rss += b
        n += 1
    return int(us), pss, rss, n


def sinkcount(path):
    """smtp-sink -c writes "sess=S quit=Q mesg=M" records ending in CR."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read().decode("ascii", "replace")
    except OSError:
        return 0
    m = re.findall(r"mesg=(\d+)", tail)
    return int(m[-1]) if m else 0


def pctl(v, q):
    """Nearest-rank quantile of a non-empty list."""
    s = sorted(v)
    k = max(1, min(len(s), math.ceil(q * len(s))))
    return s[k - 1]


def pfdelay(path):
    d = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if "status=sent" in line:
                    m = re.search(r" delay=([0-9.]+)", line)
                    if m:
                        d.append(float(m.group(1)))
    except OSError:
        pass
    if not d:
        return "n=0"
    return "n=%d p50_ms=%.1f p99_ms=%.1f" % (
        len(d), pctl(d, 0.5) * 1000, pctl(d, 0.99) * 1000)


# ------------------------------------------------------------------ report

# Configurations, in the table's order.
CONFIGS = ["direct", "smtp64d", "haproxy", "6tunnel", "socat",
           "postfix-relay"]
RELAYS = CONFIGS[1:]
OTHERS = [c for c in RELAYS if c != "smtp64d"]
CMDS = ["EHLO", "MAIL", "RCPT", "DATA", "END", "RSET"]
# smtp64d in route mode (W1 only): the same sink behind a [route] whose
# domain is found through a local dnsmasq (answers cached within TTL).
W1_CONFIGS = ["direct", "smtp64d", "smtp64d-route"] + CONFIGS[2:]
# W6 (tests/bench/w6.sh): the packet path.
# smtp64d: [packet] engine = nfqueue; bpf: engine = bpf (the tc program).
W6_CONFIGS = ["direct", "smtp64d", "bpf", "tayga"]
W6_METRICS = [("tcp_mbit_s", "TCP Mbit/s"),
              ("udp64_pps", "UDP 64-byte packets/s (iperf3)"),
              ("udp64_mmsg_pps", "UDP 64-byte packets/s (sendmmsg, 1 flow)"),
              ("udp64_mmsg2_pps",
               "UDP 64-byte packets/s (sendmmsg, 2 flows)")]


def load_rows(path):
    rows = []
    with open(path) as f:
        for line in f:
            if not line.strip() or line.startswith("#") or \
                    line.startswith("round\t"):
                continue
            p = line.rstrip("\n").split("\t")
            while len(p) < 8:
                p.append("")
            rows.append(dict(round=p[0], config=p[1], workload=p[2],
                             metric=p[3], value=p[4], unit=p[5],
                             status=p[6], detail=p[7]))
    return rows


class Cell:
    """One (config, workload, metric): values of the rounds that passed,
    and how many rounds failed."""

    def __init__(self):
        self.vals = []
        self.failed = 0
        self.rounds = 0
        self.notes = []

    def add(self, r):
        self.rounds += 1
        if r["status"] != "ok":
            self.failed += 1
            if r["detail"]:
                self.notes.append("round %s: %s" % (r["round"], r["detail"]))
            return
        try:
            self.vals.append(float(r["value"]))
        except ValueError:
            pass

    @property
    def ok(self):
        return self.failed == 0 and bool(self.vals)

    @property
    def med(self):
        return statistics.median(self.vals) if self.vals else None


# W7 (tests/bench/w7.sh): STARTTLS sessions.
W7_CONFIGS = ["direct", "smtp64d-terminate", "smtp64d-term-ecdsa",
              "smtp64d-passthrough", "nginx-mail", "haproxy"]


def w7_table(rows):
    """The W7 table and the issue's three targets, as markdown lines."""
    cells = {}
    for r in rows:
        if r["workload"] != "W7":
            continue
        cells.setdefault((r["config"], r["metric"]), Cell()).add(r)

    def get(c, m):
        return cells.get((c, m))

    def med(c, m):
        x = get(c, m)
        return x.med if x is not None and x.ok else None

    out = []
    out.append("| middle | client handshakes | sessions/s | CPU of the "
               "middle, ms/session | client leg resumed | upstream leg "
               "resumed | session latency, ms (1 client) | added vs "
               "direct, ms | load client CPU, ms/session |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for c in W7_CONFIGS:
        for mode in ("full", "resumed"):
            if get(c, "rate_" + mode) is None:
                continue
            up = get(c, "upstream_resumed_" + mode)
            if up is None:
                ups = ("end to end" if c in ("haproxy",
                                             "smtp64d-passthrough")
                       else "clear text" if c == "nginx-mail" else "–")
            else:
                ups = cellstr(up, 1) + " %"
            lat = med(c, "lat_" + mode)
            d = med("direct", "lat_" + mode)
            add = None if lat is None or d is None or c == "direct" \
                else lat - d
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                c, mode, cellstr(get(c, "rate_" + mode), 0),
                "–" if c == "direct" else cellstr(get(c, "cpu_" + mode), 2),
                cellstr(get(c, "client_resumed_" + mode), 1) + " %",
                ups, cellstr(get(c, "lat_" + mode), 2),
                fmt(add, 2) if add is not None else "–",
                cellstr(get(c, "client_cpu_" + mode), 2)))
    out.append("")
    out.append("Targets of issue 22 (medians):")
    out.append("")
    for mode in ("full", "resumed"):
        t = med("smtp64d-terminate", "cpu_" + mode)
        n = med("nginx-mail", "cpu_" + mode)
        out.append("- terminate CPU per session vs nginx mail, %s client "
                   "handshakes: %s (%s vs %s ms; target ≤ 1.00x)" % (
                       mode, rstr(ratio(t, n)), fmt(t, 2), fmt(n, 2)))
    for mode in ("full", "resumed"):
        u = med("smtp64d-terminate", "upstream_resumed_" + mode)
        out.append("- upstream sessions resumed, terminate, %s client "
                   "handshakes: %s %% (target ≥ 95 %%)" % (mode, fmt(u, 1)))
    for mode in ("full", "resumed"):
        d = med("direct", "lat_" + mode)
        t = med("smtp64d-terminate", "lat_" + mode)
        p = med("smtp64d-passthrough", "lat_" + mode)
        if None in (d, t, p):
            out.append("- added latency, %s: –" % mode)
            continue
        out.append("- added latency per session, %s client handshakes: "
                   "terminate %+.2f ms, passthrough %+.2f ms, difference "
                   "%+.2f ms (target ≤ 1 ms)" % (mode, t - d, p - d, t - p))
    return out


def fmt(x, nd=None):
    if x is None:
        return "–"
    if nd is None:
        a = abs(x)
        nd = 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 1 else 3
    return "%.*f" % (nd, x)


def cellstr(c, nd=None):
    if c is None or c.rounds == 0:
        return "n/a"
    if c.failed:
        return "FAILED (%d of %d rounds)" % (c.failed, c.rounds)
    if not c.vals:
        return "n/a"
    if len(c.vals) == 1:
        return fmt(c.med, nd)
    return "%s (%s–%s)" % (fmt(c.med, nd), fmt(min(c.vals), nd),
                           fmt(max(c.vals), nd))


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def rstr(x):
    return "–" if x is None else "%.2fx" % x


class Report:
    def __init__(self, rows):
        self.rows = rows
        self.cells = {}
        for r in rows:
            k = (r["config"], r["workload"], r["metric"])
            self.cells.setdefault(k, Cell()).add(r)
        self._derive()

    def get(self, cfg, w, m):
        return self.cells.get((cfg, w, m))

    def med(self, cfg, w, m):
        c = self.get(cfg, w, m)
        return c.med if c is not None and c.ok else None

    def _derive(self):
        """Per-round differences against direct of the same round: W3's
        host memory and W4's added latency."""
        by = {}
        for r in self.rows:
            by[(r["round"], r["config"], r["workload"], r["metric"])] = r

        def pair(cfg, w, m, newm):
            for (rd, c, ww, mm), r in list(by.items()):
                if c != cfg or ww != w or mm != m:
                    continue
                d = by.get((rd, "direct", w, m))
                nr = dict(r, metric=newm)
                if d is None or d["status"] != "ok" or r["status"] != "ok":
                    nr["status"] = r["status"] if r["status"] != "ok" \
                        else "n/a"
                    if nr["status"] == "n/a":
                        continue
                else:
                    nr["value"] = "%.3f" % (float(r["value"]) -
                                            float(d["value"]))
                self.cells.setdefault((cfg, w, newm), Cell()).add(nr)

        # W6: the translator's CPU over the cell (w6.sh puts
        # xlat_cpu_s= and seconds= in the detail), as % of one core.
        for r in self.rows:
            if r["workload"] != "W6" or r["config"] == "direct" or \
                    r["status"] != "ok":
                continue
            m1 = re.search(r"xlat_cpu_s=([0-9.]+)", r["detail"])
            m2 = re.search(r"seconds=([0-9.]+)", r["detail"])
            if not m1 or not m2 or float(m2.group(1)) <= 0:
                continue
            nr = dict(r, metric=r["metric"] + "_xlat_cpu_pct",
                      value="%.1f" % (100 * float(m1.group(1)) /
                                      float(m2.group(1))))
            self.cells.setdefault((r["config"], "W6", nr["metric"]),
                                  Cell()).add(nr)
            # Per packet the kernel handed the translator, and the
            # share the translator's full queue dropped.
            h = re.search(r"xlat_queued=(\d+) xlat_queue_full=(\d+) "
                          r"xlat_other_drop=(\d+) handled=(\d+)",
                          r["detail"])
            if not h or int(h.group(4)) <= 0:
                continue
            q, full, _, hd = (int(x) for x in h.groups())
            for m, v in (("_xlat_cpu_us_per_pkt",
                          1e6 * float(m1.group(1)) / hd),
                         ("_xlat_queue_full_pct", 100.0 * full / q)):
                nr = dict(r, metric=r["metric"] + m, value="%.3f" % v)
                self.cells.setdefault((r["config"], "W6", nr["metric"]),
                                      Cell()).add(nr)
        for cfg in RELAYS:
            pair(cfg, "W3", "host_kib_per_session",
                 "host_over_direct_kib_per_session")
            for cmd in CMDS:
                for q in ("p50", "p99"):
                    pair(cfg, "W4", "%s_%s_us" % (cmd, q),
                         "%s_%s_added_us" % (cmd, q))

    def best_other(self, w, m, higher):
        best = None
        for c in OTHERS:
            v = self.med(c, w, m)
            if v is None:
                continue
            if best is None or (v > best[1] if higher else v < best[1]):
                best = (c, v)
        return best

    def vs_best(self, w, m, higher):
        s = self.med("smtp64d", w, m)
        b = self.best_other(w, m, higher)
        if s is None or b is None:
            return "smtp64d / best other relay: –"
        return "smtp64d / best other relay (%s): %s" % (
            b[0], rstr(ratio(s, b[1])))

    # -- tables
    def table(self, head, lines):
        out = ["| " + " | ".join(head) + " |",
               "|" + "|".join("---" for _ in head) + "|"]
        for ln in lines:
            out.append("| " + " | ".join(ln) + " |")
        return out

    def w1(self):
        out = []
        d = self.med("direct", "W1", "sessions_per_s")
        lines = []
        for c in W1_CONFIGS:
            s = self.get(c, "W1", "sessions_per_s")
            cpu = self.get(c, "W1", "relay_cpu_us_per_session")
            dl = ""
            if c == "postfix-relay":
                dl = "%s / %s" % (
                    cellstr(self.get(c, "W1", "delivery_p50_ms")),
                    cellstr(self.get(c, "W1", "delivery_p99_ms")))
            lines.append([c, cellstr(s), rstr(ratio(
                s.med if s and s.ok else None, d)),
                cellstr(cpu) if c != "direct" else "–", dl or "–"])
        out += self.table(["configuration", "sessions/s median (min–max)",
                           "× direct", "relay CPU µs/session",
                           "delivery latency p50 / p99 ms"], lines)
        out.append("")
        out.append("- sessions/s: " + self.vs_best(
            "W1", "sessions_per_s", True))
        out.append("- relay CPU per session: " + self.vs_best(
            "W1", "relay_cpu_us_per_session", False))
        out.append("- route mode / pair mode, sessions/s: %s; relay CPU "
                   "per session: %s" % (
                       rstr(ratio(self.med("smtp64d-route", "W1",
                                           "sessions_per_s"),
                                  self.med("smtp64d", "W1",
                                           "sessions_per_s"))),
                       rstr(ratio(self.med("smtp64d-route", "W1",
                                           "relay_cpu_us_per_session"),
                                  self.med("smtp64d", "W1",
                                           "relay_cpu_us_per_session")))))
        return out

    def w2(self):
        out = []
        d = self.med("direct", "W2", "mb_per_s")
        lines = []
        for c in CONFIGS:
            s = self.get(c, "W2", "mb_per_s")
            cpu = self.get(c, "W2", "relay_cpu_us_per_mb")
            lines.append([c, cellstr(s), rstr(ratio(
                s.med if s and s.ok else None, d)),
                cellstr(cpu) if c != "direct" else "–"])
        out += self.table(["configuration", "MB/s median (min–max)",
                           "× direct", "relay CPU µs/MB"], lines)
        out.append("")
        out.append("- MB/s: " + self.vs_best("W2", "mb_per_s", True))
        return out

    def w3(self):
        lines = []
        for c in CONFIGS:
            lines.append([
                c, cellstr(self.get(c, "W3", "established")),
                cellstr(self.get(c, "W3", "relay_pss_kib_per_session"))
                if c != "direct" else "–",
                cellstr(self.get(c, "W3", "relay_rss_kib_per_session"))
                if c != "direct" else "–",
                cellstr(self.get(c, "W3", "host_kib_per_session")),
                cellstr(self.get(c, "W3",
                                 "host_over_direct_kib_per_session"))
                if c != "direct" else "–"])
        out = self.table(["configuration", "sessions held (both legs)",
                          "relay PSS KiB/session", "relay RSS KiB/session",
                          "host KiB/session",
                          "host KiB/session over direct"], lines)
        out.append("")
        out.append("- relay PSS per session: " + self.vs_best(
            "W3", "relay_pss_kib_per_session", False))
        out.append("- host memory over direct: " + self.vs_best(
            "W3", "host_over_direct_kib_per_session", False))
        return out

    def w4(self):
        lines = []
        for c in CONFIGS:
            ln = [c]
            for cmd in CMDS:
                p50 = self.get(c, "W4", "%s_p50_us" % cmd)
                p99 = self.get(c, "W4", "%s_p99_us" % cmd)
                if p50 is not None and p50.failed:
                    ln.append("FAILED")
                    continue
                ln.append("%s / %s" % (
                    fmt(p50.med if p50 and p50.ok else None, 0),
                    fmt(p99.med if p99 and p99.ok else None, 0)))
            lines.append(ln)
        out = ["Round trip per command, p50 / p99 in µs (median of the "
               "rounds):", ""]
        out += self.table(["configuration"] + CMDS, lines)
        out += ["", "Added over direct (same round, then median), "
                "p50 / p99 in µs:", ""]
        lines = []
        for c in RELAYS:
            ln = [c]
            for cmd in CMDS:
                a = self.get(c, "W4", "%s_p50_added_us" % cmd)
                b = self.get(c, "W4", "%s_p99_added_us" % cmd)
                if (a and a.failed) or (b and b.failed):
                    ln.append("FAILED")
                    continue
                ln.append("%s / %s" % (fmt(a.med if a and a.ok else None, 0),
                                       fmt(b.med if b and b.ok else None, 0)))
            lines.append(ln)
        out += self.table(["configuration"] + CMDS, lines)
        worst = self.w4_worst("smtp64d")
        if worst is not None:
            out += ["", "- smtp64d's largest added p99: %.0f µs (%s)" %
                    (worst[1], worst[0])]
        return out

    def w4_worst(self, cfg):
        worst = None
        for cmd in CMDS:
            v = self.med(cfg, "W4", "%s_p99_added_us" % cmd)
            if v is not None and (worst is None or v > worst[1]):
                worst = (cmd, v)
        return worst

    def w5(self):
        lines = []
        sizes = sorted({int(r["metric"].split("_")[0][1:])
                        for r in self.rows if r["workload"] == "W5"})
        for n in sizes:
            p = "n%d_" % n
            lines.append(["%d" % n] + [cellstr(self.get(
                "smtp64d", "W5", p + m)) for m in
                ("load_ms", "v4_ns", "v6_ns", "miss_ns", "table_kib")])
        return self.table(["pairs", "load ms", "lookup by IPv4 ns",
                           "lookup by IPv6 ns", "miss ns", "table KiB"],
                          lines)

    def w6(self):
        out = []
        for m, title in W6_METRICS:
            head = ["configuration", title + " median (min–max)",
                    "× direct", "translator CPU, % of one core",
                    "translator CPU µs per packet handled",
                    "dropped at the translator's full queue, %"]
            lines = []
            for c in W6_CONFIGS:
                s = self.get(c, "W6", m)
                ln = [c, cellstr(s), rstr(ratio(
                    s.med if s and s.ok else None,
                    self.med("direct", "W6", m)))]
                for x, nd in (("_xlat_cpu_pct", 0),
                              ("_xlat_cpu_us_per_pkt", 2),
                              ("_xlat_queue_full_pct", 1)):
                    # bpf: the work is the kernel's, in softirq, where
                    # no process's CPU time counts it.
                    ln.append("–" if c in ("direct", "bpf") else
                              cellstr(self.get(c, "W6", m + x), nd))
                lines.append(ln)
            out += self.table(head, lines)
            out.append("")
        for m, title in W6_METRICS:
            for c in ("smtp64d", "bpf"):
                out.append("- %s: %s / TAYGA: %s" % (title, c, rstr(ratio(
                    self.med(c, "W6", m), self.med("tayga", "W6", m)))))
        out.append("- TCP Mbit/s: bpf / direct: %s" % rstr(ratio(
            self.med("bpf", "W6", "tcp_mbit_s"),
            self.med("direct", "W6", "tcp_mbit_s"))))
        return out

    def targets(self):
        out = []
        hp = "haproxy"

        def line(name, val, goal, ok):
            out.append("| %s | %s | %s | %s |" % (
                name, val, goal, "–" if ok is None else
                ("met" if ok else "**missed**")))

        out += ["| target | smtp64d | goal | result |",
                "|---|---|---|---|"]
        r = ratio(self.med("smtp64d", "W1", "sessions_per_s"),
                  self.med(hp, "W1", "sessions_per_s"))
        line("W1 sessions/s vs HAProxy", rstr(r), "≥ 1.2x",
             None if r is None else r >= 1.2)
        r = ratio(self.med("smtp64d", "W1", "relay_cpu_us_per_session"),
                  self.med(hp, "W1", "relay_cpu_us_per_session"))
        line("W1 relay CPU/session vs HAProxy", rstr(r), "≤ 0.7x",
             None if r is None else r <= 0.7)
        r = ratio(self.med("smtp64d", "W2", "mb_per_s"),
                  self.med(hp, "W2", "mb_per_s"))
        line("W2 MB/s vs HAProxy", rstr(r), "≥ 1.0x",
             None if r is None else r >= 1.0)
        v = self.med("smtp64d", "W3", "relay_pss_kib_per_session")
        line("W3 own memory per idle session (PSS)",
             "–" if v is None else "%.2f KiB" % v, "≤ 2 KiB",
             None if v is None else v <= 2.0)
        a = self.med("smtp64d", "W3", "host_over_direct_kib_per_session")
        b = self.med(hp, "W3", "host_over_direct_kib_per_session")
        line("W3 host memory per session over direct vs HAProxy",
             "–" if a is None or b is None else
             "%.2f vs %.2f KiB" % (a, b), "≤ HAProxy's",
             None if a is None or b is None else a <= b)
        w = self.w4_worst("smtp64d")
        line("W4 added p99 (worst command)",
             "–" if w is None else "%.0f µs (%s)" % (w[1], w[0]),
             "≤ 100 µs", None if w is None else w[1] <= 100)
        v = self.med("smtp64d", "W5", "n1000000_load_ms")
        line("W5 load of 1M pairs", "–" if v is None else "%.0f ms" % v,
             "< 1000 ms", None if v is None else v < 1000)
        a = self.med("smtp64d", "W5", "n1000000_v4_ns")
        b = self.med("smtp64d", "W5", "n1000_v4_ns")
        r = ratio(a, b)
        line("W5 lookup 1M vs 1k pairs (IPv4)", rstr(r),
             "flat (no growth with size)", None)
        r = ratio(self.med("smtp64d", "W6", "udp64_pps"),
                  self.med("tayga", "W6", "udp64_pps"))
        line("W6 UDP 64-byte packets/s vs TAYGA", rstr(r), "≥ 2x",
             None if r is None else r >= 2.0)
        r = ratio(self.med("bpf", "W6", "udp64_pps"),
                  self.med("tayga", "W6", "udp64_pps"))
        line("W6 engine = bpf: UDP 64-byte packets/s vs TAYGA (iperf3, "
             "sender-bound)", rstr(r), "–", None)
        r = ratio(self.med("bpf", "W6", "udp64_mmsg2_pps"),
                  self.med("tayga", "W6", "udp64_mmsg2_pps"))
        line("W6 engine = bpf: UDP 64-byte packets/s vs TAYGA (sendmmsg, "
             "2 flows)", rstr(r), "≥ 2x", None if r is None else r >= 2.0)
        r = ratio(self.med("bpf", "W6", "tcp_mbit_s"),
                  self.med("direct", "W6", "tcp_mbit_s"))
        line("W6 engine = bpf: TCP Mbit/s vs kernel forwarding", rstr(r),
             "≥ 0.5x", None if r is None else r >= 0.5)
        return out


def cmd_report(a):
    rows = load_rows(a.tsv)
    rep = Report(rows)
    meta = []
    if a.meta and os.path.exists(a.meta):
        with open(a.meta) as f:
            meta = [ln.rstrip("\n").split("\t", 1) for ln in f
                    if "\t" in ln]
    md = dict(meta)
    out = []
    out.append("# smtp64 performance (`make bench`)")
    out.append("")
    out.append("Generated by `tests/bench/run` (issue 5); rerun with "
               "`make bench` (or `make bench QUICK=1`). Absolute numbers "
               "on a shared 2-core machine are noise; the ratios, measured "
               "in one interleaved run, are the result.")
    out.append("")
    out.append("## Run")
    out.append("")
    for k, v in meta:
        if k.startswith("conf_"):
            continue
        out.append("- **%s**: %s" % (k, v))
    out.append("")
    out.append("## Results")
    out.append("")
    out.append("Each cell: median over the rounds (min–max). A cell whose "
               "message count at the sink differs from what was sent is "
               "FAILED and has no number.")
    out.append("")
    out.append("### Targets of issue 5")
    out.append("")
    out += rep.targets()
    out.append("")
    out.append("### W1 sessions/s (smtp-source -s 20, one small message "
               "per session)")
    out.append("")
    out += rep.w1()
    out.append("")
    out.append("### W2 throughput (10 MB messages, 4 parallel sessions)")
    out.append("")
    out += rep.w2()
    out.append("")
    out.append("### W3 memory per idle session (held after the greeting)")
    out.append("")
    out += rep.w3()
    out.append("")
    out.append("### W4 per-command round trip (smtp64-rtt)")
    out.append("")
    out += rep.w4()
    out.append("")
    out.append("### W5 pair table (nat/pair.h)")
    out.append("")
    out += rep.w5()
    out.append("")
    out.append("### W6 packet path (iperf3 through the NFQUEUE translator, "
               "TAYGA, kernel forwarding)")
    out.append("")
    if any(r["workload"] == "W6" for r in rows):
        if md.get("W6 translator"):
            out.append("smtp64d here: %s." % md["W6 translator"])
            out.append("")
        out += rep.w6()
    else:
        out.append("Not run (W6 not among the workloads).")
    out.append("")
    out.append("### W7 STARTTLS sessions (tests/bench/w7.sh)")
    out.append("")
    if any(r["workload"] == "W7" for r in rows):
        if md.get("W7"):
            out.append("%s." % md["W7"])
            out.append("")
        out += w7_table(rows)
    else:
        out.append("Not run (W7 not among the workloads).")
    out.append("")
    fails = [(k, c) for k, c in sorted(rep.cells.items()) if c.failed]
    if fails:
        out.append("### Failed cells")
        out.append("")
        for (cfg, w, m), c in fails:
            out.append("- %s %s %s: %s" % (cfg, w, m, "; ".join(
                c.notes) or "%d failed" % c.failed))
        out.append("")
    table_text = "\n".join(out)
    print(table_text[table_text.index("## Results"):])

    if a.md:
        doc = list(out)
        doc.append("## How each peer was run")
        doc.append("")
        if a.confdir:
            for name, title in (
                    ("relays.txt", "Command lines"),
                    ("smtp64d.conf", "smtp64d"),
                    ("haproxy.cfg", "HAProxy"),
                    ("postfix-main.cf", "Postfix relay (main.cf)")):
                p = os.path.join(a.confdir, name)
                if not os.path.exists(p):
                    continue
                doc.append("#### " + title)
                doc.append("")
                doc.append("```")
                with open(p) as f:
                    doc.append(f.read().rstrip("\n"))
                doc.append("```")
                doc.append("")
        if a.events and os.path.exists(a.events):
            with open(a.events) as f:
                ev = f.read().rstrip("\n")
            doc.append("## smtp64d's own log during the run")
            doc.append("")
            if ev:
                doc.append("smtp64d ran at `log_level = warning`; every line "
                           "it wrote, grouped per cell (count, line with "
                           "session ids and client ports masked):")
                doc += ["", "```", ev, "```"]
            else:
                doc.append("smtp64d ran at `log_level = warning` and wrote "
                           "no line in any cell.")
            doc.append("")
        if a.method and os.path.exists(a.method):
            with open(a.method) as f:
                doc.append(f.read().rstrip("\n"))
            doc.append("")
        if a.analysis and os.path.exists(a.analysis):
            with open(a.analysis) as f:
                doc.append(f.read().rstrip("\n"))
            doc.append("")
        with open(a.md, "w") as f:
            f.write("\n".join(doc) + "\n")
    if a.tsv_out:
        with open(a.tsv, "r") as f, open(a.tsv_out, "w") as g:
            g.write(f.read())


def cmd_rtt(path):
    """smtp64-rtt's table to "metric value" lines."""
    with open(path) as f:
        for line in f:
            p = line.split("\t")
            if len(p) >= 4 and p[0] in CMDS:
                print("%s_p50_us %s" % (p[0], p[2]))
                print("%s_p99_us %s" % (p[0], p[3]))
            elif p[0] == "messages":
                print("messages %s" % p[1].strip())


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("descendants").add_argument("pid", type=int)
    sub.add_parser("tree").add_argument("pid", type=int)
    sub.add_parser("sinkcount").add_argument("file")
    sub.add_parser("pfdelay").add_argument("file")
    sub.add_parser("rtt").add_argument("file")
    sub.add_parser("w7").add_argument("file")
    r = sub.add_parser("report")
    r.add_argument("--tsv", required=True)
    r.add_argument("--meta")
    r.add_argument("--confdir")
    r.add_argument("--method")
    r.add_argument("--analysis")
    r.add_argument("--events")
    r.add_argument("--md")
    r.add_argument("--tsv-out")
    a = ap.parse_args()
    if a.cmd == "descendants":
        print(" ".join(str(p) for p in descendants(a.pid)))
    elif a.cmd == "tree":
        t, pss, rss, n = tree(a.pid)
        print("%d %d %d %d" % (t, pss, rss, n))
    elif a.cmd == "sinkcount":
        print(sinkcount(a.file))
    elif a.cmd == "pfdelay":
        print(pfdelay(a.file))
    elif a.cmd == "rtt":
        cmd_rtt(a.file)
    elif a.cmd == "w7":
        print("\n".join(w7_table(load_rows(a.file))))
    elif a.cmd == "report":
        cmd_report(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
