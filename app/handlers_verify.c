/*
 * handlers_verify.c: GET /auth/verify, for nginx auth_request (and any
 * front that asks "may this request pass?" the same way).
 *
 * The hot path of every protected request: our JWT checked by
 * handler_bearer (HS256 pinned, our MAC, exp, iss) and answered 204 with
 * X-User-Id and X-Kakao-Id, or 401 with WWW-Authenticate. No store access
 * unless verify_revocation is on; nothing allocated but the two header
 * lines. Never touches curl, Berkeley DB, libjwt or libfcgi. Thread-safe:
 * its state is the worker's handler_ctx.
 */
#include <inttypes.h>
#include <stdio.h>

#include "handlers.h"
#include "token.h"

int
handler_auth_verify(struct handler_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct kl_error *err)
{
	struct token_claims	claims;
	char			v[24];

	if (handler_bearer(ctx, req, resp, &claims, err) == -1)
		return -1;
	snprintf(v, sizeof(v), "%" PRIu64, claims.user_id);
	if (http_response_header(resp, "X-User-Id", v, err) == -1)
		return -1;
	/* A JWT from before sessions carries no Kakao id. */
	if (claims.kakao_id > 0) {
		snprintf(v, sizeof(v), "%" PRId64, claims.kakao_id);
		if (http_response_header(resp, "X-Kakao-Id", v, err) == -1)
			return -1;
	}
	resp->status = 204;
	return 0;
}
