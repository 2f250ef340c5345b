/*
 * handlers.c: the route handlers.
 *
 * Each handler turns a validated request into calls to the kakao, store and
 * token layers and builds the JSON answer. It owns no state between
 * requests; everything it uses comes in struct handler_ctx, which belongs to
 * one worker thread. Never touches curl, Berkeley DB, libjwt or libfcgi.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "handlers.h"
#include "kakao.h"
#include "store.h"
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

static json_t *
json_time(time_t t)
{
	struct tm	tm;
	char		buf[32];

	if (gmtime_r(&t, &tm) == NULL)
		return json_null();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

/* A string, or null when empty. */
static json_t *
json_optional(const char *s)
{
	return s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *
user_json(const struct store_user *u)
{
	return json_pack("{s:I, s:I, s:o, s:o, s:b, s:o, s:s, s:o, s:o, s:o, "
	    "s:I}",
	    "id", (json_int_t)u->user_id,
	    "kakao_id", (json_int_t)u->kakao_id,
	    "nickname", json_optional(u->nickname),
	    "email", json_optional(u->email),
	    "email_verified", (int)u->email_verified,
	    "profile_image", json_optional(u->profile_image),
	    "status", u->status == STORE_USER_ACTIVE ? "active" : "unlinked",
	    "created_at", json_time(u->created),
	    "updated_at", json_time(u->updated),
	    "last_login_at", json_time(u->last_login),
	    "login_count", (json_int_t)u->login_count);
}

int
handler_login(struct handler_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct kl_error *err)
{
	struct kakao_profile	 profile;
	struct store_login	 login;
	struct store_user	 user;
	json_t			*root = NULL, *juser;
	char			 token[MAX_KAKAO_TOKEN + 1], *jwt = NULL;
	time_t			 now;
	int			 rc = -1;

	if (req->authorization_count > 1)
		return kl_fail(err, KL_BAD_TOKEN, "duplicated Authorization");
	if (handler_parse_authorization(req->authorization, token, err) == -1)
		return -1;
	if (kakao_profile_fetch(ctx->kakao, token, &profile,
	    &resp->upstream_us, err) == -1)
		goto done;

	memset(&login, 0, sizeof(login));
	login.kakao_id = profile.id;
	login.nickname = profile.has_nickname ? profile.nickname : NULL;
	login.email = profile.has_email ? profile.email : NULL;
	login.email_verified = profile.email_verified;
	login.profile_image = profile.has_profile_image ?
	    profile.profile_image : NULL;
	now = time(NULL);
	if (store_user_login(ctx->store, &login, now, &user, err) == -1)
		goto done;
	resp->user_id = user.user_id;
	if (token_issue(ctx->token, user.user_id, now, &jwt, err) == -1)
		goto done;

	if ((juser = user_json(&user)) == NULL ||
	    (root = json_pack("{s:s, s:s, s:o}", "message", "SUCCESS",
	    "access_token", jwt, "user", juser)) == NULL) {
		kl_fail(err, KL_INTERNAL, "cannot build the answer");
		goto done;
	}
	/* The old service spelled it this way; old front ends may read it. */
	if (ctx->cfg->legacy_acess_token &&
	    json_object_set_new(root, "acess_token", json_string(jwt)) != 0) {
		kl_fail(err, KL_INTERNAL, "cannot build the answer");
		goto done;
	}
	if ((resp->body = json_dumps(root, JSON_COMPACT)) == NULL) {
		kl_fail(err, KL_INTERNAL, "cannot serialize the answer");
		goto done;
	}
	resp->status = 200;
	rc = 0;
done:
	explicit_bzero(token, sizeof(token));
	json_decref(root);
	free(jwt);
	return rc;
}
