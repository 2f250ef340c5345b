/*
 * token_jwks.c: Kakao's JWKS key set (the RSA keys id_tokens are signed
 * with) and the per-process cache of it.
 *
 * Owns the parsing of a JWKS document into OpenSSL public keys (built from
 * n and e with OSSL_PARAM_BLD and EVP_PKEY_fromdata: libjwt 1.10 has no
 * JWKS), the RS256 signature check, and when to fetch the document again.
 * It never fetches by itself: the fetch function main gives the cache does
 * (through the kakao layer), so this file knows no curl, no HTTP and no
 * store.
 * Thread-safety: a struct token_jwks is immutable once parsed and freed
 * when its last reference goes (an atomic count), so a verify keeps using
 * the keys it took even while a refetch replaces them. The cache's pointer
 * to the current set is swapped under a short mutex; a second mutex makes
 * fetches single flight, and only callers with an unknown kid take it.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "kl_clock.h"
#include "token_oidc.h"

/* Decoded n: the modulus, with one leading zero octet tolerated. */
#define JWK_N_MAX	(JWK_MAX_RSA_BITS / 8 + 1)
/* Decoded e bytes read, leading zeros included. */
#define JWK_E_MAX	8

struct token_jwk {
	char		 kid[MAX_JWK_KID + 1];
	EVP_PKEY	*pkey;
};

struct token_jwks {
	atomic_int		refs;
	int			n;
	struct token_jwk	keys[JWKS_MAX_KEYS];
};

/* lock guards keys, gen, attempted, last_attempt and last_err;
 * fetch_lock is held for a whole fetch. gen is bumped when keys change,
 * last_attempt is in clock seconds, last_err the last failed fetch's. */
struct token_jwks_cache {
	pthread_mutex_t		 lock;
	pthread_mutex_t		 fetch_lock;
	struct token_jwks	*keys;		/* NULL: none yet */
	unsigned long		 gen;
	bool			 attempted;
	long long		 last_attempt;
	struct kl_error		 last_err;
	token_jwks_fetch_fn	 fetch;
	void			*fetch_arg;
	token_clock_fn		 clock;
	void			*clock_arg;
};

/* ---- key set ---- */

static struct token_jwks *
jwks_ref(struct token_jwks *ks)
{
	if (ks != NULL)
		atomic_fetch_add(&ks->refs, 1);
	return ks;
}

void
token_jwks_free(struct token_jwks *ks)
{
	int	i;

	if (ks == NULL || atomic_fetch_sub(&ks->refs, 1) != 1)
		return;
	for (i = 0; i < ks->n; i++)
		EVP_PKEY_free(ks->keys[i].pkey);
	free(ks);
}

int
token_jwks_count(const struct token_jwks *ks)
{
	return ks == NULL ? 0 : ks->n;
}

static const struct token_jwk *
jwks_find(const struct token_jwks *ks, const char *kid)
{
	int	i;

	for (i = 0; ks != NULL && i < ks->n; i++)
		if (strcmp(ks->keys[i].kid, kid) == 0)
			return &ks->keys[i];
	return NULL;
}

bool
token_jwks_has(const struct token_jwks *ks, const char *kid)
{
	return jwks_find(ks, kid) != NULL;
}

