/*
 * test_body.c: the request-body parser (app/body.c), no I/O but reading
 * its cases.
 *
 * The data-driven cases are the directories under test/data/body/, one per
 * case (see the README there): content_type, input, and either expected
 * (one name=value line per field, in order, \xHH and \\ escapes in values)
 * or error (a word the refusal's detail must contain). Every directory
 * found is run, so adding a case is adding a directory. Each input is
 * handed over in a buffer of exactly its length (no NUL after it), so an
 * over-read shows under SAN=1. Then direct cases: every limit exactly at
 * and one over, the content types, body_get, body_wipe, and details that
 * never hold a value.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "body.h"

#define DATA_DIR	"test/data/body"
#define MAX_CASES	256
#define MIN_CASES	40
/* An input holding this marker must not see it in a refusal's detail. */
#define SECRET_MARK	"s3cr3t"

/* ---- reading the cases ---- */

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

/* Reads dir/name of case c; false when the file does not exist. */
static bool
read_file(const char *c, const char *name, struct input *in)
{
	char	 path[512];
	FILE	*fp;
	long	 size;

	snprintf(path, sizeof(path), "%s/%s/%s", data_dir(), c, name);
	if ((fp = fopen(path, "rb")) == NULL)
		return false;
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	assert_true(size >= 0);
	rewind(fp);
	in->len = (size_t)size;
	in->data = malloc(in->len ? in->len : 1);
	assert_non_null(in->data);
	assert_int_equal(fread(in->data, 1, in->len, fp), in->len);
	fclose(fp);
	return true;
}

/* A one-line file as a string, its final newline dropped; malloc'd. */
static char *
read_line(const char *c, const char *name)
{
	struct input	 in;
	char		*s;

	if (!read_file(c, name, &in))
		fail_msg("%s: no %s", c, name);
	while (in.len > 0 && in.data[in.len - 1] == '\n')
		in.len--;
	assert_non_null(s = malloc(in.len + 1));
	memcpy(s, in.data, in.len);
	s[in.len] = '\0';
	free(in.data);
	return s;
}

static size_t
list_cases(char names[][128], size_t max)
{
	DIR		*d;
	struct dirent	*e;
	struct stat	 st;
	size_t		 n = 0, i, j;
	char		 tmp[128], path[512];

	assert_non_null(d = opendir(data_dir()));
	while ((e = readdir(d)) != NULL && n < max) {
		snprintf(path, sizeof(path), "%s/%s", data_dir(), e->d_name);
		if (e->d_name[0] != '.' && stat(path, &st) == 0 &&
		    S_ISDIR(st.st_mode) && strlen(e->d_name) < sizeof(names[0]))
			snprintf(names[n++], sizeof(names[0]), "%s", e->d_name);
	}
	closedir(d);
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			memcpy(tmp, names[j], sizeof(tmp));
			memcpy(names[j], names[j - 1], sizeof(tmp));
			memcpy(names[j - 1], tmp, sizeof(tmp));
		}
	return n;
}

/* Undoes the \xHH and \\ escapes of an expected line in place (a value
 * never holds a NUL, so the result is a string). */
static void
unescape(const char *c, char *s)
{
	char	*d = s, hex[3] = { 0 };

	while (*s != '\0') {
		if (s[0] != '\\')
			*d++ = *s++;
		else if (s[1] == '\\') {
			*d++ = '\\';
			s += 2;
		} else if (s[1] == 'x' && s[2] != '\0' && s[3] != '\0') {
			hex[0] = s[2];
			hex[1] = s[3];
			*d++ = (char)strtoul(hex, NULL, 16);
			s += 4;
		} else
			fail_msg("%s: bad escape in expected", c);
	}
	*d = '\0';
}

/* Compares out with the case's expected file, line by line. */
static void
compare_expected(const char *c, const struct body_fields *out,
    struct input *exp)
{
	char	*line, *eq, *save = NULL, *text;
	size_t	 vlen;
	int	 i = 0;

