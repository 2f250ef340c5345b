/*
 * handlers.c: what the route handlers share (see handlers.h): the
 * Authorization parser, our Bearer JWT's check (with the session when
 * verify_revocation is on), and the end of every login (the store's login
 * and session in one transaction, the JWT, the refresh token, the answer).
 *
 * Owns no state between requests; everything it uses comes in struct
 * handler_ctx, which belongs to one worker thread. Never touches curl,
 * Berkeley DB, libjwt or libfcgi.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "handlers.h"
#include "http_cookie.h"
#include "http_cors.h"
#include "json_writer.h"
#include "kakao.h"
#include "store.h"
#include "store_session.h"
#include "token.h"

static int
is_token68_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~' || c == '+' || c == '/';
}

/* token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int
is_token68(const char *s, size_t len)
{
	size_t	i = 0;

	while (i < len && is_token68_char(s[i]))
		i++;
	if (i == 0)
		return 0;
	while (i < len && s[i] == '=')
		i++;
	return i == len;
}

int
handler_parse_authorization(const char *value, char *token,
    struct kl_error *err)
{
	const char	*p, *end;
	size_t		 len;

	token[0] = '\0';
	if (value == NULL)
		return kl_fail(err, KL_BAD_TOKEN, "no Authorization header");
	if (strlen(value) > MAX_AUTH_HEADER)
		return kl_fail(err, KL_BAD_TOKEN, "Authorization too long");
	p = value;
	while (*p == ' ' || *p == '\t')
		p++;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (end - p >= 6 && strncasecmp(p, "Bearer", 6) == 0 &&
	    (end - p == 6 || p[6] == ' ')) {
		p += 6;
		while (p < end && *p == ' ')
			p++;
	}
	len = (size_t)(end - p);
	if (len == 0)
		return kl_fail(err, KL_BAD_TOKEN, "empty token");
	if (len > MAX_KAKAO_TOKEN)
		return kl_fail(err, KL_BAD_TOKEN, "token longer than %d",
		    MAX_KAKAO_TOKEN);
	if (!is_token68(p, len))
		return kl_fail(err, KL_BAD_TOKEN, "token has characters "
		    "outside token68 or an unknown scheme");
	memcpy(token, p, len);
	token[len] = '\0';
	return 0;
}

void
handler_write_user(struct kl_buf *b, const struct store_user *u)
{
	jw_raw(b, "{\"id\":");
	jw_u64(b, u->user_id);
	jw_raw(b, ",\"kakao_id\":");
	jw_u64(b, (uint64_t)u->kakao_id);
	jw_raw(b, ",\"nickname\":");
	jw_string_or_null(b, u->nickname);
	jw_raw(b, ",\"email\":");
	jw_string_or_null(b, u->email);
	jw_raw(b, u->email_verified ? ",\"email_verified\":true" :
	    ",\"email_verified\":false");
	jw_raw(b, ",\"profile_image\":");
	jw_string_or_null(b, u->profile_image);
	jw_raw(b, u->status == STORE_USER_ACTIVE ? ",\"status\":\"active\"" :
	    u->status == STORE_USER_DEACTIVATED ?
	    ",\"status\":\"deactivated\"" : ",\"status\":\"unlinked\"");
	jw_raw(b, ",\"created_at\":");
	jw_time(b, u->created);
	jw_raw(b, ",\"updated_at\":");
	jw_time(b, u->updated);
	jw_raw(b, ",\"last_login_at\":");
	jw_time(b, u->last_login);
	jw_raw(b, ",\"login_count\":");
	jw_u64(b, u->login_count);
	jw_raw(b, "}");
}

void
handler_login_from_profile(const struct kakao_profile *p,
    struct store_login *in)
{
	memset(in, 0, sizeof(*in));
	in->kakao_id = p->id;
	in->nickname = p->has_nickname ? p->nickname : NULL;
	in->email = p->has_email ? p->email : NULL;
	in->email_verified = p->email_verified;
	in->profile_image = p->has_profile_image ? p->profile_image : NULL;
}

/* What a new session needs: its sid and first refresh token, and what
 * the store keeps of them. Wiped by session_wipe(). */
