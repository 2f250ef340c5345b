/*
 * test_log.c: the log sink (app/log.c).
 *
 * log_open() on a temp file under /tmp, then the lines written are read
 * back: one request is one line, whatever the client put in the path and
 * whatever newlines a detail carries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "kl_limits.h"
#include "log.h"

struct fixture {
	char	path[64];
};

static int
setup(void **state)
{
	struct fixture	*fx = calloc(1, sizeof(*fx));
	int		 fd;

	if (fx == NULL)
		return -1;
	snprintf(fx->path, sizeof(fx->path), "/tmp/kl-test-log-XXXXXX");
	if ((fd = mkstemp(fx->path)) == -1) {
		free(fx);
		return -1;
	}
	close(fd);
	if (log_open(fx->path, NULL) != 0) {
		unlink(fx->path);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	log_close();
	unlink(fx->path);
	free(fx);
	return 0;
}

/* The whole file, NUL-terminated; *len is its size. */
static char *
slurp(const char *path, size_t *len)
{
	FILE	*fp = fopen(path, "rb");
	char	*buf;
	long	 size;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	assert_true(size >= 0);
	rewind(fp);
	buf = malloc((size_t)size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
	buf[size] = '\0';
	fclose(fp);
	*len = (size_t)size;
	return buf;
}

static size_t
count_char(const char *s, size_t len, char c)
{
	size_t	i, n = 0;

	for (i = 0; i < len; i++)
		if (s[i] == c)
			n++;
	return n;
}

/* The file holds exactly `lines` lines, each ended by '\n', no CR. */
static char *
read_lines(const char *path, size_t lines)
{
	size_t	 len;
	char	*buf = slurp(path, &len);

	assert_true(len > 0);
	assert_int_equal(strlen(buf), len);		/* no NUL inside */
	assert_int_equal(buf[len - 1], '\n');
	if (count_char(buf, len, '\n') != lines)
		fail_msg("%zu lines, want %zu:\n%s", count_char(buf, len, '\n'),
		    lines, buf);
	assert_int_equal(count_char(buf, len, '\r'), 0);
	return buf;
}

static void
base_request(struct log_request *r)
{
	memset(r, 0, sizeof(*r));
	r->request_id = "0123456789abcdef0123456789abcdef";
	r->client = "203.0.113.7";
	r->method = "POST";
	r->path = "/users/kakao/login";
	r->status = 200;
	r->message = "SUCCESS";
	r->detail = "";
	r->user_id = 42;
	r->duration_us = 12345;
	r->upstream_us = 6789;
}

static void
test_open_creates_file(void **state)
{
	struct fixture	*fx = *state;
	struct stat	 st;
	char		 path[80];

	snprintf(path, sizeof(path), "%s.new", fx->path);
	unlink(path);
	assert_int_equal(log_open(path, NULL), 0);
	log_info("hello %d", 1);
	log_close();
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	/* Not world-readable: details may name users. */
	assert_int_equal(st.st_mode & 0007, 0);
	unlink(path);
	/* Reopen the fixture's file for the teardown. */
	assert_int_equal(log_open(fx->path, NULL), 0);
	/* A directory that does not exist. */
	assert_int_equal(log_open("/nonexistent/kl-test/log", NULL), -1);
}

static void
test_request_is_one_line(void **state)
{
	struct fixture		*fx = *state;
	struct log_request	 r;
	char			*buf;

	base_request(&r);
	log_request(&r);
	buf = read_lines(fx->path, 1);
	assert_non_null(strstr(buf,
	    " id=0123456789abcdef0123456789abcdef client=203.0.113.7 "));
	assert_non_null(strstr(buf, " method=POST "));
	assert_non_null(strstr(buf, " path=/users/kakao/login "));
	assert_non_null(strstr(buf, " status=200 "));
	assert_non_null(strstr(buf, " message=SUCCESS "));
	assert_non_null(strstr(buf, " user=42 "));
	assert_non_null(strstr(buf, "detail=\"\""));
	free(buf);
}

static void
test_path_escaped(void **state)
{
	static const char	 want[] = "/users/kakao/login\\x0d\\x0a"
	    "2024-01-01T00:00:00.000Z\\x20req\\x20status=200\\x20\\x22x"
	    "\\x22\\x09y ";
	struct fixture		*fx = *state;
	struct log_request	 r;
	char			*buf, *p;

	base_request(&r);
	r.status = 404;
	r.message = "NOT_FOUND";
	r.path = "/users/kakao/login\r\n2024-01-01T00:00:00.000Z req "
	    "status=200 \"x\"\ty";
	log_request(&r);
	buf = read_lines(fx->path, 1);
	p = strstr(buf, " path=");
	assert_non_null(p);
	p += strlen(" path=");
	/* CR, LF, space, quotes and tab each became a \xHH escape. */
	if (strncmp(p, want, strlen(want)) != 0)
		fail_msg("path logged as: %.100s", p);
	/* The forged "status=200" is not a field of its own. */
	assert_null(strstr(buf, " status=200 "));
	assert_non_null(strstr(buf, " status=404 message=NOT_FOUND "));
	free(buf);
}

static void
test_path_non_ascii_and_controls(void **state)
{
	struct fixture		*fx = *state;
	struct log_request	 r;
	char			*buf;

	base_request(&r);
	r.path = "/\xed\x95\x9c\x1b[31m\x7f/x";
	r.method = "GE T\n";
	log_request(&r);
	buf = read_lines(fx->path, 1);
	/* UTF-8 stays readable; ESC and DEL are escaped. */
	assert_non_null(strstr(buf, " path=/\xed\x95\x9c\\x1b[31m\\x7f/x "));
	assert_non_null(strstr(buf, " method=GE\\x20T\\x0a "));
	assert_null(strchr(buf, '\x1b'));
	free(buf);
}

static void
test_null_path_and_method(void **state)
{
	struct fixture		*fx = *state;
	struct log_request	 r;
	char			*buf;

	base_request(&r);
	r.path = NULL;
	r.method = NULL;
	r.detail = NULL;
	log_request(&r);
	buf = read_lines(fx->path, 1);
	assert_non_null(strstr(buf, " path=- "));
	assert_non_null(strstr(buf, " method=- "));
	free(buf);
}

/* The id and the client address come from the front: a space or a
 * newline in them cannot start a field or a line of its own. */
static void
test_id_and_client_escaped(void **state)
{
	struct fixture		*fx = *state;
	struct log_request	 r;
	char			*buf;

	base_request(&r);
	r.status = 404;
	r.message = "NOT_FOUND";
	r.request_id = "x status=200\nfake";
	r.client = NULL;
	log_request(&r);
	buf = read_lines(fx->path, 1);
	assert_non_null(strstr(buf, " id=x\\x20status=200\\x0afake client=- "));
	assert_null(strstr(buf, " status=200 "));
	free(buf);
}

static void
test_detail_newlines_do_not_split(void **state)
{
	struct fixture		*fx = *state;
	struct log_request	 r;
	char			*buf, *p;

	base_request(&r);
	r.status = 502;
	r.message = "KAKAO_BAD_RESPONSE";
	r.detail = "profile is not JSON:\nline 1\r\nnear \"x\"\rend";
	log_request(&r);
	buf = read_lines(fx->path, 1);
	p = strstr(buf, "detail=\"");
	assert_non_null(p);
	p += strlen("detail=\"");
	assert_non_null(strstr(p, "profile is not JSON:"));
	assert_non_null(strstr(p, "end\"\n"));
	/* The detail's own quotes do not end the field early. */
	assert_int_equal(count_char(p, strlen(p), '"'), 1);
	free(buf);
}

static void
test_long_fields_stay_one_line(void **state)
{
	struct fixture		*fx = *state;
	struct log_request	 r;
	char			*path, *detail, *buf;
	size_t			 len;

	path = malloc(20000);
	detail = malloc(5000);
	assert_non_null(path);
	assert_non_null(detail);
	memset(path, 'p', 19999);
	path[0] = '/';
	path[19999] = '\0';
	memset(detail, '\n', 4999);
	detail[4999] = '\0';
	base_request(&r);
	r.path = path;
	r.detail = detail;
	log_request(&r);
	buf = read_lines(fx->path, 1);
	len = strlen(buf);
	assert_true(len <= MAX_LOG_LINE);
	free(buf);
	free(path);
	free(detail);
}

static void
test_lines_append(void **state)
{
	struct fixture		*fx = *state;
	struct log_request	 r;
	char			*buf, *second;
	int			 i;

	base_request(&r);
	for (i = 0; i < 3; i++) {
		r.status = 400 + i;
		log_request(&r);
	}
	log_warn("trouble: %s", "store");
	buf = read_lines(fx->path, 4);
	assert_non_null(strstr(buf, "status=400 "));
	second = strchr(buf, '\n') + 1;
	assert_int_equal(strncmp(strstr(second, "status="), "status=401 ",
	    11), 0);
	assert_non_null(strstr(buf, "status=402 "));
	free(buf);
}


/* ---- log_escape, byte by byte ---- */

struct esc_case {
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	const char	*want;		/* quoted field (detail) */
};

static const struct esc_case esc_cases[] = {
	{ "abc", 0, "abc" },
	{ "a b", 0, "a b" },
	{ "", 0, "" },
	{ "\"", 0, "\\x22" },
	{ "\\", 0, "\\x5c" },
	{ "\\x1b", 0, "\\x5cx1b" },		/* an escape cannot be forged */
	{ "\x1b[31m", 0, "\\x1b[31m" },		/* ESC */
	{ "\x7f", 0, "\\x7f" },			/* DEL */
	{ "\0", 1, "\\x00" },
	{ "a\0b", 3, "a\\x00b" },
	{ "\t\n\r\v\f\x01\x1f", 0, "\\x09\\x0a\\x0d\\x0b\\x0c\\x01\\x1f" },
	{ "~!", 0, "~!" },
	/* Valid UTF-8 is kept. */
	{ "\xed\x95\x9c\xea\xb8\x80", 0, "\xed\x95\x9c\xea\xb8\x80" },
	{ "\xc3\xa9", 0, "\xc3\xa9" },
	{ "\xf0\x9f\x98\x80", 0, "\xf0\x9f\x98\x80" },	/* U+1F600 */
	{ "\xe2\x80\xa7", 0, "\xe2\x80\xa7" },		/* U+2027 */
	{ "\xe2\x80\xaf", 0, "\xe2\x80\xaf" },		/* U+202F */
	{ "\xe2\x81\xa5", 0, "\xe2\x81\xa5" },		/* U+2065 */
	{ "\xe2\x81\xaa", 0, "\xe2\x81\xaa" },		/* U+206A */
	{ "\xc2\xa0", 0, "\xc2\xa0" },			/* U+00A0 */
	{ "\xef\xbf\xbd", 0, "\xef\xbf\xbd" },		/* U+FFFD */
	/* Bidi controls and line separators. */
	{ "\xe2\x80\xaa", 0, "\\u{202a}" },
	{ "\xe2\x80\xab", 0, "\\u{202b}" },
	{ "\xe2\x80\xac", 0, "\\u{202c}" },
	{ "\xe2\x80\xad", 0, "\\u{202d}" },
	{ "\xe2\x80\xae", 0, "\\u{202e}" },
	{ "\xe2\x81\xa6", 0, "\\u{2066}" },
	{ "\xe2\x81\xa7", 0, "\\u{2067}" },
	{ "\xe2\x81\xa8", 0, "\\u{2068}" },
	{ "\xe2\x81\xa9", 0, "\\u{2069}" },
	{ "\xe2\x80\x8e", 0, "\\u{200e}" },
	{ "\xe2\x80\x8f", 0, "\\u{200f}" },
	{ "\xd8\x9c", 0, "\\u{61c}" },
	{ "\xe2\x80\xa8", 0, "\\u{2028}" },
	{ "\xe2\x80\xa9", 0, "\\u{2029}" },
	{ "\xc2\x85", 0, "\\u{85}" },
	{ "\xc2\x80\xc2\x9f", 0, "\\u{80}\\u{9f}" },	/* C1 controls */
	{ "evil\xe2\x80\xaegnp.exe", 0, "evil\\u{202e}gnp.exe" },
	/* Invalid UTF-8: each byte that is not part of a character. */
	{ "\xff", 0, "\\xff" },
	{ "\x80", 0, "\\x80" },
	{ "\xc0\xaf", 0, "\\xc0\\xaf" },		/* overlong '/' */
	{ "\xe0\x80\xaf", 0, "\\xe0\\x80\\xaf" },	/* overlong */
	{ "\xed\xa0\x80", 0, "\\xed\\xa0\\x80" },	/* surrogate */
	{ "\xf4\x90\x80\x80", 0, "\\xf4\\x90\\x80\\x80" },	/* > U+10FFFF */
	{ "\xf8\x88\x80\x80\x80", 0, "\\xf8\\x88\\x80\\x80\\x80" },
	{ "\xe2\x80", 0, "\\xe2\\x80" },		/* cut short at the end */
	{ "\xe2\x80" "A", 0, "\\xe2\\x80A" },		/* cut short */
	{ "\xc3" "\xc3\xa9", 0, "\\xc3\xc3\xa9" },
};

static void
test_escape_table(void **state)
{
	char	out[256];
	size_t	i, len, n;

	(void)state;
	for (i = 0; i < sizeof(esc_cases) / sizeof(esc_cases[0]); i++) {
		len = esc_cases[i].len ? esc_cases[i].len :
		    strlen(esc_cases[i].in);
		memset(out, 'Z', sizeof(out));
		n = log_escape(out, sizeof(out), esc_cases[i].in, len, 0);
		if (strcmp(out, esc_cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, out,
			    esc_cases[i].want);
		assert_int_equal(n, strlen(out));
	}
}

/* Unquoted fields (method, path): a space is escaped too. */
static void
test_escape_space_flag(void **state)
{
	char	out[64];

	(void)state;
	log_escape(out, sizeof(out), "a b\tc", 5, LOG_ESCAPE_SPACE);
	assert_string_equal(out, "a\\x20b\\x09c");
	log_escape(out, sizeof(out), "a b", 3, 0);
	assert_string_equal(out, "a b");
}

/* A short buffer: NUL-terminated, never half an escape or character. */
static void
test_escape_truncates_whole(void **state)
{
	static const char in[] = "ab\x1b\xed\x95\x9c\xe2\x80\xae";
	static const char *want[] = {
		"", "", "a", "ab", "ab", "ab", "ab", "ab\\x1b", "ab\\x1b",
		"ab\\x1b", "ab\\x1b\xed\x95\x9c",
	};
	char	out[32];
	size_t	size;

	(void)state;
	for (size = 1; size < sizeof(want) / sizeof(want[0]); size++) {
		memset(out, 'Z', sizeof(out));
		log_escape(out, size, in, sizeof(in) - 1, 0);
		if (strcmp(out, want[size]) != 0)
			fail_msg("size %zu: got \"%s\", want \"%s\"", size, out,
			    want[size]);
	}
	log_escape(out, sizeof(out), in, sizeof(in) - 1, 0);
	assert_string_equal(out, "ab\\x1b\xed\x95\x9c\\u{202e}");
	assert_int_equal(log_escape(out, 0, in, 3, 0), 0);
}

/* What a hostile Kakao's bytes look like once they reach a detail (the
 * JSON parser quotes them): one line, nothing raw. */
static void
test_detail_upstream_bytes_escaped(void **state)
{
	struct fixture		*fx = *state;
	struct log_request	 r;
	char			*buf, *p;

	base_request(&r);
	r.status = 502;
	r.message = "KAKAO_BAD_RESPONSE";
	r.detail = "profile is not JSON: '[\x1b[2J\x7f\xe2\x80\xae\xe2\x80\xa8"
	    "\xc2\x85\xff\x01' near \"x\"";
	log_request(&r);
	buf = read_lines(fx->path, 1);
	p = strstr(buf, "detail=\"");
	assert_non_null(p);
	assert_string_equal(p, "detail=\"profile is not JSON: '[\\x1b[2J\\x7f"
	    "\\u{202e}\\u{2028}\\u{85}\\xff\\x01' near \\x22x\\x22\"\n");
	free(buf);
}

/* log_info / log_warn lines carry outside text too (store errors, accept
 * errors, Kakao details passed on): escaped the same way. */
static void
test_info_warn_escaped(void **state)
{
	struct fixture	*fx = *state;
	char		*buf;

	log_warn("store: %s", "bad\nline\x1b[0m\xe2\x80\xae\xff");
	buf = read_lines(fx->path, 1);
	assert_non_null(strstr(buf, " warn pid="));
	assert_non_null(strstr(buf, "store: bad\\x0aline\\x1b[0m\\u{202e}"
	    "\\xff\n"));
	free(buf);
}


/* ---- log_open / log_check: what they refuse ---- */

static void
test_open_refuses_link_fifo_other_owner(void **state)
{
	char		dir[] = "/tmp/kl-test-logdir-XXXXXX", p[96], q[96];
	struct kl_error	err;
	int		fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	/* A symlink, even to a file of ours: not followed, nothing written. */
	snprintf(p, sizeof(p), "%s/real.log", dir);
	snprintf(q, sizeof(q), "%s/link.log", dir);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd != -1);
	close(fd);
	assert_int_equal(symlink(p, q), 0);
	assert_int_equal(log_open(q, &err), -1);
	assert_non_null(strstr(err.detail, "link.log"));
	assert_int_equal(log_check(q, &err), -1);
	unlink(q);
	/* A FIFO: refused at once, no hang waiting for a reader. */
	assert_int_equal(mkfifo(q, 0600), 0);
	assert_int_equal(log_open(q, &err), -1);
	assert_int_equal(log_check(q, &err), -1);
	unlink(q);
	/* A file another uid owns (as root, when we can make one). */
	if (geteuid() == 0) {
		assert_int_equal(chown(p, 65534, 65534), 0);
		assert_int_equal(log_open(p, &err), -1);
		assert_non_null(strstr(err.detail, "owned by"));
		assert_int_equal(log_check(p, &err), -1);
		assert_int_equal(chown(p, 0, 0), 0);
	}
	/* Ours: fine, and log_check creates nothing. */
	assert_int_equal(log_check(p, &err), 0);
	snprintf(q, sizeof(q), "%s/new.log", dir);
	assert_int_equal(log_check(q, &err), 0);
	assert_int_equal(access(q, F_OK), -1);
	unlink(p);
	rmdir(dir);
}

static void
test_check_missing_directory(void **state)
{
	struct kl_error	err;

	(void)state;
	assert_int_equal(log_check("", &err), 0);
	kl_error_clear(&err);
	assert_int_equal(log_check("/nonexistent/kl-test/kakao-login.log",
	    &err), -1);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	assert_non_null(strstr(err.detail, "/nonexistent/kl-test"));
	/* A file as the "directory". */
	assert_int_equal(log_check("/etc/passwd/kakao-login.log", &err), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_id_and_client_escaped, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_request_is_one_line, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_path_escaped, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_path_non_ascii_and_controls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_null_path_and_method,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_detail_newlines_do_not_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_fields_stay_one_line,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_lines_append, setup,
		    teardown),
		cmocka_unit_test(test_open_refuses_link_fifo_other_owner),
		cmocka_unit_test(test_check_missing_directory),
		cmocka_unit_test(test_escape_table),
		cmocka_unit_test(test_escape_space_flag),
		cmocka_unit_test(test_escape_truncates_whole),
		cmocka_unit_test_setup_teardown(
		    test_detail_upstream_bytes_escaped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_info_warn_escaped, setup,
		    teardown),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
