/*
 * test_token_oidc.c: Kakao id_tokens and the JWKS cache (app/token_id.c,
 * app/token_jwks.c), and token_tag() (app/token.c).
 *
 * RSA-2048 keys are made at start (EVP_RSA_gen), their JWKS written here
 * from n and e, and every token signed here (EVP_DigestSign), so each case
 * changes one thing of a good token. The fetch function is a fake that
 * counts its calls and the cache's clock is injected, so refetch intervals
 * are tested without sleeping. The JWKS parser's cases are data: files in
 * test/data/id_token/ (make_cases.py there writes them), jwks-<N>-* must
 * give N keys, jwks-bad-* must be refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "token.h"
#include "token_oidc.h"

#define NOW		((time_t)1700000000)
#define SKEW		120L
#define ISSUER		"https://kauth.kakao.com"
#define REST_KEY	"restkey0123456789abcdef"
#define NATIVE_KEY	"nativekey9876543210fedcba"
#define JS_KEY		"jskey55555555"
#define KID_A		"kid-a-3f96980381e451ef"
#define KID_B		"kid-b-9f252dadd5f233f9"
#define SUB		"4321987654"
#define DATA_DIR	"test/data/id_token"
#define THREADS		16
#define PER_THREAD	100

static EVP_PKEY	*key_a, *key_b, *key_small;
static char	*jwks_a, *jwks_b, *jwks_ab;

static const char *const audiences[] = { REST_KEY, NATIVE_KEY, JS_KEY };

/* ---- encoding and signing ---- */

static const char b64abc[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding; a malloc'd string. */
static char *
b64u(const unsigned char *in, size_t len)
{
	char		*out = malloc(len * 4 / 3 + 4), *p;
	size_t		 i;
	uint32_t	 v;

	assert_non_null(out);
	p = out;
	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*p++ = b64abc[v >> 18 & 63];
		*p++ = b64abc[v >> 12 & 63];
		*p++ = b64abc[v >> 6 & 63];
		*p++ = b64abc[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*p++ = b64abc[v >> 18 & 63];
		*p++ = b64abc[v >> 12 & 63];
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*p++ = b64abc[v >> 18 & 63];
		*p++ = b64abc[v >> 12 & 63];
		*p++ = b64abc[v >> 6 & 63];
	}
	*p = '\0';
	return out;
}

static char *
b64u_str(const char *s)
{
	return b64u((const unsigned char *)s, strlen(s));
}

/* The base64url of one RSA parameter of key. */
static char *
rsa_param(EVP_PKEY *key, const char *name)
{
	BIGNUM		*bn = NULL;
	unsigned char	 buf[1100];
	int		 n;

	assert_int_equal(EVP_PKEY_get_bn_param(key, name, &bn), 1);
	n = BN_bn2bin(bn, buf);
	assert_true(n > 0 && (size_t)n <= sizeof(buf));
	BN_free(bn);
	return b64u(buf, (size_t)n);
}

/* One JWK object for key (extra: more members, "" or ",..."). */
static char *
jwk_of(EVP_PKEY *key, const char *kid, const char *extra)
{
	char	*n = rsa_param(key, OSSL_PKEY_PARAM_RSA_N);
	char	*e = rsa_param(key, OSSL_PKEY_PARAM_RSA_E);
	char	*out;

	assert_true(asprintf(&out, "{\"kty\":\"RSA\",\"kid\":\"%s\","
	    "\"use\":\"sig\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\"%s}",
	    kid, n, e, extra) > 0);
	free(n);
	free(e);
	return out;
}

static char *
jwks_of(const char *a, const char *b)
{
	char	*out;

	assert_true(asprintf(&out, "{\"keys\":[%s%s%s]}", a, b ? "," : "",
	    b ? b : "") > 0);
	return out;
}

/* header.payload, both base64url. */
static char *
signing_input(const char *header, const char *payload)
{
	char	*h = b64u_str(header), *p = b64u_str(payload), *out;

	assert_true(asprintf(&out, "%s.%s", h, p) > 0);
	free(h);
	free(p);
	return out;
}

static char *
append_sig(char *input, const unsigned char *sig, size_t siglen)
{
	char	*s = b64u(sig, siglen), *out;

	assert_true(asprintf(&out, "%s.%s", input, s) > 0);
	free(s);
	free(input);
	return out;
}

/* A compact JWS of header and payload signed RS256 with key. */
static char *
sign_rs256(EVP_PKEY *key, const char *header, const char *payload)
{
	char		*in = signing_input(header, payload);
	unsigned char	 sig[1100];
	size_t		 siglen = sizeof(sig);
	EVP_MD_CTX	*md = EVP_MD_CTX_new();

	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
	    key), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen,
	    (unsigned char *)in, strlen(in)), 1);
	EVP_MD_CTX_free(md);
	return append_sig(in, sig, siglen);
}

/* The same, HS256 under secret. */
static char *
sign_hs256(const void *secret, size_t len, const char *header,
    const char *payload)
{
	char		*in = signing_input(header, payload);
	unsigned char	 mac[EVP_MAX_MD_SIZE];
	unsigned int	 maclen = 0;

	assert_non_null(HMAC(EVP_sha256(), secret, (int)len,
	    (unsigned char *)in, strlen(in), mac, &maclen));
	return append_sig(in, mac, maclen);
}

static char *
header_for(const char *kid)
{
	char	*h;

	assert_true(asprintf(&h, "{\"alg\":\"RS256\",\"kid\":\"%s\","
	    "\"typ\":\"JWT\"}", kid) > 0);
	return h;
}

/* A good payload as a Jansson object the case then edits. */
static json_t *
good_claims(void)
{
	json_t	*p = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, "
	    "s:b}", "iss", ISSUER, "aud", REST_KEY, "sub", SUB,
	    "iat", (json_int_t)(NOW - 10), "exp", (json_int_t)(NOW + 3600),
	    "auth_time", (json_int_t)(NOW - 10), "nickname", "라이언",
	    "picture", "https://k.kakaocdn.net/dn/img.jpg",
	    "email", "ryan@kakao.com", "email_verified", 1);

	assert_non_null(p);
	return p;
}

/* Signs claims (and drops the reference) with key under kid. */
static char *
token_of(EVP_PKEY *key, const char *kid, json_t *claims)
{
	char	*h = header_for(kid);
	char	*p = json_dumps(claims, JSON_COMPACT);
	char	*t;

	assert_non_null(p);
	t = sign_rs256(key, h, p);
	free(h);
	free(p);
	json_decref(claims);
	return t;
}

static char *
good_token(void)
{
	return token_of(key_a, KID_A, good_claims());
}

/* ---- the fake fetch and clock ---- */

struct fake {
	pthread_mutex_t	 lock;
	const char	*doc;		/* what a fetch answers */
	int		 calls;
	enum kl_status	 fail;		/* KL_OK: answer doc */
	useconds_t	 delay_us;	/* a slow Kakao */
};

static int
fake_fetch(void *arg, char **body, size_t *len, struct kl_error *err)
{
	struct fake	*f = arg;
	enum kl_status	 fail;
	const char	*doc;

	pthread_mutex_lock(&f->lock);
	f->calls++;
	fail = f->fail;
	doc = f->doc;
	pthread_mutex_unlock(&f->lock);
	if (f->delay_us > 0)
		usleep(f->delay_us);
	if (fail != KL_OK)
		return kl_fail(err, fail, "fake jwks fetch fails");
	*body = strdup(doc);
	assert_non_null(*body);
	*len = strlen(doc);
	return 0;
}

static int
fake_calls(struct fake *f)
{
	int	n;

	pthread_mutex_lock(&f->lock);
	n = f->calls;
	pthread_mutex_unlock(&f->lock);
	return n;
}

static long long
fake_clock(void *arg)
{
	return *(long long *)arg;
}

struct rig {
	struct fake		 fake;
	long long		 clock;
	struct token_jwks_cache	*cache;
};

