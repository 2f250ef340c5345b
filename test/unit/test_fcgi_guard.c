/*
 * test_fcgi_guard.c: the FastCGI stream validator that keeps libfcgi's
 * crashing inputs away from it (app/fcgi_guard.c). Every stream is fed
 * whole and byte by byte: the verdict must not depend on how the kernel
 * splits reads.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcgiapp.h>

#include "fcgi_conn.h"
#include "fcgi_guard.h"
#include "kl_clock.h"
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
	static unsigned char copy[sizeof(((struct stream *)0)->b)];
	struct fcgi_guard g;
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
	/* Refused at the byte that completes the name length, in the second
	 * record: the guard joins a length across records. */
	memcpy(copy, s->b, s->len);
	memset(&g, 0, sizeof(g));
	assert_int_equal(fcgi_guard_feed(&g, copy, off + 8 + 1), 0);
	assert_int_equal(fcgi_guard_feed(&g, copy + off + 8 + 1, 1), -1);
	assert_int_equal(verdict(s), -1);
	free(p);
	free(s);
}

/* Default deny: whatever nginx and lighttpd never send is refused at its
 * header, before libfcgi reads it. Each stream below is a whole request
 * but for one record. */
static void
test_records_outside_the_grammar_refused(void **state)
{
	static const unsigned char role_auth[8] = { 0, 2, 0, 0, 0, 0, 0, 0 };
	static const unsigned char role_filter[8] = { 0, 3, 0, 0, 0, 0, 0, 0 };
	static const unsigned char flag_2[8] = { 0, 1, 2, 0, 0, 0, 0, 0 };
	struct stream	*s = calloc(1, sizeof(*s));
	unsigned char	 junk[300], gv[64];
	size_t		 n;
	int		 i;

	(void)state;
	memset(junk, 0xff, sizeof(junk));
	n = pair(gv, "FCGI_MAX_CONNS", 0, 0);
	/* Types no front server sends, for the request or as id 0. */
	for (i = 0; i < 7; i++) {
		static const unsigned types[] = { 3, 6, 7, 8, 10, 11, 99 };

		s->len = 0;
		begin(s);
		record(s, 1, types[i], 1, junk, 8, 0);
		assert_int_equal(verdict(s), -1);
		s->len = 0;
		begin(s);
		record(s, 1, types[i], 0, junk, 8, 0);
		assert_int_equal(verdict(s), -1);
		s->len = 0;
		record(s, 1, types[i], 0, "", 0, 0);	/* before BEGIN, empty */
		begin(s);
		assert_int_equal(verdict(s), -1);
	}
	/* Roles other than RESPONDER, unknown flags, a short BEGIN body. */
	s->len = 0;
	record(s, 1, 1, 1, role_auth, 8, 0);
	assert_int_equal(verdict(s), -1);
	s->len = 0;
	record(s, 1, 1, 1, role_filter, 8, 0);
	assert_int_equal(verdict(s), -1);
	s->len = 0;
	record(s, 1, 1, 1, flag_2, 8, 0);
	assert_int_equal(verdict(s), -1);
	s->len = 0;
	record(s, 1, 1, 1, role_auth, 4, 0);
	assert_int_equal(verdict(s), -1);
	/* STDIN before the params end; PARAMS after they ended. */
	s->len = 0;
	begin(s);
	record(s, 1, 5, 1, "body", 4, 4);
	assert_int_equal(verdict(s), -1);
	s->len = 0;
	begin(s);
	record(s, 1, 4, 1, "", 0, 0);
	record(s, 1, 4, 1, "\1\1ab", 4, 4);
	assert_int_equal(verdict(s), -1);
	/* GET_VALUES after BEGIN, or twice before it. */
	s->len = 0;
	begin(s);
	record(s, 1, 9, 0, gv, n, 0);
	assert_int_equal(verdict(s), -1);
	s->len = 0;
	record(s, 1, 9, 0, gv, n, 0);
	record(s, 1, 9, 0, gv, n, 0);
	assert_int_equal(verdict(s), -1);
	/* ABORT_REQUEST with content. */
	s->len = 0;
	begin(s);
	record(s, 1, 4, 1, "", 0, 0);
	record(s, 1, 5, 1, "", 0, 0);
	record(s, 1, 2, 1, junk, 8, 0);
	assert_int_equal(verdict(s), -1);
	free(s);
}

/* Found by fuzz_fcgi_diff: libfcgi drops the padding of BEGIN_REQUEST and
 * of the empty PARAMS record (SetReaderType) and parses it as records, so
 * records hidden there passed a guard that skipped them as padding. */
