/*
 * handlers_me.c: /users/me, with our own JWT (Authorization: Bearer <JWT>,
 * checked by handler_bearer: HS256 pinned, our MAC, exp, iss, and the
 * session with verify_revocation).
 *
 *   GET     who am I: the user's record as stored.
 *   DELETE  account deletion: the record and its personal data go, the id
 *           is retired, every session revoked and an unlink queued, in one
 *           store transaction; then the unlink is sent to Kakao at once
 *           and, when that works, taken off the queue (otherwise the
 *           maintenance thread retries it: handlers_unlink.c). Answered 200
 *           once the deletion is committed, whatever Kakao does.
 *
 * Never touches curl, Berkeley DB, libjwt or libfcgi. Thread-safe: its
 * state is the worker's handler_ctx.
 */
#include <string.h>
#include <time.h>

#include "handlers.h"
#include "json_writer.h"
#include "kakao.h"
#include "log.h"
#include "store.h"
#include "store_session.h"
#include "token.h"

static int
me_get(struct handler_ctx *ctx, const struct token_claims *claims,
    struct http_response *resp, struct kl_error *err)
{
	struct store_user	user;

	if (store_user_get_by_id(ctx->store, claims->user_id, &user, err) ==
	    -1) {
		/* A valid token of a user the store does not know (deleted,
		 * or a store restored from before the login) names no one. */
		if (err->status == KL_NOT_FOUND)
			kl_fail(err, KL_BAD_ACCESS_TOKEN, "no user %llu",
			    (unsigned long long)claims->user_id);
		return -1;
	}
	jw_raw(&resp->body, "{\"message\":\"SUCCESS\",\"user\":");
	handler_write_user(&resp->body, &user);
	jw_raw(&resp->body, "}");
	if (kl_buf_bad(&resp->body))
		return kl_fail(err, KL_INTERNAL, "out of memory for the answer");
	resp->status = 200;
	return 0;
}

/* The unlink of a deletion, tried once now; a failure leaves it queued. */
static void
me_unlink_now(struct handler_ctx *ctx, const struct store_user *was)
{
	struct kl_error	kerr;
	bool		already = false;

	if (kakao_user_unlink(ctx->kakao, was->kakao_id, &already,
	    &kerr) == -1) {
		log_warn("user %llu deleted; its Kakao unlink is queued: %s",
		    (unsigned long long)was->user_id, kerr.detail);
		return;
	}
	if (store_unlink_done(ctx->store, was->kakao_id, &kerr) == -1)
		log_warn("user %llu unlinked at Kakao, but the queue keeps it "
		    "(sent again later): %s",
		    (unsigned long long)was->user_id, kerr.detail);
}

static int
me_delete(struct handler_ctx *ctx, const struct token_claims *claims,
    struct http_response *resp, struct kl_error *err)
{
	struct store_user	was;
	bool			more = false;
	int			n;

	/* Deleted here but still linked at Kakao is no deletion. */
	if (ctx->admin_key == NULL)
		return kl_fail(err, KL_NOT_CONFIGURED, "account deletion needs "
		    "kakao_admin_key_file");
	if (store_user_delete(ctx->store, claims->user_id, time(NULL),
	    ctx->cfg->unlink_retry_interval, &was, &more, err) == -1) {
		if (err->status == KL_NOT_FOUND)
			kl_fail(err, KL_BAD_ACCESS_TOKEN, "no user %llu",
			    (unsigned long long)claims->user_id);
		return -1;
	}
	if (more && store_session_revoke_user(ctx->store, claims->user_id,
	    STORE_REVOKE_DELETED, time(NULL), &n, err) == -1)
		return -1;
	me_unlink_now(ctx, &was);
	jw_raw(&resp->body, "{\"message\":\"SUCCESS\"}");
	if (kl_buf_bad(&resp->body))
		return kl_fail(err, KL_INTERNAL, "out of memory for the answer");
	resp->status = 200;
	return 0;
}

int
handler_users_me(struct handler_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct kl_error *err)
{
	struct token_claims	claims;
	int			rc;

	if (handler_bearer(ctx, req, resp, &claims, err) == -1)
		return -1;
	if (req->method_bit == HTTP_DELETE)
		rc = me_delete(ctx, &claims, resp, err);
	else
		rc = me_get(ctx, &claims, resp, err);
	if (rc == -1 && err->status == KL_BAD_ACCESS_TOKEN)
		handler_bearer_challenge(resp);
	return rc;
}