static void
rig_init(struct rig *r, const char *doc)
{
	struct kl_error	err;

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->fake.lock, NULL);
	r->fake.doc = doc;
	r->clock = 1000;
	r->cache = token_jwks_cache_new(fake_fetch, &r->fake, &err);
	assert_non_null(r->cache);
	token_jwks_cache_set_clock(r->cache, fake_clock, &r->clock);
}

static void
rig_free(struct rig *r)
{
	token_jwks_cache_free(r->cache);
	pthread_mutex_destroy(&r->fake.lock);
}

static struct token_oidc_expect
expect(void)
{
	struct token_oidc_expect	ex = {
		.issuer = ISSUER, .audiences = audiences, .n_audiences = 3,
		.nonce = NULL, .skew_s = SKEW, .now = NOW,
	};

	return ex;
}

/* ---- verdicts ---- */

static void
assert_zero_claims(const struct token_id_claims *c)
{
	static const struct token_id_claims	zero;

	assert_memory_equal(c, &zero, sizeof(zero));
}

/* No detail may hold a piece of the token: 8 characters from the start
 * of each of its three parts. */
static void
assert_detail_clean(const char *detail, const char *tok)
{
	const char	*p = tok;
	char		 piece[9];

	while (p != NULL && *p != '\0') {
		if (strlen(p) >= 8) {
			memcpy(piece, p, 8);
			piece[8] = '\0';
			if (strstr(detail, piece) != NULL)
				fail_msg("detail \"%s\" holds token text \"%s\"",
				    detail, piece);
		}
		if ((p = strchr(p, '.')) != NULL)
			p++;
	}
}

/* tok verifies under ex with r's cache. */
static void
verify_ok(struct rig *r, const char *tok, const struct token_oidc_expect *ex,
    struct token_id_claims *c)
{
	struct kl_error	err;

	if (token_id_token_verify(r->cache, tok, ex, c, &err) != 0)
		fail_msg("verify: %s", err.detail);
}

/* tok fails with status and a detail holding word. */
static void
verify_fails(struct rig *r, const char *tok,
    const struct token_oidc_expect *ex, enum kl_status status,
    const char *word)
{
	struct token_id_claims	c;
	struct kl_error		err;

	memset(&c, 0x5a, sizeof(c));
	assert_int_equal(token_id_token_verify(r->cache, tok, ex, &c, &err),
	    -1);
	if (err.status != status)
		fail_msg("status %d, want %d: %s", err.status, status,
		    err.detail);
	if (strstr(err.detail, word) == NULL)
		fail_msg("detail \"%s\" lacks \"%s\"", err.detail, word);
	assert_detail_clean(err.detail, tok);
	assert_zero_claims(&c);
}

/* claims edited by the caller, signed with key A, must fail on word. */
static void
claims_fail(json_t *claims, const struct token_oidc_expect *ex,
    const char *word)
{
	struct rig	 r;
	char		*tok = token_of(key_a, KID_A, claims);

	rig_init(&r, jwks_a);
	verify_fails(&r, tok, ex, KL_BAD_ID_TOKEN, word);
	free(tok);
	rig_free(&r);
}

static void
claims_pass(json_t *claims, const struct token_oidc_expect *ex)
{
	struct rig		 r;
	struct token_id_claims	 c;
	char			*tok = token_of(key_a, KID_A, claims);

	rig_init(&r, jwks_a);
	verify_ok(&r, tok, ex, &c);
	free(tok);
	rig_free(&r);
}

static json_t *
with(json_t *claims, const char *name, json_t *value)
{
	if (value == NULL)
		json_object_del(claims, name);
	else
		assert_int_equal(json_object_set_new(claims, name, value), 0);
	return claims;
}

/* A raw header and payload signed with key A. */
static char *
raw_token(const char *header, const char *payload)
{
	return sign_rs256(key_a, header, payload);
}

static char *
payload_json(json_t *claims)
{
	char	*p = json_dumps(claims, JSON_COMPACT);

	assert_non_null(p);
	json_decref(claims);
	return p;
}

/* ---- setup ---- */

static int
setup(void **state)
{
	char	*a, *b;

	(void)state;
	key_a = EVP_RSA_gen(2048);
	key_b = EVP_RSA_gen(2048);
	key_small = EVP_RSA_gen(1024);
	if (key_a == NULL || key_b == NULL || key_small == NULL)
		return -1;
	a = jwk_of(key_a, KID_A, "");
	b = jwk_of(key_b, KID_B, "");
	jwks_a = jwks_of(a, NULL);
	jwks_b = jwks_of(b, NULL);
	jwks_ab = jwks_of(a, b);
	free(a);
	free(b);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key_a);
	EVP_PKEY_free(key_b);
	EVP_PKEY_free(key_small);
	free(jwks_a);
	free(jwks_b);
	free(jwks_ab);
	return 0;
}

/* ---- good tokens ---- */

static void
test_good_token(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct token_id_claims		 c;
	struct rig			 r;
	char				*tok = good_token();

	(void)state;
	rig_init(&r, jwks_a);
	verify_ok(&r, tok, &ex, &c);
	assert_true(c.sub == 4321987654LL);
	assert_true(c.has_nickname);
	assert_string_equal(c.nickname, "라이언");
	assert_true(c.has_picture);
	assert_string_equal(c.picture, "https://k.kakaocdn.net/dn/img.jpg");
	assert_true(c.has_email);
	assert_string_equal(c.email, "ryan@kakao.com");
	assert_true(c.email_verified);
	assert_true(c.iat == NOW - 10);
	assert_true(c.exp == NOW + 3600);
	assert_int_equal(fake_calls(&r.fake), 1);
	free(tok);
	rig_free(&r);
}

/* Only the claims the rules need: no profile, nothing has_. */
static void
test_minimal_token(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct token_id_claims		 c;
	struct rig			 r;
	json_t				*p = good_claims();
	char				*tok;

	(void)state;
	json_object_del(p, "nickname");
	json_object_del(p, "picture");
	json_object_del(p, "email");
	json_object_del(p, "auth_time");
	tok = token_of(key_a, KID_A, p);
	rig_init(&r, jwks_a);
	verify_ok(&r, tok, &ex, &c);
	assert_false(c.has_nickname || c.has_picture || c.has_email ||
	    c.email_verified);
	assert_string_equal(c.nickname, "");
	free(tok);
	rig_free(&r);
}

/* Profile claims Kakao should not send are dropped, not fatal. */
static void
test_profile_claims_filtered(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct token_id_claims		 c;
	struct rig			 r;
	char				 nick[400], *tok;
	json_t				*p = good_claims();
	size_t				 i;

	(void)state;
	/* 133 three-byte characters: 399 bytes, cut to 255 (85 chars). */
	for (i = 0; i < 133; i++)
		memcpy(nick + 3 * i, "가", 3);
	nick[399] = '\0';
	with(p, "nickname", json_string(nick));
	with(p, "picture", json_string("javascript:alert(1)"));
	with(p, "email_verified", json_string("true"));
	tok = token_of(key_a, KID_A, p);
	rig_init(&r, jwks_a);
	verify_ok(&r, tok, &ex, &c);
	assert_true(c.has_nickname);
	assert_int_equal(strlen(c.nickname), 255);
	assert_memory_equal(c.nickname, nick, 255);
	assert_false(c.has_picture);
	assert_true(c.has_email);
	assert_false(c.email_verified);
	free(tok);
	rig_free(&r);
}

/* ---- claims ---- */

