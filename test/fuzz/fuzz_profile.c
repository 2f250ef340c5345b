/*
 * fuzz_profile.c: the bytes, as Kakao's answer to GET /v2/user/me, go to
 * kakao_profile_parse().
 *
 * Beyond "does not crash" it asserts: on failure the status is
 * KL_KAKAO_BAD_RESPONSE and the profile is all zero; on success the id is
 * positive, nickname, email and profile_image end with a NUL inside their
 * arrays, each has_* flag is true exactly when its string is non-empty,
 * email_verified implies has_email, a profile_image is an http or https
 * URL with no blank or control byte, and the nickname is well-formed UTF-8
 * and a prefix of the nickname in the input, cut (when longer than
 * MAX_NICKNAME) on a character boundary by at most 3 bytes. Jansson only
 * accepts valid UTF-8, so the input nickname is always valid and a broken
 * character in ours can only come from the cut.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "kakao.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

/* Well-formed UTF-8 as far as lengths go: no stray continuation byte and
 * no sequence cut short. */
static bool
utf8_whole(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	int			 more;

	while (*p != '\0') {
		if (*p < 0x80)
			more = 0;
		else if ((*p & 0xe0) == 0xc0)
			more = 1;
		else if ((*p & 0xf0) == 0xe0)
			more = 2;
		else if ((*p & 0xf8) == 0xf0)
			more = 3;
		else
			return false;
		for (p++; more > 0; more--, p++)
			if ((*p & 0xc0) != 0x80)
				return false;
	}
	return true;
}

/* The nickname the parser should have used, found independently. */
static const char *
input_nickname(json_t *root)
{
	json_t	*v;

	v = json_object_get(json_object_get(json_object_get(root,
	    "kakao_account"), "profile"), "nickname");
	if (!json_is_string(v))
		v = json_object_get(json_object_get(root, "properties"),
		    "nickname");
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct kakao_profile zero;
	struct kakao_profile	 p;
	struct kl_error		 err;
	json_t			*root;
	const char		*src;
	size_t			 n, srclen;

	if (kakao_profile_parse((const char *)data, size, &p, &err) == -1) {
		assert(err.status == KL_KAKAO_BAD_RESPONSE);
		assert(terminated(err.detail, sizeof(err.detail)));
		assert(memcmp(&p, &zero, sizeof(p)) == 0);
		return 0;
	}
	assert(p.id > 0);
	assert(terminated(p.nickname, sizeof(p.nickname)));
	assert(terminated(p.email, sizeof(p.email)));
	assert(terminated(p.profile_image, sizeof(p.profile_image)));
	assert(p.has_nickname == (p.nickname[0] != '\0'));
	assert(p.has_email == (p.email[0] != '\0'));
	assert(p.has_profile_image == (p.profile_image[0] != '\0'));
	assert(!p.email_verified || p.has_email);
	assert(utf8_whole(p.nickname));
	assert(!p.has_profile_image ||
	    strncasecmp(p.profile_image, "http://", 7) == 0 ||
	    strncasecmp(p.profile_image, "https://", 8) == 0);
	for (n = 0; p.profile_image[n] != '\0'; n++)
		assert((unsigned char)p.profile_image[n] > 0x20 &&
		    p.profile_image[n] != 0x7f);

	/* The parser accepted it, so Jansson does too. */
	root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES,
	    NULL);
	assert(root != NULL);
	src = input_nickname(root);
	n = strlen(p.nickname);
	if (src == NULL || src[0] == '\0')
		assert(!p.has_nickname);
	else {
		srclen = strlen(src);
		assert(p.has_nickname);
		assert(strncmp(p.nickname, src, n) == 0);
		if (srclen <= MAX_NICKNAME)
			assert(n == srclen);
		else {
			assert(n + 3 >= MAX_NICKNAME);
			assert(((unsigned char)src[n] & 0xc0) != 0x80);
		}
	}
	json_decref(root);
	return 0;
}
