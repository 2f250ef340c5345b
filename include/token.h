/*
 * token.h: our own JSON Web Tokens (HS256 only), issued after a login and
 * checked on the routes that take them. The secret is read once at start;
 * after that a struct token_ctx is read-only and shared by all threads.
 */
#ifndef KL_TOKEN_H
#define KL_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kl_error.h"
#include "kl_limits.h"

struct token_ctx {
	unsigned char	key[MAX_JWT_SECRET];
	size_t		keylen;
	char		issuer[MAX_ISSUER];
	long		ttl;		/* seconds */
};

struct token_claims {
	uint64_t	user_id;
	time_t		iat, exp;
	char		jti[33];
};

/* Reads the secret from path: a regular file, not group- or world-readable,
 * at least MIN_JWT_SECRET bytes (one trailing newline is not part of it). */
int	token_init(struct token_ctx *ctx, const char *secret_path,
	    const char *issuer, long ttl, struct kl_error *err);

/* Wipes the key. */
void	token_wipe(struct token_ctx *ctx);

/* Issues a token for user_id at time now. On success *out is a NUL-
 * terminated string the caller frees with free(). */
int	token_issue(const struct token_ctx *ctx, uint64_t user_id, time_t now,
	    char **out, struct kl_error *err);

/* Checks signature (HS256 only), iss, iat, exp and the id/sub claims.
 * Fills claims on success. Failures are KL_BAD_TOKEN. */
int	token_verify(const struct token_ctx *ctx, const char *jwt, time_t now,
	    struct token_claims *claims, struct kl_error *err);

/* A keyed tag for records stored in place of a secret (codes, verifiers;
 * later refresh tokens): HMAC-SHA256 of data under HMAC-SHA256(secret,
 * "kakao-login tag " purpose), so every process with the same secret
 * computes the same tag, and tags of two purposes differ. purpose is a
 * short constant of 1..MAX_TAG_PURPOSE (47) bytes. out gets STORE_TAG_LEN
 * (32) bytes. Failures are KL_INTERNAL. */
int	token_tag(const struct token_ctx *ctx, const char *purpose,
	    const void *data, size_t len, unsigned char out[STORE_TAG_LEN],
	    struct kl_error *err);

#endif
