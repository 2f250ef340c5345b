/*
 * fuzz_session_record.c: the bytes, as a value of sessions.db and of
 * refresh.db, go to store_session_record_decode() and
 * store_token_record_decode(); a record that decodes is encoded again.
 *
 * Asserts the round trip (every record has exactly one encoding, and decode
 * accepts nothing encode would not write), that at most one decoder takes
 * the bytes (the lengths differ), and the decoded records' invariants: a
 * known status and reason, no reason or revocation time on an active
 * family, a user id; a known state, no rotation time or successor on a
 * current token, a successor on a rotated one.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store_session.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
session_case(const uint8_t *data, size_t size)
{
	struct store_session	s, again;
	unsigned char		buf[STORE_SESSION_RECORD_LEN];
	int			n;

	memset(&s, 0, sizeof(s));
	if (store_session_record_decode(data, size, &s) == -1)
		return;
	assert(size == STORE_SESSION_RECORD_LEN);
	assert(data[0] >= 1 && data[0] <= STORE_SESSION_RECORD_VERSION);
	assert(s.user_id != 0);
	if (s.status == STORE_SESSION_ACTIVE)
		assert(s.reason == STORE_REVOKE_NONE && s.revoked_at == 0);
	else
		assert(s.status == STORE_SESSION_REVOKED &&
		    s.reason >= STORE_REVOKE_LOGOUT &&
		    s.reason <= STORE_REVOKE_ADMIN);
	n = store_session_record_encode(&s, buf, sizeof(buf));
	assert(n == STORE_SESSION_RECORD_LEN);
	assert(memcmp(buf, data, size) == 0);
	assert(store_session_record_decode(buf, (size_t)n, &again) == 0);
	assert(memcmp(&again, &s, sizeof(s)) == 0);
}

static void
token_case(const uint8_t *data, size_t size)
{
	static const unsigned char	zero[STORE_TAG_LEN];
	struct store_token_record	r, again;
	unsigned char			buf[STORE_TOKEN_RECORD_LEN];
	int				n;

	memset(&r, 0, sizeof(r));
	if (store_token_record_decode(data, size, &r) == -1)
		return;
	assert(size == STORE_TOKEN_RECORD_LEN);
	assert(data[0] >= 1 && data[0] <= STORE_TOKEN_RECORD_VERSION);
	if (r.state == STORE_TOKEN_CURRENT)
		assert(r.rotated == 0 &&
		    memcmp(r.successor, zero, sizeof(zero)) == 0);
	else
		assert(r.state == STORE_TOKEN_ROTATED &&
		    memcmp(r.successor, zero, sizeof(zero)) != 0);
	n = store_token_record_encode(&r, buf, sizeof(buf));
	assert(n == STORE_TOKEN_RECORD_LEN);
	assert(memcmp(buf, data, size) == 0);
	assert(store_token_record_decode(buf, (size_t)n, &again) == 0);
	assert(memcmp(&again, &r, sizeof(r)) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	session_case(data, size);
	token_case(data, size);
	return 0;
}
