/*
 * fuzz_key.h: the fixed token context shared by fuzz_jwt.c and mkseeds.c,
 * so the seed tokens mkseeds issues verify in the harness: two keys, the
 * first of which signs, as in a keyed jwt_secret_file. Test-only keys.
 */
#ifndef FUZZ_KEY_H
#define FUZZ_KEY_H

#include <string.h>

#include "token.h"

#define FUZZ_JWT_KEY	"fuzz-only-hs256-key-0123456789abcdef-not-secret"
#define FUZZ_JWT_KID	"fuzz-1"	/* signs */
#define FUZZ_JWT_KEY2	"fuzz-only-second-key-fedcba9876543210-not-secret"
#define FUZZ_JWT_KID2	"fuzz-2"	/* verifies only */
#define FUZZ_JWT_ISSUER	"kakao-login"
#define FUZZ_JWT_TTL	3600
#define FUZZ_JWT_NOW	1700000000	/* the "now" every check uses */

static inline void
fuzz_token_ctx(struct token_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->keys[0].keylen = sizeof(FUZZ_JWT_KEY) - 1;
	memcpy(ctx->keys[0].key, FUZZ_JWT_KEY, ctx->keys[0].keylen);
	memcpy(ctx->keys[0].kid, FUZZ_JWT_KID, sizeof(FUZZ_JWT_KID));
	ctx->keys[1].keylen = sizeof(FUZZ_JWT_KEY2) - 1;
	memcpy(ctx->keys[1].key, FUZZ_JWT_KEY2, ctx->keys[1].keylen);
	memcpy(ctx->keys[1].kid, FUZZ_JWT_KID2, sizeof(FUZZ_JWT_KID2));
	ctx->nkeys = 2;
	memcpy(ctx->issuer, FUZZ_JWT_ISSUER, sizeof(FUZZ_JWT_ISSUER));
	ctx->ttl = FUZZ_JWT_TTL;
}

#endif
