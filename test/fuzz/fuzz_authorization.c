/*
 * fuzz_authorization.c: the bytes, as the value of the front's
 * Authorization header (a NUL-terminated copy, so an embedded NUL ends it),
 * go to handler_parse_authorization(), with an output buffer of exactly
 * MAX_KAKAO_TOKEN + 1 bytes on the heap so any overrun is caught.
 *
 * Beyond "does not crash" it asserts: on failure the status is
 * KL_BAD_TOKEN and the token is ""; on success the token is non-empty, at
 * most MAX_KAKAO_TOKEN characters, a token68 (RFC 7235: token characters,
 * then only '=' padding), occurs in the value, and values longer than
 * MAX_AUTH_HEADER never succeed.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
token68_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("-._~+/", c) != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_error	 err;
	char		*value, *token;
	size_t		 i, n;

	if ((value = malloc(size + 1)) == NULL ||
	    (token = malloc(MAX_KAKAO_TOKEN + 1)) == NULL)
		abort();
	memcpy(value, data, size);
	value[size] = '\0';

	if (handler_parse_authorization(value, token, &err) == -1) {
		assert(err.status == KL_BAD_TOKEN);
		assert(memchr(err.detail, '\0', sizeof(err.detail)) != NULL);
		assert(token[0] == '\0');
	} else {
		n = strnlen(token, MAX_KAKAO_TOKEN + 1);
		assert(n > 0 && n <= MAX_KAKAO_TOKEN);
		assert(strlen(value) <= MAX_AUTH_HEADER);
		for (i = 0; i < n && token68_char(token[i]); i++)
			;
		assert(i > 0);				/* token68 ... */
		for (; i < n && token[i] == '='; i++)
			;
		assert(i == n);				/* ... *"=" */
		assert(strstr(value, token) != NULL);
	}
	free(token);
	free(value);
	return 0;
}
