/*
 * test_kakao.c: the parsers of Kakao's answers (app/kakao.c), no network.
 *
 * The inputs are files under test/data/kakao/, one per case, the expected
 * outcome in the name: profile-ok-*, profile-bad-*, token-info-ok-*,
 * token-info-bad-*; error-<status>-* bodies for kakao_error_classify() with
 * the expected status in a table below. Every *-bad-* file found is run, so
 * adding a case is adding a file. Each input is handed to the parser in a
 * buffer of exactly its length (no NUL after it), so an over-read shows
 * under SAN=1.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kakao.h"

#define DATA_DIR	"test/data/kakao"

/* ---- reading the cases ---- */

/* The data directory: tests run from the repository root, but a run from
 * build/unit or elsewhere below it finds it too. */
static const char *
data_dir(void)
{
	static char	dir[256];
	static const char *ups[] = { "", "../", "../../", "../../../" };
	size_t		i;

	if (dir[0] != '\0')
		return dir;
	for (i = 0; i < sizeof(ups) / sizeof(ups[0]); i++) {
		snprintf(dir, sizeof(dir), "%s%s", ups[i], DATA_DIR);
		if (access(dir, R_OK | X_OK) == 0)
			return dir;
	}
	fail_msg("cannot find %s from the current directory", DATA_DIR);
	return NULL;
}

struct input {
	char	*data;		/* exactly len bytes, not NUL-terminated */
	size_t	 len;
};

static void
read_case(const char *name, struct input *in)
{
	char	 path[512];
	FILE	*fp;
	long	 size;

	snprintf(path, sizeof(path), "%s/%s", data_dir(), name);
	if ((fp = fopen(path, "rb")) == NULL)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	assert_true(size >= 0);
	rewind(fp);
	in->len = (size_t)size;
	in->data = malloc(in->len ? in->len : 1);
	assert_non_null(in->data);
	assert_int_equal(fread(in->data, 1, in->len, fp), in->len);
	fclose(fp);
}

static void
free_case(struct input *in)
{
	free(in->data);
	in->data = NULL;
}

static void
parse_ok(const char *name, struct kakao_profile *p)
{
	struct input	in;
	struct kl_error	err;

	read_case(name, &in);
	if (kakao_profile_parse(in.data, in.len, p, &err) != 0)
		fail_msg("%s refused: %s", name, err.detail);
	free_case(&in);
}

/* Names in the data directory starting with prefix, sorted. */
static size_t
list_cases(const char *prefix, char names[][128], size_t max)
{
	DIR		*d;
	struct dirent	*e;
	size_t		 n = 0, i, j;
	char		 tmp[128];

	d = opendir(data_dir());
	assert_non_null(d);
	while ((e = readdir(d)) != NULL && n < max)
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
		    strlen(e->d_name) < sizeof(names[0]))
			snprintf(names[n++], sizeof(names[0]), "%s", e->d_name);
	closedir(d);
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			memcpy(tmp, names[j], sizeof(tmp));
			memcpy(names[j], names[j - 1], sizeof(tmp));
			memcpy(names[j - 1], tmp, sizeof(tmp));
		}
	return n;
}

/* True when s is well-formed UTF-8 (no cut character at the end). */
static bool
valid_utf8(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	int			 n, i;

	while (*p != '\0') {
		if (*p < 0x80)
			n = 0;
		else if ((*p & 0xe0) == 0xc0)
			n = 1;
		else if ((*p & 0xf0) == 0xe0)
			n = 2;
		else if ((*p & 0xf8) == 0xf0)
			n = 3;
		else
			return false;
		for (i = 1; i <= n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return false;
		p += n + 1;
	}
	return true;
}

/* ---- kakao_profile_parse ---- */

static void
test_profile_full(void **state)
{
	struct kakao_profile	p;

	(void)state;
	parse_ok("profile-ok-full.json", &p);
	assert_int_equal(p.id, 1855599935);
	/* kakao_account.profile wins over the legacy properties. */
	assert_true(p.has_nickname);
	assert_string_equal(p.nickname, "홍길동");
	assert_true(p.has_email);
	assert_string_equal(p.email, "someone@example.com");
	assert_true(p.email_verified);
	assert_true(p.has_profile_image);
	assert_string_equal(p.profile_image, "http://k.kakaocdn.net/p.jpg");
}

static void
test_profile_email_verified_needs_both_flags(void **state)
{
	static const char *unverified[] = {
		"profile-ok-email-valid-not-verified.json",
		"profile-ok-email-verified-not-valid.json",
		"profile-ok-email-flags-missing.json",
		"profile-ok-email-flags-strings.json",
	};
	struct kakao_profile	p;
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(unverified) / sizeof(unverified[0]); i++) {
		parse_ok(unverified[i], &p);
		assert_true(p.has_email);
		assert_string_equal(p.email, "a@example.com");
		if (p.email_verified)
			fail_msg("%s: e-mail counted as verified",
			    unverified[i]);
	}
}

