/*
 * test_metrics.c: the shared metrics region (app/metrics.c) and its text.
 *
 * The region is per process state, so the suite re-points it with
 * metrics_open() in each test, and forks processes that open the same
 * file themselves (a real join, not an inherited mapping): their counts
 * must add up in the parent's view.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kl_buf.h"
#include "kl_limits.h"
#include "metrics.h"
#include "unit_util.h"

static const char *const routes_ab[] = { "/a", "/b" };

static char *
tmpdir(void)
{
	char	tmpl[256];
	const char *base = getenv("TMPDIR");

	snprintf(tmpl, sizeof(tmpl), "%s/metrics.XXXXXX",
	    base != NULL ? base : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	return strdup(tmpl);
}

/* The rendered text, in a buffer the caller frees. */
static char *
render(const struct metrics_gauges *g)
{
	struct kl_buf	b = { 0 };
	struct kl_error	err;

	assert_int_equal(metrics_render(&b, g, &err), 0);
	return kl_buf_take(&b);
}

/* The value of the sample line that starts with series (name and labels
 * exactly as rendered), or -1 when there is none. */
static double
sample(const char *text, const char *series)
{
	const char	*p = text;
	size_t		 n = strlen(series);

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return -1;
}

static void
open_ok(const char *dir, const char *const *routes, size_t n, bool *replaced)
{
	struct kl_error	err;

	assert_int_equal(metrics_open(dir, routes, n, replaced, &err), 0);
	assert_true(metrics_shared());
}

static void
test_create(void **state)
{
	char		*dir = tmpdir(), path[512];
	struct stat	 st;
	bool		 replaced = true;

	(void)state;
	open_ok(dir, routes_ab, 2, &replaced);
	assert_false(replaced);
	snprintf(path, sizeof(path), "%s/%s", dir, METRICS_FILE);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_true(st.st_size > 0);
	remove_tree(dir);
	free(dir);
}

/* A child that opens dir itself, counts n requests of route /a and one
 * Kakao call, and exits 0 when it joined (rather than replaced). */
static pid_t
child_counts(const char *dir, int n)
{
	struct kl_error	err;
	bool		replaced;
	pid_t		pid;
	int		i;

	if ((pid = fork()) != 0)
		return pid;
	if (metrics_open(dir, routes_ab, 2, &replaced, &err) == -1)
		_exit(3);
	for (i = 0; i < n; i++)
		metrics_request(1, 200, 3000);
	metrics_kakao(METRICS_KAKAO_USER_ME, METRICS_KAKAO_OK, 2000);
	_exit(replaced ? 2 : 0);
}

