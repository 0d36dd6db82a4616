/*
 * smtpfix/tlsmemo.c: a bounded table of servers whose TLS failed (see
 * tlsmemo.h).  Pure.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtpfix/tlsmemo.h"

/* FNV-1a, 32 bits: spreads addresses well enough for a table this small. */
static size_t
slot_of(const char *key, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 16777619u;
	}
	return h % SMTPFIX_TLSMEMO_SLOTS;
}

static int
same(const struct smtpfix_tlsmemo_ent *e, const char *key, size_t len)
{
	return e->until != 0 && e->len == len && memcmp(e->key, key, len) == 0;
}

void
smtpfix_tlsmemo_init(struct smtpfix_tlsmemo *m)
{
	memset(m, 0, sizeof(*m));
}

void
smtpfix_tlsmemo_note(struct smtpfix_tlsmemo *m, const char *key, size_t len,
    uint64_t now, uint64_t ttl_s)
{
	struct smtpfix_tlsmemo_ent *e, *pick = NULL, *free_e = NULL;
	struct smtpfix_tlsmemo_ent *old = NULL;
	size_t h, i;

	if (ttl_s == 0 || len == 0 || len > SMTPFIX_TLSMEMO_KEY_MAX ||
	    now > UINT64_MAX - ttl_s)
		return;
	h = slot_of(key, len);
	for (i = 0; i < SMTPFIX_TLSMEMO_PROBE && pick == NULL; i++) {
		e = &m->e[(h + i) % SMTPFIX_TLSMEMO_SLOTS];
		if (same(e, key, len))
			pick = e;
		else if (e->until <= now) {
			if (free_e == NULL)
				free_e = e;
		} else if (old == NULL || e->until < old->until)
			old = e;
	}
	/* The key's own slot, else a free or expired one, else the one
	 * that expires first. */
	if (pick == NULL)
		pick = free_e != NULL ? free_e : old;
	memcpy(pick->key, key, len);
	pick->len = (uint8_t)len;
	pick->until = now + ttl_s;
}

int
smtpfix_tlsmemo_known(
    const struct smtpfix_tlsmemo *m, const char *key, size_t len, uint64_t now)
{
	const struct smtpfix_tlsmemo_ent *e;
	size_t h, i;

	if (len == 0 || len > SMTPFIX_TLSMEMO_KEY_MAX)
		return 0;
	h = slot_of(key, len);
	for (i = 0; i < SMTPFIX_TLSMEMO_PROBE; i++) {
		e = &m->e[(h + i) % SMTPFIX_TLSMEMO_SLOTS];
		if (same(e, key, len))
			return e->until > now;
	}
	return 0;
}