static void
test_profile_properties_nickname_fallback(void **state)
{
	struct kakao_profile	p;

	(void)state;
	parse_ok("profile-ok-properties-only.json", &p);
	assert_int_equal(p.id, 1002);
	assert_true(p.has_nickname);
	assert_string_equal(p.nickname, "옛날닉");
	assert_true(p.has_profile_image);
	assert_string_equal(p.profile_image, "http://k.kakaocdn.net/old.jpg");
	assert_false(p.has_email);
	assert_false(p.email_verified);
}

static void
test_profile_no_kakao_account(void **state)
{
	struct kakao_profile	p;

	(void)state;
	parse_ok("profile-ok-no-kakao-account.json", &p);
	assert_int_equal(p.id, 1003);
	assert_false(p.has_nickname);
	assert_string_equal(p.nickname, "");
	assert_false(p.has_email);
	assert_string_equal(p.email, "");
	assert_false(p.email_verified);
	assert_false(p.has_profile_image);
	assert_string_equal(p.profile_image, "");

	parse_ok("profile-ok-kakao-account-not-object.json", &p);
	assert_int_equal(p.id, 1007);
	assert_false(p.has_nickname);
	assert_false(p.has_email);
}

static void
test_profile_no_nickname(void **state)
{
	struct kakao_profile	p;

	(void)state;
	parse_ok("profile-ok-no-nickname.json", &p);
	assert_int_equal(p.id, 1004);
	assert_false(p.has_nickname);
	assert_string_equal(p.nickname, "");
	assert_true(p.has_email);
	assert_true(p.email_verified);

	parse_ok("profile-ok-empty-nickname.json", &p);
	assert_int_equal(p.id, 1005);
	assert_false(p.has_nickname);

	parse_ok("profile-ok-nickname-not-string.json", &p);
	assert_int_equal(p.id, 1006);
	assert_false(p.has_nickname);
	assert_string_equal(p.nickname, "");
}

static void
test_profile_id_max(void **state)
{
	struct kakao_profile	p;

	(void)state;
	parse_ok("profile-ok-id-max.json", &p);
	assert_true(p.id == INT64_MAX);
	assert_false(p.has_nickname);
}

/* Kakao's nickname can be long; we keep at most MAX_NICKNAME bytes, cut
 * where a character starts, and what we keep is the start of the input. */
static void
check_long_nickname(const char *name, const char *unit, size_t prefix_len)
{
	struct kakao_profile	p;
	size_t			len, i, ulen = strlen(unit);

	parse_ok(name, &p);
	assert_true(p.has_nickname);
	len = strlen(p.nickname);
	if (len > MAX_NICKNAME)
		fail_msg("%s: nickname of %zu bytes", name, len);
	/* Nothing more than one character was given up. */
	if (len + 4 <= MAX_NICKNAME)
		fail_msg("%s: nickname cut to %zu bytes", name, len);
	if (!valid_utf8(p.nickname))
		fail_msg("%s: nickname cut inside a character", name);
	/* The characters after the prefix are whole units. */
	assert_int_equal((len - prefix_len) % ulen, 0);
	for (i = prefix_len; i < len; i += ulen)
		assert_memory_equal(p.nickname + i, unit, ulen);
}

