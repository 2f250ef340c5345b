/*
 * fuzz_id_token.c: bytes go to token_id_token_verify() against a fixed key
 * set and fixed expectations (issuer https://kauth.kakao.com, audiences
 * "fuzz-rest-key" and "fuzz-native-key", skew 120 s, now 1700000000). The
 * key set is the JWKS of the RSA-2048 test key below (not a secret: it
 * signs nothing but fuzz inputs), made at the first input and served by a
 * fetch function that never fails. Modes, by the first byte:
 *   0x01, 0x02: structured: the rest is "header JSON" 0x00 "payload JSON"
 *               (no 0x00: the header is {"alg":"RS256","kid":"fuzz-kid"}
 *               and the rest the payload), which the harness base64url-
 *               encodes and signs RS256 with the key, so the fuzzer gets
 *               past the signature to the header rules and every claim
 *               check; 0x02 also expects the nonce "fuzz-nonce";
 *   otherwise:  raw: the bytes (a NUL-terminated copy) are the token.
 *
 * Beyond "does not crash" it asserts: a failure is KL_BAD_ID_TOKEN (the
 * keys are always there) with the claims left zero; on success sub is in
 * 1..INT64_MAX, exp > now - skew, iat <= now + skew and iat <= exp, every
 * string is NUL-terminated inside its array, a picture is an http(s) URL,
 * email_verified implies an email, and (structured) the header was a JSON
 * object whose alg is exactly "RS256".
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "token_oidc.h"

#define NOW		1700000000
#define SKEW		120
#define KID		"fuzz-kid"
#define NONCE		"fuzz-nonce"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char	key_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDJaW/durY2kn55\n"
	"enfXVMBBYKMokiVht2xJTYGwSXUhtIhiinouz/+ea2B5wRtFuVMBmdSWRpsXUX+2\n"
	"B9oc5Aaf0IhWuEBVyiNbRHAGywpfLtvAxWDnPBXwND5afMeVeTmvQTXThy1TFGMH\n"
	"niAZty2/foBp5FLSn5mQ747c5vZEK3kCfzvUofLnvtZQ3bCgua9HDgvlML0jtscr\n"
	"ZirPB05w7us3StDba4L2jEiNTE+Hue01+6ugpEKCYKOr7CKMb2LkW/f0eOQL5Nzh\n"
	"YpzcNgTI92lh8rIHEAbQOY2XWhg03Xi0krvEeaDlPdOZ5zW+G495nBFM1ZqzI8DX\n"
	"FMyXh+RrAgMBAAECggEAJXHMslQ7+/lQOhViok3HUGA+9RP2jywinZ4jNjrx48pE\n"
	"cM192aYhx7n+vaQBBf1mSS3oL+gAfV1ReO4MxsI92QhT0IuAqnJiEF2w1hJ5Yyi7\n"
	"AiOv2E17ZqTP0tLP6CIZb1OYRjMjYgawQoJLRXygrLE//m/MVgwF6MQgs0DdF98I\n"
	"lu8iYcU0VlqsqZlH/dZz+ja9KCev/lhmS7RliYTiCC6E3wxcr8HvUTChXGeuWHNf\n"
	"MBaRlL/5Z00Y5mxHmAkl/p025z2DRt/8ktIZIwb+WSPVKDfkEpYR9xAec48WPfpp\n"
	"bX8njEIDTz8J2Pfb+2+RnegTDPVH6XqLroFGkGUWQQKBgQDwXMTgRiKoGtdH0/ci\n"
	"l44hjz/WEkY4lTTyg9oZy9O+6L2Kw7DvSn5c+CROS2NKo0J/g3qgHagVuHYzJ8Gn\n"
	"eN5KEQRq2zWWjKvkUI6CT/qgCdP62dDXwW2ivZAKUXdVT4D/b9IpbWBxFKJqqiPc\n"
	"WncwYjAIizOQh9Nr8IpnkTKJHwKBgQDWg/Kj0Oa09URHS9yaqTlMfD6s2rbpSJLg\n"
	"1rlBolTEirPgQCPN0CgqzX5HpA1vy2KX0KOi4/Cdl4U+2yCa7DfiCI8SotXS3h/a\n"
	"azRV8ZZNCxGma558FwdRI5hrfsBu6bfCOKM31iQfJcdtI3+sWym6asI+cHBZ3p0K\n"
	"PzAGL/FfNQKBgEEqZZYIbcz1ufgXV6FhRX+DvuLjAXbFvR0i8jacNERGBV1hwM6f\n"
	"e7Lo867mcX0C1jyMAOr4H2IEKMelt7MX6exawL/Xvqeaa9/ylzBtTp2lDHuuIhjc\n"
	"sES28B5cB+ZxL6ARSQFCTitaVM5mYmKThEzx0eP/GXPN31wcUunRS8oxAoGBAJt/\n"
	"7JzJauPUQ1l3aYQHlYyXKAu/RAZZYHdxz7r/RHlwnjG57PpdoTBd4+NkzYSzp1Wr\n"
	"nWMP3rUuSB2nVLxY7a2BTM1SkrOX5vk66yY9yRkyI+pCaxFC1EACEJQjvrTn4Rf+\n"
	"XHq2VVrq1OSNbhhvwRDsIMCIWzkaQTZTVam2iT7dAoGBAK5VlXNiCPaCLSzvRJO+\n"
	"gu4U9byJ8VpeRTJ3HlRLJkyHQHtfC0WNbJlNXBNj7Lt8qgvbr2Gul08ySxKlh32j\n"
	"q1J51h472EaeWRixMCIFAY9fyf8ic2QBqmwDiPCgRXS3vSeBIEy175D/RDV2IxxQ\n"
	"NbLkNHwRGRTyBvlY9kEUly1V\n"
	"-----END PRIVATE KEY-----\n"
	;

static const char	default_header[] =
    "{\"alg\":\"RS256\",\"kid\":\"" KID "\"}";
static const char *const audiences[] = { "fuzz-rest-key", "fuzz-native-key" };

static EVP_PKEY			*key;
static char			*jwks;
static struct token_jwks_cache	*cache;

static const char	abc[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Appends base64url (no padding) of in to out; returns the new end. */
static char *
b64url(char *out, const unsigned char *in, size_t len)
{
	uint32_t	v;
	size_t		i;

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

static void
rsa_param(const char *name, char *out)
{
	unsigned char	 buf[512];
	BIGNUM		*bn = NULL;
	int		 n;

	if (EVP_PKEY_get_bn_param(key, name, &bn) != 1 ||
	    (n = BN_bn2bin(bn, buf)) <= 0)
		abort();
	BN_free(bn);
	b64url(out, buf, (size_t)n);
}

static int
fetch(void *arg, char **body, size_t *len, struct kl_error *err)
{
	(void)arg;
	(void)err;
	if ((*body = strdup(jwks)) == NULL)
		abort();
	*len = strlen(jwks);
	return 0;
}

static void
init(void)
{
	struct kl_error	 err;
	char		 n[700], e[16];
	BIO		*bio;

	if ((bio = BIO_new_mem_buf(key_pem, -1)) == NULL ||
	    (key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL)
		abort();
	BIO_free(bio);
	rsa_param(OSSL_PKEY_PARAM_RSA_N, n);
	rsa_param(OSSL_PKEY_PARAM_RSA_E, e);
	if (asprintf(&jwks, "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"" KID
	    "\",\"use\":\"sig\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\"}]}",
	    n, e) < 0 ||
	    (cache = token_jwks_cache_new(fetch, NULL, &err)) == NULL ||
	    token_jwks_cache_prefetch(cache, &err) == -1)
		abort();
}

/* header.payload.signature, signed RS256 with the key. */
static char *
build_token(const uint8_t *data, size_t size)
{
	const unsigned char	*hdr = (const unsigned char *)default_header;
	const unsigned char	*pay = data;
	const uint8_t		*sep;
	size_t			 hlen = sizeof(default_header) - 1, plen = size;
	unsigned char		 sig[512];
	size_t			 siglen = sizeof(sig);
	EVP_MD_CTX		*md;
	char			*tok, *p;

	if ((sep = memchr(data, 0, size)) != NULL) {
		hdr = data;
		hlen = (size_t)(sep - data);
		pay = sep + 1;
		plen = size - hlen - 1;
	}
	if ((tok = malloc((hlen + plen + sizeof(sig)) * 4 / 3 + 16)) == NULL)
		abort();
	p = b64url(tok, hdr, hlen);
	*p++ = '.';
	p = b64url(p, pay, plen);
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, sig, &siglen, (unsigned char *)tok,
	    (size_t)(p - tok)) != 1)
		abort();
	EVP_MD_CTX_free(md);
	*p++ = '.';
	b64url(p, sig, siglen);
	return tok;
}