/* A string member without an embedded NUL, or NULL. */
static const char *
jwk_string(json_t *obj, const char *name, size_t *len)
{
	json_t	*v = json_object_get(obj, name);

	if (!json_is_string(v) ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	*len = json_string_length(v);
	return json_string_value(v);
}

/* Decodes the base64url member name into out (room for max bytes). */
static int
jwk_bytes(json_t *jwk, const char *name, unsigned char *out, size_t max,
    size_t *outlen)
{
	const char	*s;
	size_t		 len;

	if ((s = jwk_string(jwk, name, &len)) == NULL || len == 0 ||
	    len > max * 4 / 3 + 2 || len * 3 / 4 > max)
		return -1;
	return token_b64url_decode(s, len, out, outlen);
}

/* Bits of the big-endian number in b[0..len), leading zeros skipped. */
static size_t
jwk_bits(const unsigned char *b, size_t len)
{
	size_t		i = 0;
	unsigned	c;
	size_t		bits;

	while (i < len && b[i] == 0)
		i++;
	if (i == len)
		return 0;
	for (c = b[i], bits = 0; c != 0; c >>= 1)
		bits++;
	return (len - i - 1) * 8 + bits;
}

/* The RSA public key (n, e), or NULL. */
static EVP_PKEY *
jwk_rsa_key(const unsigned char *n, size_t nlen, uint32_t e)
{
	OSSL_PARAM_BLD	*bld = NULL;
	OSSL_PARAM	*params = NULL;
	BIGNUM		*bn = NULL, *be = NULL;
	EVP_PKEY_CTX	*pctx = NULL;
	EVP_PKEY	*pkey = NULL;

	if ((bn = BN_bin2bn(n, (int)nlen, NULL)) == NULL ||
	    (be = BN_new()) == NULL || BN_set_word(be, e) != 1 ||
	    (bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(pctx) != 1 ||
	    EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(be);
	BN_free(bn);
	ERR_clear_error();
	return pkey;
}

/* key_ops, when present, must be an array holding "verify". */
static bool
jwk_ops_verify(json_t *jwk)
{
	json_t	*ops = json_object_get(jwk, "key_ops"), *op;
	size_t	 i;

	if (ops == NULL)
		return true;
	if (!json_is_array(ops))
		return false;
	json_array_foreach(ops, i, op)
		if (json_is_string(op) &&
		    strcmp(json_string_value(op), "verify") == 0)
			return true;
	return false;
}

/* Whether jwk is a key we use, by its metadata. */
static bool
jwk_usable_meta(json_t *jwk)
{
	json_t	*kty = json_object_get(jwk, "kty");
	json_t	*use = json_object_get(jwk, "use");
	json_t	*alg = json_object_get(jwk, "alg");

	if (!json_is_string(kty) || strcmp(json_string_value(kty), "RSA") != 0)
		return false;
	if (use != NULL && (!json_is_string(use) ||
	    strcmp(json_string_value(use), "sig") != 0))
		return false;
	if (alg != NULL && (!json_is_string(alg) ||
	    strcmp(json_string_value(alg), "RS256") != 0))
		return false;
	return jwk_ops_verify(jwk);
}

/* Reads e: odd, 3..2^32-1. */
static int
jwk_exponent(json_t *jwk, uint32_t *e)
{
	unsigned char	b[JWK_E_MAX];
	size_t		len, i;
	uint64_t	v = 0;

	if (jwk_bytes(jwk, "e", b, sizeof(b), &len) == -1 ||
	    jwk_bits(b, len) > 32)
		return -1;
	for (i = 0; i < len; i++)
		v = v << 8 | b[i];
	if (v < 3 || (v & 1) == 0)
		return -1;
	*e = (uint32_t)v;
	return 0;
}

/* Fills k from jwk when it is a usable RSA signing key; -1 to skip it. */
static int
jwk_parse(json_t *jwk, struct token_jwk *k)
{
	unsigned char	 n[JWK_N_MAX];
	const char	*kid;
	size_t		 kidlen, nlen, bits;
	uint32_t	 e;

	if (!json_is_object(jwk) || !jwk_usable_meta(jwk))
		return -1;
	if ((kid = jwk_string(jwk, "kid", &kidlen)) == NULL || kidlen == 0 ||
	    kidlen > MAX_JWK_KID)
		return -1;
	if (jwk_bytes(jwk, "n", n, sizeof(n), &nlen) == -1 ||
	    (bits = jwk_bits(n, nlen)) < JWK_MIN_RSA_BITS ||
	    bits > JWK_MAX_RSA_BITS ||
	    (n[nlen - 1] & 1) == 0)
		return -1;
	if (jwk_exponent(jwk, &e) == -1)
		return -1;
	if ((k->pkey = jwk_rsa_key(n, nlen, e)) == NULL)
		return -1;
	memcpy(k->kid, kid, kidlen + 1);
	return 0;
}

int
token_jwks_parse(const char *json, size_t len, struct token_jwks **out,
    struct kl_error *err)
{
	struct token_jwks	*ks;
	json_t			*root, *keys, *jwk;
	json_error_t		 jerr;
	size_t			 i;

	*out = NULL;
	if (len > MAX_KAKAO_BODY)
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "jwks: %zu bytes",
		    len);
	if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL)
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "jwks is not JSON: "
		    "line %d: %s", jerr.line, jerr.text);
	if (!json_is_object(root) ||
	    !json_is_array(keys = json_object_get(root, "keys"))) {
		json_decref(root);
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "jwks has no keys "
		    "array");
	}
	if ((ks = calloc(1, sizeof(*ks))) == NULL) {
		json_decref(root);
		return kl_fail(err, KL_INTERNAL, "jwks: out of memory");
	}
	atomic_init(&ks->refs, 1);
	json_array_foreach(keys, i, jwk) {
		if (ks->n == JWKS_MAX_KEYS)
			break;
		if (jwk_parse(jwk, &ks->keys[ks->n]) == -1)
			continue;
		if (jwks_find(ks, ks->keys[ks->n].kid) != NULL) {
			/* A repeated kid: the first one stays. */
			EVP_PKEY_free(ks->keys[ks->n].pkey);
			continue;
		}
		ks->n++;
	}
	json_decref(root);
	if (ks->n == 0) {
		token_jwks_free(ks);
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "jwks has no usable "
		    "RS256 key");
	}
	*out = ks;
	return 0;
}

