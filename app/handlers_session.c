/*
 * handlers_session.c: a session's life after its login.
 *
 *   POST /users/token/refresh  field refresh_token: rotation. The store
 *       decides in one transaction (store_session_refresh): a current
 *       token is rotated to its successor; a token rotated within
 *       refresh_reuse_window gets the same successor again (two tabs, a
 *       lost answer); one rotated earlier revokes its family
 *       (REFRESH_REUSED). The successor is derived from the presented
 *       token under the signing key (token_refresh_successor), so it can be
 *       answered again without ever being stored.
 *   POST /users/logout  our JWT; revokes its session, or with all=1 every
 *       session of its user.
 *
 * Browser sessions (refresh_cookie = yes): from an allowed Origin the
 * refresh token comes from the refresh cookie when the body has none,
 * and logout clears the cookie and revokes its session, with or without
 * a valid JWT. The cookie without an allowed Origin is refused (CSRF).
 *
 * Never touches curl, Berkeley DB, libjwt or libfcgi. Thread-safe: its
 * state is the worker's handler_ctx.
 */
#include <string.h>
#include <time.h>

#include "body.h"
#include "handlers.h"
#include "http_cookie.h"
#include "json_writer.h"
#include "store.h"
#include "store_session.h"
#include "token.h"

/* What a refresh computes from the presented token: its tag under every
 * key, its successor under keys[0] and that successor's tag. Wiped after. */
struct refresh_work {
	unsigned char	tags[MAX_REFRESH_CANDIDATES][STORE_TAG_LEN];
	char		successor[REFRESH_TOKEN_LEN + 1];
	unsigned char	raw[REFRESH_TOKEN_BYTES];
};

static int
refresh_prepare(struct handler_ctx *ctx, const char *token,
    struct refresh_work *w, struct store_refresh_in *in, struct kl_error *err)
{
	int	k, nkeys = ctx->token->nkeys;

	if (token_refresh_decode(token, w->raw, err) == -1)
		return -1;
	if (nkeys > MAX_REFRESH_CANDIDATES)
		nkeys = MAX_REFRESH_CANDIDATES;
	for (k = 0; k < nkeys; k++)
		if (token_tag_key(ctx->token, k, HANDLER_REFRESH_PURPOSE, token,
		    REFRESH_TOKEN_LEN, w->tags[k], err) == -1)
			return -1;
	if (token_refresh_successor(ctx->token, 0, token, w->successor,
	    err) == -1 ||
	    token_tag(ctx->token, HANDLER_REFRESH_PURPOSE, w->successor,
	    REFRESH_TOKEN_LEN, in->successor, err) == -1)
		return -1;
	in->tags = (const unsigned char (*)[STORE_TAG_LEN])w->tags;
	in->ntags = nkeys;
	in->now = time(NULL);
	return 0;
}

/*
 * A repeat within the window: the successor recorded at the rotation. It
 * is ours under keys[0] unless the keys changed in between (a restart
 * with a new first key): then it is the one of the key whose tag matches.
 */
static int
refresh_repeat(struct handler_ctx *ctx, const char *token,
    const struct store_refresh_out *out, struct refresh_work *w,
    struct kl_error *err)
{
	unsigned char	tag[STORE_TAG_LEN];
	int		k;

	for (k = 0; k < ctx->token->nkeys; k++) {
		if (token_refresh_successor(ctx->token, k, token,
		    w->successor, err) == -1 ||
		    token_tag_key(ctx->token, k, HANDLER_REFRESH_PURPOSE,
		    w->successor, REFRESH_TOKEN_LEN, tag, err) == -1)
			return -1;
		if (token_secret_equal(tag, sizeof(tag), out->successor,
		    sizeof(out->successor)))
			return 0;
	}
	return kl_fail(err, KL_BAD_REFRESH, "repeated refresh: no key derives "
	    "the recorded successor");
}

static int
refresh_decided(struct handler_ctx *ctx, const char *token,
    const struct store_refresh_out *out, struct refresh_work *w,
    struct http_response *resp, struct kl_error *err)
{
	struct token_subject	subj;

	switch (out->state) {
	case STORE_REFRESH_ROTATED:
		break;
	case STORE_REFRESH_REPEAT:
		if (refresh_repeat(ctx, token, out, w, err) == -1)
			return -1;
		break;
	case STORE_REFRESH_REUSED:
		resp->user_id = out->session.user_id;
		return kl_fail(err, KL_REFRESH_REUSED, "rotated refresh token "
		    "used again: session revoked");
	default:
		return kl_fail(err, KL_BAD_REFRESH, "refresh token unknown, "
		    "expired or revoked");
	}
	memset(&subj, 0, sizeof(subj));
	subj.user_id = out->session.user_id;
	subj.kakao_id = out->session.kakao_id;
	kl_hex_encode(subj.sid, out->session.sid, STORE_SID_LEN);
	return handler_answer_tokens(ctx, &subj, w->successor, NULL,
	    time(NULL), out->session.expires, resp, err);
}

/* The browser's cookie is gone for good: cleared with the answer (also a
 * failure's: error answers keep the handler's header lines). */
static void
cookie_clear(struct handler_ctx *ctx, struct http_response *resp)
{
	struct kl_error	herr;

	http_cookie_refresh_set(resp, ctx->cfg->refresh_cookie_secure, NULL,
	    0, &herr);
}

/* No refresh_token field: the refresh cookie, if the request may use it.
 * token holds REFRESH_TOKEN_LEN + 1 bytes. */
static int
refresh_from_cookie(struct handler_ctx *ctx, const struct http_request *req,
    struct http_response *resp, char *token, struct kl_error *err)
{
	int	found;

