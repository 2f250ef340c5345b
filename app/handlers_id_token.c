/*
 * handlers_id_token.c: POST /users/kakao/id-token, sign in with an OpenID
 * Connect id_token (what Kakao's mobile SDKs hand an app, and what
 * Supabase Auth's signInWithIdToken takes).
 *
 * The id_token is verified by the token layer against Kakao's keys
 * (cached per process): RS256 only, iss, aud (one of our app keys), exp,
 * iat, nonce, sub. With the keys cached and no access_token, the login
 * makes no call to Kakao at all and the profile comes from the id_token's
 * claims; with a Kakao access_token beside it, the profile comes from
 * /v2/user/me as in the token login, and must be the same user. Never
 * touches curl, Berkeley DB, libjwt or libfcgi.
 */
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "body.h"
#include "handlers.h"
#include "kakao.h"
#include "store.h"
#include "token_oidc.h"

/* Every app key an id_token of ours may be issued to: the REST API key
 * (web), the native app keys (mobile SDKs), the JavaScript key. */
static int
audiences(const struct config *cfg, const char **aud)
{
	int	i, n = 0;

	if (cfg->kakao_rest_api_key[0] != '\0')
		aud[n++] = cfg->kakao_rest_api_key;
	for (i = 0; i < cfg->n_native_app_keys; i++)
		aud[n++] = cfg->native_app_key[i];
	if (cfg->kakao_javascript_key[0] != '\0')
		aud[n++] = cfg->kakao_javascript_key;
	return n;
}

static int
id_token_input(const struct http_request *req, const char **id_token,
    const char **nonce, const char **access_token, struct kl_error *err)
{
	if (req->fields == NULL)
		return kl_fail(err, KL_BAD_REQUEST, "no body fields");
	*id_token = body_get(req->fields, "id_token");
	*nonce = body_get(req->fields, "nonce");
	*access_token = body_get(req->fields, "access_token");
	if (*id_token == NULL || **id_token == '\0')
		return kl_fail(err, KL_BAD_REQUEST, "no id_token");
	if (strlen(*id_token) > MAX_ID_TOKEN)
		return kl_fail(err, KL_BAD_REQUEST, "id_token over %d bytes",
		    MAX_ID_TOKEN);
	if (*nonce != NULL && (**nonce == '\0' ||
	    strlen(*nonce) > MAX_NONCE))
		return kl_fail(err, KL_BAD_REQUEST, "nonce empty or over %d "
		    "bytes", MAX_NONCE);
	if (*access_token != NULL && **access_token == '\0')
		return kl_fail(err, KL_BAD_REQUEST, "empty access_token");
	return 0;
}

/* The profile from the id_token's claims: what the user consented to
 * share, nothing more (an e-mail is verified only when a claim says so). */
static void
login_from_claims(const struct token_id_claims *c, struct store_login *in)
{
	memset(in, 0, sizeof(*in));
	in->kakao_id = c->sub;
	in->nickname = c->has_nickname ? c->nickname : NULL;
	in->email = c->has_email ? c->email : NULL;
	in->email_verified = c->has_email && c->email_verified;
	in->profile_image = c->has_picture ? c->picture : NULL;
}

/* The profile from /v2/user/me with the access token that came along; it
 * must be the id_token's user (no pairing of one user's id_token with
 * another's access token). */
static int
login_from_kakao(struct handler_ctx *ctx, const char *access_token,
    const struct token_id_claims *c, struct kakao_profile *p,
    struct store_login *in, long *upstream_us, struct kl_error *err)
{
	char	token[MAX_KAKAO_TOKEN + 1];
	int	rc = -1;

	if (handler_parse_authorization(access_token, token, err) == -1)
		return -1;
	if (kakao_profile_fetch(ctx->kakao, token, p, upstream_us, err) == -1)
		goto done;
	if (p->id != c->sub) {
		kl_fail(err, KL_BAD_ID_TOKEN, "access_token is another "
		    "user's than the id_token's sub");
		goto done;
	}
	handler_login_from_profile(p, in);
	rc = 0;
done:
	explicit_bzero(token, sizeof(token));
	return rc;
}

int
handler_kakao_id_token(struct handler_ctx *ctx,
    const struct http_request *req, struct http_response *resp,
    struct kl_error *err)
{
	struct token_oidc_expect	 ex;
	struct token_id_claims		 claims;
	struct kakao_profile		 profile;
	struct store_login		 login;
	const char			*aud[MAX_NATIVE_APP_KEYS + 2];
	const char			*id_token = NULL, *nonce = NULL;
	const char			*access_token = NULL;

	resp->refresh_in_cookie = handler_cookie_mode(ctx, req);
	memset(&ex, 0, sizeof(ex));
	if ((ex.n_audiences = audiences(ctx->cfg, aud)) == 0)
		return kl_fail(err, KL_NOT_CONFIGURED, "no app key set "
		    "(kakao_rest_api_key, kakao_native_app_keys, "
		    "kakao_javascript_key)");
	if (id_token_input(req, &id_token, &nonce, &access_token, err) == -1)
		return -1;
	if (!store_ready(ctx->store))
		return store_not_open(ctx->store, err);
	ex.issuer = ctx->cfg->oidc_issuer;
	ex.audiences = aud;
	ex.nonce = nonce;
	ex.skew_s = ctx->cfg->oidc_clock_skew;
	ex.now = time(NULL);
	if (token_id_token_verify(ctx->jwks, id_token, &ex, &claims, err) == -1)
		return -1;
	if (access_token == NULL)
		login_from_claims(&claims, &login);
	else if (login_from_kakao(ctx, access_token, &claims, &profile,
	    &login, &resp->upstream_us, err) == -1)
		return -1;
	return handler_login_finish(ctx, &login, resp, err);
}
