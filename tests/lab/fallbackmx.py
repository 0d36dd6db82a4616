#!/usr/bin/python3
"""fallbackmx: a scripted dual-stack MX that refuses mail over IPv6 with
456 4.4.8 once IPV6-IPV4-FALLBACK is negotiated, for the lab.

  fallbackmx.py PORT MAILDIR [--max=N] [--idle=SECS] [--no-verb-ok]

It is not an MTA: it speaks just enough SMTP (RFC 5321) to take a message,
on one socket bound to [::]:PORT that also takes IPv4 (IPv4-mapped).
Over IPv6 its EHLO reply lists IPV6-IPV4-FALLBACK
(draft-martin-smtp-ipv6-to-ipv4-fallback §3.1); a client that answers
with the verb gets 250, and then every message it sends is refused after
its data with "456 4.4.8 please retry immediately the message over IPv4".
A client that never sends the verb gets 451 4.4.8 instead (§3.2).  Over
IPv4 every message is taken: written once to MAILDIR/new, with a first
header line "X-Fallbackmx: conn=N family=4".

One log line per event on stdout: "conn=N family=F event=...".  The
connections are served one at a time, up to --max (default 20); the
server exits after --idle seconds (default 60) without a connection.
"""
import os
import socket
import sys
import time


def log(conn, fam, msg):
    print("conn=%d family=%d %s" % (conn, fam, msg), flush=True)


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        sock.settimeout(15)

    def line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise EOFError("line too long")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("peer closed")
            self.buf += chunk
        i = self.buf.index(b"\r\n") + 2
        ln, self.buf = self.buf[:i], self.buf[i:]
        return ln

    def send(self, text):
        self.sock.sendall(text.encode("latin-1"))


def serve(c, n, fam, maildir):
    c.send("220 mx.example.org ESMTP fallbackmx\r\n")
    negotiated = False
    mail = False
    while True:
        ln = c.line()
        verb = ln.split(b" ", 1)[0].strip().upper()
        if verb in (b"EHLO", b"HELO"):
            mail = False
            if fam == 6:
                c.send("250-mx.example.org\r\n250-PIPELINING\r\n"
                       "250-IPV6-IPV4-FALLBACK\r\n250 8BITMIME\r\n")
            else:
                c.send("250-mx.example.org\r\n250-PIPELINING\r\n"
                       "250 8BITMIME\r\n")
        elif verb == b"IPV6-IPV4-FALLBACK":
            negotiated = fam == 6
            log(n, fam, "event=verb")
            c.send("250 2.0.0 fallback to IPv4 understood\r\n"
                   if fam == 6 else "502 5.5.1 not offered\r\n")
        elif verb == b"MAIL":
            mail = True
            c.send("250 2.1.0 ok\r\n")
        elif verb == b"RCPT":
            c.send("250 2.1.5 ok\r\n" if mail else "503 5.5.1 MAIL first\r\n")
        elif verb == b"DATA":
            c.send("354 end with <CRLF>.<CRLF>\r\n")
            body = []
            while True:
                ln = c.line()
                if ln == b".\r\n":
                    break
                body.append(ln[1:] if ln.startswith(b".") else ln)
            mail = False
            if fam == 6:
                if negotiated:
                    log(n, fam, "event=refused code=456")
                    c.send("456 4.4.8 please retry immediately the "
                           "message over IPv4\r\n")
                else:
                    log(n, fam, "event=refused code=451")
                    c.send("451 4.4.8 IPv6 needs SPF or DKIM, use IPv4\r\n")
                continue
            name = "%d.%d.fallbackmx" % (time.time_ns(), n)
            tmp = os.path.join(maildir, "tmp", name)
            with open(tmp, "wb") as f:
                f.write(b"X-Fallbackmx: conn=%d family=4\r\n" % n)
                f.write(b"".join(body))
            os.rename(tmp, os.path.join(maildir, "new", name))
            log(n, fam, "event=stored")
            c.send("250 2.0.0 queued\r\n")
        elif verb == b"RSET" or verb == b"NOOP":
            mail = False if verb == b"RSET" else mail
            c.send("250 2.0.0 ok\r\n")
        elif verb == b"QUIT":
            c.send("221 2.0.0 bye\r\n")
            return
        else:
            c.send("500 5.5.1 unrecognized\r\n")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    opts = dict(a[2:].split("=", 1) if "=" in a else (a[2:], "1")
                for a in sys.argv[1:] if a.startswith("--"))
    port, maildir = int(args[0]), args[1]
    for d in ("new", "tmp", "cur"):
        os.makedirs(os.path.join(maildir, d), exist_ok=True)
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(16)
    s.settimeout(float(opts.get("idle", "60")))
    for n in range(1, int(opts.get("max", "20")) + 1):
        try:
            sock, peer = s.accept()
        except socket.timeout:
            break
        fam = 4 if peer[0].startswith("::ffff:") else 6
        log(n, fam, "event=connect peer=%s" % peer[0])
        try:
            serve(Conn(sock), n, fam, maildir)
        except (EOFError, OSError) as e:
            log(n, fam, "event=closed why=%s" % str(e).replace(" ", "_"))
        finally:
            sock.close()


if __name__ == "__main__":
    main()