static void
test_profile_long_nickname_cut_on_utf8_boundary(void **state)
{
	(void)state;
	/* "김" is 3 bytes: 10,000 of them are 30,000 bytes. */
	check_long_nickname("profile-ok-long-nickname-hangul.json", "김", 0);
	check_long_nickname("profile-ok-long-nickname-escaped.json", "김", 0);
	check_long_nickname("profile-ok-long-nickname-offset2.json", "김", 2);
	/* 4-byte characters from the legacy properties. */
	check_long_nickname("profile-ok-long-nickname-emoji.json", "😀", 1);
}

/* profile_image ends up in an answer a front end may put in <img src> or
 * a link: only http and https URLs pass, anything else is no image. */
static void
test_profile_image_only_http_https(void **state)
{
	static const struct {
		const char	*url;	/* JSON string content */
		bool		 kept;
	} cases[] = {
		{ "http://k.kakaocdn.net/p.jpg", true },
		{ "https://k.kakaocdn.net/p.jpg", true },
		{ "HTTPS://k.kakaocdn.net/p.jpg", true },	/* RFC 3986: any case */
		{ "javascript:alert(1)", false },
		{ "JavaScript:alert(1)//http://x", false },
		{ "data:text/html,<script>alert(1)</script>", false },
		{ "vbscript:msgbox(1)", false },
		{ "file:///etc/passwd", false },
		{ "ftp://k.kakaocdn.net/p.jpg", false },
		{ "//k.kakaocdn.net/p.jpg", false },		/* scheme-relative */
		{ "/img/p.jpg", false },
		{ "http:k.kakaocdn.net", false },
		{ "http://", false },				/* no host */
		{ "https:///p.jpg", false },
		{ " http://k.kakaocdn.net/p.jpg", false },	/* leading blank */
		{ "\\u0001http://x/p.jpg", false },
		{ "http://k.kakaocdn.net/a b.jpg", false },	/* no blank in a URL */
		{ "http://k.kakaocdn.net/\\t.jpg", false },
		{ "http://x/\\u007f", false },
		{ "httpx://k.kakaocdn.net/p.jpg", false },
	};
	struct kakao_profile	p;
	struct kl_error		err;
	char			body[512];
	size_t			i;
	int			n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* Both places Kakao puts it. */
		n = snprintf(body, sizeof(body), "{\"id\":5,\"kakao_account\":"
		    "{\"profile\":{\"profile_image_url\":\"%s\"}}}",
		    cases[i].url);
		assert_true(n > 0 && (size_t)n < sizeof(body));
		if (kakao_profile_parse(body, (size_t)n, &p, &err) != 0)
			fail_msg("%s refused: %s", body, err.detail);
		if (p.has_profile_image != cases[i].kept)
			fail_msg("profile_image_url \"%s\": %s", cases[i].url,
			    cases[i].kept ? "dropped" : "kept");
		if (!cases[i].kept)
			assert_string_equal(p.profile_image, "");
		n = snprintf(body, sizeof(body), "{\"id\":5,\"properties\":"
		    "{\"profile_image\":\"%s\"}}", cases[i].url);
		assert_true(n > 0 && (size_t)n < sizeof(body));
		assert_int_equal(kakao_profile_parse(body, (size_t)n, &p, &err),
		    0);
		if (p.has_profile_image != cases[i].kept)
			fail_msg("properties.profile_image \"%s\": %s",
			    cases[i].url, cases[i].kept ? "dropped" : "kept");
	}
}

static void
test_profile_email_length_limit(void **state)
{
	struct kakao_profile	p;

	(void)state;
	parse_ok("profile-ok-email-at-limit.json", &p);
	assert_true(p.has_email);
	assert_int_equal(strlen(p.email), MAX_EMAIL);
	assert_true(p.email_verified);

	/* One byte more: dropped, never cut (a cut address is another
	 * address). The rest of the profile still counts. */
	parse_ok("profile-ok-email-too-long-dropped.json", &p);
	assert_int_equal(p.id, 1013);
	assert_false(p.has_email);
	assert_string_equal(p.email, "");
	assert_false(p.email_verified);
	assert_true(p.has_nickname);
	assert_string_equal(p.nickname, "n");
}