static void
test_padding_libfcgi_forgets_refused(void **state)
{
	static const unsigned char body[8] = { 0, 1, 0, 0, 0, 0, 0, 0 };
	struct stream	*s = calloc(1, sizeof(*s));

	(void)state;
	record(s, 1, 1, 1, body, 8, 16);
	assert_int_equal(verdict(s), -1);
	s->len = 0;
	begin(s);
	record(s, 1, 4, 1, "", 0, 8);
	assert_int_equal(verdict(s), -1);
	s->len = 0;
	begin(s);
	record(s, 1, 4, 1, "\1\1ab", 4, 4);	/* padded content: fine */
	record(s, 1, 4, 1, "", 0, 0);
	record(s, 1, 5, 1, "", 0, 0);
	assert_int_equal(verdict(s), 0);
	free(s);
}

/* Found attacking main: an id-0 record of a type the guard did not parse
 * passed after BEGIN; libfcgi answers FCGI_UNKNOWN_TYPE, then reads the
 * record's content as params, so lengths that overflow reached its Malloc
 * assertion. */
static void
test_id0_record_after_begin_refused(void **state)
{
	static const unsigned char lens[8] = { 0xff, 0xff, 0xff, 0xf0,
	    0x80, 0, 0, 0x10 };
	struct stream	*s = calloc(1, sizeof(*s));

	(void)state;
	begin(s);
	record(s, 1, 99, 0, lens, sizeof(lens), 0);
	assert_int_equal(verdict(s), -1);
	free(s);
}

/* Found attacking main: an empty id-0 PARAMS record reset the guard's pair
 * state in the middle of a 4-byte length, so the rest of that length went
 * unchecked into libfcgi. */
static void
test_empty_id0_params_mid_parameter_refused(void **state)
{
	static const unsigned char lens[8] = { 0xff, 0xff, 0xff, 0xf0,
	    0x80, 0, 0, 0x10 };
	struct stream	*s = calloc(1, sizeof(*s));

	(void)state;
	begin(s);
	record(s, 1, 4, 1, lens, 2, 0);
	record(s, 1, 4, 0, "", 0, 0);
	record(s, 1, 4, 1, lens + 2, 6, 2);
	assert_int_equal(verdict(s), -1);
	/* The request's own empty PARAMS in the middle of a pair: a cut
	 * parameter, not an end. */
	s->len = 0;
	begin(s);
	record(s, 1, 4, 1, lens, 2, 6);
	record(s, 1, 4, 1, "", 0, 0);
	assert_int_equal(verdict(s), -1);
	free(s);
}

/* Nothing may follow the whole request but one ABORT_REQUEST. */
static void
test_nothing_after_the_request(void **state)
{
	struct stream	*s = calloc(1, sizeof(*s));
	size_t		 whole;

	(void)state;
	begin(s);
	record(s, 1, 4, 1, "", 0, 0);
	record(s, 1, 5, 1, "", 0, 0);
	whole = s->len;
	record(s, 1, 2, 1, "", 0, 0);
	assert_int_equal(verdict(s), 0);
	s->len = whole;
	begin(s);				/* a second request */
	assert_int_equal(verdict(s), -1);
	s->len = whole;
	record(s, 1, 5, 1, "more", 4, 4);	/* more body */
	assert_int_equal(verdict(s), -1);
	s->len = whole;
	record(s, 1, 2, 1, "", 0, 0);
	put(s, "x", 1);				/* a byte after the abort */
	assert_int_equal(verdict(s), -1);
	free(s);
}

/* An abort only after the whole request: libfcgi takes one before as the
 * end of the params (or the body) and serves the request cut there. */
static void
test_abort_only_after_the_request(void **state)
{
	struct stream	*s = calloc(1, sizeof(*s));
	unsigned char	 p[64];
	size_t		 n;

	(void)state;
	n = pair(p, "REQUEST_METHOD", 3, 'G');
	begin(s);
	record(s, 1, 2, 1, "", 0, 0);
	assert_int_equal(verdict(s), -1);
	s->len = 0;
	begin(s);
	record(s, 1, 4, 1, p, n, 0);
	record(s, 1, 4, 1, "", 0, 0);
	record(s, 1, 5, 1, "ab", 2, 6);
	record(s, 1, 2, 1, "", 0, 0);
	assert_int_equal(verdict(s), -1);
	s->len = 0;
	begin(s);
	record(s, 1, 4, 1, p, n, 0);
	record(s, 1, 4, 1, "", 0, 0);
	record(s, 1, 5, 1, "ab", 2, 6);
	record(s, 1, 5, 1, "", 0, 0);
	record(s, 1, 2, 1, "", 0, 0);
	assert_int_equal(verdict(s), 0);
	free(s);
}

