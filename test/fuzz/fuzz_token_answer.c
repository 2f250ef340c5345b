/*
 * fuzz_token_answer.c: the bytes, as kauth's 200 answer to POST
 * /oauth/token, go to kakao_token_answer_parse(); then, as an error answer,
 * to kakao_auth_error_classify(), the first byte picking the HTTP status
 * from a small table and the rest being the body.
 *
 * Beyond "does not crash" it asserts: a parse that succeeds yields a
 * non-empty token68 access token within MAX_KAKAO_TOKEN, an id_token of
 * base64url and dots within MAX_ID_TOKEN or none, and expires_in >= 0; a
 * parse that fails leaves the result empty. kakao_auth_error_classify()
 * always returns -1 with one of the four kauth statuses, and
 * KL_KAKAO_UNAVAILABLE for 429 and 5xx. Every detail is NUL-terminated and
 * made of printable ASCII without quotes: it is built from fixed words,
 * numbers and checked KOE codes, never from the bytes (which stand for
 * tokens and Kakao's error_description).
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kakao_auth.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long statuses[] = { 200, 302, 400, 401, 403, 404, 429, 500,
    502, 503 };

static void
check_detail(const struct kl_error *err)
{
	size_t	i;

	assert(memchr(err->detail, '\0', sizeof(err->detail)) != NULL);
	for (i = 0; err->detail[i] != '\0'; i++)
		assert(err->detail[i] >= ' ' && err->detail[i] <= '~' &&
		    err->detail[i] != '"' && err->detail[i] != '\'');
}

static bool
alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static void
check_result(const struct kakao_code_result *r)
{
	size_t	i, n = strlen(r->access_token);

	assert(n > 0 && n <= MAX_KAKAO_TOKEN);
	for (i = 0; i < n; i++)
		assert(alnum(r->access_token[i]) ||
		    strchr("-._~+/=", r->access_token[i]) != NULL);
	assert(r->expires_in >= 0);
	if (r->id_token == NULL)
		return;
	n = strlen(r->id_token);
	assert(n > 0 && n <= MAX_ID_TOKEN);
	for (i = 0; i < n; i++)
		assert(alnum(r->id_token[i]) ||
		    strchr("-_.", r->id_token[i]) != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kakao_code_result	 r;
	struct kl_error			 err;
	long				 status = 400;
	size_t				 i;

	memset(&err, 0, sizeof(err));
	if (kakao_token_answer_parse((const char *)data, size, &r, &err) == 0)
		check_result(&r);
	else {
		assert(err.status == KL_KAKAO_BAD_RESPONSE ||
		    err.status == KL_INTERNAL);
		for (i = 0; i < sizeof(r.access_token); i++)
			assert(r.access_token[i] == '\0');
		assert(r.id_token == NULL && r.expires_in == 0);
		check_detail(&err);
	}
	kakao_code_result_wipe(&r);

	if (size > 0) {
		status = statuses[data[0] % (sizeof(statuses) /
		    sizeof(statuses[0]))];
		data++;
		size--;
	}
	memset(&err, 0, sizeof(err));
	assert(kakao_auth_error_classify(status, (const char *)data, size,
	    &err) == -1);
	assert(err.status == KL_INVALID_CODE || err.status == KL_KAKAO_CONFIG ||
	    err.status == KL_KAKAO_UNAVAILABLE ||
	    err.status == KL_KAKAO_BAD_RESPONSE);
	assert((status != 429 && status < 500) ||
	    err.status == KL_KAKAO_UNAVAILABLE);
	check_detail(&err);
	return 0;
}