/* Every profile-ok-* parses. */
static void
test_profile_all_ok_files(void **state)
{
	static char		names[128][128];
	struct kakao_profile	p;
	size_t			n, i;

	(void)state;
	n = list_cases("profile-ok-", names, 128);
	assert_true(n >= 15);
	for (i = 0; i < n; i++) {
		parse_ok(names[i], &p);
		assert_true(p.id > 0);
	}
}

/* Every profile-bad-* is KL_KAKAO_BAD_RESPONSE. */
static void
test_profile_all_bad_files(void **state)
{
	static const char *required[] = {
		"profile-bad-id-missing.json", "profile-bad-id-string.json",
		"profile-bad-id-negative.json", "profile-bad-id-zero.json",
		"profile-bad-id-float.json", "profile-bad-id-above-2-63.json",
		"profile-bad-not-object.json", "profile-bad-not-json.html",
		"profile-bad-duplicate-id.json",
	};
	static char		names[128][128];
	struct kakao_profile	p;
	struct kl_error		err;
	struct input		in;
	size_t			n, i, j;

	(void)state;
	n = list_cases("profile-bad-", names, 128);
	for (j = 0; j < sizeof(required) / sizeof(required[0]); j++) {
		for (i = 0; i < n; i++)
			if (strcmp(names[i], required[j]) == 0)
				break;
		if (i == n)
			fail_msg("missing case %s/%s", data_dir(), required[j]);
	}
	for (i = 0; i < n; i++) {
		read_case(names[i], &in);
		kl_error_clear(&err);
		if (kakao_profile_parse(in.data, in.len, &p, &err) != -1)
			fail_msg("%s accepted (id %lld)", names[i],
			    (long long)p.id);
		if (err.status != KL_KAKAO_BAD_RESPONSE)
			fail_msg("%s: status %d", names[i], (int)err.status);
		assert_true(err.detail[0] != '\0');
		free_case(&in);
	}
}