struct new_session {
	struct store_session_new	 n;
	char				 sid_hex[SID_HEX_LEN + 1];
	char				 refresh[REFRESH_TOKEN_LEN + 1];
};

static int
session_prepare(struct handler_ctx *ctx, struct new_session *s,
    struct kl_error *err)
{
	memset(s, 0, sizeof(*s));
	if (token_sid_new(s->n.sid, s->sid_hex, err) == -1 ||
	    token_refresh_new(s->refresh, err) == -1 ||
	    token_tag(ctx->token, HANDLER_REFRESH_PURPOSE, s->refresh,
	    REFRESH_TOKEN_LEN, s->n.tag, err) == -1)
		return -1;
	return 0;
}

static void
session_wipe(struct new_session *s)
{
	explicit_bzero(s, sizeof(*s));
}

/* {"message":"SUCCESS","access_token":..,["acess_token":..,]
 *  "refresh_token":..,"expires_in":..[,"user":{..}]} */
static void
answer_tokens(struct kl_buf *b, const char *jwt, bool legacy,
    const char *refresh, long expires_in, const struct store_user *u)
{
	jw_raw(b, "{\"message\":\"SUCCESS\",\"access_token\":");
	jw_string_or_null(b, jwt);
	/* The old service spelled it this way; old front ends may read it. */
	if (legacy) {
		jw_raw(b, ",\"acess_token\":");
		jw_string_or_null(b, jwt);
	}
	if (refresh != NULL) {
		jw_raw(b, ",\"refresh_token\":");
		jw_string(b, refresh);
	}
	jw_raw(b, ",\"expires_in\":");
	jw_u64(b, (uint64_t)expires_in);
	if (u != NULL) {
		jw_raw(b, ",\"user\":");
		handler_write_user(b, u);
	}
	jw_raw(b, "}");
}

int
handler_answer_tokens(struct handler_ctx *ctx, const struct token_subject *s,
    const char *refresh, const struct store_user *user, time_t now,
    time_t expires, struct http_response *resp, struct kl_error *err)
{
	const struct config	*cfg = ctx->cfg;
	char			*jwt = NULL;
	long			 age = (long)(expires - now);
	int			 rc = -1;

	resp->user_id = s->user_id;
	if (token_issue(ctx->token, s, now, &jwt, err) == -1)
		return -1;
	answer_tokens(&resp->body, jwt, cfg->legacy_acess_token,
	    resp->refresh_in_cookie ? NULL : refresh, ctx->token->ttl, user);
	if (kl_buf_bad(&resp->body)) {
		kl_fail(err, KL_INTERNAL, "out of memory for the answer");
		goto done;
	}
	if (age > cfg->refresh_idle_ttl)
		age = cfg->refresh_idle_ttl;
	if (resp->refresh_in_cookie && http_cookie_refresh_set(resp,
	    cfg->refresh_cookie_secure, refresh, age > 0 ? age : 1, err) == -1)
		goto done;
	resp->status = 200;
	rc = 0;
done:
	explicit_bzero(jwt, strlen(jwt));
	free(jwt);
	return rc;
}

static void
subject_of(struct token_subject *s, const struct store_user *u,
    const char *sid_hex)
{
	memset(s, 0, sizeof(*s));
	s->user_id = u->user_id;
	s->kakao_id = u->kakao_id;
	snprintf(s->sid, sizeof(s->sid), "%s", sid_hex);
}

int
handler_answer_login(struct handler_ctx *ctx, const struct store_user *user,
    time_t now, struct http_response *resp, struct kl_error *err)
{
	struct new_session	 ns;
	struct store_session	 opened;
	struct token_subject	 subj;
	int			 rc = -1;

	if (session_prepare(ctx, &ns, err) == 0 &&
	    store_session_open(ctx->store, &ns.n, user->user_id,
	    user->kakao_id, now, &opened, err) == 0) {
		subject_of(&subj, user, ns.sid_hex);
		rc = handler_answer_tokens(ctx, &subj, ns.refresh, user, now,
		    opened.expires, resp, err);
	} else if (err->status == KL_NOT_FOUND)
		/* Deleted or unlinked since the code's first answer. */
		kl_fail(err, KL_INVALID_CODE, "the code's user is gone or "
		    "unlinked");
	session_wipe(&ns);
	return rc;
}

