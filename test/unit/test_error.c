/*
 * test_error.c: the status -> HTTP table (app/error.c) and kl_fail().
 *
 * The table is a contract (design.md, "HTTP"): front ends and acceptance
 * checks read the status and the message, so each row is checked by name.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kl_error.h"

struct row {
	enum kl_status	 status;
	const char	*name;
	int		 http;
	const char	*message;
};

/* design.md, "HTTP" table. */
static const struct row design_table[] = {
	{ KL_OK,		 "KL_OK",		 200, "SUCCESS" },
	{ KL_BAD_TOKEN,		 "KL_BAD_TOKEN",	 400, "INVALID_TOKEN" },
	{ KL_KAKAO_REJECTED,	 "KL_KAKAO_REJECTED",	 401, "NOT_FOUND_IN_KAKAO" },
	{ KL_WRONG_APP,		 "KL_WRONG_APP",	 401, "WRONG_APP" },
	{ KL_KAKAO_BAD_RESPONSE, "KL_KAKAO_BAD_RESPONSE", 502, "KAKAO_BAD_RESPONSE" },
	{ KL_KAKAO_UNAVAILABLE,	 "KL_KAKAO_UNAVAILABLE", 502, "KAKAO_UNAVAILABLE" },
	{ KL_KAKAO_TIMEOUT,	 "KL_KAKAO_TIMEOUT",	 504, "KAKAO_TIMEOUT" },
	{ KL_KAKAO_BUSY,	 "KL_KAKAO_BUSY",	 503, "KAKAO_BUSY" },
	{ KL_STORE_FAILED,	 "KL_STORE_FAILED",	 500, "INTERNAL_ERROR" },
	{ KL_INTERNAL,		 "KL_INTERNAL",		 500, "INTERNAL_ERROR" },
	{ KL_NOT_FOUND,		 "KL_NOT_FOUND",	 404, "NOT_FOUND" },
	{ KL_METHOD_NOT_ALLOWED, "KL_METHOD_NOT_ALLOWED", 405, "METHOD_NOT_ALLOWED" },
	{ KL_TOO_LARGE,		 "KL_TOO_LARGE",	 413, "TOO_LARGE" },
	{ KL_BAD_REQUEST,	 "KL_BAD_REQUEST",	 400, "BAD_REQUEST" },
	/* issue 9's table: the code flow and OpenID Connect. */
	{ KL_INVALID_CODE,	 "KL_INVALID_CODE",	 400, "INVALID_CODE" },
	{ KL_REDIRECT_MISMATCH,	 "KL_REDIRECT_MISMATCH", 400, "REDIRECT_URI_MISMATCH" },
	{ KL_KAKAO_CONFIG,	 "KL_KAKAO_CONFIG",	 502, "KAKAO_CONFIG_ERROR" },
	{ KL_BAD_ID_TOKEN,	 "KL_BAD_ID_TOKEN",	 401, "INVALID_ID_TOKEN" },
	{ KL_NOT_CONFIGURED,	 "KL_NOT_CONFIGURED",	 501, "NOT_CONFIGURED" },
	/* issue 10's: the routes that take our JWT. */
	{ KL_BAD_ACCESS_TOKEN,	 "KL_BAD_ACCESS_TOKEN",	 401, "INVALID_ACCESS_TOKEN" },
	{ KL_BAD_REFRESH,	 "KL_BAD_REFRESH",	 401, "INVALID_REFRESH_TOKEN" },
	{ KL_REFRESH_REUSED,	 "KL_REFRESH_REUSED",	 401, "REFRESH_REUSED" },
	{ KL_UNAUTHORIZED,	 "KL_UNAUTHORIZED",	 401, "UNAUTHORIZED" },
	/* issue 11's: readiness. */
	{ KL_NOT_READY,		 "KL_NOT_READY",	 503, "NOT_READY" },
	/* issue 11's: GET /metrics without the shared region. */
	{ KL_METRICS_UNAVAILABLE, "KL_METRICS_UNAVAILABLE", 503, "METRICS_UNAVAILABLE" },
	/* issue 11's: a login of a user kakao-login-admin deactivated. */
	{ KL_USER_DEACTIVATED,	 "KL_USER_DEACTIVATED",	 403, "USER_DEACTIVATED" },
};

