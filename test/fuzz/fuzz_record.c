/*
 * fuzz_record.c: the bytes, as a value of users.db, go to
 * store_record_decode(); a record that decodes is encoded again with
 * store_record_encode().
 *
 * Beyond "does not crash" it asserts the round trip: the encoding of a
 * decoded record is byte for byte the input (so every record has exactly
 * one encoding and decode accepts nothing encode would not write), and fits
 * in STORE_RECORD_MAX, and decoding that encoding gives the same fields.
 * Also: the decoded strings end with a NUL inside their arrays and the
 * status is one of the two.
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
	struct store_user	u, again;
	unsigned char		buf[STORE_RECORD_MAX];
	int			n;

	if (store_record_decode(data, size, &u) == -1)
		return 0;
	assert(memchr(u.nickname, '\0', sizeof(u.nickname)) != NULL);
	assert(memchr(u.email, '\0', sizeof(u.email)) != NULL);
	assert(memchr(u.profile_image, '\0', sizeof(u.profile_image)) != NULL);
	assert(u.status == STORE_USER_ACTIVE ||
	    u.status == STORE_USER_UNLINKED ||
	    u.status == STORE_USER_DEACTIVATED);
	n = store_record_encode(&u, buf, sizeof(buf));
	assert(n >= 0 && (size_t)n == size);
	assert(memcmp(buf, data, size) == 0);
	/* And the fields survive: decoding the encoding gives the same user
	 * (decode zeroes the struct first, so padding compares equal). */
	assert(store_record_decode(buf, (size_t)n, &again) == 0);
	assert(memcmp(&u, &again, sizeof(u)) == 0);
	return 0;
}
