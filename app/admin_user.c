/*
 * admin_user.c: the admin tool's user as JSON, the format of users list
 * --json and users export, and its parser for users import.
 *
 * Owns the export format: one object per user, every field of the record
 * (ids, status, nickname, e-mail and whether it is verified, profile
 * image, created / updated / last login as UTC ISO 8601 to the second or
 * "" for none, login count), so a user exported and imported is the same
 * record byte for byte. The parser takes exactly that object (every
 * field, no other, each within the record's limits) and nothing else.
 * Pure functions on Jansson values; knows nothing of the store's files or
 * of the tool's commands. Thread-safe (no state).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "admin_user.h"
#include "kl_limits.h"

const char *
admin_user_status_name(enum store_user_status s)
{
	return s == STORE_USER_UNLINKED ? "unlinked" :
	    s == STORE_USER_DEACTIVATED ? "deactivated" : "active";
}

const char *
admin_iso_time(time_t t, char *buf, size_t size)
{
	struct tm	tm;

	if (t == 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		buf[0] = '\0';
	return buf;
}

/* A JSON string, or null for "" (no such field). New reference. */
static json_t *
json_field(const char *s)
{
	json_t	*v;

	if (*s == '\0' || (v = json_string(s)) == NULL)
		return json_null();
	return v;
}

json_t *
admin_user_json(const struct store_user *u)
{
	char	c[32], up[32], l[32];

	return json_pack("{s:I,s:I,s:s,s:o,s:o,s:b,s:o,s:s,s:s,s:s,s:I}",
	    "user_id", (json_int_t)u->user_id,
	    "kakao_id", (json_int_t)u->kakao_id,
	    "status", admin_user_status_name(u->status),
	    "nickname", json_field(u->nickname),
	    "email", json_field(u->email),
	    "email_verified", u->email_verified,
	    "profile_image", json_field(u->profile_image),
	    "created", admin_iso_time(u->created, c, sizeof(c)),
	    "updated", admin_iso_time(u->updated, up, sizeof(up)),
	    "last_login", admin_iso_time(u->last_login, l, sizeof(l)),
	    "login_count", (json_int_t)u->login_count);
}

/* An export's time: "" for none, else exactly what admin_iso_time() writes. */
static int
parse_time(const char *s, time_t *t)
{
	struct tm	tm;
	char		back[32];
	const char	*end;

	*t = 0;
	if (*s == '\0')
		return 0;
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) == NULL ||
	    *end != '\0')
		return -1;
	*t = timegm(&tm);
	return strcmp(admin_iso_time(*t, back, sizeof(back)), s) == 0 ? 0 : -1;
}

/* A text field of an export: null, or a string of at most max bytes. */
static int
parse_text(json_t *v, char *out, size_t max)
{
	const char	*s;

	out[0] = '\0';
	if (json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) > max)
		return -1;
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return -1;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

int
admin_user_parse(const char *line, size_t len, struct store_user *u,
    char *why, size_t whysize)
{
	json_error_t	 jerr;
	json_t		*o, *v;
	const char	*st, *c, *up, *l;
	json_int_t	 uid, kid, count;
	int		 verified, ret = -1;

	memset(u, 0, sizeof(*u));
	if ((o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		snprintf(why, whysize, "not JSON: %s", jerr.text);
		return -1;
	}
	/* Strict: every field, and no other. */
	if (json_unpack_ex(o, &jerr, JSON_STRICT, "{s:I,s:I,s:s,s:o,s:o,s:b,"
	    "s:o,s:s,s:s,s:s,s:I}", "user_id", &uid, "kakao_id", &kid,
	    "status", &st, "nickname", &v, "email", &v, "email_verified",
	    &verified, "profile_image", &v, "created", &c, "updated", &up,
	    "last_login", &l, "login_count", &count) == -1) {
		snprintf(why, whysize, "not a user of users export: %s",
		    jerr.text);
		goto done;
	}
	if (uid < 1 || (uint64_t)uid > ADMIN_IMPORT_MAX_ID || kid < 1 ||
	    count < 0) {
		snprintf(why, whysize, "user_id 1 .. %llu, kakao_id and "
		    "login_count positive", (unsigned long long)
		    ADMIN_IMPORT_MAX_ID);
		goto done;
	}
	u->user_id = (uint64_t)uid;
	u->kakao_id = (int64_t)kid;
	u->login_count = (uint64_t)count;
	u->email_verified = verified != 0;
	if (strcmp(st, "active") == 0)
		u->status = STORE_USER_ACTIVE;
	else if (strcmp(st, "unlinked") == 0)
		u->status = STORE_USER_UNLINKED;
	else if (strcmp(st, "deactivated") == 0)
		u->status = STORE_USER_DEACTIVATED;
	else {
		snprintf(why, whysize, "status is active, unlinked or "
		    "deactivated");
		goto done;
	}
	if (parse_text(json_object_get(o, "nickname"), u->nickname,
	    MAX_NICKNAME) == -1 ||
	    parse_text(json_object_get(o, "email"), u->email,
	    MAX_EMAIL) == -1 ||
	    parse_text(json_object_get(o, "profile_image"), u->profile_image,
	    MAX_PROFILE_IMAGE) == -1) {
		snprintf(why, whysize, "nickname, email, profile_image: null "
		    "or a string within its limit");
		goto done;
	}
	if (parse_time(c, &u->created) == -1 ||
	    parse_time(up, &u->updated) == -1 ||
	    parse_time(l, &u->last_login) == -1) {
		snprintf(why, whysize, "times are \"YYYY-MM-DDTHH:MM:SSZ\" "
		    "or \"\"");
		goto done;
	}
	ret = 0;
done:
	json_decref(o);
	return ret;
}
