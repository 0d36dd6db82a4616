#!/usr/bin/env python3
"""tests/e2e/peer.py: tiny UDP/TCP peers for the packet-path lab.

  peer.py udp-server ADDR PORT     answer each datagram "peer=A len=N"
  peer.py tcp-server ADDR PORT     read to EOF, answer "peer=A len=N"
  peer.py udp-client ADDR PORT SIZE [nodf]
  peer.py tcp-client ADDR PORT SIZE
  peer.py udp6-frag SRC DST PORT SIZE FID

A client prints the answer and exits 0, or exits 1 after its timeouts.
"nodf" clears DF (IP_PMTUDISC_DONT), so a big datagram leaves in IPv4
fragments.  The servers see the source address the translator gave the
packet, which is what the lab checks.  udp6-frag writes the IPv6
fragments of one UDP datagram itself (a raw socket), with Fragment
Identification FID (hex), so the lab can choose it.
"""
import socket
import struct
import sys


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def payload(size):
    return bytes((i * 7) & 0xFF for i in range(size))


def udp_server(addr, port):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(65535)
        ok = data == payload(len(data))
        s.sendto(("peer=%s len=%d ok=%d" % (peer[0], len(data), ok))
                 .encode(), peer)


def tcp_server(addr, port):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    while True:
        c, peer = s.accept()
        c.settimeout(10)
        got = bytearray()
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                got += d
            ok = bytes(got) == payload(len(got))
            c.sendall(("peer=%s len=%d ok=%d" % (peer[0], len(got), ok))
                      .encode())
        except OSError:
            pass
        c.close()


def udp_client(addr, port, size, nodf):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    if nodf and family(addr) == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER, DONT
    s.settimeout(1.0)
    for _ in range(5):
        s.sendto(payload(size), (addr, port))
        try:
            data, _ = s.recvfrom(65535)
            print(data.decode())
            return 0
        except socket.timeout:
            continue
    return 1


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp6_frag(src, dst, port, size, fid):
    """One UDP datagram SRC -> DST:PORT in two IPv6 fragments (RFC 8200
    §4.5), Identification fid; the answer comes to a UDP socket."""
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.bind((src, 0))
    u.settimeout(1.0)
    sport = u.getsockname()[1]
    s6, d6 = (socket.inet_pton(socket.AF_INET6, a) for a in (src, dst))
    data = payload(size)
    dgram = struct.pack("!HHHH", sport, port, 8 + size, 0) + data
    ck = csum(s6 + d6 + struct.pack("!IxxxB", len(dgram), 17) + dgram)
    dgram = dgram[:6] + struct.pack("!H", ck or 0xFFFF) + dgram[8:]
    first = 1448  # 40 + 8 + 1448 = 1496 octets: within a 1500 link
    r = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for _ in range(5):
        for off, piece, more in ((0, dgram[:first], 1),
                                 (first, dgram[first:], 0)):
            fh = struct.pack("!BBHI", 17, 0, off | more, fid)
            pl = fh + piece
            hdr = struct.pack("!IHBB", 0x60000000, len(pl), 44, 64) + s6 + d6
            r.sendto(hdr + pl, (dst, 0))
        try:
            ans, _ = u.recvfrom(65535)
            print(ans.decode())
            return 0
        except socket.timeout:
            continue
    return 1


def tcp_client(addr, port, size):
    s = socket.create_connection((addr, port), timeout=10)
    s.sendall(payload(size))
    s.shutdown(socket.SHUT_WR)
    got = bytearray()
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    print(got.decode())
    return 0


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "udp6-frag" and len(argv) == 7:
        return udp6_frag(argv[2], argv[3], int(argv[4]), int(argv[5]),
                         int(argv[6], 16))
    mode, addr, port = argv[1], argv[2], int(argv[3])
    if mode == "udp-server":
        udp_server(addr, port)
    elif mode == "tcp-server":
        tcp_server(addr, port)
    elif mode == "udp-client":
        return udp_client(addr, port, int(argv[4]),
                          len(argv) > 5 and argv[5] == "nodf")
    elif mode == "tcp-client":
        try:
            return tcp_client(addr, port, int(argv[4]))
        except OSError as e:
            print("error: %s" % e, file=sys.stderr)
            return 1
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