	assert_non_null(text = malloc(exp->len + 1));
	memcpy(text, exp->data, exp->len);
	text[exp->len] = '\0';
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save), i++) {
		if ((eq = strchr(line, '=')) == NULL)
			fail_msg("%s: expected line %d has no '='", c, i + 1);
		*eq++ = '\0';
		unescape(c, eq);
		vlen = strlen(eq);
		if (i >= out->count)
			fail_msg("%s: %d fields, expected more", c, out->count);
		if (strcmp(out->field[i].name, line) != 0)
			fail_msg("%s: field %d is \"%s\", expected \"%s\"", c,
			    i + 1, out->field[i].name, line);
		if (out->field[i].value_len != vlen ||
		    memcmp(out->field[i].value, eq, vlen + 1) != 0)
			fail_msg("%s: field %d (%s) has another value", c,
			    i + 1, line);
	}
	if (out->count != i)
		fail_msg("%s: %d fields, expected %d", c, out->count, i);
	free(text);
}

static void
run_case(const char *c)
{
	struct body_fields	*out;
	struct kl_error		 err;
	struct input		 in, exp;
	char			*ct, *word = NULL;
	bool			 has_exp;
	int			 rc;

	ct = read_line(c, "content_type");
	if (!read_file(c, "input", &in))
		fail_msg("%s: no input", c);
	has_exp = read_file(c, "expected", &exp);
	if (!has_exp)
		word = read_line(c, "error");
	assert_non_null(out = malloc(sizeof(*out)));
	kl_error_clear(&err);
	rc = body_parse(strcmp(ct, "NULL") == 0 ? NULL : ct, in.data, in.len,
	    out, &err);
	if (has_exp) {
		if (rc != 0)
			fail_msg("%s: refused: %s", c, err.detail);
		compare_expected(c, out, &exp);
		free(exp.data);
	} else {
		if (rc != -1)
			fail_msg("%s: accepted (%d fields)", c, out->count);
		if (err.status != KL_BAD_REQUEST)
			fail_msg("%s: status %d", c, err.status);
		if (strstr(err.detail, word) == NULL)
			fail_msg("%s: detail \"%s\" lacks \"%s\"", c,
			    err.detail, word);
		if (strstr(err.detail, SECRET_MARK) != NULL)
			fail_msg("%s: detail shows a value: %s", c,
			    err.detail);
		assert_int_equal(out->count, 0);
		free(word);
	}
	free(out);
	free(in.data);
	free(ct);
}

static void
test_data_cases(void **state)
{
	static char	names[MAX_CASES][128];
	size_t		n, i;

	(void)state;
	n = list_cases(names, MAX_CASES);
	if (n < MIN_CASES)
		fail_msg("only %zu cases under %s", n, DATA_DIR);
	for (i = 0; i < n; i++)
		run_case(names[i]);
	print_message("%zu data cases\n", n);
}

/* ---- direct cases ---- */

#define FORM	"application/x-www-form-urlencoded"
#define JSON	"application/json"

/* Parses s (its strlen) into a malloc'd struct; returns body_parse's
 * result. The caller frees *outp. */
static int
parse(const char *ct, const char *s, struct body_fields **outp,
    struct kl_error *err)
{
	char	*copy;
	size_t	 len = strlen(s);
	int	 rc;

	assert_non_null(*outp = malloc(sizeof(**outp)));
	assert_non_null(copy = malloc(len ? len : 1));
	memcpy(copy, s, len);	/* no NUL after it */
	kl_error_clear(err);
	rc = body_parse(ct, copy, len, *outp, err);
	free(copy);
	return rc;
}

static void
accepts(const char *ct, const char *s, int count)
{
	struct body_fields	*out;
	struct kl_error		 err;

	if (parse(ct, s, &out, &err) != 0)
		fail_msg("refused (%.40s...): %s", s, err.detail);
	assert_int_equal(out->count, count);
	free(out);
}

static void
refuses(const char *ct, const char *s, const char *word)
{
	struct body_fields	*out;
	struct kl_error		 err;

	if (parse(ct, s, &out, &err) != -1)
		fail_msg("accepted (%.40s...)", s);
	assert_int_equal(err.status, KL_BAD_REQUEST);
	if (strstr(err.detail, word) == NULL)
		fail_msg("detail \"%s\" lacks \"%s\"", err.detail, word);
	assert_int_equal(out->count, 0);
	free(out);
}