	if (!ctx->cfg->refresh_cookie ||
	    (found = handler_refresh_cookie(ctx, req, token)) == 0)
		return kl_fail(err, KL_BAD_REFRESH, "no refresh_token and no "
		    "refresh cookie");
	if (!resp->refresh_in_cookie) {
		explicit_bzero(token, REFRESH_TOKEN_LEN + 1);
		return kl_fail(err, KL_ORIGIN_NOT_ALLOWED, "the refresh cookie "
		    "without an allowed Origin");
	}
	if (found == 1)
		return 0;
	cookie_clear(ctx, resp);
	return kl_fail(err, KL_BAD_REFRESH, "refresh cookie sent twice or "
	    "malformed");
}

int
handler_token_refresh(struct handler_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct kl_error *err)
{
	struct refresh_work		w;
	struct store_refresh_in		in;
	struct store_refresh_out	out;
	char				cookie[REFRESH_TOKEN_LEN + 1];
	const char			*token;
	int				 rc = -1;

	memset(&in, 0, sizeof(in));
	resp->refresh_in_cookie = handler_cookie_mode(ctx, req);
	if ((token = body_get(req->fields, "refresh_token")) == NULL) {
		if (refresh_from_cookie(ctx, req, resp, cookie, err) == -1)
			return -1;
		token = cookie;
	}
	if (refresh_prepare(ctx, token, &w, &in, err) == 0 &&
	    store_session_refresh(ctx->store, &in, &out, err) == 0)
		rc = refresh_decided(ctx, token, &out, &w, resp, err);
	/* A cookie that refreshes nothing any more would be sent for ever. */
	if (rc == -1 && token == cookie && (err->status == KL_BAD_REFRESH ||
	    err->status == KL_REFRESH_REUSED))
		cookie_clear(ctx, resp);
	explicit_bzero(cookie, sizeof(cookie));
	explicit_bzero(&w, sizeof(w));
	explicit_bzero(&in.successor, sizeof(in.successor));
	return rc;
}

/*
 * Logout from a browser: the cookie is cleared in any case, and the
 * session it names revoked (*user_id its user; 0 when nothing was
 * revoked: no cookie, a malformed or unknown one).
 */
static int
logout_cookie(struct handler_ctx *ctx, const struct http_request *req,
    struct http_response *resp, uint64_t *user_id, struct kl_error *err)
{
	struct refresh_work	w;
	struct store_refresh_in	in;
	char			cookie[REFRESH_TOKEN_LEN + 1];
	int			rc = 0;

	*user_id = 0;
	memset(&in, 0, sizeof(in));
	cookie_clear(ctx, resp);
	if (handler_refresh_cookie(ctx, req, cookie) == 1 &&
	    refresh_prepare(ctx, cookie, &w, &in, err) == 0 &&
	    store_session_revoke_refresh(ctx->store, in.tags, in.ntags,
	    in.now, user_id, err) == -1 && err->status != KL_NOT_FOUND)
		rc = -1;
	explicit_bzero(cookie, sizeof(cookie));
	explicit_bzero(&w, sizeof(w));
	explicit_bzero(&in.successor, sizeof(in.successor));
	kl_error_clear(err);
	return rc;
}

/* Our JWT, checked on a scratch answer: after a cookie logout a stale
 * JWT fails nothing, and leaves no challenge on the 200. */
static int
logout_bearer(struct handler_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct token_claims *claims, bool quiet,
    struct kl_error *err)
{
	struct http_response	scratch;
	int			rc;

	if (!quiet)
		return handler_bearer(ctx, req, resp, claims, err);
	memset(&scratch, 0, sizeof(scratch));
	rc = handler_bearer(ctx, req, &scratch, claims, err);
	http_response_free(&scratch);
	if (rc == 0)
		resp->user_id = claims->user_id;
	return rc;
}

int
handler_logout(struct handler_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct kl_error *err)
{
	struct token_claims	 claims;
	unsigned char		 sid[STORE_SID_LEN];
	const char		*all = body_get(req->fields, "all");
	uint64_t		 by_cookie = 0;
	int			 n;

	if (all != NULL && strcmp(all, "1") != 0 && strcmp(all, "0") != 0)
		return kl_fail(err, KL_BAD_REQUEST, "all is neither 1 nor 0");
	if (handler_cookie_mode(ctx, req) &&
	    logout_cookie(ctx, req, resp, &by_cookie, err) == -1)
		return -1;
	if (by_cookie != 0) {
		/* The cookie's session is over; a JWT that is none or stale
		 * names nothing more to revoke, and all=1 is not taken from
		 * a cookie alone: every session needs our JWT. */
		if (req->authorization == NULL || logout_bearer(ctx, req,
		    resp, &claims, true, err) == -1) {
			kl_error_clear(err);
			resp->user_id = by_cookie;
			goto answer;
		}
	} else if (logout_bearer(ctx, req, resp, &claims, false, err) == -1)
		return -1;
	if (all != NULL && strcmp(all, "1") == 0) {
		if (store_session_revoke_user(ctx->store, claims.user_id,
		    STORE_REVOKE_LOGOUT, time(NULL), &n, err) == -1)
			return -1;
	} else if (handler_sid_parse(claims.sid, sid) == 0 &&
	    store_session_revoke(ctx->store, sid, claims.user_id,
	    STORE_REVOKE_LOGOUT, time(NULL), err) == -1 &&
	    err->status != KL_NOT_FOUND)
		return -1;
	/* A JWT from before sessions, or of a session swept already, has
	 * nothing left to revoke: logged out all the same. */
answer:
	jw_raw(&resp->body, "{\"message\":\"SUCCESS\"}");
	if (kl_buf_bad(&resp->body))
		return kl_fail(err, KL_INTERNAL, "out of memory for the answer");
	resp->status = 200;
	return 0;
}
