/*
 * fuzz_token_info.c: the bytes, as Kakao's answer to GET
 * /v1/user/access_token_info, go to kakao_token_info_parse(); then, as an
 * error answer, to kakao_error_classify() with the HTTP status taken from
 * the first 2 bytes (big-endian) and the rest as the body.
 *
 * Beyond "does not crash" it asserts: the token info parse fails only with
 * KL_KAKAO_BAD_RESPONSE and succeeds only with a positive id and app_id;
 * kakao_error_classify() always returns -1 with one of the three Kakao
 * statuses (rejected, unavailable, bad response), KL_KAKAO_REJECTED for
 * every 401, and a NUL-terminated detail.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kakao.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kakao_token_info	 info;
	struct kl_error		 err;
	const char		*body = NULL;
	size_t			 len = 0;
	long			 status = 0;

	if (kakao_token_info_parse((const char *)data, size, &info, &err) == 0) {
		assert(info.id > 0);
		assert(info.app_id > 0);
	} else {
		assert(err.status == KL_KAKAO_BAD_RESPONSE);
		assert(terminated(err.detail, sizeof(err.detail)));
	}

	if (size >= 2) {
		status = (long)data[0] << 8 | data[1];
		body = (const char *)data + 2;
		len = size - 2;
	}
	memset(&err, 0, sizeof(err));
	assert(kakao_error_classify(status, body, len, &err) == -1);
	assert(err.status == KL_KAKAO_REJECTED ||
	    err.status == KL_KAKAO_UNAVAILABLE ||
	    err.status == KL_KAKAO_BAD_RESPONSE);
	assert(status != 401 || err.status == KL_KAKAO_REJECTED);
	assert(terminated(err.detail, sizeof(err.detail)));
	return 0;
}