int
token_jwks_verify(const struct token_jwks *ks, const char *kid,
    const void *msg, size_t len, const unsigned char *sig, size_t siglen)
{
	const struct token_jwk	*k;
	EVP_MD_CTX		*md;
	EVP_PKEY_CTX		*pctx = NULL;
	int			 rc = -1;

	if ((k = jwks_find(ks, kid)) == NULL)
		return 0;
	if ((md = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, k->pkey) ==
	    1 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0)
		rc = EVP_DigestVerify(md, sig, siglen, msg, len) == 1 ? 1 : 0;
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return rc;
}

/* ---- cache ---- */

static long long
jwks_default_clock(void *arg)
{
	(void)arg;
	return kl_mono_seconds();
}

struct token_jwks_cache *
token_jwks_cache_new(token_jwks_fetch_fn fetch, void *arg,
    struct kl_error *err)
{
	struct token_jwks_cache	*c;

	if (fetch == NULL) {
		kl_fail(err, KL_INTERNAL, "jwks cache: no fetch function");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		kl_fail(err, KL_INTERNAL, "jwks cache: out of memory");
		return NULL;
	}
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		kl_fail(err, KL_INTERNAL, "jwks cache: mutex");
		return NULL;
	}
	if (pthread_mutex_init(&c->fetch_lock, NULL) != 0) {
		pthread_mutex_destroy(&c->lock);
		free(c);
		kl_fail(err, KL_INTERNAL, "jwks cache: mutex");
		return NULL;
	}
	c->fetch = fetch;
	c->fetch_arg = arg;
	c->clock = jwks_default_clock;
	return c;
}

