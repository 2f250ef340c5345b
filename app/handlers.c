/*
 * handlers.c: what the route handlers share (see handlers.h): the
 * Authorization parser, and the end of every login (store, JWT, answer).
 *
 * Owns no state between requests; everything it uses comes in struct
 * handler_ctx, which belongs to one worker thread. Never touches curl,
 * Berkeley DB, libjwt or libfcgi.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "handlers.h"
#include "json_writer.h"
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
	    ",\"status\":\"unlinked\"");
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

/* {"message":"SUCCESS","access_token":..,["acess_token":..,]"user":{..}} */
static void
answer_login(struct kl_buf *b, const char *jwt, bool legacy,
    const struct store_user *u)
{
	jw_raw(b, "{\"message\":\"SUCCESS\",\"access_token\":");
	jw_string_or_null(b, jwt);
	/* The old service spelled it this way; old front ends may read it. */
	if (legacy) {
		jw_raw(b, ",\"acess_token\":");
		jw_string_or_null(b, jwt);
	}
	jw_raw(b, ",\"user\":");
	handler_write_user(b, u);
	jw_raw(b, "}");
}

int
handler_answer_login(struct handler_ctx *ctx, const struct store_user *user,
    time_t now, struct http_response *resp, struct kl_error *err)
{
	char	*jwt = NULL;
	int	 rc = -1;

	resp->user_id = user->user_id;
	if (token_issue(ctx->token, &(struct token_subject){ .user_id =
	    user->user_id, .kakao_id = user->kakao_id, .sid = "" }, now, &jwt,
	    err) == -1)
		return -1;
	answer_login(&resp->body, jwt, ctx->cfg->legacy_acess_token, user);
	if (kl_buf_bad(&resp->body)) {
		kl_fail(err, KL_INTERNAL, "out of memory for the answer");
		goto done;
	}
	resp->status = 200;
	rc = 0;
done:
	if (jwt != NULL)
		explicit_bzero(jwt, strlen(jwt));
	free(jwt);
	return rc;
}

int
handler_login_finish(struct handler_ctx *ctx, const struct store_login *in,
    struct http_response *resp, struct kl_error *err)
{
	struct store_user	user;
	time_t			now = time(NULL);

	if (store_user_login(ctx->store, in, now, &user, err) == -1)
		return -1;
	return handler_answer_login(ctx, &user, now, resp, err);
}
