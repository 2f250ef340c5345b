/*
 * test_fcgi.c: the fcgi layer's body reader (fcgi_read_body in app/fcgi.c),
 * on an FCGX_Stream that reads from memory, as libfcgi's stdin stream does
 * once the request's records are in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcgiapp.h>

#include "fcgi.h"
#include "kl_limits.h"

/* The stdin stream ends where the bytes do (the empty STDIN record). */
static void
mem_fill(FCGX_Stream *s)
{
	s->isClosed = 1;
}

static void
mem_stream(FCGX_Stream *s, unsigned char *bytes, size_t n)
{
	memset(s, 0, sizeof(*s));
	s->rdNext = s->stopUnget = bytes;
	s->stop = bytes + n;
	s->isReader = 1;
	s->fillBuffProc = mem_fill;
}

/* A peer whose stream fails mid-body (the guard refused it, or the
 * connection broke): libfcgi records the error and ends the stream. */
static void
broken_fill(FCGX_Stream *s)
{
	s->isClosed = 1;
	s->FCGI_errno = 71;	/* EPROTO, as the guard's refusal reads */
}

/* The worker's buffer, holding the previous request's body. */
static char *
used_buffer(void)
{
	char	*buf = malloc(MAX_BODY + 1);

	assert_non_null(buf);
	snprintf(buf, MAX_BODY + 1, "previous=request&secret=1");
	return buf;
}

static void
expect_body(const char *cl, const char *sent, int rc, const char *body,
    enum kl_status status)
{
	FCGX_Stream	 in;
	struct kl_error	 err;
	unsigned char	 bytes[64];
	char		*buf = used_buffer();
	size_t		 len = 99, n = strlen(sent);

	memcpy(bytes, sent, n);
	mem_stream(&in, bytes, n);
	kl_error_clear(&err);
	assert_int_equal(fcgi_read_body(&in, cl, MAX_BODY, buf, &len, &err), rc);
	if (rc == 0) {
		assert_int_equal(len, strlen(body));
		assert_memory_equal(buf, body, len + 1);
	} else
		assert_int_equal(err.status, status);
	free(buf);
}

static void
test_body_as_announced(void **state)
{
	(void)state;
	expect_body("5", "hello", 0, "hello", KL_OK);
	expect_body(NULL, "abc", 0, "abc", KL_OK);
	expect_body("", "abc", 0, "abc", KL_OK);
}

/* No body: the buffer must not still hold the previous request's. */
static void
test_empty_body_clears_the_buffer(void **state)
{
	(void)state;
	expect_body("0", "", 0, "", KL_OK);
	expect_body(NULL, "", 0, "", KL_OK);
	expect_body("", "", 0, "", KL_OK);
}

/* Fewer bytes than CONTENT_LENGTH: cut short, refused. */
static void
test_short_body_refused(void **state)
{
	(void)state;
	expect_body("10", "hello", -1, NULL, KL_BAD_REQUEST);
	expect_body("1", "", -1, NULL, KL_BAD_REQUEST);
}

/* A stream that fails mid-body is refused, announced length or not. */
static void
test_broken_stream_refused(void **state)
{
	FCGX_Stream	 in;
	struct kl_error	 err;
	unsigned char	 bytes[] = "abc";
	char		*buf = used_buffer();
	size_t		 len = 99;

	(void)state;
	mem_stream(&in, bytes, 3);
	in.fillBuffProc = broken_fill;
	assert_int_equal(fcgi_read_body(&in, NULL, MAX_BODY, buf, &len, &err), -1);
	assert_int_equal(err.status, KL_BAD_REQUEST);
	assert_int_equal(len, 0);
	assert_int_equal(buf[0], '\0');
	free(buf);
}

static void
test_bad_lengths(void **state)
{
	char	big[32];

	(void)state;
	expect_body("-1", "", -1, NULL, KL_BAD_REQUEST);
	expect_body("5x", "hello", -1, NULL, KL_BAD_REQUEST);
	expect_body(" 5", "hello", -1, NULL, KL_BAD_REQUEST);
	expect_body("99999999999999999999", "", -1, NULL, KL_BAD_REQUEST);
	snprintf(big, sizeof(big), "%d", MAX_BODY + 1);
	expect_body(big, "x", -1, NULL, KL_TOO_LARGE);
}

/* More bytes than announced: the framing is wrong, refused too. */
static void
test_long_body_refused(void **state)
{
	(void)state;
	expect_body("3", "abcdef", -1, NULL, KL_BAD_REQUEST);
	expect_body("0", "a", -1, NULL, KL_BAD_REQUEST);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_as_announced),
		cmocka_unit_test(test_empty_body_clears_the_buffer),
		cmocka_unit_test(test_short_body_refused),
		cmocka_unit_test(test_broken_stream_refused),
		cmocka_unit_test(test_bad_lengths),
		cmocka_unit_test(test_long_body_refused),
	};

	return cmocka_run_group_tests_name("fcgi", tests, NULL, NULL);
}