static void
test_aud_wrong(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct rig			 r;
	struct kl_error			 err;
	struct token_id_claims		 c;
	char				*tok;

	(void)state;
	tok = token_of(key_a, KID_A, with(good_claims(), "aud",
	    json_string("otherappkey1234567")));
	rig_init(&r, jwks_a);
	verify_fails(&r, tok, &ex, KL_BAD_ID_TOKEN, "aud");
	assert_int_equal(token_id_token_verify(r.cache, tok, &ex, &c, &err),
	    -1);
	/* What was seen and what is configured, 6 characters each. */
	assert_non_null(strstr(err.detail, "saw \"othera...\""));
	assert_non_null(strstr(err.detail, "\"restke...\""));
	assert_non_null(strstr(err.detail, "\"native...\""));
	assert_non_null(strstr(err.detail, "\"jskey5...\""));
	assert_null(strstr(err.detail, "otherap"));
	assert_null(strstr(err.detail, "restkey"));
	assert_null(strstr(err.detail, "nativek"));
	free(tok);
	rig_free(&r);
}

static void
test_aud_native_and_js_keys(void **state)
{
	struct token_oidc_expect	ex = expect();

	(void)state;
	claims_pass(with(good_claims(), "aud", json_string(NATIVE_KEY)), &ex);
	claims_pass(with(good_claims(), "aud", json_string(JS_KEY)), &ex);
	/* A prefix of a configured key is not that key. */
	claims_fail(with(good_claims(), "aud", json_string("restkey")), &ex,
	    "aud");
	claims_fail(with(good_claims(), "aud", json_string(REST_KEY "x")),
	    &ex, "aud");
	ex.n_audiences = 1;
	claims_fail(with(good_claims(), "aud", json_string(NATIVE_KEY)), &ex,
	    "aud");
}

static void
test_aud_array(void **state)
{
	struct token_oidc_expect	ex = expect();

	(void)state;
	claims_pass(with(good_claims(), "aud", json_pack("[s]", REST_KEY)),
	    &ex);
	/* Other members, no azp: allowed. */
	claims_pass(with(good_claims(), "aud", json_pack("[s,s]", "other",
	    NATIVE_KEY)), &ex);
	/* Other members and azp ours: allowed; azp someone else's: not. */
	claims_pass(with(with(good_claims(), "aud", json_pack("[s,s]",
	    "other", REST_KEY)), "azp", json_string(REST_KEY)), &ex);
	claims_fail(with(with(good_claims(), "aud", json_pack("[s,s]",
	    "other", REST_KEY)), "azp", json_string("other")), &ex, "azp");
	claims_fail(with(with(good_claims(), "aud", json_pack("[s,s]",
	    "other", REST_KEY)), "azp", json_integer(1)), &ex, "azp");
	/* No member ours. */
	claims_fail(with(good_claims(), "aud", json_pack("[s,s]", "other",
	    "another")), &ex, "saw \"other...\" and others");
	/* Every member must be a string. */
	claims_fail(with(good_claims(), "aud", json_pack("[s,i]", REST_KEY,
	    1)), &ex, "aud");
	claims_fail(with(good_claims(), "aud", json_array()), &ex, "aud");
	claims_fail(with(good_claims(), "aud", json_integer(5)), &ex, "aud");
	claims_fail(with(good_claims(), "aud", NULL), &ex, "aud");
}

static void
test_iss(void **state)
{
	struct token_oidc_expect	ex = expect();

	(void)state;
	claims_fail(with(good_claims(), "iss", json_string(
	    "https://evil.example")), &ex, "iss");
	claims_fail(with(good_claims(), "iss", json_string(ISSUER "/")), &ex,
	    "iss");
	claims_fail(with(good_claims(), "iss", json_string(
	    "HTTPS://kauth.kakao.com")), &ex, "iss");
	claims_fail(with(good_claims(), "iss", json_string("https://kauth")),
	    &ex, "iss");
	claims_fail(with(good_claims(), "iss", NULL), &ex, "iss");
	claims_fail(with(good_claims(), "iss", json_pack("[s]", ISSUER)), &ex,
	    "iss");
}

static void
test_exp(void **state)
{
	struct token_oidc_expect	ex = expect();

	(void)state;
	/* Expired beyond the skew, exactly at it, within it. */
	claims_fail(with(good_claims(), "exp", json_integer(NOW - SKEW - 1)),
	    &ex, "exp");
	claims_fail(with(with(good_claims(), "exp", json_integer(NOW - SKEW)),
	    "iat", json_integer(NOW - 3600)), &ex, "exp");
	claims_pass(with(with(good_claims(), "exp", json_integer(NOW - SKEW +
	    1)), "iat", json_integer(NOW - 3600)), &ex);
	claims_pass(with(with(good_claims(), "exp", json_integer(NOW - 60)),
	    "iat", json_integer(NOW - 3600)), &ex);
	ex.skew_s = 0;
	claims_fail(with(with(good_claims(), "exp", json_integer(NOW)), "iat",
	    json_integer(NOW - 3600)), &ex, "exp");
	ex = expect();
	claims_fail(with(good_claims(), "exp", json_integer(INT64_MIN)), &ex,
	    "over a day");
	claims_fail(with(good_claims(), "exp", NULL), &ex, "exp");
	claims_fail(with(good_claims(), "exp", json_string("1700003600")),
	    &ex, "exp");
	claims_fail(with(good_claims(), "exp", json_real(NOW + 3600.5)), &ex,
	    "exp");
}

static void
test_iat(void **state)
{
	struct token_oidc_expect	ex = expect();

	(void)state;
	claims_fail(with(good_claims(), "iat", json_integer(NOW + SKEW + 1)),
	    &ex, "iat");
	claims_pass(with(good_claims(), "iat", json_integer(NOW + SKEW)), &ex);
	claims_fail(with(good_claims(), "iat", NULL), &ex, "iat");
	claims_fail(with(good_claims(), "iat", json_string("1")), &ex, "iat");
	/* Issued after it expires. */
	claims_fail(with(with(good_claims(), "iat", json_integer(NOW + 100)),
	    "exp", json_integer(NOW + 50)), &ex, "iat");
}

static void
test_nbf(void **state)
{
	struct token_oidc_expect	ex = expect();

	(void)state;
	claims_fail(with(good_claims(), "nbf", json_integer(NOW + SKEW + 1)),
	    &ex, "nbf");
	claims_pass(with(good_claims(), "nbf", json_integer(NOW + SKEW)), &ex);
	claims_pass(with(good_claims(), "nbf", json_integer(NOW - 10)), &ex);
	claims_fail(with(good_claims(), "nbf", json_string("0")), &ex, "nbf");
	claims_fail(with(good_claims(), "nbf", json_null()), &ex, "nbf");
}

static void
test_nonce(void **state)
{
	struct token_oidc_expect	ex = expect();

	(void)state;
	ex.nonce = "n-0S6_WzA2Mj";
	claims_pass(with(good_claims(), "nonce", json_string("n-0S6_WzA2Mj")),
	    &ex);
	/* Sent, and the token has none, another, one of the same length, a
	 * prefix, a longer one, a number. */
	claims_fail(good_claims(), &ex, "nonce");
	claims_fail(with(good_claims(), "nonce", json_string("other")), &ex,
	    "nonce");
	claims_fail(with(good_claims(), "nonce", json_string("n-0S6_WzA2Mk")),
	    &ex, "nonce");
	claims_fail(with(good_claims(), "nonce", json_string("n-0S6")), &ex,
	    "nonce");
	claims_fail(with(good_claims(), "nonce", json_string("n-0S6_WzA2Mjx")),
	    &ex, "nonce");
	claims_fail(with(good_claims(), "nonce", json_integer(1)), &ex,
	    "nonce");
	/* Not sent, and the token has one: a replay without the nonce. */
	ex.nonce = NULL;
	claims_fail(with(good_claims(), "nonce", json_string("n-0S6_WzA2Mj")),
	    &ex, "nonce");
	ex.nonce = "";
	claims_fail(with(good_claims(), "nonce", json_string("n-0S6_WzA2Mj")),
	    &ex, "nonce");
	claims_pass(good_claims(), &ex);
}