static void
wait_ok(pid_t pid)
{
	int	status;

	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_join_sums_processes(void **state)
{
	char	*dir = tmpdir(), *text;
	bool	 replaced;

	(void)state;
	open_ok(dir, routes_ab, 2, &replaced);
	metrics_request(1, 200, 3000);
	metrics_request(1, 200, 3000);
	wait_ok(child_counts(dir, 3));
	text = render(NULL);
	assert_true(sample(text, "kakao_login_requests_total{route=\"/a\","
	    "status=\"200\"}") == 5);
	assert_true(sample(text, "kakao_login_request_duration_seconds_count"
	    "{route=\"/a\"}") == 5);
	assert_true(sample(text, "kakao_login_kakao_requests_total{endpoint="
	    "\"/v2/user/me\",outcome=\"ok\"}") == 1);
	assert_true(sample(text, "kakao_login_process_starts_total") == 2);
	free(text);
	remove_tree(dir);
	free(dir);
}

/* Two processes create the region at once, then count while a third
 * (this one) joins: every add lands in one file. */
static void
test_concurrent_create(void **state)
{
	char	*dir = tmpdir(), *text;
	pid_t	 a, b;
	bool	 replaced;

	(void)state;
	a = child_counts(dir, 20000);
	b = child_counts(dir, 20000);
	wait_ok(a);
	wait_ok(b);
	open_ok(dir, routes_ab, 2, &replaced);
	assert_false(replaced);
	text = render(NULL);
	assert_true(sample(text, "kakao_login_requests_total{route=\"/a\","
	    "status=\"200\"}") == 40000);
	assert_true(sample(text, "kakao_login_process_starts_total") == 3);
	free(text);
	remove_tree(dir);
	free(dir);
}

/* Another route table (an upgrade) or a file of another size: replaced,
 * counts from zero, still shared. */
static void
test_layout_mismatch_replaces(void **state)
{
	static const char *const routes_abc[] = { "/a", "/b", "/c" };
	char	*dir = tmpdir(), *text, path[512];
	FILE	*f;
	bool	 replaced;

	(void)state;
	open_ok(dir, routes_ab, 2, &replaced);
	metrics_request(1, 200, 1000);
	open_ok(dir, routes_abc, 3, &replaced);
	assert_true(replaced);
	text = render(NULL);
	assert_true(sample(text, "kakao_login_requests_total{route=\"/a\","
	    "status=\"200\"}") == -1);
	assert_true(sample(text, "kakao_login_request_duration_seconds_count"
	    "{route=\"/c\"}") == 0);
	assert_true(sample(text, "kakao_login_process_starts_total") == 1);
	free(text);

	snprintf(path, sizeof(path), "%s/%s", dir, METRICS_FILE);
	assert_int_equal(unlink(path), 0);
	assert_non_null(f = fopen(path, "w"));
	fputs("not a metrics region", f);
	fclose(f);
	open_ok(dir, routes_abc, 3, &replaced);
	assert_true(replaced);
	/* The same table again: joined, not replaced. */
	open_ok(dir, routes_abc, 3, &replaced);
	assert_false(replaced);
	remove_tree(dir);
	free(dir);
}

/* A symlink where the region goes is refused; counting goes on in the
 * process's own region, and metrics_shared() says so. */
static void
test_symlink_refused_counts_private(void **state)
{
	char		*dir = tmpdir(), *text, path[512], target[512];
	struct kl_error	 err;
	bool		 replaced;

	(void)state;
	snprintf(path, sizeof(path), "%s/%s", dir, METRICS_FILE);
	snprintf(target, sizeof(target), "%s/elsewhere", dir);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(metrics_open(dir, routes_ab, 2, &replaced, &err), -1);
	assert_false(metrics_shared());
	assert_non_null(strstr(err.detail, "metrics"));
	assert_int_equal(access(target, F_OK), -1);
	metrics_request(2, 404, 10);
	text = render(NULL);
	assert_true(sample(text, "kakao_login_requests_total{route=\"/b\","
	    "status=\"404\"}") >= 1);
	free(text);
	remove_tree(dir);
	free(dir);
}

static void
test_render_histogram_and_labels(void **state)
{
	struct metrics_gauges	 g = { .users_known = true, .users = 42 };
	char			*dir = tmpdir(), *text;
	bool			 replaced;
	char			 name[128];

	(void)state;
	open_ok(dir, routes_ab, 2, &replaced);
	metrics_request(2, 200, 500);		/* le 0.001 */
	metrics_request(2, 200, 3000);		/* le 0.005 */
	metrics_request(2, 418, 20000000);	/* +Inf; status other */
	metrics_request(0, 404, 1000);		/* exactly 0.001: inclusive */
	metrics_request(METRICS_MAX_ROUTES + 5, 404, 1000);	/* other */
	metrics_kakao(METRICS_KAKAO_JWKS, METRICS_KAKAO_BUSY, -1);
	metrics_kakao(METRICS_KAKAO_JWKS, METRICS_KAKAO_TIMEOUT, 3000000);
	metrics_store_retry();
	metrics_store_failure();
	metrics_user_created();
	text = render(&g);

	assert_non_null(strstr(text, "# TYPE kakao_login_requests_total "
	    "counter\n"));
	assert_non_null(strstr(text, "# TYPE kakao_login_request_duration_"
	    "seconds histogram\n"));
	assert_non_null(strstr(text, "# HELP kakao_login_users "));
	snprintf(name, sizeof(name), "kakao_login_build_info{version=\"%s\"}",
	    metrics_version);
	assert_true(strlen(metrics_version) > 0);
	assert_true(sample(text, name) == 1);
	assert_true(sample(text, "kakao_login_users") == 42);
	assert_true(sample(text, "kakao_login_requests_total{route=\"/b\","
	    "status=\"200\"}") == 2);
	assert_true(sample(text, "kakao_login_requests_total{route=\"/b\","
	    "status=\"other\"}") == 1);
	assert_true(sample(text, "kakao_login_requests_total{route=\"other\","
	    "status=\"404\"}") == 2);
	/* Cumulative buckets; count is +Inf's. */
	assert_true(sample(text, "kakao_login_request_duration_seconds_bucket"
	    "{route=\"/b\",le=\"0.001\"}") == 1);
	assert_true(sample(text, "kakao_login_request_duration_seconds_bucket"
	    "{route=\"/b\",le=\"0.0025\"}") == 1);
	assert_true(sample(text, "kakao_login_request_duration_seconds_bucket"
	    "{route=\"/b\",le=\"0.005\"}") == 2);
	assert_true(sample(text, "kakao_login_request_duration_seconds_bucket"
	    "{route=\"/b\",le=\"10\"}") == 2);
	assert_true(sample(text, "kakao_login_request_duration_seconds_bucket"
	    "{route=\"/b\",le=\"+Inf\"}") == 3);
	assert_true(sample(text, "kakao_login_request_duration_seconds_count"
	    "{route=\"/b\"}") == 3);
	assert_float_equal(sample(text, "kakao_login_request_duration_seconds_"
	    "sum{route=\"/b\"}"), 20.0035, 1e-9);
	assert_true(sample(text, "kakao_login_request_duration_seconds_bucket"
	    "{route=\"other\",le=\"0.001\"}") == 2);
	/* A call not sent is counted, not timed. */
	assert_true(sample(text, "kakao_login_kakao_requests_total{endpoint="
	    "\"/.well-known/jwks.json\",outcome=\"busy\"}") == 1);
	assert_true(sample(text, "kakao_login_kakao_request_duration_seconds_"
	    "count{endpoint=\"/.well-known/jwks.json\"}") == 1);
	assert_true(sample(text, "kakao_login_kakao_request_duration_seconds_"
	    "bucket{endpoint=\"/.well-known/jwks.json\",le=\"2.5\"}") == 0);
	assert_true(sample(text, "kakao_login_store_retries_total") == 1);
	assert_true(sample(text, "kakao_login_store_failures_total") == 1);
	assert_true(sample(text, "kakao_login_users_created_total") == 1);
	/* Pairs never seen are left out. */
	assert_true(sample(text, "kakao_login_requests_total{route=\"/a\","
	    "status=\"200\"}") == -1);
	assert_true(text[strlen(text) - 1] == '\n');
	free(text);

	/* No users gauge while the store is not open. */
	g.users_known = false;
	text = render(&g);
	assert_null(strstr(text, "kakao_login_users "));
	assert_null(strstr(text, "# HELP kakao_login_users "));
	free(text);
	remove_tree(dir);
	free(dir);
}

static void
test_too_many_routes_refused(void **state)
{
	const char	*many[METRICS_MAX_ROUTES];
	struct kl_error	 err;
	bool		 replaced;
	char		*dir = tmpdir();
	size_t		 i;

	(void)state;
	for (i = 0; i < METRICS_MAX_ROUTES; i++)
		many[i] = "/x";
	assert_int_equal(metrics_open(dir, many, METRICS_MAX_ROUTES,
	    &replaced, &err), -1);
	remove_tree(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_join_sums_processes),
		cmocka_unit_test(test_concurrent_create),
		cmocka_unit_test(test_layout_mismatch_replaces),
		cmocka_unit_test(test_symlink_refused_counts_private),
		cmocka_unit_test(test_render_histogram_and_labels),
		cmocka_unit_test(test_too_many_routes_refused),
	};

	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