/* Found attacking main: 40 MB of tiny params grew a worker by 400 MB. */
static void
test_param_count_capped(void **state)
{
	struct stream	*s = calloc(1, sizeof(*s));
	unsigned char	 p[4 * (MAX_FCGI_PARAMS + 1)];
	size_t		 n = 0;
	int		 i;

	(void)state;
	for (i = 0; i < MAX_FCGI_PARAMS; i++)
		n += pair(p + n, "P", 1, 'v');
	begin(s);
	record(s, 1, 4, 1, p, n, 0);
	record(s, 1, 4, 1, "", 0, 0);
	assert_int_equal(verdict(s), 0);
	n += pair(p + n, "P", 1, 'v');
	s->len = 0;
	begin(s);
	record(s, 1, 4, 1, p, n, 0);
	record(s, 1, 4, 1, "", 0, 0);
	assert_int_equal(verdict(s), -1);
	free(s);
}

static void
test_param_bytes_capped(void **state)
{
	struct stream	*s = calloc(1, sizeof(*s));
	unsigned char	*p = malloc(MAX_FCGI_PARAMS_BYTES + 64);
	size_t		 n = 0, left, chunk, i;

	(void)state;
	/* Pairs of 60000-byte values, then one that fills the limit
	 * exactly: passes. One byte more: refused. */
	for (i = 0; i < 2; i++)
		n += pair(p + n, "HTTP_X", 60000, 'x');
	n += pair(p + n, "HTTP_Y", MAX_FCGI_PARAMS_BYTES - n - 11, 'y');
	assert_int_equal(n, MAX_FCGI_PARAMS_BYTES);
	p[n] = p[n + 1] = 0;	/* one more pair: an empty name and value */
	for (i = 0; i < 2; i++) {
		s->len = 0;
		begin(s);
		for (left = n + 2 * i, chunk = 0; left > 0; left -= chunk) {
			chunk = left > 65535 ? 65535 : left;
			record(s, 1, 4, 1, p + (n + 2 * i - left), chunk, 0);
		}
		record(s, 1, 4, 1, "", 0, 0);
		assert_int_equal(verdict(s), i == 0 ? 0 : -1);
	}
	free(p);
	free(s);
}

/* FCGI_KEEP_CONN is left as the peer sent it, and remembered: the
 * connection may carry the next request once this one is answered. */
