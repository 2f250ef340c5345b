/*
 * token_oidc.h: Kakao's OpenID Connect id_tokens (RS256) and the JWKS key
 * set they are checked against (app/token_jwks.c, app/token_id.c).
 *
 * Part of the token layer: no curl, no Berkeley DB, no HTTP. The JWKS
 * document comes in through a fetch function main wires to the kakao
 * layer. A key set is immutable once parsed and reference-counted; the
 * cache is shared by every thread of a process.
 */
#ifndef KL_TOKEN_OIDC_H
#define KL_TOKEN_OIDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kl_error.h"
#include "kl_limits.h"

/* A key set parsed from a JWKS document: RSA keys with use "sig" (or no
 * use) and kty "RSA", alg absent or "RS256", key_ops absent or holding
 * "verify", a kid (1..MAX_JWK_KID chars, the first of a repeated kid
 * wins), n of 2048..8192 bits, e odd, 3..2^32-1. Other keys are skipped
 * (not an error); no usable key at all is an error (KL_KAKAO_BAD_RESPONSE,
 * as is a document that is not a JSON object with a "keys" array). At
 * most JWKS_MAX_KEYS kept, the first ones. Reference-counted: *out holds
 * one reference, which token_jwks_free() drops. */
struct token_jwks;
int	token_jwks_parse(const char *json, size_t len, struct token_jwks **out,
	    struct kl_error *err);
/* Drops one reference (the last frees the set); NULL ok. */
void	token_jwks_free(struct token_jwks *ks);
int	token_jwks_count(const struct token_jwks *ks);	/* 0 for NULL */

/* The per-process cache. fetch is called to get the JWKS document: on
 * success it sets *body to a malloc()ed buffer of *len bytes, which the
 * cache frees; on failure it returns -1 and fills err (its status is what
 * a verify without cached keys then fails with). At most one fetch runs
 * at a time (single flight under a mutex; callers with a known kid never
 * wait on it). A kid not in the cached keys refetches at most once per
 * JWKS_REFETCH_S seconds when keys are cached, once per JWKS_RETRY_EMPTY_S
 * when none are (counted from the last attempt, failed or not); a failed
 * fetch or an unparsable document keeps the old keys. Monotonic clock. */
typedef int (*token_jwks_fetch_fn)(void *arg, char **body, size_t *len,
    struct kl_error *err);
/* A new cache holding no keys; free it with token_jwks_cache_free() after
 * every thread using it has stopped. */
struct token_jwks_cache;
struct token_jwks_cache	*token_jwks_cache_new(token_jwks_fetch_fn fetch,
			    void *arg, struct kl_error *err);
void	token_jwks_cache_free(struct token_jwks_cache *c);	/* NULL ok */

/* Fetches now unless keys are cached or the empty-set retry interval has
 * not passed: main may call it at start so the first id_token login does
 * not wait on Kakao. 0 when keys are cached afterwards. */
int	token_jwks_cache_prefetch(struct token_jwks_cache *c,
	    struct kl_error *err);

/* The cached keys with one more reference (the caller drops it with
 * token_jwks_free()), or NULL when none are cached. */
struct token_jwks	*token_jwks_cache_keys(struct token_jwks_cache *c);

/* Tests only, before the cache is shared: the clock the refetch intervals
 * are measured on (seconds; default kl_mono_seconds()). */
typedef long long (*token_clock_fn)(void *arg);
void	token_jwks_cache_set_clock(struct token_jwks_cache *c,
	    token_clock_fn now, void *arg);

/* What the token must say. nonce NULL or "": the request sent none.
 * skew_s: exp/iat/nbf slack, 0..MAX_OIDC_CLOCK_SKEW. */
struct token_oidc_expect {
	const char		*issuer;	/* iss must equal it exactly */
	const char *const	*audiences;	/* aud must equal one of these */
	int			 n_audiences;
	const char		*nonce;
	long			 skew_s;
	time_t			 now;
};

/* What a verified token says. Strings are "" when absent; the nickname
 * is cut at a UTF-8 boundary, the picture only an http(s) URL, and
 * email_verified only an explicit "email_verified": true. */
struct token_id_claims {
	int64_t	sub;		/* Kakao user id (sub is a decimal string) */
	char	nickname[MAX_NICKNAME + 1];
	bool	has_nickname;
	char	picture[MAX_PROFILE_IMAGE + 1];
	bool	has_picture;
	char	email[MAX_EMAIL + 1];
	bool	has_email;
	bool	email_verified;
	time_t	iat, exp;
};

/*
 * Verifies jwt (at most MAX_ID_TOKEN chars) against the cache's keys and
 * ex; fills claims on success, zeroes them on failure. Failures:
 * KL_BAD_ID_TOKEN with a detail naming the check that failed (malformed,
 * alg, kid, kid unknown, signature, iss, aud, azp, exp, iat, nbf, nonce,
 * sub) and never the token; for aud, the audience seen and the ones
 * configured, each as its first 6 characters and "...". When the cache
 * has no keys and the fetch fails: the fetch's status. KL_INTERNAL for a
 * bad ex or no memory.
 * Header: alg exactly "RS256" (checked before any key lookup), kid
 * required, typ if present "JWT" in any case, crit refused. Claims: iss
 * exact; aud a string or a non-empty array of strings, one equal to a
 * configured audience (an array with other members too: azp, when
 * present, must be a configured audience); exp > now - skew; iat <=
 * now + skew and iat <= exp; nbf, if present, <= now + skew; nonce equal
 * (length, then CRYPTO_memcmp) when either side has one; sub a canonical
 * decimal string of a positive int64. Numeric dates are JSON integers.
 */
int	token_id_token_verify(struct token_jwks_cache *c, const char *jwt,
	    const struct token_oidc_expect *ex, struct token_id_claims *claims,
	    struct kl_error *err);

/* Within the token layer (token_id.c), and for tests. */

/* True when ks holds a usable key named kid. */
bool	token_jwks_has(const struct token_jwks *ks, const char *kid);

/* The cached key set that holds kid, refetching as described above; *out
 * gets a reference the caller drops with token_jwks_free(). Failures:
 * KL_BAD_ID_TOKEN "kid unknown" when keys are cached; the last fetch's
 * status when none are. */
int	token_jwks_cache_get(struct token_jwks_cache *c, const char *kid,
	    struct token_jwks **out, struct kl_error *err);

/* Checks that sig is an RS256 (RSASSA-PKCS1-v1_5, SHA-256) signature of
 * msg under ks's key kid: 1 if it is, 0 if not (or no such key), -1 when
 * OpenSSL fails otherwise (no memory). */
int	token_jwks_verify(const struct token_jwks *ks, const char *kid,
	    const void *msg, size_t len, const unsigned char *sig,
	    size_t siglen);

/* Strict base64url, no padding (app/token.c; shared by the token files):
 * the alphabet only, a length that can end a byte, zero bits after the
 * last byte. Decodes len chars into out, which has room for len * 3 / 4
 * bytes; -1 if bad. */
int	token_b64url_decode(const char *in, size_t len, unsigned char *out,
	    size_t *outlen);

#endif