static void
test_sub(void **state)
{
	static const char *const bad[] = {
		"abc", "-5", "0", "", "0123", "+5", "12 3", " 123", "1e5",
		"9223372036854775808",	/* INT64_MAX + 1 */
		"18446744073709551616",	/* 2^64 */
		"99999999999999999999", "123abc",
	};
	struct token_oidc_expect	ex = expect();
	struct token_id_claims		c;
	struct rig			r;
	char				*tok;
	size_t				i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		claims_fail(with(good_claims(), "sub", json_string(bad[i])),
		    &ex, "sub");
	claims_fail(with(good_claims(), "sub", json_integer(4321987654LL)),
	    &ex, "sub");
	claims_fail(with(good_claims(), "sub", NULL), &ex, "sub");
	/* A NUL inside: Jansson refuses \u0000 in the whole payload. */
	claims_fail(with(good_claims(), "sub", json_stringn("12\0003", 4)),
	    &ex, "malformed");
	tok = token_of(key_a, KID_A, with(good_claims(), "sub",
	    json_string("9223372036854775807")));
	rig_init(&r, jwks_a);
	verify_ok(&r, tok, &ex, &c);
	assert_true(c.sub == INT64_MAX);
	free(tok);
	rig_free(&r);
}

/* ---- header ---- */

/* tok is refused (for word) before the cache is asked for any key. */
static void
refused_early(const char *tok, const char *word)
{
	struct token_oidc_expect	ex = expect();
	struct rig			r;

	rig_init(&r, jwks_a);
	verify_fails(&r, tok, &ex, KL_BAD_ID_TOKEN, word);
	assert_int_equal(fake_calls(&r.fake), 0);
	rig_free(&r);
}

static void
test_alg_none(void **state)
{
	char	*claims = payload_json(good_claims());
	char	*in, *tok;

	(void)state;
	in = signing_input("{\"alg\":\"none\",\"kid\":\"" KID_A "\"}",
	    claims);
	assert_true(asprintf(&tok, "%s.", in) > 0);
	refused_early(tok, "malformed");	/* no signature part at all */
	free(tok);
	assert_true(asprintf(&tok, "%s.AAAA", in) > 0);
	refused_early(tok, "alg");
	free(tok);
	free(in);
	/* "none" signed properly with key A is still refused. */
	tok = raw_token("{\"alg\":\"none\",\"kid\":\"" KID_A "\"}", claims);
	refused_early(tok, "alg");
	free(tok);
	free(claims);
}

/* The confusion attack: HS256 keyed with the public key's PEM. */
static void
test_alg_hs256_public_key_as_secret(void **state)
{
	char	*claims = payload_json(good_claims());
	char	*pem, *tok;
	BIO	*bio = BIO_new(BIO_s_mem());
	long	 len;

	(void)state;
	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_PUBKEY(bio, key_a), 1);
	len = BIO_get_mem_data(bio, &pem);
	assert_true(len > 0);
	tok = sign_hs256(pem, (size_t)len,
	    "{\"alg\":\"HS256\",\"kid\":\"" KID_A "\",\"typ\":\"JWT\"}",
	    claims);
	refused_early(tok, "alg");
	free(tok);
	BIO_free(bio);
	free(claims);
}

static void
test_alg_other_spellings(void **state)
{
	static const char *const hdrs[] = {
		"{\"alg\":\"rs256\",\"kid\":\"" KID_A "\"}",
		"{\"alg\":\"Rs256\",\"kid\":\"" KID_A "\"}",
		"{\"alg\":\"RS256 \",\"kid\":\"" KID_A "\"}",
		"{\"alg\":\"RS512\",\"kid\":\"" KID_A "\"}",
		"{\"alg\":\"PS256\",\"kid\":\"" KID_A "\"}",
		"{\"alg\":\"ES256\",\"kid\":\"" KID_A "\"}",
		"{\"kid\":\"" KID_A "\"}",
		"{\"alg\":null,\"kid\":\"" KID_A "\"}",
		"{\"alg\":[\"RS256\"],\"kid\":\"" KID_A "\"}",
	};
	char	*claims = payload_json(good_claims()), *tok;
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		tok = raw_token(hdrs[i], claims);
		refused_early(tok, "alg");
		free(tok);
	}
	free(claims);
}

static void
test_header_rules(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct token_id_claims		 c;
	struct rig			 r;
	char				*claims = payload_json(good_claims());
	char				*tok;

	(void)state;
	rig_init(&r, jwks_a);
	/* kid missing, empty, a number, too long. */
	tok = raw_token("{\"alg\":\"RS256\"}", claims);
	verify_fails(&r, tok, &ex, KL_BAD_ID_TOKEN, "kid");
	free(tok);
	tok = raw_token("{\"alg\":\"RS256\",\"kid\":\"\"}", claims);
	verify_fails(&r, tok, &ex, KL_BAD_ID_TOKEN, "kid");
	free(tok);
	tok = raw_token("{\"alg\":\"RS256\",\"kid\":7}", claims);
	verify_fails(&r, tok, &ex, KL_BAD_ID_TOKEN, "kid");
	free(tok);
	/* crit refused; typ other than JWT refused; "jwt" accepted. */
	tok = raw_token("{\"alg\":\"RS256\",\"kid\":\"" KID_A "\","
	    "\"crit\":[\"exp\"],\"exp\":1}", claims);
	verify_fails(&r, tok, &ex, KL_BAD_ID_TOKEN, "crit");
	free(tok);
	tok = raw_token("{\"alg\":\"RS256\",\"kid\":\"" KID_A "\","
	    "\"typ\":\"JOSE\"}", claims);
	verify_fails(&r, tok, &ex, KL_BAD_ID_TOKEN, "typ");
	free(tok);
	assert_int_equal(fake_calls(&r.fake), 0);
	tok = raw_token("{\"alg\":\"RS256\",\"kid\":\"" KID_A "\","
	    "\"typ\":\"jwt\"}", claims);
	verify_ok(&r, tok, &ex, &c);
	free(tok);
	/* A duplicate member in the header. */
	tok = raw_token("{\"alg\":\"RS256\",\"alg\":\"RS256\",\"kid\":\""
	    KID_A "\"}", claims);
	verify_fails(&r, tok, &ex, KL_BAD_ID_TOKEN, "malformed");
	free(tok);
	free(claims);
	rig_free(&r);
}

static void
test_kid_unknown(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct rig			 r;
	char				*tok;

	(void)state;
	tok = token_of(key_b, KID_B, good_claims());
	rig_init(&r, jwks_a);
	verify_fails(&r, tok, &ex, KL_BAD_ID_TOKEN, "kid unknown");
	/* One fetch for the keys: the kid is unknown right after it. */
	assert_int_equal(fake_calls(&r.fake), 1);
	free(tok);
	/* Key B's token under key A's kid: the signature fails. */
	tok = token_of(key_b, KID_A, good_claims());
	verify_fails(&r, tok, &ex, KL_BAD_ID_TOKEN, "signature");
	free(tok);
	rig_free(&r);
}

/* ---- structure ---- */

/* Changes one character of part (0..2) of tok at offset off to ch. */
static char *
edit(const char *tok, int part, size_t off, char ch)
{
	char	*t = strdup(tok), *p = t;
	int	 i;

	assert_non_null(t);
	for (i = 0; i < part; i++)
		p = strchr(p, '.') + 1;
	p[off] = ch;
	return t;
}