/* A string of n copies of c; malloc'd. */
static char *
repeat(char c, size_t n)
{
	char	*s;

	assert_non_null(s = malloc(n + 1));
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* "<name>=<value>" for form, {"<name>":"<value>"} for JSON; malloc'd. */
static char *
one_field(bool json, const char *name, const char *value)
{
	char	*s;

	if (asprintf(&s, json ? "{\"%s\":\"%s\"}" : "%s=%s", name,
	    value) == -1)
		fail_msg("asprintf");
	return s;
}

static void
name_limit(bool json)
{
	const char	*ct = json ? JSON : FORM;
	char		*at = repeat('n', MAX_FIELD_NAME);
	char		*over = repeat('n', MAX_FIELD_NAME + 1);
	char		*s;

	accepts(ct, s = one_field(json, at, "v"), 1);
	free(s);
	refuses(ct, s = one_field(json, over, "v"), "name too long");
	free(s);
	free(at);
	free(over);
}

static void
test_name_limit(void **state)
{
	(void)state;
	name_limit(false);
	name_limit(true);
}

static void
value_limit(bool json)
{
	const char	*ct = json ? JSON : FORM;
	char		*at = repeat('v', MAX_FIELD_VALUE);
	char		*over = repeat('v', MAX_FIELD_VALUE + 1);
	char		*s;

	accepts(ct, s = one_field(json, "a", at), 1);
	free(s);
	refuses(ct, s = one_field(json, "a", over), "value too long");
	free(s);
	free(at);
	free(over);
}

static void
test_value_limit(void **state)
{
	(void)state;
	value_limit(false);
	value_limit(true);
}

/* The limit is on decoded bytes: a value of more input bytes passes
 * when it decodes to MAX_FIELD_VALUE, and one decoded byte more fails. */
static void
test_value_limit_decoded(void **state)
{
	struct body_fields	*out;
	struct kl_error		 err;
	char			*s, *p;
	size_t			 k = 2000, m = MAX_FIELD_VALUE - 2 * k, i;

	(void)state;
	assert_non_null(s = malloc(2 + 6 * k + m + 2));
	p = s + sprintf(s, "a=");
	for (i = 0; i < k; i++)
		p += sprintf(p, "%%C3%%A9");	/* U+00E9, 2 bytes */
	memset(p, 'v', m);
	p[m] = '\0';
	assert_true(strlen(s) - 2 > MAX_FIELD_VALUE && strlen(s) < MAX_BODY);
	assert_int_equal(parse(FORM, s, &out, &err), 0);
	assert_int_equal(out->field[0].value_len, MAX_FIELD_VALUE);
	assert_int_equal(strlen(out->field[0].value), MAX_FIELD_VALUE);
	free(out);
	strcat(p, "v");
	refuses(FORM, s, "value too long");
	free(s);
}

/* n fields f0=v ... or {"f0":"v", ...}; malloc'd. */
static char *
n_fields(bool json, int n)
{
	char	*s, *p;
	int	 i;

	assert_non_null(s = malloc(32 * (size_t)n + 3));
	p = s;
	if (json)
		*p++ = '{';
	for (i = 0; i < n; i++)
		p += sprintf(p, json ? "%s\"f%d\":\"v\"" : "%sf%d=v",
		    i == 0 ? "" : json ? "," : "&", i);
	if (json)
		*p++ = '}';
	*p = '\0';
	return s;
}

static void
test_field_count_limit(void **state)
{
	char	*s;
	int	 j;

	(void)state;
	for (j = 0; j < 2; j++) {
		accepts(j ? JSON : FORM, s = n_fields(j, MAX_BODY_FIELDS),
		    MAX_BODY_FIELDS);
		free(s);
		refuses(j ? JSON : FORM, s = n_fields(j, MAX_BODY_FIELDS + 1),
		    "too many fields");
		free(s);
	}
}

/* A whole MAX_BODY-byte body passes; one more byte is refused even though
 * the caller should have refused it first. */
static void
test_body_limit(void **state)
{
	char	*s;
	size_t	 half = (MAX_BODY - 5) / 2;

	(void)state;
	assert_true(half <= MAX_FIELD_VALUE);
	assert_non_null(s = malloc(MAX_BODY + 2));
	memset(s, 'v', MAX_BODY + 1);
	memcpy(s, "a=", 2);
	memcpy(s + 2 + half, "&b=", 3);
	s[MAX_BODY] = '\0';
	accepts(FORM, s, 2);
	s[MAX_BODY] = 'v';
	s[MAX_BODY + 1] = '\0';
	refuses(FORM, s, "body too long");
	free(s);
}

static void
test_content_types(void **state)
{
	static const struct {
		const char	*ct;
		int		 type;	/* 0: refused */
	} cases[] = {
		{ FORM, BODY_TYPE_FORM },
		{ JSON, BODY_TYPE_JSON },
		{ "APPLICATION/JSON", BODY_TYPE_JSON },
		{ "Application/X-WWW-Form-Urlencoded", BODY_TYPE_FORM },
		{ "application/json; charset=utf-8", BODY_TYPE_JSON },
		{ "application/json;charset=UTF-8", BODY_TYPE_JSON },
		{ "application/json ; CHARSET=\"utf-8\"", BODY_TYPE_JSON },
		{ FORM "; charset=utf-8", BODY_TYPE_FORM },
		{ "application/json;", BODY_TYPE_JSON },
		{ " application/json ", BODY_TYPE_JSON },
		{ NULL, 0 },
		{ "", 0 },
		{ " ", 0 },
		{ "text/plain", 0 },
		{ "application/jsonx", 0 },
		{ "application/json5", 0 },
		{ "application/", 0 },
		{ "multipart/form-data; boundary=x", 0 },
		{ "application/json; charset=latin-1", 0 },
		{ "application/json; charset=utf8", 0 },
		{ "application/json; charset=\"utf-8", 0 },
		{ "application/json; charset=\"utf-8x", 0 },
		{ "application/json; charset=utf-8\"", 0 },
		{ "application/json; charset = utf-8", 0 },
		{ "application/json; charset=utf-8; charset=utf-8", 0 },
		{ "application/json; boundary=x", 0 },
		{ "application/json x", 0 },
		{ "application/json,text/plain", 0 },
	};
	struct kl_error	err;
	enum body_type	type;
	size_t		i;
	int		rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		type = 0;
		kl_error_clear(&err);
		rc = body_content_type(cases[i].ct, &type, &err);
		if (cases[i].type != 0 && (rc != 0 || (int)type != cases[i].type))
			fail_msg("\"%s\": refused or wrong type: %s",
			    cases[i].ct, err.detail);
		if (cases[i].type == 0 &&
		    (rc != -1 || err.status != KL_BAD_REQUEST))
			fail_msg("\"%s\": accepted", cases[i].ct);
	}
}

