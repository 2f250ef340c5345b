/*
 * test_handlers_health.c: GET /healthz and GET /readyz
 * (app/handlers_health.c), on a real store in a mkdtemp() directory
 * (under $TMPDIR) and with no Kakao client at all (a Kakao call would
 * crash): /healthz answers with nothing behind it; /readyz answers READY
 * only with a config and a store that proves a write, NOT_READY (503)
 * with a fixed reason otherwise, and a burst of it costs one probe write.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "handlers.h"
#include "kl_clock.h"
#include "kl_limits.h"
#include "store.h"
#include "store_probe.h"

#include "unit_util.h"

struct fixture {
	char			 home[256];
	struct config		 cfg;
	struct store		*st;
	struct handler_ctx	 ctx;
};

static int
setup(void **state)
{
	struct fixture	*fx = calloc(1, sizeof(*fx));
	const char	*tmp = getenv("TMPDIR");
	struct kl_error	 err;

	if (fx == NULL)
		return -1;
	snprintf(fx->home, sizeof(fx->home), "%s/kl-test-health-XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	config_defaults(&fx->cfg);
	if (mkdtemp(fx->home) == NULL ||
	    store_open(&fx->st, fx->home, DURABILITY_SYNC, &err) != 0) {
		free(fx);
		return -1;
	}
	fx->ctx.cfg = &fx->cfg;
	fx->ctx.store = fx->st;		/* no token, no Kakao client */
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	store_close(fx->st);
	remove_tree(fx->home);
	free(fx);
	return 0;
}

static const struct http_request get_req = {
	.method = "GET", .method_bit = HTTP_GET, .path = "/readyz",
	.query = "", .client_addr = "127.0.0.1", .body = "",
};

/* Runs h; -> its return, with the answer in resp (freed by the caller). */
static int
call(handler_fn h, struct handler_ctx *ctx, struct http_response *resp,
    struct kl_error *err)
{
	memset(resp, 0, sizeof(*resp));
	kl_error_clear(err);
	return h(ctx, &get_req, resp, err);
}

static void
expect_body(struct http_response *resp, int status, const char *body)
{
	assert_int_equal(resp->status, status);
	assert_non_null(resp->body.data);
	assert_string_equal(resp->body.data, body);
	assert_null(resp->reason);
}

/* /healthz needs nothing: no config, no store, no Kakao. */
static void
test_healthz_depends_on_nothing(void **state)
{
	struct handler_ctx	ctx;
	struct http_response	resp;
	struct kl_error		err;

	(void)state;
	memset(&ctx, 0, sizeof(ctx));
	assert_int_equal(call(handler_healthz, &ctx, &resp, &err), 0);
	expect_body(&resp, 200, "{\"message\":\"OK\"}");
	http_response_free(&resp);
}

/* /healthz stays 200 while the store cannot open. */
static void
test_healthz_with_store_not_open(void **state)
{
	struct handler_ctx	ctx;
	struct http_response	resp;
	struct kl_error		err;
	struct store		*st;
	struct config		cfg;

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(store_new(&st, "/dev/null/db", DURABILITY_SYNC,
	    &err), 0);
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = &cfg;
	ctx.store = st;
	assert_int_equal(call(handler_healthz, &ctx, &resp, &err), 0);
	expect_body(&resp, 200, "{\"message\":\"OK\"}");
	http_response_free(&resp);
	/* ... and /readyz says why not, in a fixed phrase. */
	assert_int_equal(call(handler_readyz, &ctx, &resp, &err), -1);
	assert_int_equal(err.status, KL_NOT_READY);
	assert_int_equal(error_http_status(err.status), 503);
	assert_string_equal(error_message(err.status), "NOT_READY");
	assert_string_equal(resp.reason, "store not open");
	http_response_free(&resp);
	store_close(st);
}

static void
test_readyz_ready(void **state)
{
	struct fixture		*fx = *state;
	struct http_response	 resp;
	struct kl_error		 err;
	uint64_t		 n;

	assert_int_equal(call(handler_readyz, &fx->ctx, &resp, &err), 0);
	expect_body(&resp, 200, "{\"message\":\"READY\"}");
	http_response_free(&resp);
	/* It proved a write. */
	assert_int_equal(store_probe_count(fx->st, &n, &err), 0);
	assert_int_equal(n, 1);
}

/* 500 calls in a row: one probe write per READYZ_CACHE_MS they took
 * (and one to begin with), not one per call. */
static void
test_readyz_burst_is_cached(void **state)
{
	struct fixture		*fx = *state;
	struct http_response	 resp;
	struct kl_error		 err;
	long long		 t0 = kl_mono_ms(), took;
	uint64_t		 n;
	int			 i;

	for (i = 0; i < 500; i++) {
		assert_int_equal(call(handler_readyz, &fx->ctx, &resp, &err),
		    0);
		http_response_free(&resp);
	}
	took = kl_mono_ms() - t0;
	assert_int_equal(store_probe_count(fx->st, &n, &err), 0);
	assert_true(n >= 1);
	assert_true((long long)n <= 2 + took / READYZ_CACHE_MS);
}

static void
test_readyz_without_config(void **state)
{
	struct fixture		*fx = *state;
	struct http_response	 resp;
	struct kl_error		 err;
	uint64_t		 n;

	fx->ctx.cfg = NULL;
	assert_int_equal(call(handler_readyz, &fx->ctx, &resp, &err), -1);
	assert_int_equal(err.status, KL_NOT_READY);
	assert_string_equal(resp.reason, "config not loaded");
	http_response_free(&resp);
	/* Nothing was probed. */
	assert_int_equal(store_probe_count(fx->st, &n, &err), 0);
	assert_int_equal(n, 0);
}

/* Every reason is a short fixed phrase of lower-case letters and spaces
 * (the fcgi layer writes it into the JSON as it is). */
static void
test_reasons_are_plain_phrases(void **state)
{
	const char	*r;
	int		 h;

	(void)state;
	assert_null(handler_ready_reason(STORE_HEALTH_OK));
	for (h = STORE_HEALTH_NOT_OPEN; h <= STORE_HEALTH_SLOW + 1; h++) {
		r = handler_ready_reason(h);
		assert_non_null(r);
		assert_true(strlen(r) > 0 && strlen(r) < 32);
		assert_int_equal(strspn(r, "abcdefghijklmnopqrstuvwxyz "),
		    strlen(r));
	}
	assert_string_equal(handler_ready_reason(STORE_HEALTH_NOT_WRITABLE),
	    "store not writable");
	assert_string_equal(handler_ready_reason(STORE_HEALTH_RESTARTING),
	    "store restarting");
	assert_string_equal(handler_ready_reason(STORE_HEALTH_SLOW),
	    "store not responding");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_healthz_depends_on_nothing),
		cmocka_unit_test(test_healthz_with_store_not_open),
		cmocka_unit_test_setup_teardown(test_readyz_ready, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_readyz_burst_is_cached,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_readyz_without_config,
		    setup, teardown),
		cmocka_unit_test(test_reasons_are_plain_phrases),
	};

	return cmocka_run_group_tests_name("handlers_health", tests, NULL,
	    NULL);
}
