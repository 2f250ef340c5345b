/*
 * test_store_probe.c: the store's readiness probe (app/store_probe.c).
 *
 * A real environment in a mkdtemp() directory (under $TMPDIR): the probe
 * writes (its record counts the writes), answers from its cache within
 * max_age_ms and probes again after it, costs one write for a storm of
 * callers, reports a store that is not open, a write Berkeley DB refuses
 * (the environment panicked, in a child process that exits without
 * closing), and a probe that hangs (the probe lock held).
 */
#include <sys/wait.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <db.h>

#include "store.h"
#include "store_internal.h"
#include "store_probe.h"

#include "unit_util.h"

#define T0	1000000LL	/* the tests' clock, in ms */
#define AGE	1000LL

struct fixture {
	char		 home[256];
	struct store	*st;
};

static int
setup(void **state)
{
	struct fixture	*fx = calloc(1, sizeof(*fx));
	const char	*tmp = getenv("TMPDIR");
	struct kl_error	 err;

	if (fx == NULL)
		return -1;
	snprintf(fx->home, sizeof(fx->home), "%s/kl-test-probe-XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(fx->home) == NULL ||
	    store_open(&fx->st, fx->home, DURABILITY_SYNC, &err) != 0) {
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

	store_close(fx->st);
	remove_tree(fx->home);
	free(fx);
	return 0;
}

static uint64_t
count(struct store *st)
{
	struct kl_error	err;
	uint64_t	n;

	if (store_probe_count(st, &n, &err) != 0)
		fail_msg("store_probe_count: %s", err.detail);
	return n;
}

static void
expect_ok(struct store *st, long long now)
{
	struct kl_error	err;

	kl_error_clear(&err);
	if (store_probe(st, now, AGE, &err) != STORE_HEALTH_OK)
		fail_msg("probe at %lld: %s", now, err.detail);
}

/* The first call writes; calls within max_age_ms answer from the cache
 * without writing; the first call at max_age_ms writes again. */
static void
test_probe_writes_once_per_period(void **state)
{
	struct fixture	*fx = *state;

	assert_int_equal(count(fx->st), 0);
	expect_ok(fx->st, T0);
	assert_int_equal(count(fx->st), 1);
	expect_ok(fx->st, T0 + 1);
	expect_ok(fx->st, T0 + AGE - 1);
	assert_int_equal(count(fx->st), 1);
	expect_ok(fx->st, T0 + AGE);
	assert_int_equal(count(fx->st), 2);
	expect_ok(fx->st, T0 + 5 * AGE);
	assert_int_equal(count(fx->st), 3);
}

/* The count lives in the environment: another store on it (another
 * process, a restart) carries on from it. */
static void
test_probe_count_survives_reopen(void **state)
{
	struct fixture	*fx = *state;
	struct kl_error	 err;

	expect_ok(fx->st, T0);
	expect_ok(fx->st, T0 + AGE);
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(store_open(&fx->st, fx->home, DURABILITY_NOSYNC,
	    &err), 0);
	assert_int_equal(count(fx->st), 2);
	expect_ok(fx->st, T0);		/* a fresh cache: writes */
	assert_int_equal(count(fx->st), 3);
}

struct storm {
	struct store	*st;
	int		 bad;
};

static void *
storm_run(void *arg)
{
	struct storm	*s = arg;
	struct kl_error	 err;
	int		 i;

	for (i = 0; i < 200; i++)
		if (store_probe(s->st, T0 + i % (int)AGE, AGE, &err) !=
		    STORE_HEALTH_OK)
			__atomic_add_fetch(&s->bad, 1, __ATOMIC_RELAXED);
	return NULL;
}

/* 16 threads x 200 probes within one period, the first ones at once:
 * all READY, one write in all (no amplification). */
static void
test_probe_storm_costs_one_write(void **state)
{
	struct fixture	*fx = *state;
	struct storm	 s = { .st = fx->st, .bad = 0 };
	pthread_t	 t[16];
	int		 i;

	for (i = 0; i < 16; i++)
		assert_int_equal(pthread_create(&t[i], NULL, storm_run, &s), 0);
	for (i = 0; i < 16; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(s.bad, 0);
	assert_int_equal(count(fx->st), 1);
}

/* A store that cannot open: NOT_OPEN at once, every time, no write. */
static void
test_probe_store_not_open(void **state)
{
	struct store	*st = NULL;
	struct kl_error	 err;
	uint64_t	 n;

	(void)state;
	assert_int_equal(store_new(&st, "/dev/null/db", DURABILITY_SYNC,
	    &err), 0);
	assert_false(store_ready(st));
	assert_int_equal(store_probe(st, T0, AGE, &err),
	    STORE_HEALTH_NOT_OPEN);
	assert_int_equal(err.status, KL_STORE_FAILED);
	assert_int_equal(store_probe(st, T0 + 10 * AGE, AGE, &err),
	    STORE_HEALTH_NOT_OPEN);
	assert_int_equal(store_probe_count(st, &n, &err), -1);
	store_close(st);
}

/*
 * A write Berkeley DB refuses: the environment panics (every call then
 * fails with DB_RUNRECOVERY, as after another process's recovery). Within
 * the period the cached READY still answers (the bound the README
 * states); the next probe fails NOT_WRITABLE and marks the process for a
 * restart, and later calls say RESTARTING. In a child: a panicked
 * environment is not closed, the child exits.
 */
static void
test_probe_write_refused(void **state)
{
	struct fixture	*fx = *state;
	struct kl_error	 err;
	pid_t		 pid;
	int		 status, step = 0;

	store_close(fx->st);
	fx->st = NULL;
	if ((pid = fork()) == 0) {
		struct store	*st;

		if (store_open(&st, fx->home, DURABILITY_SYNC, &err) != 0)
			_exit(10);
		step = 11;
		if (store_probe(st, T0, AGE, &err) != STORE_HEALTH_OK)
			_exit(step);
		st->env->set_flags(st->env, DB_PANIC_ENVIRONMENT, 1);
		step = 12;
		if (store_probe(st, T0 + AGE - 1, AGE, &err) !=
		    STORE_HEALTH_OK)
			_exit(step);
		step = 13;
		if (store_probe(st, T0 + AGE, AGE, &err) !=
		    STORE_HEALTH_NOT_WRITABLE || err.status != KL_STORE_FAILED ||
		    strstr(err.detail, "readiness probe") == NULL)
			_exit(step);
		step = 14;
		if (!store_needs_restart(st) ||
		    store_probe(st, T0 + AGE + 1, AGE, &err) !=
		    STORE_HEALTH_RESTARTING)
			_exit(step);
		_exit(0);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("child failed at step %d", WEXITSTATUS(status));
	(void)step;
	/* The environment comes back by recovery (DB_REGISTER | DB_RECOVER),
	 * and so does readiness. */
	assert_int_equal(store_open(&fx->st, fx->home, DURABILITY_SYNC, &err),
	    0);
	expect_ok(fx->st, T0);
}

/* A thread standing in for a prober stuck in a write: holds the probe
 * lock until told to let go. */
struct holder {
	struct store	*st;
	pthread_t	 thread;
	sem_t		 held, release;
};

static void *
holder_run(void *arg)
{
	struct holder	*h = arg;

	pthread_mutex_lock(&h->st->probe_lock);
	sem_post(&h->held);
	while (sem_wait(&h->release) == -1)
		;
	pthread_mutex_unlock(&h->st->probe_lock);
	return NULL;
}

static void
hold(struct holder *h, struct store *st)
{
	h->st = st;
	sem_init(&h->held, 0, 0);
	sem_init(&h->release, 0, 0);
	assert_int_equal(pthread_create(&h->thread, NULL, holder_run, h), 0);
	while (sem_wait(&h->held) == -1)
		;
}

static void
let_go(struct holder *h)
{
	sem_post(&h->release);
	pthread_join(h->thread, NULL);
	sem_destroy(&h->held);
	sem_destroy(&h->release);
}

/* A probe that hangs: the others answer the last result until it is
 * twice max_age_ms old, then SLOW; before any result, they wait
 * max_age_ms for one, then SLOW. */
static void
test_probe_hung_is_slow(void **state)
{
	struct fixture	*fx = *state;
	struct holder	 h;
	struct kl_error	 err;

	hold(&h, fx->st);
	assert_int_equal(store_probe(fx->st, T0, 50, &err), STORE_HEALTH_SLOW);
	let_go(&h);
	assert_int_equal(count(fx->st), 0);
	expect_ok(fx->st, T0);
	hold(&h, fx->st);
	assert_int_equal(store_probe(fx->st, T0 + 2 * AGE - 1, AGE, &err),
	    STORE_HEALTH_OK);
	assert_int_equal(store_probe(fx->st, T0 + 2 * AGE, AGE, &err),
	    STORE_HEALTH_SLOW);
	assert_int_equal(err.status, KL_STORE_FAILED);
	let_go(&h);
	expect_ok(fx->st, T0 + 2 * AGE);
	assert_int_equal(count(fx->st), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_probe_writes_once_per_period, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_probe_count_survives_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_probe_storm_costs_one_write, setup, teardown),
		cmocka_unit_test(test_probe_store_not_open),
		cmocka_unit_test_setup_teardown(test_probe_write_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_probe_hung_is_slow,
		    setup, teardown),
	};

	return cmocka_run_group_tests_name("store_probe", tests, NULL, NULL);
}
