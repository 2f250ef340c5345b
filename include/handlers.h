/*
 * handlers.h: one function per route, one file per route family. A handler
 * validates its input, calls the layers below (kakao, store, token) and
 * chooses the answer; it never calls curl, Berkeley DB or libjwt itself,
 * and never sees libfcgi (requests and answers are http.h's types).
 *
 *   app/handlers.c		what the families share: the Authorization
 *				parser, finishing a login, the login answer
 *   app/handlers_login.c	GET/POST /users/kakao/login (a Kakao token)
 *   app/handlers_code.c	POST /users/kakao/callback (the code flow)
 *   app/handlers_id_token.c	POST /users/kakao/id-token (OpenID Connect)
 *   app/handlers_me.c		GET /users/me (who am I), DELETE /users/me
 *				(account deletion)
 *   app/handlers_session.c	POST /users/token/refresh, POST /users/logout
 *   app/handlers_unlink.c	GET/POST /users/kakao/unlink (Kakao's notice),
 *				and the retries of queued unlinks
 *   app/handlers_verify.c	GET /auth/verify (nginx auth_request)
 *   app/handlers_health.c	GET /healthz (liveness), GET /readyz
 *				(readiness)
 *   app/handlers_metrics.c	GET /metrics (Prometheus text)
 */
#ifndef KL_HANDLERS_H
#define KL_HANDLERS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "http.h"
#include "kl_error.h"

struct kakao_client;
struct kakao_profile;
struct store;
struct store_login;
struct store_user;
struct token_ctx;
struct token_jwks_cache;

/* What a handler may use; one per worker thread, filled by main before the
 * thread starts. A new dependency is a new member here (and a line in
 * main), never a change to the fcgi layer, which only holds a pointer. */
struct handler_ctx {
	const struct config	*cfg;
	const struct token_ctx	*token;
	struct store		*store;
	struct kakao_client	*kakao;
	struct token_jwks_cache	*jwks;		/* the process's, shared */
	/* kakao_admin_key_file's bytes (main's, wiped at exit); NULL when
	 * not configured. */
	const unsigned char	*admin_key;
	size_t			 admin_key_len;
};

typedef int (*handler_fn)(struct handler_ctx *, const struct http_request *,
    struct http_response *, struct kl_error *);

/* handlers_login.c: GET or POST /users/kakao/login */
int	handler_login(struct handler_ctx *ctx, const struct http_request *req,
	    struct http_response *resp, struct kl_error *err);

/* handlers_code.c: POST /users/kakao/callback, fields code, redirect_uri,
 * code_verifier (PKCE), nonce. */
int	handler_kakao_callback(struct handler_ctx *ctx,
	    const struct http_request *req, struct http_response *resp,
	    struct kl_error *err);

/* handlers_id_token.c: POST /users/kakao/id-token, fields id_token,
 * nonce, access_token. */
int	handler_kakao_id_token(struct handler_ctx *ctx,
	    const struct http_request *req, struct http_response *resp,
	    struct kl_error *err);

/* handlers_me.c: GET /users/me with Authorization: Bearer <our JWT>. */
int	handler_users_me(struct handler_ctx *ctx,
	    const struct http_request *req, struct http_response *resp,
	    struct kl_error *err);

/* handlers_session.c: POST /users/token/refresh (field refresh_token) and
 * POST /users/logout (our JWT; optional field all=1). */
int	handler_token_refresh(struct handler_ctx *ctx,
	    const struct http_request *req, struct http_response *resp,
	    struct kl_error *err);
int	handler_logout(struct handler_ctx *ctx, const struct http_request *req,
	    struct http_response *resp, struct kl_error *err);

/* handlers_unlink.c: Kakao's unlink callback, GET or POST. */
int	handler_kakao_unlink(struct handler_ctx *ctx,
	    const struct http_request *req, struct http_response *resp,
	    struct kl_error *err);

/* handlers_unlink.c: sends at most UNLINK_BATCH queued unlinks that are
 * due (the maintenance thread, once a second, with a handler_ctx of its
 * own). Returns how many were sent or found done; -1 on a store failure
 * (err says why). Kakao's failures leave the job queued for later. */
int	handler_unlink_retry(struct handler_ctx *ctx, time_t now,
	    struct kl_error *err);

/* handlers_verify.c: GET /auth/verify, for nginx auth_request. */
int	handler_auth_verify(struct handler_ctx *ctx,
	    const struct http_request *req, struct http_response *resp,
	    struct kl_error *err);

