/*
 * token_id.c: checking a Kakao OpenID Connect id_token (RS256 JWT).
 *
 * Owns the parse of the three parts (strict base64url, Jansson with
 * duplicate names refused), the header rules (alg pinned to "RS256"
 * before any key is looked up), the signature check against the JWKS
 * cache (app/token_jwks.c) and every claim rule. libjwt is not used: 1.10
 * takes the token's own alg and has no JWKS. Never calls curl, the store
 * or anything HTTP; a missing key reaches Kakao only through the cache's
 * fetch function.
 * Error details name the check that failed and never hold the token or
 * any part of it; the one exception is the audience, shown as its first 6
 * characters, because telling a native app key from a REST API key is
 * what an operator needs to fix a set-up.
 * Thread-safe: no state of its own; the cache is.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "kl_text.h"
#include "token_oidc.h"

/* Decoded signature bytes read: one of the largest key's. */
#define ID_SIG_MAX	(JWK_MAX_RSA_BITS / 8)

/* The three base64url parts of a compact JWS. */
struct id_parts {
	const char	*hdr, *pay, *sig;
	size_t		 hlen, plen, slen;
};

/* Exactly three non-empty parts: header.payload.signature. */
static int
id_split(const char *jwt, size_t len, struct id_parts *p)
{
	const char	*d1, *d2;

	if ((d1 = memchr(jwt, '.', len)) == NULL ||
	    (d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jwt))) == NULL ||
	    memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jwt)) != NULL)
		return -1;
	p->hdr = jwt;
	p->hlen = (size_t)(d1 - jwt);
	p->pay = d1 + 1;
	p->plen = (size_t)(d2 - p->pay);
	p->sig = d2 + 1;
	p->slen = len - (size_t)(p->sig - jwt);
	return p->hlen > 0 && p->plen > 0 && p->slen > 0 ? 0 : -1;
}

/* A base64url part holding a JSON object; NULL if it is anything else.
 * The caller drops the reference. */
static json_t *
id_json_part(const char *b64, size_t len)
{
	unsigned char	*raw;
	size_t		 n;
	json_t		*v = NULL;

	if ((raw = malloc(len * 3 / 4 + 1)) == NULL)
		return NULL;
	if (token_b64url_decode(b64, len, raw, &n) == 0)
		v = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES,
		    NULL);
	free(raw);
	if (v != NULL && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

/* alg exactly "RS256", a kid, typ "JWT" if any, no crit. */
static int
id_check_header(json_t *h, const char **kid, struct kl_error *err)
{
	json_t	*alg = json_object_get(h, "alg");
	json_t	*k = json_object_get(h, "kid");
	json_t	*typ = json_object_get(h, "typ");

	if (!json_is_string(alg) || strcmp(json_string_value(alg), "RS256"))
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token alg is not "
		    "RS256");
	if (json_object_get(h, "crit") != NULL)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token malformed: "
		    "crit header");
	if (typ != NULL && (!json_is_string(typ) ||
	    strcasecmp(json_string_value(typ), "JWT") != 0))
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token malformed: "
		    "typ is not JWT");
	if (!json_is_string(k) || json_string_length(k) == 0 ||
	    json_string_length(k) > MAX_JWK_KID ||
	    strlen(json_string_value(k)) != json_string_length(k))
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token kid missing or "
		    "bad");
	*kid = json_string_value(k);
	return 0;
}

/* ---- claims ---- */

/* Writes "abcdef..." (printable ASCII only) of s into dst. */
static void
id_preview(char *dst, size_t size, const char *s)
{
	size_t	i;

	for (i = 0; i < OIDC_AUD_SHOWN && s[i] != '\0' && i + 4 < size; i++)
		dst[i] = s[i] > 0x20 && s[i] < 0x7f && s[i] != '"' ? s[i] :
		    '?';
	snprintf(dst + i, size - i, "...");
}

static bool
id_aud_known(const struct token_oidc_expect *ex, const char *s, size_t len)
{
	int	i;

	for (i = 0; i < ex->n_audiences; i++)
		if (strlen(ex->audiences[i]) == len &&
		    memcmp(ex->audiences[i], s, len) == 0)
			return true;
	return false;
}

/* "aud: saw "...", configured "...", "..."": what an operator needs to
 * see an app key mix-up, no more. */
static int
id_aud_fail(const struct token_oidc_expect *ex, const char *seen,
    size_t n_seen, struct kl_error *err)
{
	char	conf[MAX_ERROR_DETAIL], one[OIDC_AUD_SHOWN + 4], sawp[16];
	size_t	off = 0;
	int	i, w;

	conf[0] = '\0';
	for (i = 0; i < ex->n_audiences && off < sizeof(conf); i++) {
		id_preview(one, sizeof(one), ex->audiences[i]);
		w = snprintf(conf + off, sizeof(conf) - off, "%s\"%s\"",
		    i > 0 ? ", " : "", one);
		if (w < 0)
			break;
		off += (size_t)w;
	}
	id_preview(sawp, sizeof(sawp), seen != NULL ? seen : "");
	if (seen == NULL)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token aud: none "
		    "usable, configured %s", conf);
	return kl_fail(err, KL_BAD_ID_TOKEN, "id_token aud: saw \"%s\"%s, "
	    "configured %s", sawp, n_seen > 1 ? " and others" : "", conf);
}

