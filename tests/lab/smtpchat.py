#!/usr/bin/python3
"""smtpchat: a scripted SMTP peer for hostile-input tests.

It plays exact bytes (bare CR, bare LF, NUL, over-long lines, pipelined
groups) that real MTAs refuse to send, and checks the replies it gets.

  smtpchat.py client HOST PORT STEP...   connect, then run the steps
  smtpchat.py server ADDR PORT STEP...   accept one connection, run steps

Steps (bytes use Python escapes: \\r \\n \\x00):
  s:BYTES     send BYTES
  S:N:BYTES   send BYTES repeated N times
  d:SECS:BYTES  send BYTES one byte at a time, SECS apart (slow drip);
              stops quietly when the peer has gone
  F:PATH      send the message in PATH (CRLF lines) dot-stuffed, then
              CRLF . CRLF (RFC 5321 §4.5.2)
  e:CODE      read one complete reply; its code must start with CODE
  E:N:CODE    read N replies, each must start with CODE
  c           the peer must close (EOF or reset) within the timeout
  w:SECS      sleep
  x           close now (abruptly: RST)
  q           close now (FIN)
  l:TEXT      read one line; it must contain TEXT (server mode: commands)
  L:N         read and discard N lines (server mode)
  t[:SNI]     start TLS as the client (RFC 3207: after a 220 to
              STARTTLS); no certificate check; SNI sent if given; prints
              the protocol, cipher and the server certificate's subject
  T:CERT:KEY  start TLS as the server with that certificate and key
  N           the peer must close without sending an SMTP reply (a
              failed TLS handshake may still send a TLS alert)
For t and T, bytes already received in clear text and not yet read by a
step are an error: after STARTTLS nothing sent before the handshake may
count (RFC 3207 §4.2).
Every read is bounded by --timeout seconds (default 10).  --bind=ADDR
(client mode) connects from ADDR.  Exit 0 when
every step held; 1 with the reason otherwise.  Prints a transcript.
"""
import re
import socket
import ssl
import struct
import sys
import time


def unesc(s):
    return s.encode("latin-1").decode("unicode_escape").encode("latin-1")


class Peer:
    def __init__(self, sock, timeout):
        self.sock = sock
        self.buf = b""
        self.timeout = timeout
        sock.settimeout(timeout)

    def fill(self):
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ssl.SSLError as e:
                raise ConnectionError("TLS: %s" % e)
            if not chunk:
                raise EOFError("peer closed")
            self.buf += chunk
            return

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        i = self.buf.index(b"\r\n") + 2
        ln, self.buf = self.buf[:i], self.buf[i:]
        return ln

    def reply(self):
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if len(ln) < 4 or ln[3:4] != b"-":
                return lines


def show(tag, data):
    text = data.decode("latin-1")
    for part in text.splitlines(True) or [""]:
        print("%s %r" % (tag, part))


def cert_subject(pem):
    """The subject of a PEM certificate, via openssl(1) (the ssl module
    only decodes certificates it has verified)."""
    import subprocess
    try:
        r = subprocess.run(["openssl", "x509", "-noout", "-subject",
                            "-nameopt", "compat"],
                           input=pem.encode(), capture_output=True,
                           timeout=10)
        return r.stdout.decode("latin-1")
    except (OSError, subprocess.SubprocessError):
        return ""