static void
test_get(void **state)
{
	struct body_fields	*out;
	struct kl_error		 err;

	(void)state;
	assert_int_equal(parse(FORM, "code=abc&Code=ABC&empty=", &out,
	    &err), 0);
	assert_string_equal(body_get(out, "code"), "abc");
	assert_string_equal(body_get(out, "Code"), "ABC");
	assert_string_equal(body_get(out, "empty"), "");
	assert_null(body_get(out, "CODE"));
	assert_null(body_get(out, "cod"));
	assert_null(body_get(out, "code="));
	assert_null(body_get(out, NULL));
	assert_null(body_get(NULL, "code"));
	free(out);
}

static void
test_wipe(void **state)
{
	static const struct body_fields zero;
	struct body_fields	*out;
	struct kl_error		 err;

	(void)state;
	assert_int_equal(parse(JSON, "{\"code\":\"" SECRET_MARK "\"}", &out,
	    &err), 0);
	assert_non_null(memmem(out->store, sizeof(out->store), SECRET_MARK,
	    strlen(SECRET_MARK)));
	body_wipe(out);
	assert_int_equal(out->count, 0);
	assert_null(body_get(out, "code"));
	assert_memory_equal(out, &zero, sizeof(zero));
	body_wipe(NULL);
	free(out);
}

/* A refusal leaves nothing of this body or of an earlier one behind. */
static void
test_refusal_wipes(void **state)
{
	static const struct body_fields zero;
	struct body_fields	*out;
	struct kl_error		 err;
	const char		*again = "code=" SECRET_MARK "&code=x";

	(void)state;
	assert_int_equal(parse(FORM, "code=" SECRET_MARK, &out, &err), 0);
	assert_int_equal(body_parse(FORM, again, strlen(again), out, &err),
	    -1);
	assert_memory_equal(out, &zero, sizeof(zero));
	free(out);
	assert_int_equal(parse(FORM, "code=" SECRET_MARK, &out, &err), 0);
	assert_int_equal(body_parse("text/plain", "x", 1, out, &err), -1);
	assert_memory_equal(out, &zero, sizeof(zero));
	free(out);
}

