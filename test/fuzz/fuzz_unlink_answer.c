/*
 * fuzz_unlink_answer.c: the bytes after the first 8, as Kakao's answer to
 * POST /v1/user/unlink (or /v1/user/logout), go to
 * kakao_unlink_answer_parse() with the id asked for taken from the first 8
 * bytes (big-endian, any sign); shorter inputs are parsed whole, asking
 * for id 1.
 *
 * Beyond "does not crash" it asserts: the parse fails only with
 * KL_KAKAO_BAD_RESPONSE and a NUL-terminated, non-empty detail; it never
 * succeeds for an id that is not positive; and it succeeds for
 * {"id":<the id>} whenever the id is positive, whatever else the input
 * held (the parser reads only its len bytes).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kakao.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int64_t
id_of(const uint8_t *p)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_error	 err;
	const char	*body = (const char *)data;
	size_t		 len = size;
	int64_t		 want = 1;
	char		 good[64];
	int		 n;

	if (size >= 8) {
		want = id_of(data);
		body += 8;
		len -= 8;
	}
	memset(&err, 0, sizeof(err));
	if (kakao_unlink_answer_parse(body, len, want, &err) == 0)
		assert(want > 0);
	else {
		assert(err.status == KL_KAKAO_BAD_RESPONSE);
		assert(memchr(err.detail, '\0', sizeof(err.detail)) != NULL);
		assert(err.detail[0] != '\0');
	}

	n = snprintf(good, sizeof(good), "{\"id\":%" PRId64 "}", want);
	assert(n > 0 && (size_t)n < sizeof(good));
	assert((kakao_unlink_answer_parse(good, (size_t)n, want, &err) == 0) ==
	    (want > 0));
	return 0;
}
