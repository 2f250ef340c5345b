/*
 * fuzz_keyfile.c: the bytes are a jwt_secret_file's contents, given to
 * token_keys_parse() (what token_init() does after config_read_secret_raw's
 * file checks).
 *
 * Beyond "does not crash" it asserts: a failure is KL_BAD_CONFIG with
 * every key wiped (nkeys 0, the key array all zero) and a detail ending
 * inside its array; a success has 1..MAX_JWT_KEYS keys, each of
 * MIN_JWT_SECRET..MAX_JWT_SECRET bytes, not one byte repeated, zero past
 * its length, with a kid of 1..MAX_JWT_KID of [A-Za-z0-9._-], the kids
 * unique; a legacy key (its kid "k" + 8 hex digits of its SHA-256) is the
 * input but for one final LF or CR LF; a second parse gives the same keys;
 * a token issued with the keys verifies with them and names keys[0]'s kid;
 * token_wipe() leaves the keys all zero.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "token.h"
#include "token_oidc.h"

#define NOW	1700000000

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
all_zero(const void *p, size_t len)
{
	const unsigned char	*b = p;
	size_t			 i;

	for (i = 0; i < len; i++)
		if (b[i] != 0)
			return false;
	return true;
}

/* A legacy key: its kid made from its SHA-256, its bytes the input's. */
static void
check_legacy(const struct token_key *k, const uint8_t *data, size_t size)
{
	unsigned char	md[SHA256_DIGEST_LENGTH];
	char		kid[16];

	SHA256(k->key, k->keylen, md);
	snprintf(kid, sizeof(kid), "k%02x%02x%02x%02x", md[0], md[1], md[2],
	    md[3]);
	if (strcmp(kid, k->kid) != 0)
		return;		/* a keyed file's key */
	assert(k->keylen <= size && memcmp(k->key, data, k->keylen) == 0);
	if (k->keylen == size - 1)
		assert(data[size - 1] == '\n' &&
		    (size < 2 || data[size - 2] != '\r'));
	else if (k->keylen == size - 2)
		assert(memcmp(data + size - 2, "\r\n", 2) == 0);
	else
		assert(k->keylen == size && (size == 0 ||
		    data[size - 1] != '\n'));
}

static void
check_key(const struct token_ctx *ctx, int i)
{
	const struct token_key	*k = &ctx->keys[i];
	size_t			 n, j;
	int			 o;

	assert(k->keylen >= MIN_JWT_SECRET && k->keylen <= MAX_JWT_SECRET);
	assert(all_zero(k->key + k->keylen, sizeof(k->key) - k->keylen));
	for (j = 1; j < k->keylen && k->key[j] == k->key[0]; j++)
		;
	assert(j < k->keylen);
	n = strnlen(k->kid, sizeof(k->kid));
	assert(n >= 1 && n <= MAX_JWT_KID);
	assert(strspn(k->kid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
	    "qrstuvwxyz0123456789._-") == n);
	for (o = 0; o < i; o++)
		assert(strcmp(ctx->keys[o].kid, k->kid) != 0);
}

/* A token issued with the keys verifies with them, and its header names
 * keys[0]. */
static void
check_tokens(struct token_ctx *ctx)
{
	struct token_subject	 s;
	struct token_claims	 c;
	struct kl_error		 err;
	unsigned char		 hdr[512];
	size_t			 n;
	char			*jwt, *dot;
	json_t			*h;

	snprintf(ctx->issuer, sizeof(ctx->issuer), "kakao-login");
	ctx->ttl = 3600;
	memset(&s, 0, sizeof(s));
	s.user_id = 1;
	assert(token_issue(ctx, &s, NOW, &jwt, &err) == 0);
	assert(token_verify(ctx, jwt, NOW, &c, &err) == 0);
	assert(c.user_id == 1);
	assert((dot = strchr(jwt, '.')) != NULL &&
	    (size_t)(dot - jwt) * 3 / 4 < sizeof(hdr));
	assert(token_b64url_decode(jwt, (size_t)(dot - jwt), hdr, &n) == 0);
	assert((h = json_loadb((const char *)hdr, n, 0, NULL)) != NULL);
	assert(json_is_string(json_object_get(h, "kid")));
	assert(strcmp(json_string_value(json_object_get(h, "kid")),
	    ctx->keys[0].kid) == 0);
	json_decref(h);
	free(jwt);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct token_ctx	 ctx, again;
	struct kl_error		 err;
	int			 i;

	kl_error_clear(&err);
	memset(&ctx, 0xa5, sizeof(ctx));	/* the parse clears it */
	if (token_keys_parse(&ctx, data, size, &err) == -1) {
		assert(err.status == KL_BAD_CONFIG);
		assert(memchr(err.detail, '\0', sizeof(err.detail)) != NULL);
		assert(ctx.nkeys == 0);
		assert(all_zero(ctx.keys, sizeof(ctx.keys)));
		return 0;
	}
	assert(ctx.nkeys >= 1 && ctx.nkeys <= MAX_JWT_KEYS);
	for (i = 0; i < ctx.nkeys; i++)
		check_key(&ctx, i);
	assert(all_zero(&ctx.keys[ctx.nkeys],
	    sizeof(ctx.keys[0]) * (size_t)(MAX_JWT_KEYS - ctx.nkeys)));
	if (ctx.nkeys == 1)
		check_legacy(&ctx.keys[0], data, size);
	assert(token_keys_parse(&again, data, size, &err) == 0);
	assert(again.nkeys == ctx.nkeys &&
	    memcmp(again.keys, ctx.keys, sizeof(ctx.keys)) == 0);
	check_tokens(&ctx);
	token_wipe(&ctx);
	token_wipe(&again);
	assert(ctx.nkeys == 0 && all_zero(ctx.keys, sizeof(ctx.keys)));
	return 0;
}
