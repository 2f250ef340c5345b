/*
 * handlers_code.c: POST /users/kakao/callback, the authorization code flow.
 *
 * The front end sent the user to Kakao's authorize page and got a code
 * back on its redirect URI; it posts the code here (form or JSON) with
 * that redirect URI, its PKCE code_verifier and the OpenID Connect nonce
 * when it used them. The handler checks the redirect URI against
 * redirect_uris, exchanges the code at kauth (the REST API key and the
 * client secret never leave the server), verifies the id_token when Kakao
 * sends one, fetches the profile and finishes the login like the token
 * login.
 *
 * The double submit (React StrictMode, a double click, a retry) is
 * answered from the store: the first request claims the code (a keyed
 * hash of it), the others poll until it is done and, with the same
 * verifier, get the same user and a fresh token of ours without asking
 * Kakao again. Kakao's access token lives on this thread's stack for the
 * call only; its refresh token is never kept (no route of ours uses it).
 * Never touches curl, Berkeley DB, libjwt or libfcgi.
 */
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "body.h"
#include "handlers.h"
#include "kakao.h"
#include "kakao_auth.h"
#include "kl_clock.h"
#include "log.h"
#include "store.h"
#include "store_code.h"
#include "token.h"
#include "token_oidc.h"

struct callback_input {
	const char	*code;
	const char	*redirect_uri;
	const char	*code_verifier;	/* NULL: no PKCE */
	const char	*nonce;		/* NULL: none */
};

/* RFC 6749's code and RFC 7636's verifier are made of unreserved
 * characters: anything else is no code Kakao issued. */
static bool
is_unreserved(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' ||
		    *s == '_' || *s == '~'))
			return false;
	return true;
}

static int
callback_input(const struct http_request *req, struct callback_input *in,
    struct kl_error *err)
{
	size_t	len;

	memset(in, 0, sizeof(*in));
	if (req->fields == NULL)
		return kl_fail(err, KL_BAD_REQUEST, "no body fields");
	in->code = body_get(req->fields, "code");
	in->redirect_uri = body_get(req->fields, "redirect_uri");
	in->code_verifier = body_get(req->fields, "code_verifier");
	in->nonce = body_get(req->fields, "nonce");
	if (in->code == NULL || *in->code == '\0')
		return kl_fail(err, KL_BAD_REQUEST, "no code");
	if (strlen(in->code) > MAX_CODE)
		return kl_fail(err, KL_BAD_REQUEST, "code over %d bytes",
		    MAX_CODE);
	if (!is_unreserved(in->code))
		return kl_fail(err, KL_INVALID_CODE, "code with characters no "
		    "code has");
	if (in->redirect_uri == NULL || *in->redirect_uri == '\0')
		return kl_fail(err, KL_BAD_REQUEST, "no redirect_uri");
	if (in->code_verifier != NULL) {
		len = strlen(in->code_verifier);
		if (len < MIN_CODE_VERIFIER || len > MAX_CODE_VERIFIER ||
		    !is_unreserved(in->code_verifier))
			return kl_fail(err, KL_BAD_REQUEST, "code_verifier of "
			    "%zu characters or outside RFC 7636's alphabet",
			    len);
	}
	if (in->nonce != NULL && (*in->nonce == '\0' ||
	    strlen(in->nonce) > MAX_NONCE))
		return kl_fail(err, KL_BAD_REQUEST, "nonce empty or over %d "
		    "bytes", MAX_NONCE);
	return 0;
}

/* Exactly one of redirect_uris, byte for byte: no prefix, case or
 * trailing-slash match, so an attacker's URI cannot pass for ours. */
static int
redirect_allowed(const struct config *cfg, const char *uri,
    struct kl_error *err)
{
	int	i;

	for (i = 0; i < cfg->n_redirect_uris; i++)
		if (strcmp(cfg->redirect_uri[i], uri) == 0)
			return 0;
	return kl_fail(err, KL_REDIRECT_MISMATCH, "redirect_uri is not one "
	    "of redirect_uris");
}

