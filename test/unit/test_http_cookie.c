/*
 * test_http_cookie.c: the refresh cookie's parser and Set-Cookie lines
 * (app/http_cookie.c) and the allowed-origin check and CORS headers
 * (app/http_cors.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "http_cookie.h"
#include "http_cors.h"

#define N	"__Host-kl_refresh"

static void
test_find(void **state)
{
	char	out[48];

	(void)state;
	assert_int_equal(http_cookie_find(NULL, N, out, sizeof(out)), 0);
	assert_int_equal(http_cookie_find("", N, out, sizeof(out)), 0);
	assert_int_equal(http_cookie_find(N "=abc", N, out, sizeof(out)), 1);
	assert_string_equal(out, "abc");
	assert_int_equal(http_cookie_find("a=1;  " N "=x-y_z ; b=\"q\"", N,
	    out, sizeof(out)), 1);
	assert_string_equal(out, "x-y_z");
	assert_int_equal(http_cookie_find(N "=\"quoted\"", N, out,
	    sizeof(out)), 1);
	assert_string_equal(out, "quoted");
	/* Other names, prefixes and suffixes are not it. */
	assert_int_equal(http_cookie_find("kl_refresh=abc; x" N "=d; " N
	    "x=e", N, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	/* Other cookies may hold anything. */
	assert_int_equal(http_cookie_find("junk=\x01\x7f,\\; " N "=ok", N,
	    out, sizeof(out)), 1);
	assert_string_equal(out, "ok");
}

static void
test_find_refuses(void **state)
{
	char	out[8];

	(void)state;
	/* Twice: a sibling subdomain may have planted one. */
	assert_int_equal(http_cookie_find(N "=a; " N "=b", N, out,
	    sizeof(out)), -1);
	assert_string_equal(out, "");
	assert_int_equal(http_cookie_find(N "=; b=1", N, out, sizeof(out)),
	    -1);
	assert_int_equal(http_cookie_find(N "=\"\"", N, out, sizeof(out)), -1);
	assert_int_equal(http_cookie_find(N "=1234567", N, out, sizeof(out)),
	    1);
	assert_int_equal(http_cookie_find(N "=12345678", N, out, sizeof(out)),
	    -1);
	assert_string_equal(out, "");
	assert_int_equal(http_cookie_find(N "=a,b", N, out, sizeof(out)), -1);
	assert_int_equal(http_cookie_find(N "=a\\b", N, out, sizeof(out)), -1);
	assert_int_equal(http_cookie_find(N "=a b", N, out, sizeof(out)), -1);
	assert_int_equal(http_cookie_find(N "=\"ab", N, out, sizeof(out)), -1);
}

/* Path=/ puts the site's other cookies in the same header: a long one is
 * searched whole, not refused. */
static void
test_find_in_a_long_header(void **state)
{
	char	hdr[9000], out[8];

	(void)state;
	memset(hdr, 'y', sizeof(hdr));
	memcpy(hdr, "big=", 4);
	snprintf(hdr + 8000, sizeof(hdr) - 8000, "; " N "=tok");
	assert_int_equal(http_cookie_find(hdr, N, out, sizeof(out)), 1);
	assert_string_equal(out, "tok");
}

static void
test_set_and_clear(void **state)
{
	struct http_response	resp;
	struct kl_error		err;

	(void)state;
	memset(&resp, 0, sizeof(resp));
	assert_int_equal(http_cookie_refresh_set(&resp, true, "tok", 60,
	    &err), 0);
	assert_string_equal(resp.headers.data,
	    "Set-Cookie: " N "=tok; Path=/; Max-Age=60; HttpOnly; "
	    "SameSite=Strict; Secure\r\n");
	http_response_free(&resp);
	memset(&resp, 0, sizeof(resp));
	assert_int_equal(http_cookie_refresh_set(&resp, false, NULL, 60,
	    &err), 0);
	assert_string_equal(resp.headers.data,
	    "Set-Cookie: kl_refresh=; Path=/; Max-Age=0; HttpOnly; "
	    "SameSite=Strict\r\n");
	http_response_free(&resp);
	/* A value that would split the header or the cookie: refused. */
	memset(&resp, 0, sizeof(resp));
	assert_int_equal(http_cookie_refresh_set(&resp, true, "a;Domain=x",
	    60, &err), -1);
	assert_int_equal(http_cookie_refresh_set(&resp, true, "a\r\nX: y",
	    60, &err), -1);
	assert_int_equal(resp.headers.len, 0);
	http_response_free(&resp);
}

static void
test_origin_allowed(void **state)
{
	struct config	cfg;

	(void)state;
	config_defaults(&cfg);
	assert_false(http_cors_allowed(&cfg, "https://a.example", 1));
	cfg.n_allowed_origins = 2;
	snprintf(cfg.allowed_origin[0], MAX_ORIGIN_LEN, "https://a.example");
	snprintf(cfg.allowed_origin[1], MAX_ORIGIN_LEN, "http://127.0.0.1:8080");
	assert_true(http_cors_allowed(&cfg, "https://a.example", 1));
	assert_true(http_cors_allowed(&cfg, "http://127.0.0.1:8080", 1));
	assert_false(http_cors_allowed(&cfg, "https://a.example", 2));
	assert_false(http_cors_allowed(&cfg, NULL, 0));
	assert_false(http_cors_allowed(&cfg, "null", 1));
	assert_false(http_cors_allowed(&cfg, "https://A.example", 1));
	assert_false(http_cors_allowed(&cfg, "https://a.example/", 1));
	assert_false(http_cors_allowed(&cfg, "https://a.example:443", 1));
	assert_false(http_cors_allowed(&cfg, "https://a.example.evil", 1));
	assert_false(http_cors_allowed(&cfg, "http://127.0.0.1:80800", 1));
}

static void
test_cors_headers(void **state)
{
	struct http_response	resp;
	struct kl_error		err;

	(void)state;
	memset(&resp, 0, sizeof(resp));
	assert_int_equal(http_cors_preflight(&resp, "https://a.example",
	    HTTP_POST, &err), 0);
	assert_int_equal(resp.status, 204);
	assert_string_equal(resp.headers.data,
	    "Access-Control-Allow-Origin: https://a.example\r\n"
	    "Access-Control-Allow-Credentials: true\r\n"
	    "Access-Control-Expose-Headers: X-Request-Id, WWW-Authenticate\r\n"
	    "Vary: Origin\r\n"
	    "Access-Control-Allow-Methods: POST\r\n"
	    "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"
	    "Access-Control-Max-Age: 600\r\n");
	http_response_free(&resp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_find_refuses),
		cmocka_unit_test(test_find_in_a_long_header),
		cmocka_unit_test(test_set_and_clear),
		cmocka_unit_test(test_origin_allowed),
		cmocka_unit_test(test_cors_headers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
