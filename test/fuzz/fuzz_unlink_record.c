/*
 * fuzz_unlink_record.c: the bytes, as a value of unlinkq.db (the first 8
 * bytes, big-endian, are the key: the Kakao id), go to
 * store_unlink_record_decode(); a record that decodes is encoded again.
 *
 * Asserts the round trip (one encoding per queued unlink; decode accepts
 * nothing encode would not write) and that a decoded job has a positive
 * Kakao id.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_unlink_job	j, again;
	unsigned char		buf[64];
	uint64_t		key = 0;
	size_t			i;
	int			n;

	if (size < 8)
		return 0;
	for (i = 0; i < 8; i++)
		key = key << 8 | data[i];
	if (store_unlink_record_decode((int64_t)key, data + 8, size - 8,
	    &j) == -1)
		return 0;
	assert(j.kakao_id > 0 && j.kakao_id == (int64_t)key);
	n = store_unlink_record_encode(&j, buf, sizeof(buf));
	assert(n > 0 && (size_t)n == size - 8);
	assert(memcmp(buf, data + 8, size - 8) == 0);
	assert(store_unlink_record_decode(j.kakao_id, buf, (size_t)n,
	    &again) == 0);
	assert(memcmp(&j, &again, sizeof(j)) == 0);
	return 0;
}
