#!/usr/bin/python3
"""tlsmx: a scripted receiving MX whose TLS is broken or old, for the lab.

  tlsmx.py MODE ADDR PORT CERT KEY MAILDIR [--max=N] [--idle=SECS]

It is not an MTA: it speaks just enough SMTP (RFC 5321) to take a message,
offers STARTTLS (RFC 3207) in every EHLO reply outside TLS, and does one
of these with the TLS it is asked for:

  fail    answers STARTTLS with 220, then sends clear text that is not a
          TLS record and closes (a server whose STARTTLS always fails)
  alert   TLS 1.2 at most and a client certificate required: the
          handshake ends with an alert (the gateway sends none)
  tls10   TLS 1.0 only, OpenSSL security level 0 (an old server)

Each message is written once to MAILDIR/new, with a first header line
"X-Tlsmx: conn=N tls=VERSION" (tls=no in clear text), so a test can tell
how it came.  One log line per event on stdout: "conn=N event=...".
Connections are served one at a time, up to --max (default 20), and the
server exits after --idle seconds (default 60) without a connection.
"""
import os
import socket
import ssl
import sys
import time
import warnings

# TLS 1.0 is deprecated: that is the point of this server.
warnings.filterwarnings("ignore", category=DeprecationWarning)


def log(conn, msg):
    print("conn=%d %s" % (conn, msg), flush=True)


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        sock.settimeout(15)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("peer closed")
            self.buf += chunk
        i = self.buf.index(b"\r\n") + 2
        ln, self.buf = self.buf[:i], self.buf[i:]
        return ln

    def send(self, text):
        self.sock.sendall(text.encode("latin-1"))


def tls_context(mode, cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if mode == "tls10":
        # Debian's OpenSSL configuration forbids TLS 1.0: undo that here.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1
    elif mode == "alert":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cert)
    return ctx


def session(n, c, mode, ctx, maildir):
    tls = "no"
    c.send("220 mx.example.org ESMTP tlsmx\r\n")
    while True:
        ln = c.line()
        cmd = ln.decode("latin-1").rstrip("\r\n")
        verb = cmd.split(" ", 1)[0].upper()
        log(n, "command=%r tls=%s" % (cmd[:60], tls))
        if verb in ("EHLO", "HELO"):
            if tls == "no":
                c.send("250-mx.example.org\r\n250-PIPELINING\r\n"
                       "250-STARTTLS\r\n250 8BITMIME\r\n")
            else:
                c.send("250-mx.example.org\r\n250-PIPELINING\r\n"
                       "250 8BITMIME\r\n")
        elif verb == "STARTTLS" and tls == "no":
            c.send("220 2.0.0 go ahead\r\n")
            c.buf = b""  # RFC 3207 §4.2: nothing before TLS counts
            if mode == "fail":
                time.sleep(0.2)
                c.sock.sendall(b"this is not TLS\r\n")
                log(n, "event=starttls_broken")
                return
            try:
                c.sock = ctx.wrap_socket(c.sock, server_side=True)
            except (OSError, ssl.SSLError) as e:
                log(n, "event=handshake_failed error=%r" % str(e)[:80])
                return
            tls = c.sock.version()
            log(n, "event=tls version=%s cipher=%s"
                % (tls, c.sock.cipher()[0]))
        elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
            c.send("250 2.0.0 ok\r\n")
        elif verb == "DATA":
            c.send("354 go ahead\r\n")
            body = []
            while True:
                ln = c.line()
                if ln == b".\r\n":
                    break
                body.append(ln[1:] if ln.startswith(b".") else ln)
            name = "%d.c%d.tlsmx" % (time.time_ns(), n)
            tmp = os.path.join(maildir, "tmp", name)
            with open(tmp, "wb") as f:
                f.write(("X-Tlsmx: conn=%d tls=%s\r\n" % (n, tls)).encode())
                f.write(b"".join(body))
            os.rename(tmp, os.path.join(maildir, "new", name))
            log(n, "event=stored tls=%s" % tls)
            c.send("250 2.0.0 queued as %s\r\n" % name)
        elif verb == "QUIT":
            c.send("221 2.0.0 bye\r\n")
            return
        else:
            c.send("502 5.5.1 not here\r\n")


def main(argv):
    opts = {"max": 20, "idle": 60.0}
    args = []
    for a in argv[1:]:
        if a.startswith("--max="):
            opts["max"] = int(a.split("=", 1)[1])
        elif a.startswith("--idle="):
            opts["idle"] = float(a.split("=", 1)[1])
        else:
            args.append(a)
    if len(args) != 6 or args[0] not in ("fail", "alert", "tls10"):
        sys.stderr.write(__doc__)
        return 2
    mode, addr, port, cert, key, maildir = args
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    ctx = tls_context(mode, cert, key)
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, int(port)))
    ls.listen(8)
    ls.settimeout(opts["idle"])
    log(0, "event=listening mode=%s" % mode)
    for n in range(1, opts["max"] + 1):
        try:
            s, peer = ls.accept()
        except socket.timeout:
            log(0, "event=idle_exit")
            return 0
        log(n, "event=connect peer=%s" % peer[0])
        c = Conn(s)
        try:
            session(n, c, mode, ctx, maildir)
        except (EOFError, OSError) as e:
            log(n, "event=lost error=%r" % str(e)[:80])
        try:
            c.sock.close()
        except OSError:
            pass
        log(n, "event=close")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