static void
test_tampered(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct rig			 r;
	char				*tok = good_token(), *bad, *h, *p;
	char				*dot;
	json_t				*claims;

	(void)state;
	rig_init(&r, jwks_a);
	/* One byte of the payload changed (the sub's last digit), the
	 * signature kept. */
	claims = good_claims();
	h = header_for(KID_A);
	p = payload_json(with(claims, "sub", json_string("4321987655")));
	bad = signing_input(h, p);
	dot = strrchr(tok, '.');
	bad = realloc(bad, strlen(bad) + strlen(dot) + 1);
	assert_non_null(bad);
	strcat(bad, dot);
	verify_fails(&r, bad, &ex, KL_BAD_ID_TOKEN, "signature");
	free(bad);
	free(h);
	free(p);
	/* One character of the signature changed (still base64url). */
	bad = edit(tok, 2, 10, dot[11] == 'A' ? 'B' : 'A');
	verify_fails(&r, bad, &ex, KL_BAD_ID_TOKEN, "signature");
	free(bad);
	/* The signature cut short by 4 characters (3 bytes). */
	bad = strdup(tok);
	bad[strlen(bad) - 4] = '\0';
	verify_fails(&r, bad, &ex, KL_BAD_ID_TOKEN, "signature");
	free(bad);
	free(tok);
	rig_free(&r);
}

static void
test_bad_base64(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct rig			 r;
	char				*tok = good_token(), *bad;
	size_t				 plen;
	const char			*pay;

	(void)state;
	rig_init(&r, jwks_a);
	/* Standard base64's characters, padding, a blank, non-ASCII. */
	bad = edit(tok, 0, 3, '+');
	verify_fails(&r, bad, &ex, KL_BAD_ID_TOKEN, "malformed");
	free(bad);
	bad = edit(tok, 1, 5, '/');
	verify_fails(&r, bad, &ex, KL_BAD_ID_TOKEN, "malformed");
	free(bad);
	bad = edit(tok, 2, 5, '=');
	verify_fails(&r, bad, &ex, KL_BAD_ID_TOKEN, "malformed");
	free(bad);
	bad = edit(tok, 1, 0, ' ');
	verify_fails(&r, bad, &ex, KL_BAD_ID_TOKEN, "malformed");
	free(bad);
	bad = edit(tok, 2, 0, '\xc3');
	verify_fails(&r, bad, &ex, KL_BAD_ID_TOKEN, "malformed");
	free(bad);
	/* Non-canonical trailing bits: the payload's last character + 1 when
	 * it leaves bits over (length 2 or 3 mod 4). */
	pay = strchr(tok, '.') + 1;
	plen = (size_t)(strchr(pay, '.') - pay);
	if (plen % 4 != 0) {
		bad = edit(tok, 1, plen - 1, pay[plen - 1] == 'A' ? 'B' :
		    (char)(pay[plen - 1] ^ 1));
		verify_fails(&r, bad, &ex, KL_BAD_ID_TOKEN, "");
		free(bad);
	}
	assert_int_equal(fake_calls(&r.fake), 0);
	free(tok);
	rig_free(&r);
}

/* Trailing bits exactly: header {"alg":"RS256","kid":"x"} plus a
 * character the decoder must refuse, built by hand. */
static void
test_b64url_decoder(void **state)
{
	unsigned char	out[16];
	size_t		n;

	(void)state;
	assert_int_equal(token_b64url_decode("QQ", 2, out, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0], 'A');
	assert_int_equal(token_b64url_decode("QR", 2, out, &n), -1);
	assert_int_equal(token_b64url_decode("QQ==", 4, out, &n), -1);
	assert_int_equal(token_b64url_decode("Q", 1, out, &n), -1);
	assert_int_equal(token_b64url_decode("QUI", 3, out, &n), 0);
	assert_int_equal(token_b64url_decode("QUJ", 3, out, &n), -1);
	assert_int_equal(token_b64url_decode("-_-_", 4, out, &n), 0);
	assert_int_equal(token_b64url_decode("+/+/", 4, out, &n), -1);
}

static void
test_parts(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct rig			 r;
	char				*tok = good_token(), *bad;
	char				 big[MAX_ID_TOKEN + 2];

	(void)state;
	rig_init(&r, jwks_a);
	assert_true(asprintf(&bad, "%s.AAAA", tok) > 0);	/* 4 parts */
	verify_fails(&r, bad, &ex, KL_BAD_ID_TOKEN, "malformed");
	free(bad);
	bad = strdup(tok);
	*strrchr(bad, '.') = '\0';				/* 2 parts */
	verify_fails(&r, bad, &ex, KL_BAD_ID_TOKEN, "malformed");
	free(bad);
	assert_true(asprintf(&bad, "%s.", tok) > 0);		/* 4, last empty */
	verify_fails(&r, bad, &ex, KL_BAD_ID_TOKEN, "malformed");
	free(bad);
	assert_true(asprintf(&bad, ".%s", tok) > 0);
	verify_fails(&r, bad, &ex, KL_BAD_ID_TOKEN, "malformed");
	free(bad);
	verify_fails(&r, "", &ex, KL_BAD_ID_TOKEN, "malformed");
	verify_fails(&r, "..", &ex, KL_BAD_ID_TOKEN, "malformed");
	verify_fails(&r, "a.b.c", &ex, KL_BAD_ID_TOKEN, "malformed");
	verify_fails(&r, NULL, &ex, KL_BAD_ID_TOKEN, "malformed");
	/* Payload not JSON, or JSON but not an object. */
	bad = raw_token("{\"alg\":\"RS256\",\"kid\":\"" KID_A "\"}", "[1]");
	verify_fails(&r, bad, &ex, KL_BAD_ID_TOKEN, "malformed");
	free(bad);
	bad = raw_token("{\"alg\":\"RS256\",\"kid\":\"" KID_A "\"}", "{\"a\"");
	verify_fails(&r, bad, &ex, KL_BAD_ID_TOKEN, "malformed");
	free(bad);
	bad = raw_token("[\"RS256\"]", "{}");
	verify_fails(&r, bad, &ex, KL_BAD_ID_TOKEN, "malformed");
	free(bad);
	/* Over MAX_ID_TOKEN. */
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[10] = big[20] = '.';
	verify_fails(&r, big, &ex, KL_BAD_ID_TOKEN, "malformed");
	assert_int_equal(fake_calls(&r.fake), 0);
	free(tok);
	rig_free(&r);
}

static void
test_bad_expectations(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct token_id_claims		 c;
	struct kl_error			 err;
	struct rig			 r;
	char				*tok = good_token();

	(void)state;
	rig_init(&r, jwks_a);
	ex.n_audiences = 0;
	assert_int_equal(token_id_token_verify(r.cache, tok, &ex, &c, &err),
	    -1);
	assert_int_equal(err.status, KL_INTERNAL);
	ex = expect();
	ex.skew_s = MAX_OIDC_CLOCK_SKEW + 1;
	assert_int_equal(token_id_token_verify(r.cache, tok, &ex, &c, &err),
	    -1);
	assert_int_equal(err.status, KL_INTERNAL);
	ex = expect();
	assert_int_equal(token_id_token_verify(NULL, tok, &ex, &c, &err), -1);
	assert_int_equal(err.status, KL_NOT_CONFIGURED);
	free(tok);
	rig_free(&r);
}

/* ---- key set ---- */

static int
parse_count(const char *doc, struct kl_error *err)
{
	struct token_jwks	*ks;
	int			 n;

	if (token_jwks_parse(doc, strlen(doc), &ks, err) == -1) {
		assert_null(ks);
		return -1;
	}
	n = token_jwks_count(ks);
	token_jwks_free(ks);
	return n;
}