/* handlers_health.c: GET /healthz, 200 {"message":"OK"} with no
 * dependency at all; GET /readyz, 200 {"message":"READY"} when the config
 * is loaded and the store proved a write (store_probe), else
 * KL_NOT_READY with resp->reason set. */
int	handler_healthz(struct handler_ctx *ctx,
	    const struct http_request *req, struct http_response *resp,
	    struct kl_error *err);
int	handler_readyz(struct handler_ctx *ctx,
	    const struct http_request *req, struct http_response *resp,
	    struct kl_error *err);
/* The fixed reason phrase /readyz answers for a store health (an enum
 * store_health); NULL for STORE_HEALTH_OK. */
const char	*handler_ready_reason(int health);
/* handlers_metrics.c: GET /metrics, the shared counters as Prometheus
 * text; 503 METRICS_UNAVAILABLE when this process has no shared region. */
int	handler_metrics(struct handler_ctx *ctx,
	    const struct http_request *req, struct http_response *resp,
	    struct kl_error *err);

/* handlers.c, shared by the families. */

/* Our JWT from Authorization: Bearer, checked by the token layer and, with
 * verify_revocation, against its session in the store (absent, revoked or
 * expired: refused; a JWT without sid is refused too). Fills claims.
 * Failures: KL_BAD_ACCESS_TOKEN, with WWW-Authenticate added to resp;
 * KL_STORE_FAILED. */
struct token_claims;
int	handler_bearer(struct handler_ctx *ctx, const struct http_request *req,
	    struct http_response *resp, struct token_claims *claims,
	    struct kl_error *err);

/* Adds WWW-Authenticate: Bearer error="invalid_token" (RFC 6750) to a 401
 * INVALID_ACCESS_TOKEN answer. */
void	handler_bearer_challenge(struct http_response *resp);

/* The sid claim's hex into its bytes; -1 when it is not SID_HEX_LEN
 * lowercase hex. */
int	handler_sid_parse(const char *hex, unsigned char *sid);

/* What a login records of a Kakao profile (its strings stay in p). */
void	handler_login_from_profile(const struct kakao_profile *p,
	    struct store_login *in);

/* The user object of our answers ({"id":..,"kakao_id":..,...}). */
struct kl_buf;
void	handler_write_user(struct kl_buf *b, const struct store_user *u);

/* Extracts the Kakao access token from an Authorization value: the raw
 * token (as the old front end sends it) or "Bearer <token>". The token must
 * be a token68 (RFC 7235) of at most MAX_KAKAO_TOKEN characters; anything
 * else is KL_BAD_TOKEN. token must hold MAX_KAKAO_TOKEN + 1 bytes. */
int	handler_parse_authorization(const char *value, char *token,
	    struct kl_error *err);

/* The end of every login route: records the login of in and opens its
 * session (one store transaction), issues our JWT and a refresh token and
 * writes the login answer into resp (status 200). */
int	handler_login_finish(struct handler_ctx *ctx,
	    const struct store_login *in, struct http_response *resp,
	    struct kl_error *err);

/* The token_tag() purpose of refresh tokens. */
#define HANDLER_REFRESH_PURPOSE	"refresh"

/* A JWT for s issued at now, and the answer {"message":"SUCCESS",
 * "access_token", "refresh_token", "expires_in"[, "user"]} (user NULL: no
 * user object, as a refresh answers), status 200. With
 * resp->refresh_in_cookie the refresh token is left out of the body and
 * set as the refresh cookie instead, for the session's life left
 * (expires) but at most refresh_idle_ttl; the cookie goes last, so a
 * failure before sets none. */
struct token_subject;
int	handler_answer_tokens(struct handler_ctx *ctx,
	    const struct token_subject *s, const char *refresh,
	    const struct store_user *user, time_t now, time_t expires,
	    struct http_response *resp, struct kl_error *err);

/* Browser mode (refresh_cookie = yes and one allowed Origin): the routes
 * that answer tokens put the refresh token into a cookie. */
bool	handler_cookie_mode(const struct handler_ctx *ctx,
	    const struct http_request *req);

/* The refresh cookie of req: 1 with the token in out (REFRESH_TOKEN_LEN
 * + 1 bytes), 0 when none was sent, -1 when it cannot be trusted (sent
 * twice, malformed: http_cookie_find). */
int	handler_refresh_cookie(const struct handler_ctx *ctx,
	    const struct http_request *req, char *out);

/* The login answer for user as stored (status 200), with a session of its
 * own opened now (a transaction): a repeated code's answer. */
int	handler_answer_login(struct handler_ctx *ctx,
	    const struct store_user *user, time_t now,
	    struct http_response *resp, struct kl_error *err);

#endif