void
token_jwks_cache_free(struct token_jwks_cache *c)
{
	if (c == NULL)
		return;
	token_jwks_free(c->keys);
	pthread_mutex_destroy(&c->fetch_lock);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void
token_jwks_cache_set_clock(struct token_jwks_cache *c, token_clock_fn now,
    void *arg)
{
	c->clock = now != NULL ? now : jwks_default_clock;
	c->clock_arg = arg;
}

struct token_jwks *
token_jwks_cache_keys(struct token_jwks_cache *c)
{
	struct token_jwks	*ks;

	pthread_mutex_lock(&c->lock);
	ks = jwks_ref(c->keys);
	pthread_mutex_unlock(&c->lock);
	return ks;
}

/* The current keys (a reference) and their generation. */
static struct token_jwks *
jwks_current(struct token_jwks_cache *c, unsigned long *gen)
{
	struct token_jwks	*ks;

	pthread_mutex_lock(&c->lock);
	ks = jwks_ref(c->keys);
	*gen = c->gen;
	pthread_mutex_unlock(&c->lock);
	return ks;
}

/* Calls the fetch function and installs what it got if it parses; the
 * caller holds fetch_lock. The outcome lands in the cache (keys or
 * last_err), which the caller reads again. */
static void
jwks_fetch_install(struct token_jwks_cache *c)
{
	struct token_jwks	*ks = NULL, *old = NULL;
	struct kl_error		 ferr;
	char			*body = NULL;
	size_t			 len = 0;
	int			 rc;

	kl_error_clear(&ferr);
	rc = c->fetch(c->fetch_arg, &body, &len, &ferr);
	if (rc == 0 && body == NULL)
		rc = kl_fail(&ferr, KL_KAKAO_BAD_RESPONSE, "jwks: no body");
	else if (rc == -1 && ferr.status == KL_OK)
		kl_fail(&ferr, KL_KAKAO_UNAVAILABLE, "jwks fetch failed");
	if (rc == 0)
		rc = token_jwks_parse(body, len, &ks, &ferr);
	free(body);
	pthread_mutex_lock(&c->lock);
	if (rc == 0) {
		old = c->keys;
		c->keys = ks;
		c->gen++;
	} else
		c->last_err = ferr;
	pthread_mutex_unlock(&c->lock);
	token_jwks_free(old);
}

/* Under fetch_lock: fetches unless the keys changed since gen (someone
 * else just fetched) or the last attempt is too recent. */
static void
jwks_maybe_fetch(struct token_jwks_cache *c, unsigned long gen)
{
	long long	now = c->clock(c->clock_arg), wait;
	bool		go;

	pthread_mutex_lock(&c->lock);
	wait = c->keys != NULL ? JWKS_REFETCH_S : JWKS_RETRY_EMPTY_S;
	go = c->gen == gen &&
	    (!c->attempted || now - c->last_attempt >= wait);
	if (go) {
		c->attempted = true;
		c->last_attempt = now;
	}
	pthread_mutex_unlock(&c->lock);
	if (go)
		jwks_fetch_install(c);
}

/* The failure for a kid not found after the fetch step. */
static int
jwks_miss(struct token_jwks_cache *c, struct kl_error *err)
{
	struct kl_error	last;
	bool		have;

	pthread_mutex_lock(&c->lock);
	have = c->keys != NULL;
	last = c->last_err;
	pthread_mutex_unlock(&c->lock);
	if (have)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token kid unknown");
	if (last.status == KL_OK)
		return kl_fail(err, KL_KAKAO_UNAVAILABLE, "jwks: no keys yet");
	return kl_fail(err, last.status, "jwks: no keys: %s", last.detail);
}

/* fetch_lock, waited on for at most KAKAO_BUSY_WAIT_MS. 0 or an errno. */
static int
fetch_lock_bounded(struct token_jwks_cache *c)
{
	struct timespec	until;

	kl_deadline(&until, KAKAO_BUSY_WAIT_MS);
	return pthread_mutex_clocklock(&c->fetch_lock, CLOCK_MONOTONIC, &until);
}

int
token_jwks_cache_get(struct token_jwks_cache *c, const char *kid,
    struct token_jwks **out, struct kl_error *err)
{
	struct token_jwks	*ks;
	unsigned long		 gen;
	int			 pass;

	*out = NULL;
	/* Pass 0 looks; pass 1 looks after a fetch (or after someone
	 * else's); pass 2 after a fetch whose slot someone else's success
	 * took (the keys changed under us but still lack kid). */
	for (pass = 0; pass < 3; pass++) {
		ks = jwks_current(c, &gen);
		if (jwks_find(ks, kid) != NULL) {
			*out = ks;
			return 0;
		}
		token_jwks_free(ks);
		if (pass == 2)
			break;
		/* Another thread's fetch may take a whole upstream time-out:
		 * wait for it only as long as for a Kakao slot, so a slow JWKS
		 * cannot hold every id_token login's thread. */
		if (fetch_lock_bounded(c) != 0) {
			if (ks == NULL)
				return kl_fail(err, KL_KAKAO_BUSY, "jwks: a fetch "
				    "is in progress and no keys are cached");
			break;
		}
		jwks_maybe_fetch(c, gen);
		pthread_mutex_unlock(&c->fetch_lock);
	}
	return jwks_miss(c, err);
}

int
token_jwks_cache_prefetch(struct token_jwks_cache *c, struct kl_error *err)
{
	struct token_jwks	*ks;
	unsigned long		 gen;
	bool			 have;

	if ((ks = jwks_current(c, &gen)) == NULL) {
		pthread_mutex_lock(&c->fetch_lock);
		jwks_maybe_fetch(c, gen);
		pthread_mutex_unlock(&c->fetch_lock);
		ks = jwks_current(c, &gen);
	}
	have = ks != NULL;
	token_jwks_free(ks);
	return have ? 0 : jwks_miss(c, err);
}
