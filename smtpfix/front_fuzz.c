/*
 * smtpfix/front_fuzz.c: libFuzzer target for smtpfix/front.c, route
 * mode's own dialogue with a client.  Steps the input as the gateway
 * would (a ROUTE stops the run, as the relay then takes the bytes); every
 * step must consume within the input, emit within its buffer or a static
 * reply, end each reply with CRLF, and a ROUTE's domain must lie inside
 * the input.  The first byte picks the policy.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpfix/front.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char mail[600];
	struct smtpfix_front_policy pol = {
	    "gw.example.net", 14, 1000, 1, 512, 1};
	struct smtpfix_front f;
	struct smtpfix_front_step o;
	const char *in;
	size_t len, steps = 0;

	if (size == 0)
		return 0;
	pol.starttls = data[0] & 1;
	pol.hygiene = (data[0] >> 1) & 1;
	pol.size_max = (data[0] & 4) ? 0 : 1000;
	pol.cmd_max = (data[0] & 8) ? 4096 : 512;
	in = (const char *)data + 1;
	len = size - 1;
	smtpfix_front_init(&f, &pol, mail,
	    sizeof(mail) < pol.cmd_max ? sizeof(mail) : pol.cmd_max);
	while (steps++ < 10000) {
		smtpfix_front_step(&f, in, len, &o);
		if (o.consumed > len)
			abort();
		if (o.act == SMTPFIX_FRONT_NONE)
			break;
		if (o.act == SMTPFIX_FRONT_ROUTE) {
			if (o.consumed != 0 || o.domain.len == 0 ||
			    o.domain.p < in ||
			    o.domain.p + o.domain.len > in + len)
				abort();
			break;
		}
		if (o.emit_len < 2 || o.emit[o.emit_len - 2] != '\r' ||
		    o.emit[o.emit_len - 1] != '\n')
			abort();
		if (o.emit == o.buf && o.emit_len > sizeof(o.buf))
			abort();
		if (o.consumed == 0)
			abort(); /* a reply always consumes its line */
		if (o.act == SMTPFIX_FRONT_TLS)
			smtpfix_front_tls_done(&f, 1);
		in += o.consumed;
		len -= o.consumed;
		if (o.act == SMTPFIX_FRONT_CLOSE)
			break;
	}
	return 0;
}
