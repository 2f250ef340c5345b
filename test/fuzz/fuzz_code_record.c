/*
 * fuzz_code_record.c: the bytes, as a value of codes.db, go to
 * store_code_record_decode(); a record that decodes is encoded again.
 *
 * Asserts the round trip (every code record has exactly one encoding, and
 * decode accepts nothing encode would not write) and the decoded record's
 * invariants: a known state, no ids on a PENDING record, no verifier bytes
 * without the flag.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store_code.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char	zero[STORE_TAG_LEN];
	struct store_code_record	r, again;
	unsigned char			buf[STORE_CODE_RECORD_LEN];
	int				n;

	memset(&r, 0, sizeof(r));
	if (store_code_record_decode(data, size, &r) == -1)
		return 0;
	assert(size == STORE_CODE_RECORD_LEN);
	assert(r.state == STORE_CODE_R_PENDING || r.state == STORE_CODE_R_DONE);
	if (r.state == STORE_CODE_R_PENDING)
		assert(r.kakao_id == 0 && r.user_id == 0);
	if (!r.has_verifier)
		assert(memcmp(r.verifier, zero, sizeof(zero)) == 0);
	n = store_code_record_encode(&r, buf, sizeof(buf));
	assert(n == STORE_CODE_RECORD_LEN);
	assert(memcmp(buf, data, size) == 0);
	memset(&again, 0, sizeof(again));
	assert(store_code_record_decode(buf, (size_t)n, &again) == 0);
	assert(again.state == r.state && again.at == r.at &&
	    again.kakao_id == r.kakao_id && again.user_id == r.user_id &&
	    again.has_verifier == r.has_verifier &&
	    memcmp(again.verifier, r.verifier, sizeof(r.verifier)) == 0);
	return 0;
}
