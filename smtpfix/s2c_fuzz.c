/*
 * smtpfix/s2c_fuzz.c: libFuzzer target for the server side of the stream
 * machine.  The input holds both peers' byte streams; they arrive in
 * random chunks, interleaved, and every step is checked against the
 * invariants of smtpfix/fuzz_sim.h (well-formed replies to the client,
 * CRLF-clean bytes to the server, progress, bounds).
 *
 * Input: [seed] [client length, 2 bytes big-endian] client bytes, then
 * server bytes.  The seed picks the HELO mode (seed % 3) and the STARTTLS
 * policy (seed / 3 % 4: none, terminate opportunistic, terminate
 * require, strip; see fs_set_tls); bit 7 sets XCLIENT, bit 6 makes it
 * required.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpfix/fuzz_sim.h"
#include "smtpfix/identity.h"
#include "smtpfix/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fsim sim;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fsim *m = &sim;
	static struct smtpfix_identity id;
	size_t clen;
	int gone;

	if (size < 3)
		return 0;
	clen = (size_t)data[1] << 8 | data[2];
	if (clen > size - 3)
		clen = size - 3;
	fs_init(m, (enum smtpfix_helo_mode)(data[0] % 3),
	    (uint32_t)data[0] * 2654435761u);
	fs_set_tls(m, (unsigned)data[0] / 3 % 4);
	/* Bit 7 of the first byte: XCLIENT (bit 6: required), so the
	 * server's bytes also answer the gateway's own EHLO and XCLIENT. */
	if (data[0] & 0x80) {
		memset(&id, 0, sizeof(id));
		(void)nat_addr_parse("192.0.2.10", 10, &id.client);
		(void)nat_addr_parse("192.0.2.30", 10, &id.dest);
		id.client_port = 40000;
		id.dest_port = 25;
		smtpfix_stream_set_identity(
		    &m->s, SMTPFIX_ID_XCLIENT, &id, data[0] & 0x40);
	}
	fs_later(m, 0, (const char *)data + 3, clen);
	fs_later(m, 1, (const char *)data + 3 + clen, size - 3 - clen);
	fs_run(m);
	/* Whatever state it ended in, the question has an answer. */
	gone = smtpfix_stream_upstream_gone(&m->s);
	if (gone != 0 && gone != 1)
		abort();
	if (m->s.cmode == SMTPFIX_C_DATA && !gone)
		abort();
	(void)smtpfix_stream_wait(&m->s);
	return 0;
}