/* A string member without an embedded NUL, or NULL. */
static const char *
id_string(json_t *obj, const char *name)
{
	json_t	*v = json_object_get(obj, name);

	if (!json_is_string(v) ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

/* aud is a string or a non-empty array of strings, one of them ours; an
 * array with other members needs azp, when present, to be ours too. */
static int
id_check_aud(json_t *pay, const struct token_oidc_expect *ex,
    struct kl_error *err)
{
	json_t		*aud = json_object_get(pay, "aud"), *v, *azp;
	const char	*first = NULL;
	size_t		 i, n;
	bool		 match = false;

	if (json_is_string(aud)) {
		if (id_aud_known(ex, json_string_value(aud),
		    json_string_length(aud)))
			return 0;
		return id_aud_fail(ex, json_string_value(aud), 1, err);
	}
	if (!json_is_array(aud) || (n = json_array_size(aud)) == 0)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token aud: not a "
		    "string or an array of strings");
	json_array_foreach(aud, i, v) {
		if (!json_is_string(v))
			return kl_fail(err, KL_BAD_ID_TOKEN, "id_token aud: "
			    "an array member is not a string");
		if (first == NULL)
			first = json_string_value(v);
		if (id_aud_known(ex, json_string_value(v),
		    json_string_length(v)))
			match = true;
	}
	if (!match)
		return id_aud_fail(ex, first, n, err);
	azp = json_object_get(pay, "azp");
	if (n > 1 && azp != NULL && (!json_is_string(azp) ||
	    !id_aud_known(ex, json_string_value(azp), json_string_length(azp))))
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token azp: not a "
		    "configured audience");
	return 0;
}

/* An integer claim (a NumericDate): 0, or -1 when absent or not one. */
static int
id_time(json_t *pay, const char *name, long long *out)
{
	json_t	*v = json_object_get(pay, name);

	if (!json_is_integer(v))
		return -1;
	*out = (long long)json_integer_value(v);
	return 0;
}

static int
id_check_times(json_t *pay, const struct token_oidc_expect *ex,
    struct token_id_claims *cl, struct kl_error *err)
{
	long long	now = (long long)ex->now, exp, iat, nbf;

	if (id_time(pay, "exp", &exp) == -1)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token exp missing");
	/* How long ago tells clock trouble from an old token; a day is
	 * enough (and keeps now - exp from overflowing). */
	if (exp <= now - ex->skew_s && exp > now - OIDC_EXP_SHOWN_S)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token exp: expired "
		    "%lld s ago", now - exp);
	if (exp <= now - ex->skew_s)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token exp: expired "
		    "over a day ago");
	if (id_time(pay, "iat", &iat) == -1)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token iat missing");
	if (iat > now + ex->skew_s || iat > exp)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token iat: in the "
		    "future or after exp");
	if (json_object_get(pay, "nbf") != NULL &&
	    (id_time(pay, "nbf", &nbf) == -1 || nbf > now + ex->skew_s))
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token nbf: not yet "
		    "valid");
	cl->iat = (time_t)iat;
	cl->exp = (time_t)exp;
	return 0;
}

/* Either side's nonce needs the other's, equal. */
static int
id_check_nonce(json_t *pay, const struct token_oidc_expect *ex,
    struct kl_error *err)
{
	json_t		*v = json_object_get(pay, "nonce");
	const char	*want = ex->nonce != NULL && *ex->nonce != '\0' ?
			    ex->nonce : NULL;

	if (v == NULL && want == NULL)
		return 0;
	if (v == NULL)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token nonce: missing");
	if (want == NULL)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token nonce: the "
		    "token has one, the request none");
	if (!json_is_string(v) || json_string_length(v) != strlen(want) ||
	    CRYPTO_memcmp(json_string_value(v), want, strlen(want)) != 0)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token nonce: "
		    "mismatch");
	return 0;
}

/* sub: 1..19 decimal digits, no leading zero, at most INT64_MAX. */
static int
id_parse_sub(json_t *pay, int64_t *out, struct kl_error *err)
{
	const char	*s = id_string(pay, "sub");
	uint64_t	 v = 0;
	size_t		 i, len;

	if (s == NULL || (len = strlen(s)) == 0 || len > 19 || s[0] == '0')
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token sub: not a "
		    "positive decimal id");
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return kl_fail(err, KL_BAD_ID_TOKEN, "id_token sub: "
			    "not a positive decimal id");
		v = v * 10 + (uint64_t)(s[i] - '0');	/* 19 digits fit */
	}
	if (v > (uint64_t)INT64_MAX)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token sub: out of "
		    "range");
	*out = (int64_t)v;
	return 0;
}

