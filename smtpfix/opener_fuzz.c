/*
 * smtpfix/opener_fuzz.c: libFuzzer target for smtpfix/opener.c, which
 * reads a destination server's replies.  Steps the input as the gateway
 * would (a TLS act is answered at once, ok or not by the first byte);
 * every step must consume within the input, and a FAIL must hand the
 * client one well-formed 4xx or 5xx line of printable ASCII, never 456.
 * Bits of the first byte also ask for XCLIENT (required or not) and the
 * IPV6-IPV4-FALLBACK verb; what goes out must then be one CRLF line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nat/addr.h"
#include "smtpfix/identity.h"
#include "smtpfix/opener.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char mail[] = "MAIL FROM:<a@example.org>\r\n";
	struct smtpfix_opener o;
	struct smtpfix_opener_step s;
	struct smtpfix_identity id;
	const char *in;
	size_t len, i, steps = 0;

	if (size == 0)
		return 0;
	smtpfix_opener_init(&o, "gw.example.net", 14, mail, sizeof(mail) - 1,
	    (enum smtpfix_opener_tls)(data[0] % 3), 512);
	memset(&id, 0, sizeof(id));
	(void)nat_addr_parse("192.0.2.10", 10, &id.client);
	(void)nat_addr_parse("192.0.2.40", 10, &id.dest);
	id.client_port = 4242;
	id.dest_port = 25;
	id.helo = "client.example";
	id.helo_len = 14;
	if (data[0] & 0x08)
		smtpfix_opener_set_xclient(&o, &id, (data[0] >> 4) & 1);
	if (data[0] & 0x20)
		smtpfix_opener_set_fallback(&o);
	in = (const char *)data + 1;
	len = size - 1;
	while (steps++ < 10000) {
		smtpfix_opener_step(&o, in, len, &s);
		if (s.consumed > len)
			abort();
		in += s.consumed;
		len -= s.consumed;
		if (s.act == SMTPFIX_OPENER_FAIL) {
			if (s.emit_len < 5 ||
			    (s.emit[0] != '4' && s.emit[0] != '5') ||
			    s.emit[s.emit_len - 2] != '\r' ||
			    s.emit[s.emit_len - 1] != '\n')
				abort();
			for (i = 0; i + 2 < s.emit_len; i++)
				if ((unsigned char)s.emit[i] < 0x20 ||
				    (unsigned char)s.emit[i] > 0x7e)
					abort();
			if (memcmp(s.emit, "456", 3) == 0)
				abort();
			break;
		}
		if (s.act == SMTPFIX_OPENER_SEND &&
		    (s.emit_len < 2 || s.emit[s.emit_len - 1] != '\n' ||
		        memchr(s.emit, '\n', s.emit_len) !=
		            s.emit + s.emit_len - 1))
			abort();
		if (s.act == SMTPFIX_OPENER_DONE)
			break;
		if (s.act == SMTPFIX_OPENER_TLS) {
			smtpfix_opener_tls_done(&o, (data[0] >> 2) & 1);
			continue;
		}
		if (s.act == SMTPFIX_OPENER_NONE && s.consumed == 0)
			break;
	}
	return 0;
}