static void
test_jwks_small_key_skipped(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct token_id_claims		 c;
	struct kl_error			 err;
	struct rig			 r;
	char				*small = jwk_of(key_small, "small", "");
	char				*good = jwk_of(key_a, KID_A, "");
	char				*doc = jwks_of(small, good);
	char				*only = jwks_of(small, NULL);
	char				*tok;

	(void)state;
	assert_int_equal(parse_count(doc, &err), 1);
	assert_int_equal(parse_count(only, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_BAD_RESPONSE);
	/* A token signed by the 1024-bit key finds no key. */
	rig_init(&r, doc);
	tok = token_of(key_small, "small", good_claims());
	verify_fails(&r, tok, &ex, KL_BAD_ID_TOKEN, "kid unknown");
	free(tok);
	tok = good_token();
	verify_ok(&r, tok, &ex, &c);	/* the 2048-bit key beside it works */
	free(tok);
	rig_free(&r);
	free(small);
	free(good);
	free(doc);
	free(only);
}

static void
test_jwks_even_e_refused(void **state)
{
	struct kl_error	 err;
	char		*n = rsa_param(key_a, OSSL_PKEY_PARAM_RSA_N), *doc;

	(void)state;
	/* e = 65536 and e = 2: even. */
	assert_true(asprintf(&doc, "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k\","
	    "\"n\":\"%s\",\"e\":\"AQAA\"}]}", n) > 0);
	assert_int_equal(parse_count(doc, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_BAD_RESPONSE);
	free(doc);
	assert_true(asprintf(&doc, "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k\","
	    "\"n\":\"%s\",\"e\":\"Ag\"}]}", n) > 0);
	assert_int_equal(parse_count(doc, &err), -1);
	free(doc);
	/* e = 65537 spelled with a leading zero octet: accepted. */
	assert_true(asprintf(&doc, "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k\","
	    "\"n\":\"%s\",\"e\":\"AAEAAQ\"}]}", n) > 0);
	assert_int_equal(parse_count(doc, &err), 1);
	free(doc);
	free(n);
}

static void
test_jwks_keeps_at_most_max(void **state)
{
	struct token_jwks	*ks;
	struct kl_error		 err;
	char			*keys[JWKS_MAX_KEYS + 3], kid[16], *doc, *p;
	size_t			 len = 16;
	int			 i;

	(void)state;
	for (i = 0; i < JWKS_MAX_KEYS + 3; i++) {
		snprintf(kid, sizeof(kid), "k%d", i);
		keys[i] = jwk_of(key_a, kid, "");
		len += strlen(keys[i]) + 1;
	}
	doc = p = malloc(len);
	assert_non_null(doc);
	p += sprintf(p, "{\"keys\":[");
	for (i = 0; i < JWKS_MAX_KEYS + 3; i++) {
		p += sprintf(p, "%s%s", i ? "," : "", keys[i]);
		free(keys[i]);
	}
	strcpy(p, "]}");
	assert_int_equal(token_jwks_parse(doc, strlen(doc), &ks, &err), 0);
	assert_int_equal(token_jwks_count(ks), JWKS_MAX_KEYS);
	assert_true(token_jwks_has(ks, "k0"));
	assert_true(token_jwks_has(ks, "k15"));
	assert_false(token_jwks_has(ks, "k16"));
	token_jwks_free(ks);
	free(doc);
}

/* The data directory: tests run from the repository root, but a run from
 * build/unit/ finds it too. */
static const char *
data_dir(void)
{
	static const char *const ups[] = { "", "../", "../../" };
	static char		 dir[256];
	struct stat		 st;
	size_t			 i;

	for (i = 0; i < sizeof(ups) / sizeof(ups[0]); i++) {
		snprintf(dir, sizeof(dir), "%s%s", ups[i], DATA_DIR);
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			return dir;
	}
	fail_msg("cannot find %s from the current directory", DATA_DIR);
	return NULL;
}

static char *
read_case(const char *name, size_t *len)
{
	char	 path[512], *buf;
	FILE	*fp;
	long	 n;

	snprintf(path, sizeof(path), "%s/%s", data_dir(), name);
	assert_non_null(fp = fopen(path, "rb"));
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	rewind(fp);
	assert_non_null(buf = malloc((size_t)n + 1));
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

/* Every jwks-<N>-* gives N keys, every jwks-bad-* is refused; the cases
 * named here must exist (a lost file fails). */
static void
test_jwks_data_cases(void **state)
{
	static const char *const required[] = {
		"jwks-2-kakao-shape.json", "jwks-1-skips-1024-bits.json",
		"jwks-1-skips-even-e.json", "jwks-1-8192-bits.json",
		"jwks-16-of-17.json", "jwks-bad-only-1024-bits.json",
		"jwks-bad-even-e.json", "jwks-bad-8200-bits.json",
		"jwks-bad-2047-bits.json", "jwks-bad-n-padded.json",
		"jwks-bad-duplicate-member.json", "jwks-bad-empty.txt",
	};
	struct token_jwks	*ks;
	struct kl_error		 err;
	struct dirent		*e;
	DIR			*d;
	char			*doc;
	size_t			 len, i;
	int			 want, seen = 0;

	(void)state;
	assert_non_null(d = opendir(data_dir()));
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "jwks-", 5) != 0)
			continue;
		doc = read_case(e->d_name, &len);
		want = strncmp(e->d_name, "jwks-bad-", 9) == 0 ? -1 :
		    atoi(e->d_name + 5);
		if (token_jwks_parse(doc, len, &ks, &err) == 0) {
			if (want != token_jwks_count(ks))
				fail_msg("%s: %d keys, want %d", e->d_name,
				    token_jwks_count(ks), want);
			token_jwks_free(ks);
		} else if (want != -1)
			fail_msg("%s refused: %s", e->d_name, err.detail);
		else if (err.status != KL_KAKAO_BAD_RESPONSE)
			fail_msg("%s: status %d", e->d_name, err.status);
		free(doc);
		seen++;
	}
	closedir(d);
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		doc = read_case(required[i], &len);	/* fails if absent */
		free(doc);
	}
	assert_true(seen >= 40);
}

/* ---- the cache ---- */

static void
test_cache_fetches_once(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct token_id_claims		 c;
	struct rig			 r;
	char				*tok = good_token();
	int				 i;

	(void)state;
	rig_init(&r, jwks_a);
	for (i = 0; i < 50; i++) {
		verify_ok(&r, tok, &ex, &c);
		r.clock += 100;		/* time passing alone refetches nothing */
	}
	assert_int_equal(fake_calls(&r.fake), 1);
	free(tok);
	rig_free(&r);
}

static void
test_cache_unknown_kid_rate_limited(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct token_id_claims		 c;
	struct rig			 r;
	char				*good = good_token();
	char				*unknown;
	int				 i;

	(void)state;
	unknown = token_of(key_b, "kid-nobody-has", good_claims());
	rig_init(&r, jwks_a);
	verify_ok(&r, good, &ex, &c);
	assert_int_equal(fake_calls(&r.fake), 1);
	/* Right after the first fetch: no refetch (it counts too). */
	verify_fails(&r, unknown, &ex, KL_BAD_ID_TOKEN, "kid unknown");
	assert_int_equal(fake_calls(&r.fake), 1);
	/* JWKS_REFETCH_S later, the first unknown kid refetches once ... */
	r.clock = 1000 + JWKS_REFETCH_S;
	verify_fails(&r, unknown, &ex, KL_BAD_ID_TOKEN, "kid unknown");
	assert_int_equal(fake_calls(&r.fake), 2);
	/* ... then none for JWKS_REFETCH_S, however many come. */
	for (i = 0; i < 20; i++) {
		verify_fails(&r, unknown, &ex, KL_BAD_ID_TOKEN, "kid unknown");
		r.clock += (JWKS_REFETCH_S - 1) / 20;
	}
	r.clock = 1000 + 2 * JWKS_REFETCH_S - 1;
	verify_fails(&r, unknown, &ex, KL_BAD_ID_TOKEN, "kid unknown");
	assert_int_equal(fake_calls(&r.fake), 2);
	verify_ok(&r, good, &ex, &c);
	/* Once the interval has passed: one more. */
	r.clock = 1000 + 2 * JWKS_REFETCH_S;
	verify_fails(&r, unknown, &ex, KL_BAD_ID_TOKEN, "kid unknown");
	verify_fails(&r, unknown, &ex, KL_BAD_ID_TOKEN, "kid unknown");
	assert_int_equal(fake_calls(&r.fake), 3);
	free(good);
	free(unknown);
	rig_free(&r);
}