/* The optional profile claims; a bad one is left out, not an error. */
static void
id_profile(json_t *pay, struct token_id_claims *cl)
{
	const char	*s;

	if ((s = id_string(pay, "nickname")) != NULL && *s != '\0') {
		kl_copy_utf8(cl->nickname, sizeof(cl->nickname), s);
		cl->has_nickname = true;
	}
	if ((s = id_string(pay, "picture")) != NULL && kl_is_web_url(s) &&
	    strlen(s) < sizeof(cl->picture)) {
		memcpy(cl->picture, s, strlen(s) + 1);
		cl->has_picture = true;
	}
	if ((s = id_string(pay, "email")) != NULL && *s != '\0' &&
	    strlen(s) < sizeof(cl->email)) {
		memcpy(cl->email, s, strlen(s) + 1);
		cl->has_email = true;
		cl->email_verified = json_is_true(json_object_get(pay,
		    "email_verified"));
	}
}

static int
id_check_claims(json_t *pay, const struct token_oidc_expect *ex,
    struct token_id_claims *cl, struct kl_error *err)
{
	json_t	*iss = json_object_get(pay, "iss");

	if (!json_is_string(iss) ||
	    json_string_length(iss) != strlen(ex->issuer) ||
	    memcmp(json_string_value(iss), ex->issuer,
	    strlen(ex->issuer)) != 0)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token iss: not the "
		    "configured issuer");
	if (id_check_aud(pay, ex, err) == -1 ||
	    id_check_times(pay, ex, cl, err) == -1 ||
	    id_check_nonce(pay, ex, err) == -1 ||
	    id_parse_sub(pay, &cl->sub, err) == -1)
		return -1;
	id_profile(pay, cl);
	return 0;
}

static int
id_check_expect(const struct token_oidc_expect *ex, struct kl_error *err)
{
	int	i;

	if (ex == NULL || ex->issuer == NULL || ex->audiences == NULL ||
	    ex->n_audiences < 1 || ex->skew_s < 0 ||
	    ex->skew_s > MAX_OIDC_CLOCK_SKEW)
		return kl_fail(err, KL_INTERNAL, "id_token: bad expectations");
	for (i = 0; i < ex->n_audiences; i++)
		if (ex->audiences[i] == NULL || ex->audiences[i][0] == '\0')
			return kl_fail(err, KL_INTERNAL, "id_token: empty "
			    "audience configured");
	return 0;
}

/* The key set holding kid, and the RS256 check of header.payload. */
static int
id_check_signature(struct token_jwks_cache *c, const struct id_parts *p,
    const char *kid, const unsigned char *sig, size_t siglen,
    struct kl_error *err)
{
	struct token_jwks	*ks;
	int			 ok;

	if (token_jwks_cache_get(c, kid, &ks, err) == -1)
		return -1;
	ok = token_jwks_verify(ks, kid, p->hdr, p->hlen + 1 + p->plen, sig,
	    siglen);
	token_jwks_free(ks);
	if (ok == -1)
		return kl_fail(err, KL_INTERNAL, "id_token: OpenSSL failed");
	if (ok == 0)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token signature does "
		    "not verify");
	return 0;
}

int
token_id_token_verify(struct token_jwks_cache *c, const char *jwt,
    const struct token_oidc_expect *ex, struct token_id_claims *claims,
    struct kl_error *err)
{
	unsigned char	 sig[ID_SIG_MAX];
	struct id_parts	 p;
	json_t		*hdr = NULL, *pay = NULL;
	const char	*kid = NULL;
	size_t		 len, siglen = 0;
	int		 rc = -1;

	memset(claims, 0, sizeof(*claims));
	if (c == NULL)
		return kl_fail(err, KL_NOT_CONFIGURED, "id_token: no key "
		    "cache");
	if (id_check_expect(ex, err) == -1)
		return -1;
	if (jwt == NULL || (len = strnlen(jwt, MAX_ID_TOKEN + 1)) >
	    MAX_ID_TOKEN)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token malformed: "
		    "missing or over %d chars", MAX_ID_TOKEN);
	if (id_split(jwt, len, &p) == -1 ||
	    (hdr = id_json_part(p.hdr, p.hlen)) == NULL) {
		kl_fail(err, KL_BAD_ID_TOKEN, "id_token malformed: not three "
		    "parts with a JSON header");
		goto done;
	}
	if (id_check_header(hdr, &kid, err) == -1)
		goto done;
	/* Everything that can be refused without a key is, so a malformed
	 * token never makes the cache fetch. */
	if ((pay = id_json_part(p.pay, p.plen)) == NULL ||
	    p.slen > (ID_SIG_MAX * 4 + 2) / 3 ||
	    token_b64url_decode(p.sig, p.slen, sig, &siglen) == -1) {
		kl_fail(err, KL_BAD_ID_TOKEN, "id_token malformed: payload or "
		    "signature");
		goto done;
	}
	if (id_check_signature(c, &p, kid, sig, siglen, err) == -1 ||
	    id_check_claims(pay, ex, claims, err) == -1)
		goto done;
	rc = 0;
done:
	if (rc == -1)
		memset(claims, 0, sizeof(*claims));
	json_decref(pay);
	json_decref(hdr);
	return rc;
}