/* The keyed hashes the store keeps instead of the code and verifier. The
 * verifier's is bound to the redirect URI and the nonce too, so a repeat
 * must match the first request in all three. */
static int
callback_tags(struct handler_ctx *ctx, const struct callback_input *in,
    unsigned char code_tag[STORE_TAG_LEN],
    unsigned char verifier_tag[STORE_TAG_LEN], struct kl_error *err)
{
	char		 buf[MAX_CODE_VERIFIER + MAX_URL_LEN + MAX_NONCE + 3];
	const char	*parts[3];
	size_t		 len = 0, n;
	int		 i, rc;

	if (token_tag(ctx->token, "code", in->code, strlen(in->code),
	    code_tag, err) == -1)
		return -1;
	if (in->code_verifier == NULL)
		return 0;
	parts[0] = in->code_verifier;
	parts[1] = in->redirect_uri;
	parts[2] = in->nonce != NULL ? in->nonce : "";
	/* NUL-separated: no part holds a NUL (the body parser refuses it). */
	for (i = 0; i < 3; i++) {
		n = strlen(parts[i]);
		if (len + n + 1 > sizeof(buf))
			return kl_fail(err, KL_BAD_REQUEST, "redirect_uri too "
			    "long");
		memcpy(buf + len, parts[i], n + 1);
		len += n + 1;
	}
	rc = token_tag(ctx->token, in->nonce != NULL ? "verifier+nonce" :
	    "verifier", buf, len, verifier_tag, err);
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

/* The id_token of a code exchange: issued to our REST API key. */
static int
callback_id_token(struct handler_ctx *ctx, const char *id_token,
    const char *nonce, int64_t kakao_id, struct kl_error *err)
{
	struct token_oidc_expect	 ex;
	struct token_id_claims		 claims;
	const char			*aud[1];

	aud[0] = ctx->cfg->kakao_rest_api_key;
	memset(&ex, 0, sizeof(ex));
	ex.issuer = ctx->cfg->oidc_issuer;
	ex.audiences = aud;
	ex.n_audiences = 1;
	ex.nonce = nonce;
	ex.skew_s = ctx->cfg->oidc_clock_skew;
	ex.now = time(NULL);
	if (token_id_token_verify(ctx->jwks, id_token, &ex, &claims,
	    err) == -1)
		return -1;
	if (claims.sub != kakao_id)
		return kl_fail(err, KL_BAD_ID_TOKEN, "id_token sub differs "
		    "from the profile's id");
	return 0;
}

/* The first request for a code: exchange, check, fetch, log in. */
static int
callback_exchange(struct handler_ctx *ctx, const struct callback_input *in,
    struct http_response *resp, int64_t *kakao_id, struct kl_error *err)
{
	struct kakao_code_request	 rq;
	struct kakao_code_result	 res;
	struct kakao_profile		 profile;
	struct store_login		 login;
	long				 us = 0;
	int				 rc = -1;

	memset(&res, 0, sizeof(res));
	rq.code = in->code;
	rq.redirect_uri = in->redirect_uri;
	rq.code_verifier = in->code_verifier;
	if (kakao_code_exchange(ctx->kakao, &rq, &res, &resp->upstream_us,
	    err) == -1)
		goto done;
	/* A nonce binds the login to the front end's session only through
	 * an id_token: without one it would be silently unchecked. */
	if (in->nonce != NULL && res.id_token == NULL) {
		kl_fail(err, KL_BAD_ID_TOKEN, "nonce sent but Kakao answered "
		    "no id_token (openid scope?)");
		goto done;
	}
	if (kakao_profile_fetch(ctx->kakao, res.access_token, &profile, &us,
	    err) == -1)
		goto done;
	resp->upstream_us += us;
	if (res.id_token != NULL && callback_id_token(ctx, res.id_token,
	    in->nonce, profile.id, err) == -1)
		goto done;
	handler_login_from_profile(&profile, &login);
	*kakao_id = profile.id;
	rc = handler_login_finish(ctx, &login, resp, err);
done:
	kakao_code_result_wipe(&res);
	return rc;
}

/* Claims the code, or waits for the request that claimed it: every
 * outcome but PENDING ends the wait. A waiting request holds one of the
 * gate's waiting places (so duplicates cannot take every thread), and
 * gives up after the time the first needs at most (two Kakao calls). */
static int
callback_claim(struct handler_ctx *ctx, const struct callback_input *in,
    const unsigned char *code_tag, const unsigned char *verifier_tag,
    struct store_code_outcome *o, struct kl_error *err)
{
	long long	deadline = 0;
	bool		waiting = false;
	int		rc = -1;

	for (;;) {
		if (store_code_claim(ctx->store, code_tag, in->code_verifier ?
		    verifier_tag : NULL, time(NULL), o, err) == -1)
			goto done;
		if (o->state != STORE_CODE_PENDING)
			break;
		if (!waiting) {
			if (kakao_wait_begin(ctx->kakao, err) == -1)
				goto done;
			waiting = true;
			deadline = kl_mono_ms() +
			    2 * ctx->cfg->upstream_timeout_ms + 1000;
		}
		if (kl_mono_ms() >= deadline) {
			kl_fail(err, KL_KAKAO_TIMEOUT, "the first exchange of "
			    "this code did not finish");
			goto done;
		}
		usleep(CODE_POLL_MS * 1000);
	}
	rc = 0;
done:
	if (waiting)
		kakao_wait_end(ctx->kakao);
	return rc;
}

/* A repeat within the window, with the first one's verifier: the same
 * user, a fresh token of ours, no Kakao call, no login counted. */
static int
callback_repeat(struct handler_ctx *ctx, const struct store_code_outcome *o,
    struct http_response *resp, struct kl_error *err)
{
	struct store_user	user;

	if (store_user_get(ctx->store, o->kakao_id, &user, err) == -1)
		return -1;
	return handler_answer_login(ctx, &user, time(NULL), resp, err);
}

int
handler_kakao_callback(struct handler_ctx *ctx,
    const struct http_request *req, struct http_response *resp,
    struct kl_error *err)
{
	struct callback_input		 in;
	struct store_code_outcome	 o;
	struct kl_error			 aerr;
	unsigned char			 code_tag[STORE_TAG_LEN];
	unsigned char			 verifier_tag[STORE_TAG_LEN];
	const struct config		*cfg = ctx->cfg;
	int64_t				 kakao_id = 0;
	int				 rc;

	resp->refresh_in_cookie = handler_cookie_mode(ctx, req);
	if (cfg->kakao_rest_api_key[0] == '\0' || cfg->n_redirect_uris == 0)
		return kl_fail(err, KL_NOT_CONFIGURED, "kakao_rest_api_key or "
		    "redirect_uris not set");
	if (callback_input(req, &in, err) == -1 ||
	    redirect_allowed(cfg, in.redirect_uri, err) == -1)
		return -1;
	if (!store_ready(ctx->store))
		return store_not_open(ctx->store, err);
	if (callback_tags(ctx, &in, code_tag, verifier_tag, err) == -1)
		return -1;

	if (callback_claim(ctx, &in, code_tag, verifier_tag, &o, err) == -1)
		return -1;
	switch (o.state) {
	case STORE_CODE_DONE:
		return callback_repeat(ctx, &o, resp, err);
	case STORE_CODE_REFUSED:
		return kl_fail(err, KL_INVALID_CODE, "code posted again "
		    "without the first request's code_verifier");
	default:
		break;
	}
	/* A failure to record the outcome does not change the answer: the
	 * claim then expires by itself (CODE_PENDING_MAX_S), and a repeat
	 * meanwhile gets no second login out of it. */
	if ((rc = callback_exchange(ctx, &in, resp, &kakao_id, err)) == 0) {
		if (store_code_finish(ctx->store, code_tag, &o, kakao_id,
		    resp->user_id, time(NULL), &aerr) == -1)
			log_warn("code record not finished (a repeat will be "
			    "refused): %s", aerr.detail);
	} else if (store_code_abandon(ctx->store, code_tag, &o, &aerr) == -1)
		log_warn("code record not abandoned: %s", aerr.detail);
	return rc;
}
