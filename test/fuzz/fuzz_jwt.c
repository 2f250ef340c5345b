/*
 * fuzz_jwt.c: bytes go to token_verify() with a fixed token context
 * (fuzz_key.h: two keys of 48 bytes, kids "fuzz-1" and "fuzz-2", issuer
 * "kakao-login", ttl 3600) and a fixed now. Two modes:
 *   raw:        the bytes (a NUL-terminated copy) are the token;
 *   structured: the input starts with STRUCTURED (0x01: signed by the
 *               first key) or STRUCTURED_KEY2 (0x02: by the second); the
 *               rest is "header JSON" 0x00 "payload JSON" (no 0x00: the
 *               header is {"alg":"HS256","typ":"JWT"}, without a kid, and
 *               the rest the payload), which the harness base64url-encodes
 *               and signs with HMAC-SHA256 under that key, so the fuzzer
 *               gets past the signature and reaches the header's kid
 *               and typ, the payload's JSON and our claim checks.
 *
 * Beyond "does not crash" it asserts: failures are KL_BAD_TOKEN with the
 * claims left zero; on success user_id is in 1..INT64_MAX, kakao_id >= 0,
 * sid "" or SID_HEX_LEN lowercase hex digits, exp > now, iat <= now + 60,
 * iat <= exp, jti is NUL-terminated inside its array, and (structured)
 * the header was a JSON object whose alg is exactly "HS256" (libjwt alone
 * took "hs256") and whose kid, when it has one, is the signing key's.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fuzz_key.h"
#include "token.h"

#define STRUCTURED	0x01
#define STRUCTURED_KEY2	0x02

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char	default_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* Appends base64url (no padding) of in to out; returns the new end. */
static char *
b64url(char *out, const unsigned char *in, size_t len)
{
	static const char	abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	uint32_t		v;
	size_t			i;

	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*out++ = abc[v >> 18];
		*out++ = abc[(v >> 12) & 63];
		*out++ = abc[(v >> 6) & 63];
		*out++ = abc[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*out++ = abc[v >> 18];
		*out++ = abc[(v >> 12) & 63];
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*out++ = abc[v >> 18];
		*out++ = abc[(v >> 12) & 63];
		*out++ = abc[(v >> 6) & 63];
	}
	*out = '\0';
	return out;
}

/* header.payload.signature, signed with key k. */
static char *
build_token(const struct token_key *k, const uint8_t *data, size_t size)
{
	const unsigned char	*hdr = (const unsigned char *)default_header;
	const unsigned char	*pay = data;
	const uint8_t		*sep;
	size_t			 hlen = sizeof(default_header) - 1, plen = size;
	unsigned char		 mac[EVP_MAX_MD_SIZE];
	unsigned int		 maclen = 0;
	char			*tok, *p;

	if ((sep = memchr(data, 0, size)) != NULL) {
		hdr = data;
		hlen = (size_t)(sep - data);
		pay = sep + 1;
		plen = size - hlen - 1;
	}
	if ((tok = malloc((hlen + plen + 2 * EVP_MAX_MD_SIZE) * 4 / 3 +
	    16)) == NULL)
		abort();
	p = b64url(tok, hdr, hlen);
	*p++ = '.';
	p = b64url(p, pay, plen);
	if (HMAC(EVP_sha256(), k->key, (int)k->keylen,
	    (unsigned char *)tok, (size_t)(p - tok), mac, &maclen) == NULL)
		abort();
	*p++ = '.';
	b64url(p, mac, maclen);
	return tok;
}

/* A structured input's header: exactly "HS256", and no kid or the kid of
 * the key k that signed it, when the token passed. */
static void
check_header(const struct token_key *k, const uint8_t *data, size_t size)
{
	const uint8_t	*sep = memchr(data, 0, size);
	json_t		*h, *kid;

	if (sep == NULL)
		return;		/* the default header */
	h = json_loadb((const char *)data, (size_t)(sep - data),
	    JSON_REJECT_DUPLICATES, NULL);
	assert(h != NULL && json_is_object(h));
	assert(json_is_string(json_object_get(h, "alg")));
	assert(strcmp(json_string_value(json_object_get(h, "alg")),
	    "HS256") == 0);
	if ((kid = json_object_get(h, "kid")) != NULL)
		assert(json_is_string(kid) &&
		    strcmp(json_string_value(kid), k->kid) == 0);
	json_decref(h);
}

/* The claims of a token that passed. */
static void
check_claims(const struct token_claims *c, time_t now)
{
	size_t	n;

	assert(c->user_id > 0 && c->user_id <= (uint64_t)INT64_MAX);
	assert(c->kakao_id >= 0);
	n = strnlen(c->sid, sizeof(c->sid));
	assert(n == 0 || (n == SID_HEX_LEN &&
	    strspn(c->sid, "0123456789abcdef") == SID_HEX_LEN));
	assert(c->exp > now);
	assert(c->iat <= now + 60);
	assert(c->iat <= c->exp);
	assert(memchr(c->jti, '\0', sizeof(c->jti)) != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct token_claims zero;
	static struct token_ctx	 ctx;
	const struct token_key	*k = NULL;
	struct token_claims	 c;
	struct kl_error		 err;
	const time_t		 now = FUZZ_JWT_NOW;
	char			*tok;

	if (ctx.nkeys == 0)
		fuzz_token_ctx(&ctx);
	if (size > 0 && (data[0] == STRUCTURED || data[0] == STRUCTURED_KEY2)) {
		k = &ctx.keys[data[0] == STRUCTURED ? 0 : 1];
		tok = build_token(k, data + 1, size - 1);
	} else {
		if ((tok = malloc(size + 1)) == NULL)
			abort();
		memcpy(tok, data, size);
		tok[size] = '\0';
	}

	if (token_verify(&ctx, tok, now, &c, &err) == -1) {
		assert(err.status == KL_BAD_TOKEN);
		assert(memcmp(&c, &zero, sizeof(c)) == 0);
	} else {
		check_claims(&c, now);
		if (k != NULL)
			check_header(k, data + 1, size - 1);
	}
	free(tok);
	return 0;
}
