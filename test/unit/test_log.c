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
	if (log_open(fx->path) != 0) {
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
	assert_int_equal(log_open(path), 0);
	log_info("hello %d", 1);
	log_close();
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	/* Not world-readable: details may name users. */
	assert_int_equal(st.st_mode & 0007, 0);
	unlink(path);
	/* Reopen the fixture's file for the teardown. */
	assert_int_equal(log_open(fx->path), 0);
	/* A directory that does not exist. */
	assert_int_equal(log_open("/nonexistent/kl-test/log"), -1);
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
	/* CR, LF, space, quotes and tab each became one '?'. */
	if (strncmp(p, "/users/kakao/login??2024-01-01T00:00:00.000Z?req?"
	    "status=200??x??y ", 66) != 0)
		fail_msg("path logged as: %.80s", p);
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
	assert_non_null(strstr(buf, " path=/????[31m?/x "));
	assert_non_null(strstr(buf, " method=GE?T? "));
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_file, setup,
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
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
