/*
 * token.c: issuing and checking our HS256 JWTs with libjwt 1.10.
 *
 * Owns the signing key. Never touches the store or the network.
 * libjwt 1.10 trusts the algorithm a token names and checks no claims, so
 * token_verify() insists on HS256 and checks every claim itself.
 * Thread-safe: the context is read-only after token_init(); each call makes
 * and frees its own jwt_t.
 */
#include <sys/random.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jwt.h>

#include "config.h"
#include "token.h"

int
token_init(struct token_ctx *ctx, const char *path, const char *issuer,
    long ttl, struct kl_error *err)
{
	memset(ctx, 0, sizeof(*ctx));
	if (config_read_secret("jwt_secret_file", path, ctx->key,
	    sizeof(ctx->key), MIN_JWT_SECRET, &ctx->keylen, err) == -1)
		return -1;
	if (snprintf(ctx->issuer, sizeof(ctx->issuer), "%s", issuer) >=
	    (int)sizeof(ctx->issuer)) {
		token_wipe(ctx);
		return kl_fail(err, KL_BAD_CONFIG, "jwt_issuer too long");
	}
	ctx->ttl = ttl;
	return 0;
}

void
token_wipe(struct token_ctx *ctx)
{
	explicit_bzero(ctx->key, sizeof(ctx->key));
	ctx->keylen = 0;
}

static int
token_new_jti(char out[33], struct kl_error *err)
{
	static const char	hex[] = "0123456789abcdef";
	unsigned char		rnd[16];
	size_t			i;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return kl_fail(err, KL_INTERNAL, "getrandom: %s",
		    strerror(errno));
	for (i = 0; i < sizeof(rnd); i++) {
		out[2 * i] = hex[rnd[i] >> 4];
		out[2 * i + 1] = hex[rnd[i] & 0xf];
	}
	out[32] = '\0';
	return 0;
}

int
token_issue(const struct token_ctx *ctx, uint64_t user_id, time_t now,
    char **out, struct kl_error *err)
{
	jwt_t	*jwt = NULL;
	char	 sub[24], jti[33];
	int	 rc = -1;

	*out = NULL;
	if (user_id > (uint64_t)INT64_MAX)
		return kl_fail(err, KL_INTERNAL, "user id out of range");
	if (token_new_jti(jti, err) == -1)
		return -1;
	snprintf(sub, sizeof(sub), "%" PRIu64, user_id);
	if (jwt_new(&jwt) != 0) {
		kl_fail(err, KL_INTERNAL, "jwt_new failed");
		goto done;
	}
	if (jwt_add_grant_int(jwt, "id", (long)user_id) != 0 ||
	    jwt_add_grant(jwt, "sub", sub) != 0 ||
	    jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
	    jwt_add_grant_int(jwt, "exp", (long)(now + ctx->ttl)) != 0 ||
	    jwt_add_grant(jwt, "iss", ctx->issuer) != 0 ||
	    jwt_add_grant(jwt, "jti", jti) != 0) {
		kl_fail(err, KL_INTERNAL, "jwt_add_grant failed");
		goto done;
	}
	if (jwt_set_alg(jwt, JWT_ALG_HS256, ctx->key, (int)ctx->keylen) != 0) {
		kl_fail(err, KL_INTERNAL, "jwt_set_alg failed");
		goto done;
	}
	if ((*out = jwt_encode_str(jwt)) == NULL) {
		kl_fail(err, KL_INTERNAL, "jwt_encode_str failed");
		goto done;
	}
	rc = 0;
done:
	jwt_free(jwt);
	return rc;
}

/* An integer claim that must be present; libjwt reports absence in errno. */
static int
claim_long(jwt_t *jwt, const char *name, long *out)
{
	errno = 0;
	*out = jwt_get_grant_int(jwt, name);
	return errno == 0 ? 0 : -1;
}

int
token_verify(const struct token_ctx *ctx, const char *token, time_t now,
    struct token_claims *claims, struct kl_error *err)
{
	jwt_t		*jwt = NULL;
	const char	*iss, *sub, *jti;
	char		 want_sub[24];
	long		 id, iat, exp;
	int		 rc = -1;

	memset(claims, 0, sizeof(*claims));
	if (ctx->keylen == 0)
		return kl_fail(err, KL_INTERNAL, "token key not loaded");
	if (jwt_decode(&jwt, token, ctx->key, (int)ctx->keylen) != 0) {
		jwt = NULL;
		kl_fail(err, KL_BAD_TOKEN, "jwt does not decode or verify");
		goto done;
	}
	if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
		kl_fail(err, KL_BAD_TOKEN, "jwt alg is not HS256");
		goto done;
	}
	if ((iss = jwt_get_grant(jwt, "iss")) == NULL ||
	    strcmp(iss, ctx->issuer) != 0) {
		kl_fail(err, KL_BAD_TOKEN, "jwt iss mismatch");
		goto done;
	}
	if (claim_long(jwt, "exp", &exp) == -1 ||
	    claim_long(jwt, "iat", &iat) == -1 ||
	    claim_long(jwt, "id", &id) == -1) {
		kl_fail(err, KL_BAD_TOKEN, "jwt lacks exp, iat or id");
		goto done;
	}
	if (exp <= (long)now) {
		kl_fail(err, KL_BAD_TOKEN, "jwt expired");
		goto done;
	}
	if (iat > (long)now + 60 || iat > exp || id <= 0) {
		kl_fail(err, KL_BAD_TOKEN, "jwt iat or id out of range");
		goto done;
	}
	snprintf(want_sub, sizeof(want_sub), "%ld", id);
	if ((sub = jwt_get_grant(jwt, "sub")) == NULL ||
	    strcmp(sub, want_sub) != 0) {
		kl_fail(err, KL_BAD_TOKEN, "jwt sub does not match id");
		goto done;
	}
	if ((jti = jwt_get_grant(jwt, "jti")) != NULL)
		snprintf(claims->jti, sizeof(claims->jti), "%s", jti);
	claims->user_id = (uint64_t)id;
	claims->iat = (time_t)iat;
	claims->exp = (time_t)exp;
	rc = 0;
done:
	jwt_free(jwt);
	return rc;
}