static void
test_cache_failed_refetch_keeps_keys(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct token_id_claims		 c;
	struct rig			 r;
	char				*good = good_token();
	char				*unknown = token_of(key_b, KID_B,
					    good_claims());

	(void)state;
	rig_init(&r, jwks_a);
	verify_ok(&r, good, &ex, &c);
	r.fake.fail = KL_KAKAO_UNAVAILABLE;
	r.clock += JWKS_REFETCH_S;
	/* The refetch fails: the unknown kid is still unknown (a bad
	 * token, not Kakao's trouble), the known one still verifies. */
	verify_fails(&r, unknown, &ex, KL_BAD_ID_TOKEN, "kid unknown");
	assert_int_equal(fake_calls(&r.fake), 2);
	verify_ok(&r, good, &ex, &c);
	/* An unparsable document keeps them too. */
	r.fake.fail = KL_OK;
	r.fake.doc = "{\"keys\":[]}";
	r.clock += JWKS_REFETCH_S;
	verify_fails(&r, unknown, &ex, KL_BAD_ID_TOKEN, "kid unknown");
	assert_int_equal(fake_calls(&r.fake), 3);
	verify_ok(&r, good, &ex, &c);
	assert_int_equal(fake_calls(&r.fake), 3);
	free(good);
	free(unknown);
	rig_free(&r);
}

static void
test_cache_no_keys_fetch_fails(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct token_id_claims		 c;
	struct rig			 r;
	char				*good = good_token();

	(void)state;
	rig_init(&r, jwks_a);
	r.fake.fail = KL_KAKAO_UNAVAILABLE;
	/* The fetch's status, not INVALID_ID_TOKEN: the token may be good. */
	verify_fails(&r, good, &ex, KL_KAKAO_UNAVAILABLE, "jwks");
	assert_int_equal(fake_calls(&r.fake), 1);
	/* Within JWKS_RETRY_EMPTY_S no new fetch, the same answer. */
	r.fake.fail = KL_KAKAO_TIMEOUT;
	r.clock += JWKS_RETRY_EMPTY_S - 1;
	verify_fails(&r, good, &ex, KL_KAKAO_UNAVAILABLE, "jwks");
	assert_int_equal(fake_calls(&r.fake), 1);
	r.clock += 1;
	verify_fails(&r, good, &ex, KL_KAKAO_TIMEOUT, "jwks");
	assert_int_equal(fake_calls(&r.fake), 2);
	/* A document that does not parse: Kakao's answer was unusable. */
	r.fake.fail = KL_OK;
	r.fake.doc = "<html>";
	r.clock += JWKS_RETRY_EMPTY_S;
	verify_fails(&r, good, &ex, KL_KAKAO_BAD_RESPONSE, "jwks");
	/* Kakao back: the next retry gets the keys. */
	r.fake.doc = jwks_a;
	r.clock += JWKS_RETRY_EMPTY_S;
	verify_ok(&r, good, &ex, &c);
	assert_int_equal(fake_calls(&r.fake), 4);
	free(good);
	rig_free(&r);
}

static void
test_cache_key_rotation(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct token_id_claims		 c;
	struct rig			 r;
	char				*old = good_token();
	char				*rotated = token_of(key_b, KID_B,
					    good_claims());
	char				*other = token_of(key_b, "kid-c",
					    good_claims());

	(void)state;
	rig_init(&r, jwks_a);
	verify_ok(&r, old, &ex, &c);
	/* Kakao publishes B beside A: within JWKS_REFETCH_S of the first
	 * fetch B is unknown, after it one refetch finds it. */
	r.fake.doc = jwks_ab;
	r.clock += JWKS_REFETCH_S - 1;
	verify_fails(&r, rotated, &ex, KL_BAD_ID_TOKEN, "kid unknown");
	assert_int_equal(fake_calls(&r.fake), 1);
	r.clock += 1;
	verify_ok(&r, rotated, &ex, &c);
	assert_int_equal(fake_calls(&r.fake), 2);
	verify_ok(&r, old, &ex, &c);
	verify_ok(&r, rotated, &ex, &c);
	assert_int_equal(fake_calls(&r.fake), 2);
	/* Then B alone: A's tokens verify until a refetch drops A. */
	r.fake.doc = jwks_b;
	r.clock += JWKS_REFETCH_S;
	verify_ok(&r, old, &ex, &c);	/* a known kid fetches nothing */
	assert_int_equal(token_jwks_cache_prefetch(r.cache, NULL), 0);
	assert_int_equal(fake_calls(&r.fake), 2);	/* nor does prefetch */
	verify_fails(&r, other, &ex, KL_BAD_ID_TOKEN, "kid unknown");
	assert_int_equal(fake_calls(&r.fake), 3);
	verify_fails(&r, old, &ex, KL_BAD_ID_TOKEN, "kid unknown");
	verify_ok(&r, rotated, &ex, &c);
	assert_int_equal(fake_calls(&r.fake), 3);
	free(other);
	free(old);
	free(rotated);
	rig_free(&r);
}

static void
test_cache_prefetch(void **state)
{
	struct token_jwks	*ks;
	struct kl_error		 err;
	struct rig		 r;

	(void)state;
	rig_init(&r, jwks_ab);
	assert_null(token_jwks_cache_keys(r.cache));
	assert_int_equal(token_jwks_cache_prefetch(r.cache, &err), 0);
	assert_non_null(ks = token_jwks_cache_keys(r.cache));
	assert_int_equal(token_jwks_count(ks), 2);
	token_jwks_free(ks);
	assert_int_equal(token_jwks_cache_prefetch(r.cache, &err), 0);
	assert_int_equal(fake_calls(&r.fake), 1);
	rig_free(&r);
	rig_init(&r, jwks_ab);
	r.fake.fail = KL_KAKAO_TIMEOUT;
	assert_int_equal(token_jwks_cache_prefetch(r.cache, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_TIMEOUT);
	rig_free(&r);
}

/* A reference taken from the cache outlives a rotation. */
static void
test_cache_reference_outlives_swap(void **state)
{
	struct token_oidc_expect	 ex = expect();
	struct token_id_claims		 c;
	struct token_jwks		*held;
	struct rig			 r;
	char				*rotated = token_of(key_b, KID_B,
					    good_claims());

	(void)state;
	rig_init(&r, jwks_a);
	assert_int_equal(token_jwks_cache_prefetch(r.cache, NULL), 0);
	held = token_jwks_cache_keys(r.cache);
	r.fake.doc = jwks_b;
	r.clock += JWKS_REFETCH_S;
	verify_ok(&r, rotated, &ex, &c);	/* swaps A out */
	assert_true(token_jwks_has(held, KID_A));
	assert_false(token_jwks_has(held, KID_B));
	token_jwks_free(held);
	free(rotated);
	rig_free(&r);
}

/* ---- threads ---- */

struct worker {
	struct rig	*rig;
	const char	*tok;
	int		 ok;
};

static pthread_barrier_t	barrier;

static void *
worker_run(void *arg)
{
	struct token_oidc_expect	ex = expect();
	struct token_id_claims		c;
	struct kl_error			err;
	struct worker			*w = arg;
	int				i;

	pthread_barrier_wait(&barrier);
	for (i = 0; i < PER_THREAD; i++)
		if (token_id_token_verify(w->rig->cache, w->tok, &ex, &c,
		    &err) == 0 && c.sub == 4321987654LL)
			w->ok++;
	return NULL;
}

/* 16 threads on an empty cache at once: one fetch (single flight, the
 * others wait for it), every verify passes. Half use key B's kid. */
static void
test_threads(void **state)
{
	pthread_t	 th[THREADS];
	struct worker	 w[THREADS];
	struct rig	 r;
	char		*ta = good_token();
	char		*tb = token_of(key_b, KID_B, good_claims());
	int		 i;

	(void)state;
	rig_init(&r, jwks_ab);
	r.fake.delay_us = 50000;
	assert_int_equal(pthread_barrier_init(&barrier, NULL, THREADS), 0);
	for (i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ &r, i % 2 ? tb : ta, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, worker_run,
		    &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].ok, PER_THREAD);
	}
	assert_int_equal(fake_calls(&r.fake), 1);
	pthread_barrier_destroy(&barrier);
	free(ta);
	free(tb);
	rig_free(&r);
}

