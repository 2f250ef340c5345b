/*
 * fuzz_key.h: the fixed token context shared by fuzz_jwt.c and mkseeds.c,
 * so the seed tokens mkseeds issues verify in the harness. Test-only key.
 */
#ifndef FUZZ_KEY_H
#define FUZZ_KEY_H

#include <string.h>

#include "token.h"

#define FUZZ_JWT_KEY	"fuzz-only-hs256-key-0123456789abcdef-not-secret"
#define FUZZ_JWT_ISSUER	"kakao-login"
#define FUZZ_JWT_TTL	3600
#define FUZZ_JWT_NOW	1700000000	/* the "now" every check uses */

static inline void
fuzz_token_ctx(struct token_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->keylen = sizeof(FUZZ_JWT_KEY) - 1;
	memcpy(ctx->key, FUZZ_JWT_KEY, ctx->keylen);
	memcpy(ctx->issuer, FUZZ_JWT_ISSUER, sizeof(FUZZ_JWT_ISSUER));
	ctx->ttl = FUZZ_JWT_TTL;
}

#endif
