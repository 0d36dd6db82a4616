#!/usr/bin/env python3
"""Times STARTTLS sessions: starttls_time.py HOST PORT COUNT [HELO].

Each session: greeting, EHLO, STARTTLS, TLS handshake (no certificate
check: the lab measures time, not trust), EHLO, MAIL, RCPT, DATA, a short
message, QUIT.  Sessions run one after the other.  Prints one line:
"sessions=N ok=N starttls_220_ms=MEDIAN handshake_ms=MEDIAN
session_ms=MEDIAN" (medians over the sessions that completed), where
starttls_220_ms is the time from sending STARTTLS to reading the whole
220, and session_ms from connect to the reply to QUIT.  Exit status 0
only if every session completed with the expected codes.  Every read has
a 15 s timeout; nothing loops without bound.
"""
import socket
import ssl
import statistics
import sys
import time


def reply(f):
    """Reads one SMTP reply (all its lines); returns its code."""
    while True:
        line = f.readline(1024)
        if not line:
            raise EOFError("connection closed")
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3])


def expect(f, code):
    got = reply(f)
    if got != code:
        raise ValueError("expected %d, got %d" % (code, got))


def one(host, port, helo, ctx, n):
    t0 = time.monotonic()
    s = socket.create_connection((host, port), timeout=15)
    try:
        f = s.makefile("rb")
        expect(f, 220)
        s.sendall(b"EHLO " + helo + b"\r\n")
        expect(f, 250)
        t1 = time.monotonic()
        s.sendall(b"STARTTLS\r\n")
        expect(f, 220)
        t2 = time.monotonic()
        f.close()
        t = ctx.wrap_socket(s, server_hostname=None)
        t3 = time.monotonic()
        g = t.makefile("rb")
        t.sendall(b"EHLO " + helo + b"\r\n")
        expect(g, 250)
        t.sendall(b"MAIL FROM:<a@example.net>\r\n")
        expect(g, 250)
        t.sendall(b"RCPT TO:<user@example.org>\r\n")
        expect(g, 250)
        t.sendall(b"DATA\r\n")
        expect(g, 354)
        t.sendall(b"Subject: timed %d\r\nX-Lab-Id: timed-%d\r\n\r\n"
                  b"hello\r\n.\r\n" % (n, n))
        expect(g, 250)
        t.sendall(b"QUIT\r\n")
        expect(g, 221)
        t4 = time.monotonic()
        t.close()
        return (t2 - t1) * 1000, (t3 - t2) * 1000, (t4 - t0) * 1000
    finally:
        s.close()


def main():
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    helo = (sys.argv[4] if len(sys.argv) > 4 else "client.example.net")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    a, b, c = [], [], []
    for n in range(count):
        try:
            x, y, z = one(host, port, helo.encode(), ctx, n)
        except (OSError, ValueError, EOFError) as e:
            print("session %d: %s" % (n, e), file=sys.stderr)
            continue
        a.append(x)
        b.append(y)
        c.append(z)
    med = (lambda v: "%.2f" % statistics.median(v) if v else "nan")
    print("sessions=%d ok=%d starttls_220_ms=%s handshake_ms=%s "
          "session_ms=%s" % (count, len(a), med(a), med(b), med(c)))
    return 0 if len(a) == count else 1


if __name__ == "__main__":
    sys.exit(main())
