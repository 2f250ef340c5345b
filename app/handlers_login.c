/*
 * handlers_login.c: GET or POST /users/kakao/login, the token login.
 *
 * The front end got a Kakao access token itself and sends it in
 * Authorization, as it did to the Django view this service replaces. The
 * handler checks it with Kakao (the profile, and the app id through token
 * info) and finishes the login. Never touches curl, Berkeley DB, libjwt or
 * libfcgi. Thread-safe: its state is the worker's handler_ctx.
 */
#include <string.h>

#include "handlers.h"
#include "kakao.h"
#include "store.h"

int
handler_login(struct handler_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct kl_error *err)
{
	struct kakao_profile	 profile;
	struct store_login	 login;
	char			 token[MAX_KAKAO_TOKEN + 1];
	int			 rc = -1;

	resp->refresh_in_cookie = handler_cookie_mode(ctx, req);
	if (req->authorization_count > 1)
		return kl_fail(err, KL_BAD_TOKEN, "duplicated Authorization");
	if (handler_parse_authorization(req->authorization, token, err) == -1)
		return -1;
	/* No use asking Kakao when the answer cannot be stored. */
	if (!store_ready(ctx->store)) {
		store_not_open(ctx->store, err);
		goto done;
	}
	if (kakao_profile_fetch(ctx->kakao, token, &profile,
	    &resp->upstream_us, err) == -1)
		goto done;

	handler_login_from_profile(&profile, &login);
	rc = handler_login_finish(ctx, &login, resp, err);
done:
	explicit_bzero(token, sizeof(token));
	return rc;
}
