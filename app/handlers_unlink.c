/*
 * handlers_unlink.c: unlinks, both ways.
 *
 *   GET or POST /users/kakao/unlink: Kakao tells us a user unlinked our app
 *       (or deleted their Kakao account): Authorization: KakaoAK <admin
 *       key>, and app_id, user_id, referrer_type in the query (GET) or a
 *       form body (POST). The key is compared in constant time, app_id
 *       must be kakao_app_id; then the user becomes unlinked (personal data
 *       cleared, sessions revoked; the id stays for a later login) and the
 *       answer is 200, also for users we do not know and for repeats, well
 *       within Kakao's 3 s (one store transaction, no call out).
 *   handler_unlink_retry: the maintenance thread's sender of the unlinks a
 *       deletion queued and could not send at once.
 *
 * Never touches curl, Berkeley DB, libjwt or libfcgi. Thread-safe: its
 * state is the caller's handler_ctx.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "body.h"
#include "handlers.h"
#include "json_writer.h"
#include "kakao.h"
#include "log.h"
#include "store.h"
#include "store_session.h"
#include "token.h"

#define KAKAO_AK	"KakaoAK "

/* A positive decimal int64 of at most 19 digits, nothing else. */
static int
parse_id(const char *s, int64_t *out)
{
	char		*end;
	long long	 v;
	size_t		 i, n;

	if (s == NULL || (n = strlen(s)) == 0 || n > 19)
		return -1;
	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return -1;
	*out = v;
	return 0;
}

/* Kakao's referrer types are upper-case words joined by '_'. */
static bool
referrer_ok(const char *s)
{
	size_t	n;

	if (s == NULL)
		return true;
	if ((n = strlen(s)) == 0 || n > MAX_UNLINK_PARAM)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == n;
}

/* Authorization: KakaoAK <admin key>, the key compared in constant time. */
static int
unlink_check_key(struct handler_ctx *ctx, const struct http_request *req,
    struct kl_error *err)
{
	const char	*v = req->authorization;

	if (req->authorization_count != 1 || v == NULL ||
	    strncmp(v, KAKAO_AK, sizeof(KAKAO_AK) - 1) != 0)
		return kl_fail(err, KL_UNAUTHORIZED, "no KakaoAK "
		    "Authorization");
	v += sizeof(KAKAO_AK) - 1;
	if (strlen(v) > MAX_ADMIN_KEY ||
	    !token_secret_equal(v, strlen(v), ctx->admin_key,
	    ctx->admin_key_len))
		return kl_fail(err, KL_UNAUTHORIZED, "wrong admin key");
	return 0;
}

int
handler_kakao_unlink(struct handler_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct kl_error *err)
{
	const char	*referrer;
	int64_t		 app_id, kakao_id;
	uint64_t	 user_id;
	bool		 known, more;
	int		 n;

	if (ctx->admin_key == NULL || ctx->cfg->kakao_app_id == 0)
		return kl_fail(err, KL_NOT_CONFIGURED, "the unlink callback "
		    "needs kakao_admin_key_file and kakao_app_id");
	if (unlink_check_key(ctx, req, err) == -1)
		return -1;
	if (parse_id(body_get(req->fields, "app_id"), &app_id) == -1 ||
	    app_id != ctx->cfg->kakao_app_id)
		return kl_fail(err, KL_UNAUTHORIZED, "app_id is not ours");
	referrer = body_get(req->fields, "referrer_type");
	if (parse_id(body_get(req->fields, "user_id"), &kakao_id) == -1 ||
	    !referrer_ok(referrer))
		return kl_fail(err, KL_BAD_REQUEST, "user_id or referrer_type "
		    "malformed");
	if (store_user_unlink(ctx->store, kakao_id, time(NULL), &known,
	    &user_id, &more, err) == -1)
		return -1;
	if (more && store_session_revoke_user(ctx->store, user_id,
	    STORE_REVOKE_UNLINKED, time(NULL), &n, err) == -1)
		return -1;
	resp->user_id = user_id;
	jw_raw(&resp->body, "{\"message\":\"SUCCESS\"}");
	if (kl_buf_bad(&resp->body))
		return kl_fail(err, KL_INTERNAL, "out of memory for the answer");
	resp->status = 200;
	return 0;
}

/* One queued unlink, taken already: sent, then off the queue. */
static void
retry_one(struct handler_ctx *ctx, const struct store_unlink_job *job)
{
	struct store_user	u;
	struct kl_error		kerr;
	bool			already = false;

	/* Logged in again since (the login drops the job, but this one was
	 * taken before): the new account keeps its link at Kakao. */
	if (store_user_get(ctx->store, job->kakao_id, &u, &kerr) == 0) {
		if (store_unlink_done(ctx->store, job->kakao_id, &kerr) == 0)
			log_info("queued unlink of deleted user %llu dropped: "
			    "its Kakao user has an account again",
			    (unsigned long long)job->user_id);
		return;
	}
	if (kerr.status != KL_NOT_FOUND)
		return;
	if (kakao_user_unlink(ctx->kakao, job->kakao_id, &already,
	    &kerr) == -1) {
		log_warn("queued unlink of deleted user %llu, try %u: %s",
		    (unsigned long long)job->user_id, job->attempts,
		    kerr.detail);
		return;
	}
	if (store_unlink_done(ctx->store, job->kakao_id, &kerr) == -1)
		log_warn("queued unlink of deleted user %llu sent, but stays "
		    "queued: %s", (unsigned long long)job->user_id,
		    kerr.detail);
	else
		log_info("queued unlink of deleted user %llu sent%s",
		    (unsigned long long)job->user_id,
		    already ? " (Kakao had unlinked it already)" : "");
}

int
handler_unlink_retry(struct handler_ctx *ctx, time_t now,
    struct kl_error *err)
{
	struct store_unlink_job	job;
	int			i;

	if (ctx->admin_key == NULL || !store_ready(ctx->store))
		return 0;
	for (i = 0; i < UNLINK_BATCH; i++) {
		if (store_unlink_next(ctx->store, now,
		    ctx->cfg->unlink_retry_interval, &job, err) == -1)
			return err->status == KL_NOT_FOUND ? i : -1;
		retry_one(ctx, &job);
	}
	return i;
}