/* A structured input's header: alg exactly "RS256" when the token passed. */
static void
check_header(const uint8_t *data, size_t size)
{
	const uint8_t	*sep = memchr(data, 0, size);
	json_t		*h;

	if (sep == NULL)
		return;		/* the default header */
	h = json_loadb((const char *)data, (size_t)(sep - data),
	    JSON_REJECT_DUPLICATES, NULL);
	assert(h != NULL && json_is_object(h));
	assert(json_is_string(json_object_get(h, "alg")));
	assert(strcmp(json_string_value(json_object_get(h, "alg")),
	    "RS256") == 0);
	json_decref(h);
}

static void
check_claims(const struct token_id_claims *c)
{
	assert(c->sub > 0);
	assert(c->exp > NOW - SKEW);
	assert(c->iat <= NOW + SKEW && c->iat <= c->exp);
	assert(memchr(c->nickname, '\0', sizeof(c->nickname)) != NULL);
	assert(memchr(c->picture, '\0', sizeof(c->picture)) != NULL);
	assert(memchr(c->email, '\0', sizeof(c->email)) != NULL);
	assert(c->has_nickname == (c->nickname[0] != '\0'));
	assert(!c->has_picture || strncasecmp(c->picture, "http", 4) == 0);
	assert(!c->email_verified || c->has_email);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct token_id_claims	zero;
	struct token_oidc_expect	 ex = {
		.issuer = "https://kauth.kakao.com", .audiences = audiences,
		.n_audiences = 2, .skew_s = SKEW, .now = NOW,
	};
	struct token_id_claims		 c;
	struct kl_error			 err;
	bool				 structured;
	char				*tok;

	if (cache == NULL)
		init();
	structured = size > 0 && (data[0] == 0x01 || data[0] == 0x02);
	if (structured) {
		if (data[0] == 0x02)
			ex.nonce = NONCE;
		tok = build_token(data + 1, size - 1);
	} else {
		if ((tok = malloc(size + 1)) == NULL)
			abort();
		memcpy(tok, data, size);
		tok[size] = '\0';
	}
	if (token_id_token_verify(cache, tok, &ex, &c, &err) == -1) {
		assert(err.status == KL_BAD_ID_TOKEN);
		assert(memcmp(&c, &zero, sizeof(c)) == 0);
	} else {
		check_claims(&c);
		if (structured)
			check_header(data + 1, size - 1);
	}
	free(tok);
	return 0;
}