/* No refusal quotes a name or a value, whatever the reason. */
static void
test_detail_holds_no_value(void **state)
{
	static const char *bodies[] = {
		"code=" SECRET_MARK "%zz",
		"code=" SECRET_MARK "%0a",
		"code=" SECRET_MARK "&code=" SECRET_MARK,
		SECRET_MARK,
		SECRET_MARK "!=1",
		"a=1&" SECRET_MARK "&",
		"code=" SECRET_MARK "\xc0\x80",
	};
	static const char *json[] = {
		"{\"code\":\"" SECRET_MARK "\",\"code\":\"" SECRET_MARK "\"}",
		"{\"" SECRET_MARK "!\":\"x\"}",
		"{\"code\":\"" SECRET_MARK "\"} " SECRET_MARK,
		"{\"code\":" SECRET_MARK "}",
		"{\"code\":\"" SECRET_MARK "\\u0000\"}",
		"[\"" SECRET_MARK "\"]",
	};
	struct body_fields	*out;
	struct kl_error		 err;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		assert_int_equal(parse(FORM, bodies[i], &out, &err), -1);
		assert_null(strstr(err.detail, SECRET_MARK));
		assert_null(strstr(err.detail, "s3c"));
		free(out);
	}
	for (i = 0; i < sizeof(json) / sizeof(json[0]); i++) {
		assert_int_equal(parse(JSON, json[i], &out, &err), -1);
		assert_null(strstr(err.detail, SECRET_MARK));
		assert_null(strstr(err.detail, "s3c"));
		free(out);
	}
}

/* A body with a NUL in it, and an empty or NULL body. */
static void
test_nul_and_empty(void **state)
{
	struct body_fields	*out;
	struct kl_error		 err;

	(void)state;
	assert_non_null(out = malloc(sizeof(*out)));
	assert_int_equal(body_parse(FORM, "a=1\0b", 5, out, &err), -1);
	assert_int_equal(body_parse(JSON, "{}\0", 3, out, &err), -1);
	assert_int_equal(body_parse(FORM, NULL, 0, out, &err), 0);
	assert_int_equal(out->count, 0);
	assert_int_equal(body_parse(JSON, NULL, 0, out, &err), -1);
	assert_int_equal(body_parse(FORM, NULL, 3, out, &err), -1);
	assert_int_equal(body_parse(JSON, "{}", 2, out, &err), 0);
	assert_int_equal(out->count, 0);
	free(out);
}

/* Every decoded value ends in the store, NUL-terminated, its length right,
 * and the fields keep the body's order. */
static void
test_layout(void **state)
{
	struct body_fields	*out;
	struct kl_error		 err;
	int			 i;

	(void)state;
	assert_int_equal(parse(JSON, "{\"z\":\"\\u00e9\\ud83d\\ude00\","
	    "\"a\":\"\",\"m\":\"x\\/y\"}", &out, &err), 0);
	assert_int_equal(out->count, 3);
	assert_string_equal(out->field[0].name, "z");
	assert_string_equal(out->field[0].value, "\xc3\xa9\xf0\x9f\x98\x80");
	assert_string_equal(out->field[1].name, "a");
	assert_string_equal(out->field[2].value, "x/y");
	for (i = 0; i < out->count; i++) {
		assert_true(out->field[i].value >= out->store);
		assert_true(out->field[i].value + out->field[i].value_len <
		    out->store + out->used);
		assert_int_equal(strlen(out->field[i].value),
		    out->field[i].value_len);
	}
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_cases),
		cmocka_unit_test(test_name_limit),
		cmocka_unit_test(test_value_limit),
		cmocka_unit_test(test_value_limit_decoded),
		cmocka_unit_test(test_field_count_limit),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_content_types),
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_wipe),
		cmocka_unit_test(test_refusal_wipes),
		cmocka_unit_test(test_detail_holds_no_value),
		cmocka_unit_test(test_nul_and_empty),
		cmocka_unit_test(test_layout),
	};

	return cmocka_run_group_tests_name("body", tests, NULL, NULL);
}
