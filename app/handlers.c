/*
 * handlers.c: the route handlers.
 *
 * Each handler turns a validated request into calls to the kakao, store and
 * token layers and builds the JSON answer. It owns no state between
 * requests; everything it uses comes in struct handler_ctx, which belongs to
 * one worker thread. Never touches curl, Berkeley DB, libjwt or libfcgi.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

/*
 * The answer is written straight into a growing buffer: building it as a
 * Jansson tree and dumping it cost more than a sixth of a login's
 * instructions (callgrind). Every string written here is valid UTF-8 (it
 * came through Jansson's parser or our own store), so escaping quotes,
 * backslashes and control characters is all JSON asks; U+2028 and U+2029
 * are escaped too, for JavaScript.
 */
struct answer {
	char	*buf;		/* malloc()ed; handed to the fcgi layer */
	size_t	 len, cap;
	bool	 failed;	/* out of memory: the answer is unusable */
};

static void
answer_put(struct answer *a, const char *s, size_t n)
{
	char	*p;
	size_t	 cap;

	if (a->failed)
		return;
	if (a->len + n + 1 > a->cap) {
		cap = a->cap ? a->cap : 1024;
		while (cap < a->len + n + 1)
			cap *= 2;
		if ((p = realloc(a->buf, cap)) == NULL) {
			a->failed = true;
			return;
		}
		a->buf = p;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, s, n);
	a->len += n;
	a->buf[a->len] = '\0';
}

static void
answer_raw(struct answer *a, const char *s)
{
	answer_put(a, s, strlen(s));
}

/* U+2028 LINE SEPARATOR or U+2029 PARAGRAPH SEPARATOR at s: valid raw in
 * JSON, but a line end in JavaScript before ES2019, so an answer pasted
 * into a script could be cut there. */
static bool
is_line_separator(const char *s)
{
	return (unsigned char)s[0] == 0xe2 && (unsigned char)s[1] == 0x80 &&
	    ((unsigned char)s[2] == 0xa8 || (unsigned char)s[2] == 0xa9);
}

/* A JSON string, or null when s is empty. U+2028 and U+2029 are written
 * as escapes, like the control characters. */
static void
answer_string(struct answer *a, const char *s)
{
	static const char	hex[] = "0123456789abcdef";
	const char		*run;
	char			 esc[7];
	unsigned char		 c;

	if (*s == '\0') {
		answer_raw(a, "null");
		return;
	}
	answer_put(a, "\"", 1);
	for (run = s; (c = (unsigned char)*s) != '\0'; s++) {
		if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f &&
		    !is_line_separator(s))
			continue;
		answer_put(a, run, (size_t)(s - run));
		run = s + 1;
		if (c == 0xe2) {
			/* U+2028 / U+2029, bytes e2 80 a8 / e2 80 a9. */
			answer_put(a, (unsigned char)s[2] == 0xa8 ?
			    "\\u2028" : "\\u2029", 6);
			s += 2;
			run = s + 1;
		} else if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			answer_put(a, esc, 2);
		} else {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			answer_put(a, esc, 6);
		}
	}
	answer_put(a, run, (size_t)(s - run));
	answer_put(a, "\"", 1);
}

static void
answer_number(struct answer *a, uint64_t n)
{
	char	buf[24];

	answer_put(a, buf, (size_t)snprintf(buf, sizeof(buf), "%" PRIu64, n));
}

static void
answer_time(struct answer *a, time_t t)
{
	struct tm	tm;
	char		buf[32];

	if (gmtime_r(&t, &tm) == NULL) {
		answer_raw(a, "null");
		return;
	}
	answer_put(a, buf, strftime(buf, sizeof(buf), "\"%Y-%m-%dT%H:%M:%SZ\"",
	    &tm));
}

/* {"message":"SUCCESS","access_token":..,["acess_token":..,]"user":{..}} */
static void
answer_login(struct answer *a, const char *jwt, bool legacy,
    const struct store_user *u)
{
	answer_raw(a, "{\"message\":\"SUCCESS\",\"access_token\":");
	answer_string(a, jwt);
	/* The old service spelled it this way; old front ends may read it. */
	if (legacy) {
		answer_raw(a, ",\"acess_token\":");
		answer_string(a, jwt);
	}
	answer_raw(a, ",\"user\":{\"id\":");
	answer_number(a, u->user_id);
	answer_raw(a, ",\"kakao_id\":");
	answer_number(a, (uint64_t)u->kakao_id);
	answer_raw(a, ",\"nickname\":");
	answer_string(a, u->nickname);
	answer_raw(a, ",\"email\":");
	answer_string(a, u->email);
	answer_raw(a, u->email_verified ? ",\"email_verified\":true" :
	    ",\"email_verified\":false");
	answer_raw(a, ",\"profile_image\":");
	answer_string(a, u->profile_image);
	answer_raw(a, u->status == STORE_USER_ACTIVE ? ",\"status\":\"active\"" :
	    ",\"status\":\"unlinked\"");
	answer_raw(a, ",\"created_at\":");
	answer_time(a, u->created);
	answer_raw(a, ",\"updated_at\":");
	answer_time(a, u->updated);
	answer_raw(a, ",\"last_login_at\":");
	answer_time(a, u->last_login);
	answer_raw(a, ",\"login_count\":");
	answer_number(a, u->login_count);
	answer_raw(a, "}}");
}

int
handler_login(struct handler_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct kl_error *err)
{
	struct kakao_profile	 profile;
	struct store_login	 login;
	struct store_user	 user;
	struct answer		 answer = { NULL, 0, 0, false };
	char			 token[MAX_KAKAO_TOKEN + 1], *jwt = NULL;
	time_t			 now;
	int			 rc = -1;

	if (req->authorization_count > 1)
		return kl_fail(err, KL_BAD_TOKEN, "duplicated Authorization");
	if (handler_parse_authorization(req->authorization, token, err) == -1)
		return -1;
	/* No use asking Kakao when the answer cannot be stored. */
	if (!store_ready(ctx->store))
		return kl_fail(err, KL_STORE_FAILED, "store not open");
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

	answer_login(&answer, jwt, ctx->cfg->legacy_acess_token, &user);
	if (answer.failed) {
		kl_fail(err, KL_INTERNAL, "out of memory for the answer");
		goto done;
	}
	resp->body = answer.buf;
	answer.buf = NULL;
	resp->status = 200;
	rc = 0;
done:
	explicit_bzero(token, sizeof(token));
	free(answer.buf);
	free(jwt);
	return rc;
}