def run(peer, steps):
    for st in steps:
        op, _, arg = st.partition(":")
        if op == "s":
            data = unesc(arg)
            show(">>", data)
            peer.sock.sendall(data)
        elif op == "S":
            n, _, b = arg.partition(":")
            data = unesc(b) * int(n)
            print(">> (%d x %r, %d bytes)" % (int(n), b[:40], len(data)))
            peer.sock.sendall(data)
        elif op == "d":
            secs, _, b = arg.partition(":")
            data = unesc(b)
            print(">> (drip %r, %s s a byte)" % (data, secs))
            try:
                for i in range(len(data)):
                    peer.sock.sendall(data[i:i + 1])
                    time.sleep(float(secs))
            except OSError as e:
                print("-- drip stopped after %d bytes: %s" % (i, e))
        elif op == "F":
            with open(arg, "rb") as f:
                msg = f.read()
            lines = msg.split(b"\r\n")
            if lines and lines[-1] == b"":
                lines.pop()
            out = b"".join((b"." + ln if ln.startswith(b".") else ln)
                           + b"\r\n" for ln in lines) + b".\r\n"
            print(">> (message %s, %d bytes dot-stuffed)" % (arg, len(out)))
            peer.sock.sendall(out)
        elif op in ("e", "E"):
            if op == "E":
                n, _, code = arg.partition(":")
                n = int(n)
            else:
                n, code = 1, arg
            for _ in range(n):
                try:
                    lines = peer.reply()
                except (EOFError, TimeoutError, ConnectionError) as e:
                    print("!! wanted a %s reply: %s" % (code, e))
                    return 1
                if n <= 3:
                    for ln in lines:
                        show("<<", ln)
                if not lines[-1].decode("latin-1").startswith(code):
                    for ln in lines:
                        show("<<", ln)
                    print("!! wanted a reply starting %r" % code)
                    return 1
            if n > 3:
                print("<< (%d replies %s...)" % (n, code))
        elif op == "l":
            try:
                ln = peer.line()
            except (EOFError, TimeoutError, ConnectionError) as e:
                print("!! wanted a line with %r: %s" % (arg, e))
                return 1
            show("<<", ln)
            if unesc(arg) not in ln:
                print("!! wanted %r" % arg)
                return 1
        elif op == "L":
            for _ in range(int(arg)):
                try:
                    peer.line()
                except (EOFError, TimeoutError, ConnectionError) as e:
                    print("!! wanted a line: %s" % e)
                    return 1
            print("<< (%s lines)" % arg)
        elif op == "c":
            try:
                while True:
                    peer.fill()
                    if len(peer.buf) > 1 << 20:
                        print("!! peer keeps sending, wanted a close")
                        return 1
            except (EOFError, ConnectionError):
                if peer.buf:
                    show("<<", peer.buf)
                print("-- closed by peer")
            except TimeoutError:
                print("!! peer did not close")
                return 1
        elif op in ("t", "T"):
            if peer.buf:
                show("!! clear text before TLS:", peer.buf)
                return 1
            try:
                if op == "t":
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                    tls = ctx.wrap_socket(peer.sock,
                                          server_hostname=arg or None)
                else:
                    cert, _, key = arg.partition(":")
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    ctx.load_cert_chain(cert, key)
                    tls = ctx.wrap_socket(peer.sock, server_side=True)
            except (OSError, ValueError) as e:
                print("!! TLS handshake: %s" % e)
                return 1
            peer.sock = tls
            subj = ""
            der = tls.getpeercert(binary_form=True)
            if der:
                pem = ssl.DER_cert_to_PEM_cert(der)
                subj = " peer_cert=yes"
                m = re.search(r"CN=([^,/\n]+)", cert_subject(pem))
                if m:
                    subj += " peer_cn=%s" % m.group(1)
            print("-- TLS %s %s%s" % (tls.version(), tls.cipher()[0], subj))
        elif op == "N":
            data = peer.buf
            try:
                while True:
                    peer.fill()
                    data = peer.buf
                    if len(data) > 1 << 16:
                        break
            except (EOFError, ConnectionError, ssl.SSLError):
                pass
            except TimeoutError:
                print("!! peer did not close")
                return 1
            if re.search(rb"(^|\r\n)[2-5][0-9][0-9][ -]", data):
                show("<<", data)
                print("!! peer sent an SMTP reply before closing")
                return 1
            print("-- closed by peer (%d bytes, no reply)" % len(data))
        elif op == "w":
            time.sleep(float(arg))
        elif op == "x":
            peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
            peer.sock.close()
            print("-- reset")
            return 0
        elif op == "q":
            peer.sock.close()
            print("-- closed")
            return 0
        else:
            print("!! bad step %r" % st)
            return 2
    return 0


def main(argv):
    timeout = 10.0
    src = None
    while len(argv) > 1 and argv[1].startswith("--"):
        if argv[1].startswith("--timeout="):
            timeout = float(argv[1].split("=", 1)[1])
        elif argv[1].startswith("--bind="):
            src = argv[1].split("=", 1)[1]
        else:
            sys.stderr.write(__doc__)
            return 2
        argv = argv[:1] + argv[2:]
    if len(argv) < 4 or argv[1] not in ("client", "server"):
        sys.stderr.write(__doc__)
        return 2
    mode, host, port, steps = argv[1], argv[2], int(argv[3]), argv[4:]
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    if mode == "client":
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            if src is not None:
                s.bind((src, 0))
            s.connect((host, port))
        except OSError as e:
            print("!! connect: %s" % e)
            return 1
        peer = Peer(s, timeout)
    else:
        ls = socket.socket(fam, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((host, port))
        ls.listen(1)
        ls.settimeout(timeout * 3)
        try:
            s, _ = ls.accept()
        except OSError as e:
            print("!! accept: %s" % e)
            return 1
        ls.close()
        peer = Peer(s, timeout)
    rc = run(peer, steps)
    try:
        peer.sock.close()
    except OSError:
        pass
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
