#!/usr/bin/python3
"""tests/soak/peer.py: the soak test's clients and server (asyncio).

  peer.py server ADDR PORT LOG          an SMTP sink that misbehaves
  peer.py client HOST PORT SECONDS CONC LOG
                                        CONC sessions at a time for SECONDS

The server answers like a small MTA (PIPELINING, 250 to everything) and
writes the X-Soak-Id of each message it accepts (its 250 after the final
".") to LOG, one a line, flushed before the reply.  Some sessions vanish
after the greeting, reset during DATA (RST) or stall for a few seconds
before a reply.

Each client session sends EHLO, then MAIL, RCPT and DATA pipelined (RFC
2920), a message with a unique X-Soak-Id, and QUIT.  Some clients vanish
after EHLO, reset during DATA, stall mid-command or send two transactions.
LOG gets "accepted ID" for each 250 after end of data, and a final line
"clients sessions=N accepted=N failed=N".  Bounded: every read has a
timeout; the run stops starting sessions after SECONDS.
Standard library only.
"""
import asyncio
import random
import resource
import socket
import struct
import sys
import time

TIMEOUT = 60


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rst(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
    writer.transport.abort()


# ------------------------------------------------------------ server
async def serve(reader, writer, log, rnd):
    mode = rnd.random()
    try:
        writer.write(b"220 sink.example.org ESMTP soak\r\n")
        await writer.drain()
        if mode < 0.03:  # vanishes after the greeting
            writer.close()
            return
        while True:
            line = await asyncio.wait_for(reader.readline(), TIMEOUT)
            if not line:
                break
            verb = line[:4].upper()
            if mode < 0.08 and rnd.random() < 0.3:  # stalls
                await asyncio.sleep(rnd.uniform(0.5, 3))
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250-sink.example.org\r\n250-PIPELINING\r\n"
                             b"250 8BITMIME\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                sid = None
                while True:
                    l2 = await asyncio.wait_for(reader.readline(), TIMEOUT)
                    if not l2:
                        return
                    if l2.startswith(b"X-Soak-Id: "):
                        sid = l2[11:].strip().decode()
                    if l2 == b".\r\n":
                        break
                    if mode > 0.97 and rnd.random() < 0.5:  # resets
                        rst(writer)
                        return
                if sid is not None:
                    log.write(sid + "\n")
                    log.flush()
                writer.write(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 2.0.0 ok\r\n")
            await writer.drain()
    except (asyncio.TimeoutError, ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def server_main(addr, port, path):
    raise_nofile()
    rnd = random.Random(1)
    log = open(path, "a")
    srv = await asyncio.start_server(
        lambda r, w: serve(r, w, log, rnd), addr, port, backlog=4096)
    async with srv:
        await srv.serve_forever()


# ------------------------------------------------------------ client
class Stats:
    sessions = accepted = failed = 0


async def reply(reader):
    """One complete reply (RFC 5321 §4.2.1); its code."""
    while True:
        line = await asyncio.wait_for(reader.readline(), TIMEOUT)
        if not line:
            raise ConnectionError("closed")
        if len(line) < 4 or line[3:4] != b"-":
            return line[:3]


async def session(host, port, n, log, st, rnd):
    mode = rnd.random()
    st.sessions += 1
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), TIMEOUT)
    except (OSError, asyncio.TimeoutError):
        st.failed += 1
        return
    try:
        if await reply(reader) != b"220":
            st.failed += 1
            return
        writer.write(b"EHLO client.example.net\r\n")
        await writer.drain()
        if await reply(reader) != b"250":
            st.failed += 1
            return
        if mode < 0.03:  # vanishes
            writer.close()
            return
        for t in range(2 if mode > 0.9 else 1):
            sid = "%d-%d-%d" % (n, t, rnd.randrange(1 << 30))
            writer.write(b"MAIL FROM:<a@example.net>\r\n"
                         b"RCPT TO:<user@example.org>\r\nDATA\r\n")
            await writer.drain()
            codes = [await reply(reader) for _ in range(3)]
            if codes != [b"250", b"250", b"354"]:
                st.failed += 1
                return
            body = ("X-Soak-Id: %s\r\nSubject: soak\r\n\r\n" % sid).encode()
            body += b"line of text\r\n" * rnd.randrange(1, 200)
            if 0.03 <= mode < 0.06:  # stalls mid-message
                writer.write(body[: len(body) // 2])
                await writer.drain()
                await asyncio.sleep(rnd.uniform(0.5, 4))
                body = body[len(body) // 2:]
            if 0.06 <= mode < 0.09:  # resets during DATA
                writer.write(body[: len(body) // 2])
                await writer.drain()
                rst(writer)
                return
            writer.write(body + b".\r\n")
            await writer.drain()
            if await reply(reader) == b"250":
                st.accepted += 1
                log.write("accepted %s\n" % sid)
            else:
                st.failed += 1
        writer.write(b"QUIT\r\n")
        await writer.drain()
        await reply(reader)
    except (asyncio.TimeoutError, ConnectionError, OSError):
        st.failed += 1
    finally:
        if not writer.transport.is_closing():
            writer.close()


async def client_main(host, port, seconds, conc, path):
    raise_nofile()
    rnd = random.Random(2)
    st = Stats()
    log = open(path, "w", buffering=1)
    end = time.monotonic() + seconds
    running = set()
    n = 0
    while time.monotonic() < end:
        while len(running) < conc and time.monotonic() < end:
            n += 1
            running.add(asyncio.ensure_future(
                session(host, port, n, log, st, rnd)))
        done, running = await asyncio.wait(
            running, timeout=1, return_when=asyncio.FIRST_COMPLETED)
    if running:
        await asyncio.wait(running, timeout=TIMEOUT * 3)
    log.write("clients sessions=%d accepted=%d failed=%d\n"
              % (st.sessions, st.accepted, st.failed))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "server":
        asyncio.run(server_main(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    elif len(sys.argv) == 7 and sys.argv[1] == "client":
        asyncio.run(client_main(sys.argv[2], int(sys.argv[3]),
                                float(sys.argv[4]), int(sys.argv[5]),
                                sys.argv[6]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
