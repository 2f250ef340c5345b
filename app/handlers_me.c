/*
 * handlers_me.c: GET /users/me, who am I.
 *
 * The front end sends our own JWT (Authorization: Bearer <JWT>), as issued
 * by a login; the handler checks it with the token layer (HS256 pinned,
 * our own MAC check, exp, iss) and answers the user's record from the
 * store. A missing, duplicated, malformed, forged or expired token is 401
 * INVALID_ACCESS_TOKEN with WWW-Authenticate (RFC 6750). Never touches
 * curl, Berkeley DB, libjwt or libfcgi. Thread-safe: its state is the
 * worker's handler_ctx.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "handlers.h"
#include "json_writer.h"
#include "store.h"
#include "token.h"

#define BEARER_CHALLENGE	"Bearer error=\"invalid_token\""

/* Our JWT from "Bearer <JWT>" (only that scheme: our tokens were never
 * sent raw). jwt holds MAX_KAKAO_TOKEN + 1 bytes. */
static int
bearer_jwt(const struct http_request *req, char *jwt, struct kl_error *err)
{
	const char	*v = req->authorization;
	struct kl_error	 perr;

	if (req->authorization_count > 1)
		return kl_fail(err, KL_BAD_ACCESS_TOKEN, "duplicated "
		    "Authorization");
	while (v != NULL && (*v == ' ' || *v == '\t'))
		v++;
	if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0)
		return kl_fail(err, KL_BAD_ACCESS_TOKEN, "no Bearer token");
	if (handler_parse_authorization(v, jwt, &perr) == -1)
		return kl_fail(err, KL_BAD_ACCESS_TOKEN, "%s", perr.detail);
	return 0;
}

int
handler_users_me(struct handler_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct kl_error *err)
{
	struct token_claims	 claims;
	struct store_user	 user;
	struct kl_error		 terr, herr;
	char			 jwt[MAX_KAKAO_TOKEN + 1];
	int			 rc = -1;

	if (bearer_jwt(req, jwt, err) == -1)
		goto done;
	if (token_verify(ctx->token, jwt, time(NULL), &claims, &terr) == -1) {
		kl_fail(err, KL_BAD_ACCESS_TOKEN, "%s", terr.detail);
		goto done;
	}
	resp->user_id = claims.user_id;
	if (store_user_get_by_id(ctx->store, claims.user_id, &user, err) ==
	    -1) {
		/* A valid token of a user the store does not know (a store
		 * restored from before the login) names no one. */
		if (err->status == KL_NOT_FOUND)
			kl_fail(err, KL_BAD_ACCESS_TOKEN, "no user %llu",
			    (unsigned long long)claims.user_id);
		goto done;
	}
	jw_raw(&resp->body, "{\"message\":\"SUCCESS\",\"user\":");
	handler_write_user(&resp->body, &user);
	jw_raw(&resp->body, "}");
	if (kl_buf_bad(&resp->body)) {
		kl_fail(err, KL_INTERNAL, "out of memory for the answer");
		goto done;
	}
	resp->status = 200;
	rc = 0;
done:
	if (rc == -1 && err->status == KL_BAD_ACCESS_TOKEN)
		http_response_header(resp, "WWW-Authenticate",
		    BEARER_CHALLENGE, &herr);
	explicit_bzero(jwt, sizeof(jwt));
	return rc;
}