/* The length given is what is parsed, not what follows in memory. */
static void
test_profile_parse_respects_len(void **state)
{
	static const char	 body[] = "{\"id\":42}{\"id\":43}";
	struct kakao_profile	 p;
	struct kl_error		 err;

	(void)state;
	assert_int_equal(kakao_profile_parse(body, 9, &p, &err), 0);
	assert_int_equal(p.id, 42);
	assert_int_equal(kakao_profile_parse(body, 8, &p, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_BAD_RESPONSE);
	assert_int_equal(kakao_profile_parse(body, 0, &p, &err), -1);
	assert_int_equal(kakao_profile_parse(body, sizeof(body) - 1, &p, &err),
	    -1);
	/* A 200 with no body at all: the buffer was never allocated. */
	kl_error_clear(&err);
	assert_int_equal(kakao_profile_parse(NULL, 0, &p, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_BAD_RESPONSE);
}

/* ---- kakao_token_info_parse ---- */

static void
test_token_info_good(void **state)
{
	struct kakao_token_info	 info;
	struct kl_error		 err;
	struct input		 in;

	(void)state;
	read_case("token-info-ok.json", &in);
	if (kakao_token_info_parse(in.data, in.len, &info, &err) != 0)
		fail_msg("refused: %s", err.detail);
	assert_int_equal(info.id, 1855599935);
	assert_int_equal(info.app_id, 424242);
	assert_int_equal(info.expires_in, 21599);
	free_case(&in);

	read_case("token-info-ok-no-expires.json", &in);
	assert_int_equal(kakao_token_info_parse(in.data, in.len, &info, &err),
	    0);
	assert_int_equal(info.id, 1855599935);
	assert_int_equal(info.app_id, 424242);
	assert_int_equal(info.expires_in, 0);
	free_case(&in);
}

static void
test_token_info_all_bad_files(void **state)
{
	static char		names[64][128];
	struct kakao_token_info	info;
	struct kl_error		err;
	struct input		in;
	size_t			n, i;

	(void)state;
	n = list_cases("token-info-bad-", names, 64);
	assert_true(n >= 8);
	for (i = 0; i < n; i++) {
		read_case(names[i], &in);
		kl_error_clear(&err);
		if (kakao_token_info_parse(in.data, in.len, &info, &err) != -1)
			fail_msg("%s accepted", names[i]);
		if (err.status != KL_KAKAO_BAD_RESPONSE)
			fail_msg("%s: status %d", names[i], (int)err.status);
		free_case(&in);
	}
}

/* ---- kakao_error_classify ---- */

static void
test_error_classify(void **state)
{
	static const struct {
		long		 http;
		const char	*file;		/* NULL: no body */
		enum kl_status	 want;
	} cases[] = {
		{ 401, "error-401-code-401.json", KL_KAKAO_REJECTED },
		{ 403, "error-403-code-101.json", KL_KAKAO_REJECTED },
		{ 403, "error-403-code-402.json", KL_KAKAO_REJECTED },
		{ 400, "error-400-code-2.json", KL_KAKAO_BAD_RESPONSE },
		{ 500, "error-500-code-1.json", KL_KAKAO_UNAVAILABLE },
		{ 503, "error-503-code-9798.json", KL_KAKAO_UNAVAILABLE },
		{ 429, "error-429-code-10.json", KL_KAKAO_UNAVAILABLE },
		{ 502, "error-502.html", KL_KAKAO_UNAVAILABLE },
		{ 503, NULL, KL_KAKAO_UNAVAILABLE },
		{ 401, NULL, KL_KAKAO_REJECTED },
		{ 401, "error-502.html", KL_KAKAO_REJECTED },
		{ 404, NULL, KL_KAKAO_BAD_RESPONSE },
		{ 404, "error-502.html", KL_KAKAO_BAD_RESPONSE },
		{ 302, NULL, KL_KAKAO_BAD_RESPONSE },
		{ 400, "profile-ok-full.json", KL_KAKAO_BAD_RESPONSE },
	};
	struct kl_error	err;
	struct input	in;
	size_t		i;
	int		rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		in.data = NULL;
		in.len = 0;
		if (cases[i].file != NULL)
			read_case(cases[i].file, &in);
		kl_error_clear(&err);
		rc = kakao_error_classify(cases[i].http, in.data, in.len, &err);
		assert_int_equal(rc, -1);
		if (err.status != cases[i].want)
			fail_msg("%ld %s: status %d, want %d", cases[i].http,
			    cases[i].file ? cases[i].file : "(no body)",
			    (int)err.status, (int)cases[i].want);
		free_case(&in);
	}
}

static void
test_error_classify_empty_body(void **state)
{
	struct kl_error	err;

	(void)state;
	/* A zero-length body that is not NULL. */
	assert_int_equal(kakao_error_classify(404, "", 0, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_BAD_RESPONSE);
	assert_int_equal(kakao_error_classify(500, "", 0, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_UNAVAILABLE);
	/* NULL err is allowed, as for kl_fail. */
	assert_int_equal(kakao_error_classify(500, NULL, 0, NULL), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_profile_full),
		cmocka_unit_test(test_profile_email_verified_needs_both_flags),
		cmocka_unit_test(test_profile_properties_nickname_fallback),
		cmocka_unit_test(test_profile_no_kakao_account),
		cmocka_unit_test(test_profile_no_nickname),
		cmocka_unit_test(test_profile_id_max),
		cmocka_unit_test(
		    test_profile_long_nickname_cut_on_utf8_boundary),
		cmocka_unit_test(test_profile_email_length_limit),
		cmocka_unit_test(test_profile_image_only_http_https),
		cmocka_unit_test(test_profile_all_ok_files),
		cmocka_unit_test(test_profile_all_bad_files),
		cmocka_unit_test(test_profile_parse_respects_len),
		cmocka_unit_test(test_token_info_good),
		cmocka_unit_test(test_token_info_all_bad_files),
		cmocka_unit_test(test_error_classify),
		cmocka_unit_test(test_error_classify_empty_body),
	};

	return cmocka_run_group_tests_name("kakao", tests, NULL, NULL);
}
