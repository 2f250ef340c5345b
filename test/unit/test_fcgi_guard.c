/*
 * test_fcgi_guard.c: the FastCGI stream validator that keeps libfcgi's
 * crashing inputs away from it (app/fcgi_guard.c). Every stream is fed
 * whole and byte by byte: the verdict must not depend on how the kernel
 * splits reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fcgi_guard.h"
#include "kl_limits.h"

struct stream {
	unsigned char	b[200000];
	size_t		len;
};

static void
put(struct stream *s, const void *p, size_t n)
{
	assert_true(s->len + n <= sizeof(s->b));
	memcpy(s->b + s->len, p, n);
	s->len += n;
}

static void
record(struct stream *s, unsigned version, unsigned type, unsigned id,
    const void *content, size_t n, unsigned padding)
{
	unsigned char	h[8] = { (unsigned char)version, (unsigned char)type,
			    (unsigned char)(id >> 8), (unsigned char)id,
			    (unsigned char)(n >> 8), (unsigned char)n,
			    (unsigned char)padding, 0 };
	unsigned char	pad[255] = { 0 };

	put(s, h, sizeof(h));
	put(s, content, n);
	put(s, pad, padding);
}

/* A name-value pair with the shortest length encodings. */
static size_t
pair(unsigned char *out, const char *name, size_t vlen, char fill)
{
	size_t	nlen = strlen(name), o = 0, l, i;
	size_t	lens[2] = { nlen, vlen };

	for (i = 0; i < 2; i++) {
		l = lens[i];
		if (l < 128)
			out[o++] = (unsigned char)l;
		else {
			out[o++] = (unsigned char)(0x80 | (l >> 24));
			out[o++] = (unsigned char)(l >> 16);
			out[o++] = (unsigned char)(l >> 8);
			out[o++] = (unsigned char)l;
		}
	}
	memcpy(out + o, name, nlen);
	o += nlen;
	memset(out + o, fill, vlen);
	return o + vlen;
}

/* The verdict, fed whole and then byte by byte; both must agree. */
static int
verdict(const struct stream *s)
{
	static unsigned char	copy[sizeof(((struct stream *)0)->b)];
	struct fcgi_guard	g;
	size_t			i;
	int			whole, bytes = 0;

	memcpy(copy, s->b, s->len);
	memset(&g, 0, sizeof(g));
	whole = fcgi_guard_feed(&g, copy, s->len);
	memcpy(copy, s->b, s->len);
	memset(&g, 0, sizeof(g));
	for (i = 0; i < s->len && bytes == 0; i++)
		bytes = fcgi_guard_feed(&g, copy + i, 1);
	assert_int_equal(whole, bytes);
	return whole;
}

static void
begin(struct stream *s)
{
	static const unsigned char body[8] = { 0, 1, 0, 0, 0, 0, 0, 0 };

	record(s, 1, 1, 1, body, sizeof(body), 0);
}

static void
test_nginx_like_request_passes(void **state)
{
	struct stream	*s = calloc(1, sizeof(*s));
	unsigned char	 p[512];
	size_t		 n = 0;

	(void)state;
	begin(s);
	n += pair(p + n, "REQUEST_METHOD", 3, 'G');
	n += pair(p + n, "REQUEST_URI", 18, '/');
	n += pair(p + n, "HTTP_AUTHORIZATION", 200, 'a');
	record(s, 1, 4, 1, p, n, (8 - n % 8) % 8);
	record(s, 1, 4, 1, "", 0, 0);
	record(s, 1, 5, 1, "body", 4, 4);
	record(s, 1, 5, 1, "", 0, 0);
	assert_int_equal(verdict(s), 0);
	free(s);
}

static void
test_wrong_version_refused_for_good(void **state)
{
	struct stream		*s = calloc(1, sizeof(*s));
	struct fcgi_guard	 g;
	unsigned char		 one[1] = { 1 };

	(void)state;
	record(s, 2, 1, 1, "12345678", 8, 0);
	assert_int_equal(verdict(s), -1);
	/* Once refused, everything after is refused too. */
	memset(&g, 0, sizeof(g));
	assert_int_equal(fcgi_guard_feed(&g, s->b, s->len), -1);
	assert_int_equal(fcgi_guard_feed(&g, one, 1), -1);
	free(s);
}

static void
test_get_values_three_names_pass_four_refused(void **state)
{
	struct stream	*s = calloc(1, sizeof(*s));
	unsigned char	 p[256];
	size_t		 n = 0;

	(void)state;
	n += pair(p + n, "FCGI_MAX_CONNS", 0, 0);
	n += pair(p + n, "FCGI_MAX_REQS", 0, 0);
	n += pair(p + n, "FCGI_MPXS_CONNS", 0, 0);
	record(s, 1, 9, 0, p, n, 0);
	assert_int_equal(verdict(s), 0);
	s->len = 0;
	n = 0;
	for (int i = 0; i < 4; i++)
		n += pair(p + n, "FCGI_MPXS_CONNS", 0, 0);
	record(s, 1, 9, 0, p, n, 0);
	assert_int_equal(verdict(s), -1);
	free(s);
}