static void
test_table_matches_design(void **state)
{
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(design_table) / sizeof(design_table[0]); i++) {
		const struct row *r = &design_table[i];

		assert_int_equal(error_http_status(r->status), r->http);
		assert_non_null(error_message(r->status));
		assert_string_equal(error_message(r->status), r->message);
	}
}

/* No status is left without a row: a new enum value needs one. */
static void
test_every_status_has_message_and_http(void **state)
{
	int		 s;
	const char	*m;

	(void)state;
	for (s = 0; s < KL_STATUS_COUNT; s++) {
		m = error_message((enum kl_status)s);
		assert_non_null(m);
		assert_true(m[0] != '\0');
		assert_in_range(error_http_status((enum kl_status)s), 200, 599);
		/* Failures never answer 2xx. */
		if (s != KL_OK)
			assert_in_range(error_http_status((enum kl_status)s),
			    400, 599);
	}
}

/* Messages are upper-case identifiers: the front end switches on them. */
static void
test_messages_are_identifiers(void **state)
{
	int		 s;
	const char	*m;

	(void)state;
	for (s = 0; s < KL_STATUS_COUNT; s++)
		for (m = error_message((enum kl_status)s); *m != '\0'; m++)
			assert_true((*m >= 'A' && *m <= 'Z') || *m == '_');
}

static void
test_out_of_range_status_is_internal(void **state)
{
	(void)state;
	assert_int_equal(error_http_status(KL_STATUS_COUNT), 500);
	assert_string_equal(error_message(KL_STATUS_COUNT), "INTERNAL_ERROR");
	assert_int_equal(error_http_status((enum kl_status)1000), 500);
	assert_string_equal(error_message((enum kl_status)1000),
	    "INTERNAL_ERROR");
	assert_int_equal(error_http_status((enum kl_status)-1), 500);
}

static void
test_kl_fail_fills_and_returns_minus_one(void **state)
{
	struct kl_error	err;

	(void)state;
	memset(&err, 0x55, sizeof(err));
	assert_int_equal(kl_fail(&err, KL_WRONG_APP, "app %d of %s", 42,
	    "kakao"), -1);
	assert_int_equal(err.status, KL_WRONG_APP);
	assert_string_equal(err.detail, "app 42 of kakao");
}

static void
test_kl_fail_accepts_null(void **state)
{
	(void)state;
	assert_int_equal(kl_fail(NULL, KL_INTERNAL, "nothing %s", "here"), -1);
	kl_error_clear(NULL);
}

static void
test_kl_fail_truncates_long_detail(void **state)
{
	struct kl_error	err;
	char		long_arg[MAX_ERROR_DETAIL * 2];

	(void)state;
	memset(long_arg, 'x', sizeof(long_arg) - 1);
	long_arg[sizeof(long_arg) - 1] = '\0';
	assert_int_equal(kl_fail(&err, KL_STORE_FAILED, "%s", long_arg), -1);
	assert_int_equal(err.status, KL_STORE_FAILED);
	assert_int_equal(strlen(err.detail), MAX_ERROR_DETAIL - 1);
}

static void
test_kl_error_clear(void **state)
{
	struct kl_error	err;

	(void)state;
	kl_fail(&err, KL_TOO_LARGE, "big");
	kl_error_clear(&err);
	assert_int_equal(err.status, KL_OK);
	assert_string_equal(err.detail, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_matches_design),
		cmocka_unit_test(test_every_status_has_message_and_http),
		cmocka_unit_test(test_messages_are_identifiers),
		cmocka_unit_test(test_out_of_range_status_is_internal),
		cmocka_unit_test(test_kl_fail_fills_and_returns_minus_one),
		cmocka_unit_test(test_kl_fail_accepts_null),
		cmocka_unit_test(test_kl_fail_truncates_long_detail),
		cmocka_unit_test(test_kl_error_clear),
	};

	return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