int
handler_login_finish(struct handler_ctx *ctx, const struct store_login *in,
    struct http_response *resp, struct kl_error *err)
{
	struct new_session	 ns;
	struct store_user	 user;
	struct token_subject	 subj;
	time_t			 now = time(NULL);
	int			 rc = -1;

	if (session_prepare(ctx, &ns, err) == 0 &&
	    store_user_login_session(ctx->store, in, now, &ns.n, &user,
	    err) == 0) {
		subject_of(&subj, &user, ns.sid_hex);
		rc = handler_answer_tokens(ctx, &subj, ns.refresh, &user, now,
		    now + ctx->cfg->refresh_ttl, resp, err);
	}
	session_wipe(&ns);
	return rc;
}

bool
handler_cookie_mode(const struct handler_ctx *ctx,
    const struct http_request *req)
{
	return ctx->cfg->refresh_cookie &&
	    http_cors_allowed(ctx->cfg, req->origin, req->origin_count);
}

int
handler_refresh_cookie(const struct handler_ctx *ctx,
    const struct http_request *req, char *out)
{
	if (req->cookie == NULL)
		return 0;
	/* nginx passes a second Cookie header as a second param: which one
	 * holds the real cookie cannot be told, so neither is used. */
	if (req->cookie_count > 1)
		return -1;
	return http_cookie_find(req->cookie,
	    http_cookie_refresh_name(ctx->cfg->refresh_cookie_secure), out,
	    REFRESH_TOKEN_LEN + 1);
}

int
handler_sid_parse(const char *hex, unsigned char *sid)
{
	size_t	i;
	int	hi, lo;

	if (hex == NULL || strlen(hex) != SID_HEX_LEN)
		return -1;
	for (i = 0; i < STORE_SID_LEN; i++) {
		if ((hi = kl_hex_value(hex[2 * i])) < 0 ||
		    (lo = kl_hex_value(hex[2 * i + 1])) < 0)
			return -1;
		sid[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

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

/* With verify_revocation: the session the JWT names must be active. */
static int
bearer_session(struct handler_ctx *ctx, const struct token_claims *c,
    struct kl_error *err)
{
	struct store_session	s;
	unsigned char		sid[STORE_SID_LEN];

	if (c->sid[0] == '\0' || handler_sid_parse(c->sid, sid) == -1)
		return kl_fail(err, KL_BAD_ACCESS_TOKEN, "jwt names no session");
	if (store_session_get(ctx->store, sid, &s, err) == -1) {
		if (err->status == KL_NOT_FOUND)
			kl_fail(err, KL_BAD_ACCESS_TOKEN, "session gone");
		return -1;
	}
	if (!store_session_live(ctx->store, &s, time(NULL)) ||
	    s.user_id != c->user_id)
		return kl_fail(err, KL_BAD_ACCESS_TOKEN, "session revoked or "
		    "expired");
	return 0;
}

#define BEARER_CHALLENGE	"Bearer error=\"invalid_token\""

void
handler_bearer_challenge(struct http_response *resp)
{
	struct kl_error	herr;

	/* A constant value: only running out of memory can fail it, and
	 * then the 401 goes out without it. */
	http_response_header(resp, "WWW-Authenticate", BEARER_CHALLENGE,
	    &herr);
}

int
handler_bearer(struct handler_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct token_claims *claims,
    struct kl_error *err)
{
	struct kl_error	 terr;
	char		 jwt[MAX_KAKAO_TOKEN + 1];
	int		 rc = -1;

	memset(claims, 0, sizeof(*claims));
	if (bearer_jwt(req, jwt, err) == -1)
		goto done;
	if (token_verify(ctx->token, jwt, time(NULL), claims, &terr) == -1) {
		kl_fail(err, KL_BAD_ACCESS_TOKEN, "%s", terr.detail);
		goto done;
	}
	resp->user_id = claims->user_id;
	if (ctx->cfg->verify_revocation && bearer_session(ctx, claims,
	    err) == -1)
		goto done;
	rc = 0;
done:
	if (rc == -1 && err->status == KL_BAD_ACCESS_TOKEN)
		handler_bearer_challenge(resp);
	explicit_bzero(jwt, sizeof(jwt));
	return rc;
}
