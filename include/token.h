/*
 * token.h: our own JSON Web Tokens (HS256 only), issued after a login and
 * checked on the routes that take them. The secret is read once at start;
 * after that a struct token_ctx is read-only and shared by all threads.
 */
#ifndef KL_TOKEN_H
#define KL_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kl_error.h"
#include "kl_limits.h"

/* One signing key of jwt_secret_file. */
struct token_key {
	char		kid[MAX_JWT_KID + 1];
	unsigned char	key[MAX_JWT_SECRET];
	size_t		keylen;
};

struct token_ctx {
	/* keys[0] signs and keys every tag; all of them verify. */
	struct token_key keys[MAX_JWT_KEYS];
	int		nkeys;
	char		issuer[MAX_ISSUER];
	long		ttl;		/* seconds */
};

/* Whom a token names: the user, their Kakao id, and the session (the
 * refresh family, SID_HEX_LEN lowercase hex characters). */
struct token_subject {
	uint64_t	user_id;
	int64_t		kakao_id;
	char		sid[SID_HEX_LEN + 1];
};

struct token_claims {
	uint64_t	user_id;
	int64_t		kakao_id;	/* 0: a token issued before sessions */
	char		sid[SID_HEX_LEN + 1];	/* "": the same */
	time_t		iat, exp;
	char		jti[33];
};

/*
 * Reads the keys from path (config_read_secret's file checks), then
 * token_keys_parse(). Fails with KL_BAD_CONFIG naming the file and the line,
 * never the bytes.
 */
int	token_init(struct token_ctx *ctx, const char *secret_path,
	    const char *issuer, long ttl, struct kl_error *err);

/*
 * The key file's bytes, exactly:
 *   - keyed: every line (ended by LF, or CR LF; the last may end the
 *     file instead) is empty or "kid:base64key", kid 1..MAX_JWT_KID of
 *     [A-Za-z0-9._-], the key in standard or url-safe base64 (padding
 *     optional; zero bits after the last byte) decoding to
 *     MIN_JWT_SECRET .. MAX_JWT_SECRET bytes; at most MAX_JWT_KEYS keys,
 *     kids unique; the first line's key signs.
 *   - otherwise one key, as before key ids: every byte of the file but one
 *     final LF or CR LF (a lone final CR is part of the key), with the kid
 *     "k" + 8 hex digits of SHA-256(key).
 * A line looks keyed when it is printable ASCII (tabs too) with a ':' in
 * it, which a random binary key hardly ever has. A file whose first
 * non-empty line looks keyed is keyed, and each of its non-empty lines
 * must be valid as above; in a legacy file no line may look keyed. So a
 * typo is refused, never read as one legacy key. A key of one byte
 * repeated, or of whitespace only, is refused. Failures are KL_BAD_CONFIG
 * naming the line, never its bytes, with the keys wiped. On success fills
 * ctx->keys and nkeys (issuer and ttl untouched). For token_init and the
 * fuzz target.
 */
int	token_keys_parse(struct token_ctx *ctx, const unsigned char *buf,
	    size_t len, struct kl_error *err);

/* Wipes the keys. */
void	token_wipe(struct token_ctx *ctx);

/* Issues a token for s at time now, signed by keys[0] with its kid in the
 * header; claims id, sub, kakao_id, sid (when s->sid is not ""), iat, exp,
 * iss, jti. On success *out is a NUL-terminated string the caller wipes
 * and frees with free(). */
int	token_issue(const struct token_ctx *ctx, const struct token_subject *s,
	    time_t now, char **out, struct kl_error *err);

/* Checks signature (HS256 only; the key named by the header's kid, or,
 * for a token without one or whose kid names none of ours, any of our
 * keys; a kid that is not a string is refused), iss, iat, exp and the
 * id/sub claims;
 * kakao_id and sid when present. Fills claims on success. Failures are
 * KL_BAD_TOKEN. */
int	token_verify(const struct token_ctx *ctx, const char *jwt, time_t now,
	    struct token_claims *claims, struct kl_error *err);

/* A keyed tag for records stored in place of a secret (codes, verifiers,
 * refresh tokens): HMAC-SHA256 of data under HMAC-SHA256(keys[0],
 * "kakao-login tag " purpose), so every process with the same secret
 * computes the same tag, and tags of two purposes differ. purpose is a
 * short constant of 1..MAX_TAG_PURPOSE (47) bytes. out gets STORE_TAG_LEN
 * (32) bytes. Failures are KL_INTERNAL. */
int	token_tag(const struct token_ctx *ctx, const char *purpose,
	    const void *data, size_t len, unsigned char out[STORE_TAG_LEN],
	    struct kl_error *err);

/* token_tag() under keys[key] (0 .. nkeys - 1): a refresh token stored
 * under a key that is no longer the first is still found. */
int	token_tag_key(const struct token_ctx *ctx, int key, const char *purpose,
	    const void *data, size_t len, unsigned char out[STORE_TAG_LEN],
	    struct kl_error *err);

/*
 * Refresh tokens: REFRESH_TOKEN_BYTES random bytes, spelt in base64url
 * without padding (REFRESH_TOKEN_LEN characters). Only their tags
 * (token_tag_key, purpose "refresh") are stored.
 *
 * token_refresh_new: a fresh token into out.
 * token_refresh_successor: the successor of parent under keys[key]:
 *   HMAC-SHA256(HMAC-SHA256(keys[key], "kakao-login refresh successor"),
 *   parent's bytes), spelt the same way. Deterministic, so a parent
 *   presented again within the reuse window gets the same successor while
 *   no token is ever stored in the clear.
 * token_refresh_decode: a token as sent (exactly REFRESH_TOKEN_LEN
 *   base64url characters, canonical) into its bytes; -1 with KL_BAD_REFRESH
 *   for anything else.
 * Out buffers hold REFRESH_TOKEN_LEN + 1 bytes; the caller wipes them.
 */
int	token_refresh_new(char *out, struct kl_error *err);
int	token_refresh_successor(const struct token_ctx *ctx, int key,
	    const char *parent, char *out, struct kl_error *err);
int	token_refresh_decode(const char *token,
	    unsigned char raw[REFRESH_TOKEN_BYTES], struct kl_error *err);

/* A fresh session id: STORE_SID_LEN random bytes, and their hex. */
int	token_sid_new(unsigned char sid[STORE_SID_LEN],
	    char hex[SID_HEX_LEN + 1], struct kl_error *err);

/* Constant-time equality of two secrets of possibly different lengths:
 * both are HMAC'd under a random per-process key and the MACs compared
 * with CRYPTO_memcmp, so the time taken says nothing of where they differ
 * (only of their lengths). False when the per-process key could not be
 * made. NULL with a length of 0 is the empty secret. */
bool	token_secret_equal(const void *a, size_t alen, const void *b,
	    size_t blen);

#endif