/* Swaps under readers: threads verify key A's tokens while others send
 * unknown kids that make the cache replace its set whenever the clock
 * (moved by this thread) allows; ASan sees any use of a freed set. */
struct swapper {
	struct token_jwks_cache	*cache;
	const char		*tok;
	atomic_bool		*stop;
	int			 ok, runs;
};

static atomic_llong	swap_clock;

static long long
swap_clock_now(void *arg)
{
	(void)arg;
	return atomic_load(&swap_clock);
}

static void *
swapper_run(void *arg)
{
	struct token_oidc_expect	ex = expect();
	struct token_id_claims		c;
	struct kl_error			err;
	struct swapper			*w = arg;

	while (!atomic_load(w->stop)) {
		if (token_id_token_verify(w->cache, w->tok, &ex, &c, &err) == 0)
			w->ok++;
		w->runs++;
	}
	return NULL;
}

static void
test_threads_swap(void **state)
{
	pthread_t	 th[THREADS];
	struct swapper	 w[THREADS];
	struct rig	 r;
	atomic_bool	 stop = false;
	char		*ta = good_token();
	char		*tc = token_of(key_b, "kid-c", good_claims());
	int		 i, calls;

	(void)state;
	rig_init(&r, jwks_ab);
	atomic_store(&swap_clock, 1000);
	token_jwks_cache_set_clock(r.cache, swap_clock_now, NULL);
	assert_int_equal(token_jwks_cache_prefetch(r.cache, NULL), 0);
	for (i = 0; i < THREADS; i++) {
		w[i] = (struct swapper){ r.cache, i % 2 ? tc : ta, &stop, 0,
		    0 };
		assert_int_equal(pthread_create(&th[i], NULL, swapper_run,
		    &w[i]), 0);
	}
	for (i = 0; i < 40; i++) {
		pthread_mutex_lock(&r.fake.lock);
		r.fake.doc = i % 2 ? jwks_ab : jwks_a;
		pthread_mutex_unlock(&r.fake.lock);
		atomic_fetch_add(&swap_clock, JWKS_REFETCH_S);
		usleep(5000);
	}
	atomic_store(&stop, true);
	for (i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_true(w[i].runs > 0);
		/* A's tokens always verify; kid-c's never. */
		assert_int_equal(w[i].ok, i % 2 ? 0 : w[i].runs);
	}
	/* At most one fetch per interval, and the swaps did happen. */
	calls = fake_calls(&r.fake);
	assert_true(calls >= 10 && calls <= 41);
	free(ta);
	free(tc);
	rig_free(&r);
}

/* ---- token_tag ---- */

static void
tag_ctx(struct token_ctx *ctx, const char *secret)
{
	memset(ctx, 0, sizeof(*ctx));
	memcpy(ctx->keys[0].key, secret, strlen(secret));
	ctx->keys[0].keylen = strlen(secret);
	ctx->nkeys = 1;
}

static void
test_tag(void **state)
{
	static const char	 sa[] = "0123456789abcdef0123456789abcdef-A";
	struct token_ctx	 a, b;
	struct kl_error		 err;
	unsigned char		 t1[STORE_TAG_LEN], t2[STORE_TAG_LEN];
	unsigned char		 key[32], want[32];
	unsigned int		 n;

	(void)state;
	tag_ctx(&a, sa);
	tag_ctx(&b, "0123456789abcdef0123456789abcdef-B");
	assert_int_equal(token_tag(&a, "code", "xyz", 3, t1, &err), 0);
	assert_int_equal(token_tag(&a, "code", "xyz", 3, t2, &err), 0);
	assert_memory_equal(t1, t2, sizeof(t1));
	/* The construction, computed here. */
	assert_non_null(HMAC(EVP_sha256(), sa, (int)strlen(sa),
	    (const unsigned char *)"kakao-login tag code", 20, key, &n));
	assert_non_null(HMAC(EVP_sha256(), key, 32,
	    (const unsigned char *)"xyz", 3, want, &n));
	assert_memory_equal(t1, want, sizeof(want));
	/* Purpose, data and secret each change it. */
	assert_int_equal(token_tag(&a, "verifier", "xyz", 3, t2, &err), 0);
	assert_memory_not_equal(t1, t2, sizeof(t1));
	assert_int_equal(token_tag(&a, "code", "xyZ", 3, t2, &err), 0);
	assert_memory_not_equal(t1, t2, sizeof(t1));
	assert_int_equal(token_tag(&b, "code", "xyz", 3, t2, &err), 0);
	assert_memory_not_equal(t1, t2, sizeof(t1));
	/* Not the plain HMAC under the secret. */
	assert_non_null(HMAC(EVP_sha256(), sa, (int)strlen(sa),
	    (const unsigned char *)"xyz", 3, want, &n));
	assert_memory_not_equal(t1, want, sizeof(want));
	assert_int_equal(token_tag(&a, "code", NULL, 0, t2, &err), 0);
	assert_int_equal(token_tag(&a, "", "x", 1, t2, &err), -1);
	assert_int_equal(err.status, KL_INTERNAL);
	assert_int_equal(token_tag(&a, NULL, "x", 1, t2, &err), -1);
	/* 47 bytes of purpose fit, 48 do not. */
	assert_int_equal(token_tag(&a, "abcdefghijabcdefghijabcdefghijabcdefghij"
	    "abcdefg", "x", 1, t2, &err), 0);
	assert_int_equal(token_tag(&a, "abcdefghijabcdefghijabcdefghijabcdefghij"
	    "abcdefgh", "x", 1, t2, &err), -1);
	b.keys[0].keylen = 0;
	assert_int_equal(token_tag(&b, "code", "x", 1, t2, &err), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_token),
		cmocka_unit_test(test_minimal_token),
		cmocka_unit_test(test_profile_claims_filtered),
		cmocka_unit_test(test_aud_wrong),
		cmocka_unit_test(test_aud_native_and_js_keys),
		cmocka_unit_test(test_aud_array),
		cmocka_unit_test(test_iss),
		cmocka_unit_test(test_exp),
		cmocka_unit_test(test_iat),
		cmocka_unit_test(test_nbf),
		cmocka_unit_test(test_nonce),
		cmocka_unit_test(test_sub),
		cmocka_unit_test(test_alg_none),
		cmocka_unit_test(test_alg_hs256_public_key_as_secret),
		cmocka_unit_test(test_alg_other_spellings),
		cmocka_unit_test(test_header_rules),
		cmocka_unit_test(test_kid_unknown),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_bad_base64),
		cmocka_unit_test(test_b64url_decoder),
		cmocka_unit_test(test_parts),
		cmocka_unit_test(test_bad_expectations),
		cmocka_unit_test(test_jwks_small_key_skipped),
		cmocka_unit_test(test_jwks_even_e_refused),
		cmocka_unit_test(test_jwks_keeps_at_most_max),
		cmocka_unit_test(test_jwks_data_cases),
		cmocka_unit_test(test_cache_fetches_once),
		cmocka_unit_test(test_cache_unknown_kid_rate_limited),
		cmocka_unit_test(test_cache_failed_refetch_keeps_keys),
		cmocka_unit_test(test_cache_no_keys_fetch_fails),
		cmocka_unit_test(test_cache_key_rotation),
		cmocka_unit_test(test_cache_prefetch),
		cmocka_unit_test(test_cache_reference_outlives_swap),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_threads_swap),
		cmocka_unit_test(test_tag),
	};

	return cmocka_run_group_tests_name("token_oidc", tests, setup,
	    teardown);
}