static void
test_param_lengths_bounded(void **state)
{
	struct stream	*s = calloc(1, sizeof(*s));
	unsigned char	*p = malloc(MAX_FCGI_PARAM + 64);
	unsigned char	 big[8] = { 0xff, 0xff, 0xff, 0xf0, 0x80, 0, 0, 0x10 };
	size_t		 n, off;

	(void)state;
	/* Exactly the limit, split over two records mid-value: passes. */
	begin(s);
	n = pair(p, "HTTP_X", MAX_FCGI_PARAM, 'x');
	record(s, 1, 4, 1, p, 40000, 0);
	record(s, 1, 4, 1, p + 40000, n - 40000, 0);
	record(s, 1, 4, 1, "", 0, 0);
	assert_int_equal(verdict(s), 0);
	/* One more byte: refused. */
	s->len = 0;
	begin(s);
	n = pair(p, "HTTP_X", MAX_FCGI_PARAM + 1, 'x');
	record(s, 1, 4, 1, p, 60000, 0);
	assert_int_equal(verdict(s), -1);
	/* 2^31 - 16 + 16: the int sum libfcgi overflows; the 4-byte length
	 * straddles two records. */
	s->len = 0;
	begin(s);
	record(s, 1, 4, 1, big, 2, 0);
	off = s->len;
	record(s, 1, 4, 1, big + 2, 6, 2);
	assert_true(s->len > off);
	assert_int_equal(verdict(s), -1);
	free(p);
	free(s);
}

static void
test_other_records_pass(void **state)
{
	struct stream	*s = calloc(1, sizeof(*s));
	unsigned char	 junk[300];

	(void)state;
	memset(junk, 0xff, sizeof(junk));
	/* Unknown types and STDIN content are not ours to judge: libfcgi
	 * answers them without harm. */
	begin(s);
	record(s, 1, 99, 0, junk, sizeof(junk), 5);
	record(s, 1, 5, 1, junk, sizeof(junk), 255);
	record(s, 1, 2, 1, "", 0, 0);
	assert_int_equal(verdict(s), 0);
	free(s);
}

/* One request per connection: libfcgi throws away bytes it read ahead when
 * a kept connection's request ends, and would parse from a place the guard
 * does not know. The flag is cleared in the bytes libfcgi reads. */
static void
test_keep_conn_cleared(void **state)
{
	static const unsigned char body[8] = { 0, 1, 1, 0, 0, 0, 0, 0 };
	struct stream		*s = calloc(1, sizeof(*s));
	struct fcgi_guard	 g;

	(void)state;
	record(s, 1, 1, 1, body, sizeof(body), 0);
	memset(&g, 0, sizeof(g));
	assert_int_equal(fcgi_guard_feed(&g, s->b, s->len), 0);
	assert_int_equal(s->b[8 + 2], 0);	/* flags byte of the body */
	assert_int_equal(s->b[8 + 1], 1);	/* role untouched */
	free(s);
}

/* A second BEGIN_REQUEST, a record of another id, or one before any
 * BEGIN_REQUEST: libfcgi skips those, and a guard that parsed them would
 * drift from it (a params length hidden in a skipped record). */
static void
test_other_request_ids_refused(void **state)
{
	static const unsigned char body2[8] = { 0, 1, 0, 0, 0, 0, 0, 0 };
	static const unsigned char lens[8] = { 0xff, 0xff, 0xff, 0xf0,
	    0x80, 0, 0, 0x10 };
	struct stream	*s = calloc(1, sizeof(*s));

	(void)state;
	begin(s);
	record(s, 1, 1, 2, body2, sizeof(body2), 0);
	assert_int_equal(verdict(s), -1);
	s->len = 0;
	begin(s);
	record(s, 1, 4, 2, "\0\x7f", 2, 6);
	record(s, 1, 4, 1, lens, sizeof(lens), 0);
	assert_int_equal(verdict(s), -1);
	s->len = 0;
	record(s, 1, 4, 1, "\0\0", 2, 6);
	assert_int_equal(verdict(s), -1);
	s->len = 0;
	record(s, 1, 1, 0, body2, sizeof(body2), 0);	/* BEGIN for id 0 */
	assert_int_equal(verdict(s), -1);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nginx_like_request_passes),
		cmocka_unit_test(test_wrong_version_refused_for_good),
		cmocka_unit_test(test_get_values_three_names_pass_four_refused),
		cmocka_unit_test(test_param_lengths_bounded),
		cmocka_unit_test(test_other_records_pass),
		cmocka_unit_test(test_keep_conn_cleared),
		cmocka_unit_test(test_other_request_ids_refused),
	};

	return cmocka_run_group_tests_name("fcgi_guard", tests, NULL, NULL);
}