static void
test_keep_conn_recorded(void **state)
{
	static const unsigned char body[8] = { 0, 1, 1, 0, 0, 0, 0, 0 };
	struct stream		*s = calloc(1, sizeof(*s));
	struct fcgi_guard	 g;

	(void)state;
	record(s, 1, 1, 1, body, sizeof(body), 0);
	memset(&g, 0, sizeof(g));
	assert_int_equal(fcgi_guard_feed(&g, s->b, s->len), 0);
	assert_true(g.keep_conn);
	assert_int_equal(s->b[8 + 2], 1);	/* flags byte of the body */
	s->len = 0;
	begin(s);
	memset(&g, 0, sizeof(g));
	assert_int_equal(fcgi_guard_feed(&g, s->b, s->len), 0);
	assert_false(g.keep_conn);
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

/* What the guard saw is what libfcgi will see (fuzz_fcgi_diff relies on
 * it). */
static void
test_what_the_guard_saw(void **state)
{
	struct stream		*s = calloc(1, sizeof(*s));
	struct fcgi_guard	 g;
	unsigned char		 p[512];
	size_t			 n = 0;

	(void)state;
	n += pair(p + n, "REQUEST_METHOD", 4, 'P');
	n += pair(p + n, "HTTP_AUTHORIZATION", 200, 'a');
	record(s, 1, 1, 7, "\0\1\0\0\0\0\0\0", 8, 0);
	record(s, 1, 4, 7, p, 20, 0);
	record(s, 1, 4, 7, p + 20, n - 20, 3);
	record(s, 1, 4, 7, "", 0, 0);
	record(s, 1, 5, 7, "body", 4, 4);
	memset(&g, 0, sizeof(g));
	assert_int_equal(fcgi_guard_feed(&g, s->b, s->len), 0);
	assert_int_equal(g.request_id, 7);
	assert_int_equal(g.params.count, 2);
	assert_int_equal(g.params.bytes, 14 + 4 + 18 + 200);
	assert_int_equal(g.params_content, n);
	assert_true(g.params_ended);
	assert_int_equal(g.stdin_bytes, 4);
	assert_int_equal(g.phase, FCGI_GUARD_STDIN);
	s->len = 0;
	record(s, 1, 5, 7, "", 0, 0);
	assert_int_equal(fcgi_guard_feed(&g, s->b, s->len), 0);
	assert_int_equal(g.phase, FCGI_GUARD_COMPLETE);
	free(s);
}

/* A guarded listener with one peer connected to it. Non-blocking, so
 * that libfcgi's accept after the peer fails instead of waiting. */
static int
guarded_listener(int *peer)
{
	struct sockaddr_un	 sun;
	socklen_t		 len;
	int			 lfd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	/* Abstract name: nothing on disk to clean up. */
	snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1,
	    "kl-test-fcgi-guard-%d", (int)getpid());
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    strlen(sun.sun_path + 1));
	assert_true((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0)) >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sun, len), 0);
	assert_int_equal(listen(lfd, 4), 0);
	fcgi_guard_listen(lfd);
	assert_true((*peer = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(connect(*peer, (struct sockaddr *)&sun, len), 0);
	return lfd;
}

/* A guarded connection of our own, accepted as libfcgi accepts
 * (fcgi_guard_accept). */
static int
guarded_pair(int *peer)
{
	int	lfd, fd;

	lfd = guarded_listener(peer);
	fd = fcgi_guard_accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	close(lfd);
	return fd;
}

/* libfcgi itself, the guard in front: the peer sends stream and closes its
 * side. Returns FCGX_Accept_r's result; *auth: HTTP_AUTHORIZATION. */
static int
libfcgi_accept(const struct stream *s, char *auth, size_t size)
{
	FCGX_Request	 r;
	const char	*v;
	int		 lfd, peer, rc;

	assert_int_equal(FCGX_Init(), 0);
	lfd = guarded_listener(&peer);
	assert_int_equal(write(peer, s->b, s->len), (ssize_t)s->len);
	shutdown(peer, SHUT_WR);
	assert_int_equal(FCGX_InitRequest(&r, lfd, 0), 0);
	rc = FCGX_Accept_r(&r);
	auth[0] = '\0';
	if (rc == 0 && (v = FCGX_GetParam("HTTP_AUTHORIZATION", r.envp)))
		snprintf(auth, size, "%s", v);
	FCGX_Finish_r(&r);
	FCGX_Free(&r, 1);
	close(peer);
	close(lfd);
	return rc;
}

/* A whole request for libfcgi, with FCGI_KEEP_CONN or without, whose
 * Authorization is auth. */
static void
request_with(struct stream *s, bool keep, const char *auth)
{
	unsigned char	body[8] = { 0, 1, keep ? 1 : 0, 0, 0, 0, 0, 0 };
	unsigned char	p[512];
	size_t		n = 0;

	n += pair(p + n, "REQUEST_METHOD", 3, 'G');
	p[n++] = 18;
	p[n++] = (unsigned char)strlen(auth);
	memcpy(p + n, "HTTP_AUTHORIZATION", 18);
	memcpy(p + n + 18, auth, strlen(auth));
	n += 18 + strlen(auth);
	s->len = 0;
	record(s, 1, 1, 1, body, sizeof(body), 0);
	record(s, 1, 4, 1, p, n, 0);
	record(s, 1, 4, 1, "", 0, 0);
	record(s, 1, 5, 1, "", 0, 0);
}

/* Reads the peer's side to the answer's FCGI_END_REQUEST record. */
static void
read_to_end_request(int peer)
{
	unsigned char	buf[4096], h[8];
	size_t		have = 0, len;
	ssize_t		r;

	for (;;) {
		while (have < 8) {
			r = read(peer, h + have, 8 - have);
			assert_true(r > 0);
			have += (size_t)r;
		}
		len = ((size_t)h[4] << 8 | h[5]) + h[6];
		while (len > 0) {
			r = read(peer, buf, len < sizeof(buf) ? len : sizeof(buf));
			assert_true(r > 0);
			len -= (size_t)r;
		}
		if (h[1] == 3)		/* FCGI_END_REQUEST */
			return;
		have = 0;
	}
}

/* Serves the next request on r: 0 and its Authorization in auth, or
 * FCGX_Accept_r's error when none is ready (the listener is
 * non-blocking, so the wait in fcgi_conn.c is too). */
static int
serve_next(FCGX_Request *r, char *auth, size_t size)
{
	const char	*v;
	int		 rc;

	auth[0] = '\0';
	if ((rc = FCGX_Accept_r(r)) != 0)
		return rc;
	if ((v = FCGX_GetParam("HTTP_AUTHORIZATION", r->envp)) != NULL)
		snprintf(auth, size, "%s", v);
	FCGX_PutS("Status: 204\r\n\r\n", r->out);
	FCGX_Finish_r(r);
	return 0;
}

/* A guarded listener with fcgi_conn.c's epoll set (reset by each call),
 * one peer connected, and r ready on it with libfcgi's flags. */
static int
kept_listener(FCGX_Request *r, int *peer, int flags)
{
	int	lfd;

	assert_int_equal(FCGX_Init(), 0);
	lfd = guarded_listener(peer);
	assert_int_equal(fcgi_conn_init(lfd, 0), 0);
	assert_int_equal(FCGX_InitRequest(r, lfd, flags), 0);
	return lfd;
}

/* Another peer of lfd's abstract address. */
static int
connect_peer(int lfd)
{
	struct sockaddr_un	sun;
	socklen_t		len = sizeof(sun);
	int			peer;

	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sun, &len), 0);
	assert_true((peer = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(connect(peer, (struct sockaddr *)&sun, len), 0);
	return peer;
}

/*
 * nginx's fastcgi_keep_conn: requests one after another on one connection.
 * Between them the connection waits in fcgi_conn.c, not in a thread: an
 * accept with nothing sent returns at once and leaves it kept. A request
 * without the flag is the connection's last: the peer reads its end.
 */
static void
test_kept_connection_serves_requests_in_turn(void **state)
{
	struct stream	*s = calloc(1, sizeof(*s));
	FCGX_Request	 r;
	char		 auth[64], c;
	int		 lfd, peer;

	(void)state;
	lfd = kept_listener(&r, &peer, 0);

	request_with(s, true, "first");
	assert_int_equal(write(peer, s->b, s->len), (ssize_t)s->len);
	assert_int_equal(serve_next(&r, auth, sizeof(auth)), 0);
	assert_string_equal(auth, "first");
	read_to_end_request(peer);

	/* Nothing sent yet: the connection is parked, no thread waits. */
	assert_true(serve_next(&r, auth, sizeof(auth)) < 0);
	assert_int_equal(fcgi_conn_kept(), 1);

	request_with(s, true, "second");
	assert_int_equal(write(peer, s->b, s->len), (ssize_t)s->len);
	assert_int_equal(serve_next(&r, auth, sizeof(auth)), 0);
	assert_string_equal(auth, "second");
	assert_int_equal(fcgi_conn_kept(), 0);
	read_to_end_request(peer);

	request_with(s, false, "last");
	assert_int_equal(write(peer, s->b, s->len), (ssize_t)s->len);
	assert_int_equal(serve_next(&r, auth, sizeof(auth)), 0);
	assert_string_equal(auth, "last");
	read_to_end_request(peer);
	shutdown(peer, SHUT_WR);	/* libfcgi's close reads to our end */
	assert_true(serve_next(&r, auth, sizeof(auth)) < 0);
	assert_int_equal(read(peer, &c, 1), 0);
	assert_int_equal(fcgi_conn_kept(), 0);

	FCGX_Free(&r, 1);
	fcgi_conn_close_all();
	close(peer);
	close(lfd);
	free(s);
}

/*
 * The next request sent before this one's answer (pipelining): libfcgi
 * would read it ahead with this one and throw it away with this one's
 * buffer, so the stream is refused; a kept connection never starts a
 * request in the middle of the peer's bytes. The peer that waits for the
 * answer and closes instead of sending more is closed too, not kept.
 */
static void
test_kept_connection_refuses_pipelining(void **state)
{
	struct stream	*s = calloc(1, sizeof(*s)), *two = calloc(1, sizeof(*two));
	FCGX_Request	 r;
	char		 auth[64], c;
	int		 lfd, peer;

	(void)state;
	lfd = kept_listener(&r, &peer, 0);
	request_with(s, true, "one");
	put(two, s->b, s->len);
	request_with(s, true, "two");
	put(two, s->b, s->len);
	assert_int_equal(write(peer, two->b, two->len), (ssize_t)two->len);
	shutdown(peer, SHUT_WR);
	assert_true(serve_next(&r, auth, sizeof(auth)) < 0);
	assert_string_equal(auth, "");
	assert_int_equal(read(peer, &c, 1), 0);		/* closed unanswered */
	assert_int_equal(fcgi_conn_kept(), 0);

	/* The control, and a peer gone while its connection is kept. */
	close(peer);
	peer = connect_peer(lfd);
	request_with(s, true, "one");
	assert_int_equal(write(peer, s->b, s->len), (ssize_t)s->len);
	assert_int_equal(serve_next(&r, auth, sizeof(auth)), 0);
	assert_string_equal(auth, "one");
	read_to_end_request(peer);
	assert_true(serve_next(&r, auth, sizeof(auth)) < 0);
	assert_int_equal(fcgi_conn_kept(), 1);
	close(peer);				/* nginx's keepalive_timeout */
	assert_true(serve_next(&r, auth, sizeof(auth)) < 0);
	assert_int_equal(fcgi_conn_kept(), 0);

	FCGX_Free(&r, 1);
	fcgi_conn_close_all();
	close(lfd);
	free(s);
	free(two);
}

#define DRAIN_PEERS	20

struct drain_feed {
	int		peer[DRAIN_PEERS];
	struct stream	s;
};

/* Every 150 ms a request on the next kept connection, then its answer
 * read and the connection closed, as nginx does once it sees our end. */
static void *
drain_feed_run(void *arg)
{
	struct drain_feed	*f = arg;
	int			 i;

	for (i = 0; i < DRAIN_PEERS; i++) {
		usleep(150 * 1000);
		request_with(&f->s, true, "during the drain");
		if (write(f->peer[i], f->s.b, f->s.len) != (ssize_t)f->s.len)
			break;
		read_to_end_request(f->peer[i]);
		close(f->peer[i]);
		f->peer[i] = -1;
	}
	return NULL;
}

/*
 * At a stop the kept connections are served until quiet, but not for ever:
 * found in review, a peer sending on one kept connection after another
 * just inside the quiet time stretched the drain past DRAIN_LIMIT_S, and
 * the process exited without closing the store. 20 requests 150 ms apart
 * would take 3 s; the drain ends at FCGI_DRAIN_MAX_MS with the rest closed.
 */
static void
test_drain_of_kept_connections_is_capped(void **state)
{
	struct drain_feed	*f = calloc(1, sizeof(*f));
	FCGX_Request		 r;
	struct timespec		 t0;
	pthread_t		 t;
	char			 auth[64];
	int			 lfd, i, served = 0;
	long			 ms;

	(void)state;
	/* As the service: the drain ends the wait with EINTR. */
	lfd = kept_listener(&r, &f->peer[0], FCGI_FAIL_ACCEPT_ON_INTR);
	for (i = 0; i < DRAIN_PEERS; i++) {	/* each connection kept */
		if (i > 0) {	/* one at a time: the backlog is 4 */
			f->peer[i] = connect_peer(lfd);
		}
		request_with(&f->s, true, "before");
		assert_int_equal(write(f->peer[i], f->s.b, f->s.len),
		    (ssize_t)f->s.len);
		assert_int_equal(serve_next(&r, auth, sizeof(auth)), 0);
		read_to_end_request(f->peer[i]);
	}
	assert_true(serve_next(&r, auth, sizeof(auth)) < 0);
	assert_int_equal(fcgi_conn_kept(), DRAIN_PEERS);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	fcgi_conn_drain(FCGI_DRAIN_MAX_MS);
	assert_int_equal(pthread_create(&t, NULL, drain_feed_run, f), 0);
	while (serve_next(&r, auth, sizeof(auth)) == 0)
		served++;
	ms = kl_elapsed_us(&t0) / 1000;
	FCGX_Free(&r, 1);
	for (i = 0; i < DRAIN_PEERS; i++)	/* the feed's writes now fail */
		if (f->peer[i] >= 0)
			shutdown(f->peer[i], SHUT_RDWR);
	pthread_join(t, NULL);
	assert_true(served >= 5);		/* served while draining */
	assert_true(ms >= FCGI_DRAIN_MAX_MS - 100);
	assert_true(ms <= FCGI_DRAIN_MAX_MS + 400);
	assert_int_equal(fcgi_conn_kept(), 0);
	fcgi_conn_close_all();
	for (i = 0; i < DRAIN_PEERS; i++)
		if (f->peer[i] >= 0)
			close(f->peer[i]);
	close(lfd);
	free(f);
}

/*
 * A process whose store needs a fresh one drains with serve_ms 0: a
 * request waiting on a kept connection is not served (it would be a 500
 * while the other processes answer it), the connection is closed at once
 * and the drain ends without waiting for quiet. Seen in CI: a worker
 * restarting after a full disk answered its kept connections 500 for up
 * to FCGI_DRAIN_MAX_MS.
 */
static void
test_restart_drain_serves_no_kept(void **state)
{
	struct stream	*s = calloc(1, sizeof(*s));
	FCGX_Request	 r;
	struct timespec	 t0;
	char		 auth[64], c;
	int		 lfd, peer[2], i;
	long		 ms;

	(void)state;
	lfd = kept_listener(&r, &peer[0], FCGI_FAIL_ACCEPT_ON_INTR);
	for (i = 0; i < 2; i++) {
		if (i > 0)
			peer[i] = connect_peer(lfd);
		request_with(s, true, "before");
		assert_int_equal(write(peer[i], s->b, s->len), (ssize_t)s->len);
		assert_int_equal(serve_next(&r, auth, sizeof(auth)), 0);
		read_to_end_request(peer[i]);
	}
	assert_true(serve_next(&r, auth, sizeof(auth)) < 0);
	assert_int_equal(fcgi_conn_kept(), 2);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	fcgi_conn_drain(0);
	request_with(s, true, "after the restart began");
	assert_int_equal(write(peer[0], s->b, s->len), (ssize_t)s->len);
	assert_true(serve_next(&r, auth, sizeof(auth)) < 0);
	ms = kl_elapsed_us(&t0) / 1000;
	assert_string_equal(auth, "");
	assert_true(ms < FCGI_DRAIN_QUIET_MS);
	assert_int_equal(fcgi_conn_kept(), 0);
	/* Closed, unanswered: a reset where the request was left unread. */
	for (i = 0; i < 2; i++) {
		assert_true(read(peer[i], &c, 1) <= 0);
		close(peer[i]);
	}
	FCGX_Free(&r, 1);
	fcgi_conn_close_all();
	close(lfd);
	free(s);
}

/* Found writing fuzz_fcgi_diff: libfcgi takes a read error or EOF between
 * two params for their end, and hands the app a request cut there (here:
 * the peer closes inside a PARAMS record that claims 100 bytes more). */
static void
test_params_cut_short_not_served(void **state)
{
	struct stream	*s = calloc(1, sizeof(*s));
	unsigned char	 p[512];
	char		 auth[64];
	size_t		 n = 0;

	(void)state;
	n += pair(p + n, "REQUEST_METHOD", 3, 'G');
	n += pair(p + n, "HTTP_AUTHORIZATION", 20, 'a');
	/* The control: the whole request is served. */
	begin(s);
	record(s, 1, 4, 1, p, n, 0);
	record(s, 1, 4, 1, "", 0, 0);
	record(s, 1, 5, 1, "", 0, 0);
	assert_int_equal(libfcgi_accept(s, auth, sizeof(auth)), 0);
	assert_int_equal(strlen(auth), 20);
	s->len = 0;
	begin(s);
	record(s, 1, 4, 1, p, n, 0);
	s->b[16 + 5] += 100;	/* the PARAMS header's length, low byte */
	assert_true(libfcgi_accept(s, auth, sizeof(auth)) < 0);
	assert_string_equal(auth, "");
	free(s);
}

/* The executable defines no read(): Berkeley DB, curl, the log and key
 * files resolve libc's (or the sanitizer's), not a FastCGI validator. */
static void
test_executable_defines_no_read(void **state)
{
	Dl_info	 exe, rd;
	void	*sym = dlsym(RTLD_DEFAULT, "read");

	(void)state;
	assert_non_null(sym);
	assert_true(dladdr((void *)test_executable_defines_no_read, &exe));
	assert_true(dladdr(sym, &rd));
	assert_ptr_not_equal(rd.dli_fbase, exe.dli_fbase);
}

/* A file that lands on the number of a guarded connection (a library's
 * dup2, or a close that did not go through libfcgi) reads as a file. */
static void
test_plain_read_not_guarded(void **state)
{
	char		 path[] = "/tmp/kl-test-guard-XXXXXX", buf[16];
	int		 peer, fd, file;
	ssize_t		 r;

	(void)state;
	fd = guarded_pair(&peer);
	assert_int_equal(write(peer, "GET / HTTP/1.0\r\n", 16), 16);
	/* The control: libfcgi's read of it is refused. */
	errno = 0;
	assert_int_equal(fcgi_guard_read(fd, buf, sizeof(buf)), -1);
	assert_int_equal(errno, EPROTO);
	assert_true((file = mkstemp(path)) >= 0);
	unlink(path);
	assert_int_equal(write(file, "key bytes", 9), 9);
	assert_int_equal(lseek(file, 0, SEEK_SET), 0);
	/* The slot stays on and refused: only fcgi_guard_close clears it. */
	assert_int_equal(dup2(file, fd), fd);
	memset(buf, 0, sizeof(buf));
	r = read(fd, buf, sizeof(buf));
	assert_int_equal(r, 9);
	assert_memory_equal(buf, "key bytes", 9);
	close(file);
	close(fd);
	close(peer);
}

struct drip {
	int		fd;
	atomic_bool	stop;
};

/* A valid request, one byte every 200 ms, never finished. */
static void *
drip_run(void *arg)
{
	struct drip		*d = arg;
	static unsigned char	 req[64] = { 1, 1, 0, 1, 0, 8, 0, 0,
				    0, 1, 0, 0, 0, 0, 0, 0,
				    1, 4, 0, 1, 0xff, 0xff, 1, 0,
				    1, 0x80, 0, 0xff, 0xf0 };
	size_t			 i;

	for (i = 0; !atomic_load(&d->stop); i++) {
		if (write(d->fd, i < 29 ? &req[i] : (unsigned char *)"a", 1) != 1)
			break;
		usleep(200 * 1000);
	}
	return NULL;
}

/* One deadline for the whole request, however fast the bytes drip (main
 * had 30 s, checked only before reads that could each block 10 s). */
static void
test_deadline_for_the_whole_request(void **state)
{
	struct drip	 d;
	pthread_t	 t;
	struct timespec	 t0;
	char		 buf[64];
	ssize_t		 r;
	long		 ms;
	int		 fd;

	(void)state;
	atomic_init(&d.stop, false);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fd = guarded_pair(&d.fd);
	assert_int_equal(pthread_create(&t, NULL, drip_run, &d), 0);
	do {
		errno = 0;
		r = fcgi_guard_read(fd, buf, sizeof(buf));
		ms = kl_elapsed_us(&t0) / 1000;
	} while (r > 0 && ms < FCGI_REQUEST_DEADLINE_MS + 2000);
	atomic_store(&d.stop, true);
	pthread_join(t, NULL);
	fcgi_guard_close(fd);
	close(d.fd);
	assert_int_equal(r, -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(ms >= FCGI_REQUEST_DEADLINE_MS - 100);
	assert_true(ms <= FCGI_REQUEST_DEADLINE_MS + 500);
}

/*
 * The streams the real nginx and lighttpd sent through the shipped
 * snippets (test/fuzz/capture_fcgi.py, which make test also runs) all
 * pass, and the guard saw each request whole. Run from the top directory.
 */
static void
test_captured_front_streams_pass(void **state)
{
	static struct stream	 s;
	const char		*dir = "test/fuzz/corpus/fuzz_fcgi_diff";
	char			 path[512];
	struct dirent		*e;
	struct fcgi_guard	 g;
	DIR			*d;
	FILE			*fp;
	int			 n = 0;

	(void)state;
	assert_non_null(d = opendir(dir));
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "nginx-", 6) != 0 &&
		    strncmp(e->d_name, "lighttpd-", 9) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		assert_non_null(fp = fopen(path, "rb"));
		s.len = fread(s.b, 1, sizeof(s.b), fp);
		fclose(fp);
		if (verdict(&s) != 0)
			fail_msg("%s refused", path);
		memset(&g, 0, sizeof(g));
		assert_int_equal(fcgi_guard_feed(&g, s.b, s.len), 0);
		assert_true(g.params_ended);
		assert_int_equal(g.phase, FCGI_GUARD_COMPLETE);
		n++;
	}
	closedir(d);
	assert_true(n >= 10);	/* both fronts, several requests each */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nginx_like_request_passes),
		cmocka_unit_test(test_captured_front_streams_pass),
		cmocka_unit_test(test_wrong_version_refused_for_good),
		cmocka_unit_test(test_get_values_three_names_pass_four_refused),
		cmocka_unit_test(test_param_lengths_bounded),
		cmocka_unit_test(test_records_outside_the_grammar_refused),
		cmocka_unit_test(test_id0_record_after_begin_refused),
		cmocka_unit_test(test_padding_libfcgi_forgets_refused),
		cmocka_unit_test(test_empty_id0_params_mid_parameter_refused),
		cmocka_unit_test(test_nothing_after_the_request),
		cmocka_unit_test(test_abort_only_after_the_request),
		cmocka_unit_test(test_param_count_capped),
		cmocka_unit_test(test_param_bytes_capped),
		cmocka_unit_test(test_keep_conn_recorded),
		cmocka_unit_test(test_kept_connection_serves_requests_in_turn),
		cmocka_unit_test(test_kept_connection_refuses_pipelining),
		cmocka_unit_test(test_drain_of_kept_connections_is_capped),
		cmocka_unit_test(test_restart_drain_serves_no_kept),
		cmocka_unit_test(test_other_request_ids_refused),
		cmocka_unit_test(test_what_the_guard_saw),
		cmocka_unit_test(test_executable_defines_no_read),
		cmocka_unit_test(test_plain_read_not_guarded),
		cmocka_unit_test(test_deadline_for_the_whole_request),
		cmocka_unit_test(test_params_cut_short_not_served),
	};

	return cmocka_run_group_tests_name("fcgi_guard", tests, NULL, NULL);
}
