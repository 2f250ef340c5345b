/*
 * test_kakao_limits.c: what keeps one client from spending the app's Kakao
 * quota: the cache of refused tokens (app/kakao_reject.c) and the cap on
 * Kakao exchanges in flight (app/kakao_gate.c). No network; the cache runs
 * on a clock the test turns.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kakao_gate.h"
#include "kakao_reject.h"
#include "kl_clock.h"

static long long	fake_now = 1000;

static long long
fake_clock(void)
{
	return fake_now;
}

static struct kakao_reject *
cache(size_t slots, int ttl)
{
	struct kakao_reject	*rc;
	struct kl_error		 err;

	if ((rc = kakao_reject_new(slots, ttl, fake_clock, &err)) == NULL)
		fail_msg("kakao_reject_new: %s", err.detail);
	return rc;
}

static bool
hit(struct kakao_reject *rc, const char *tok, enum kl_status *st)
{
	return kakao_reject_check(rc, tok, strlen(tok), st);
}

static void
put(struct kakao_reject *rc, const char *tok, enum kl_status st)
{
	kakao_reject_remember(rc, tok, strlen(tok), st);
}

/* ---- the reject cache ---- */

static void
test_reject_remembers_how(void **state)
{
	struct kakao_reject	*rc = cache(KAKAO_REJECT_SLOTS, 60);
	enum kl_status		 st = KL_OK;

	(void)state;
	assert_false(hit(rc, "expired-1", &st));
	put(rc, "expired-1", KL_KAKAO_REJECTED);
	put(rc, "foreign-2", KL_WRONG_APP);
	assert_true(hit(rc, "expired-1", &st));
	assert_int_equal(st, KL_KAKAO_REJECTED);
	assert_true(hit(rc, "foreign-2", &st));
	assert_int_equal(st, KL_WRONG_APP);
	/* Exact bytes only: a prefix, a longer token, another case. */
	assert_false(hit(rc, "expired-", &st));
	assert_false(hit(rc, "expired-10", &st));
	assert_false(hit(rc, "EXPIRED-1", &st));
	assert_false(kakao_reject_check(rc, "expired-1", 8, &st));
	assert_int_equal(kakao_reject_count(rc), 2);
	kakao_reject_free(rc);
}

static void
test_reject_expires_after_ttl(void **state)
{
	struct kakao_reject	*rc = cache(64, 60);
	enum kl_status		 st;

	(void)state;
	fake_now = 5000;
	put(rc, "expired-3", KL_KAKAO_REJECTED);
	fake_now = 5059;
	assert_true(hit(rc, "expired-3", &st));
	fake_now = 5060;
	assert_false(hit(rc, "expired-3", &st));
	assert_int_equal(kakao_reject_count(rc), 0);
	/* Refused again: remembered again, for a full ttl from now. */
	put(rc, "expired-3", KL_KAKAO_REJECTED);
	fake_now = 5119;
	assert_true(hit(rc, "expired-3", &st));
	assert_int_equal(kakao_reject_count(rc), 1);
	kakao_reject_free(rc);
}

/* One bucket of KAKAO_REJECT_WAYS: a new token evicts the entry that
 * expires first, and the table never grows. */
static void
test_reject_evicts_when_full(void **state)
{
	struct kakao_reject	*rc = cache(KAKAO_REJECT_WAYS, 60);
	enum kl_status		 st;
	char			 tok[32];
	int			 i;

	(void)state;
	fake_now = 10000;
	for (i = 0; i < KAKAO_REJECT_WAYS; i++) {
		snprintf(tok, sizeof(tok), "bad-%d", i);
		put(rc, tok, KL_KAKAO_REJECTED);
		fake_now++;
	}
	assert_int_equal(kakao_reject_count(rc), KAKAO_REJECT_WAYS);
	/* Refused again: bad-0 now expires last, bad-1 first. */
	put(rc, "bad-0", KL_KAKAO_REJECTED);
	assert_int_equal(kakao_reject_count(rc), KAKAO_REJECT_WAYS);
	fake_now++;
	put(rc, "bad-new", KL_WRONG_APP);
	assert_int_equal(kakao_reject_count(rc), KAKAO_REJECT_WAYS);
	assert_false(hit(rc, "bad-1", &st));		/* expired first */
	assert_true(hit(rc, "bad-new", &st));
	assert_int_equal(st, KL_WRONG_APP);
	for (i = 0; i < KAKAO_REJECT_WAYS; i++) {
		if (i == 1)
			continue;
		snprintf(tok, sizeof(tok), "bad-%d", i);
		if (!hit(rc, tok, &st))
			fail_msg("%s evicted instead of the oldest", tok);
	}
	kakao_reject_free(rc);

	/* Many more tokens than slots: memory stays the table's. */
	rc = cache(64, 60);
	for (i = 0; i < 20000; i++) {
		snprintf(tok, sizeof(tok), "flood-%d", i);
		put(rc, tok, KL_KAKAO_REJECTED);
	}
	assert_true(kakao_reject_count(rc) <= 64);
	assert_true(hit(rc, "flood-19999", &st));
	kakao_reject_free(rc);
}

/* The tag is keyed: another cache (another process) computes another one,
 * and it is not the token's bytes. */
static void
test_reject_key_differs_per_cache_and_process(void **state)
{
	struct kakao_reject	*a = cache(64, 60), *b = cache(64, 60), *c;
	unsigned char		 ta[KAKAO_REJECT_TAG], tb[KAKAO_REJECT_TAG];
	unsigned char		 tc[KAKAO_REJECT_TAG];
	static const char	 tok[] = "expired-424242-0123456789abcdef";
	enum kl_status		 st;
	int			 fds[2], status;
	pid_t			 pid;

	(void)state;
	kakao_reject_tag(a, tok, strlen(tok), ta);
	kakao_reject_tag(a, tok, strlen(tok), tb);
	assert_memory_equal(ta, tb, sizeof(ta));	/* stable */
	assert_memory_not_equal(ta, tok, sizeof(ta));
	kakao_reject_tag(b, tok, strlen(tok), tb);
	assert_memory_not_equal(ta, tb, sizeof(ta));
	/* What a knows, b does not. */
	put(a, tok, KL_KAKAO_REJECTED);
	assert_false(hit(b, tok, &st));

	assert_int_equal(pipe(fds), 0);
	if ((pid = fork()) == 0) {
		c = kakao_reject_new(64, 60, NULL, NULL);
		if (c == NULL)
			_exit(2);
		kakao_reject_tag(c, tok, strlen(tok), tc);
		_exit(write(fds[1], tc, sizeof(tc)) == sizeof(tc) ? 0 : 3);
	}
	assert_true(pid > 0);
	assert_int_equal(read(fds[0], tc, sizeof(tc)), sizeof(tc));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_memory_not_equal(ta, tc, sizeof(ta));
	assert_memory_not_equal(tb, tc, sizeof(tb));
	close(fds[0]);
	close(fds[1]);
	kakao_reject_free(a);
	kakao_reject_free(b);
}

static void
test_reject_bad_sizes_and_null(void **state)
{
	struct kl_error	err;
	enum kl_status	st;

	(void)state;
	assert_null(kakao_reject_new(0, 60, NULL, &err));
	assert_int_equal(err.status, KL_INTERNAL);
	assert_null(kakao_reject_new(KAKAO_REJECT_WAYS + 1, 60, NULL, &err));
	assert_null(kakao_reject_new(KAKAO_REJECT_WAYS, 0, NULL, &err));
	/* No cache: nothing remembered, nothing crashes. */
	kakao_reject_remember(NULL, "x", 1, KL_KAKAO_REJECTED);
	assert_false(kakao_reject_check(NULL, "x", 1, &st));
	assert_int_equal(kakao_reject_count(NULL), 0);
	kakao_reject_free(NULL);
}

struct hammer {
	struct kakao_reject	*rc;
	int			 id;
	int			 misses;
};

static void *
hammer_run(void *arg)
{
	struct hammer	*h = arg;
	enum kl_status	 st;
	char		 tok[32];
	int		 i;

	for (i = 0; i < 5000; i++) {
		snprintf(tok, sizeof(tok), "t%d-%d", h->id, i % 50);
		kakao_reject_remember(h->rc, tok, strlen(tok),
		    KL_KAKAO_REJECTED);
		if (!kakao_reject_check(h->rc, tok, strlen(tok), &st) ||
		    st != KL_KAKAO_REJECTED)
			h->misses++;
	}
	return NULL;
}

/* Threads share one cache; with room for all, nobody loses an entry. */
static void
test_reject_shared_by_threads(void **state)
{
	struct kakao_reject	*rc;
	struct kl_error		 err;
	struct hammer		 h[4];
	pthread_t		 t[4];
	int			 i;

	(void)state;
	rc = kakao_reject_new(KAKAO_REJECT_SLOTS, 60, NULL, &err);
	assert_non_null(rc);
	for (i = 0; i < 4; i++) {
		h[i].rc = rc;
		h[i].id = i;
		h[i].misses = 0;
		assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &h[i]),
		    0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(h[i].misses, 0);
	}
	assert_true(kakao_reject_count(rc) >= 150);	/* 200, barring a full bucket */
	kakao_reject_free(rc);
}

/* ---- the gate ---- */

static void
test_gate_default_cap(void **state)
{
	(void)state;
	assert_int_equal(kakao_gate_cap(0, 128), 124);
	assert_int_equal(kakao_gate_cap(0, 256), 248);
	assert_int_equal(kakao_gate_cap(0, 32), 31);
	/* Under 32 threads one still stays free of Kakao (found in review:
	 * 16 threads gave all 16 to Kakao calls). */
	assert_int_equal(kakao_gate_cap(0, 16), 15);
	assert_int_equal(kakao_gate_cap(0, 8), 7);
	assert_int_equal(kakao_gate_cap(0, 2), 1);
	assert_int_equal(kakao_gate_cap(0, 1), 1);
	assert_int_equal(kakao_gate_cap(7, 128), 7);
	assert_int_equal(kakao_gate_cap(128, 128), 128);
}

static long
ms_since(const struct timespec *t0)
{
	return kl_elapsed_us(t0) / 1000;
}

static void
test_gate_refuses_beyond_cap_after_wait(void **state)
{
	struct kakao_gate	*g;
	struct kl_error		 err;
	struct timespec		 t0;
	long			 ms;

	(void)state;
	assert_null(kakao_gate_new(0, 1, 100, &err));
	assert_null(kakao_gate_new(1, -1, 100, &err));
	g = kakao_gate_new(2, 1, 150, &err);
	assert_non_null(g);
	assert_int_equal(kakao_gate_enter(g, &err), 0);
	assert_int_equal(kakao_gate_enter(g, &err), 0);
	kl_error_clear(&err);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(kakao_gate_enter(g, &err), -1);
	ms = ms_since(&t0);
	assert_int_equal(err.status, KL_KAKAO_BUSY);
	if (ms < 140 || ms > 1000)
		fail_msg("refused after %ld ms, want about 150", ms);
	kakao_gate_leave(g);
	assert_int_equal(kakao_gate_enter(g, &err), 0);
	kakao_gate_leave(g);
	kakao_gate_leave(g);
	kakao_gate_free(g);
	/* No gate: no cap. */
	assert_int_equal(kakao_gate_enter(NULL, &err), 0);
	kakao_gate_leave(NULL);
	kakao_gate_free(NULL);
}

static void *
leave_later(void *arg)
{
	usleep(50000);
	kakao_gate_leave(arg);
	return NULL;
}

/* A slot freed during the wait goes to the waiter at once. */
static void
test_gate_waiter_gets_freed_slot(void **state)
{
	struct kakao_gate	*g;
	struct kl_error		 err;
	struct timespec		 t0;
	pthread_t		 t;
	long			 ms;

	(void)state;
	g = kakao_gate_new(1, 1, 2000, &err);
	assert_non_null(g);
	assert_int_equal(kakao_gate_enter(g, &err), 0);
	assert_int_equal(pthread_create(&t, NULL, leave_later, g), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(kakao_gate_enter(g, &err), 0);
	ms = ms_since(&t0);
	pthread_join(t, NULL);
	if (ms > 1000)
		fail_msg("waited %ld ms for a slot freed after 50", ms);
	kakao_gate_leave(g);
	kakao_gate_free(g);
}

static void
test_gate_waiters_formula(void **state)
{
	(void)state;
	/* The threads the cap leaves may wait (half of them after a wait
	 * timed out: test_gate_refuses_at_once_beyond_waiters). */
	assert_int_equal(kakao_gate_waiters(124, 128), 4);
	assert_int_equal(kakao_gate_waiters(3, 4), 1);
	assert_int_equal(kakao_gate_waiters(2, 4), 2);
	assert_int_equal(kakao_gate_waiters(128, 128), 0);
	assert_int_equal(kakao_gate_waiters(1, 1), 0);
	assert_int_equal(kakao_gate_waiters(7, 128), 121);
}

static void *
wait_for_slot(void *arg)
{
	struct kl_error	err;

	/* Holds the one waiting place until the slot is freed. */
	if (kakao_gate_enter(arg, &err) == 0)
		kakao_gate_leave(arg);
	return NULL;
}

/* With the waiting places taken, one more is refused at once: a waiting
 * thread is lost to the routes that do not call Kakao. */
static void
test_gate_refuses_at_once_beyond_waiters(void **state)
{
	struct kakao_gate	*g;
	struct kl_error		 err;
	struct timespec		 t0;
	pthread_t		 t;
	long			 ms;

	(void)state;
	g = kakao_gate_new(1, 1, 1500, &err);
	assert_non_null(g);
	assert_int_equal(kakao_gate_enter(g, &err), 0);
	assert_int_equal(pthread_create(&t, NULL, wait_for_slot, g), 0);
	usleep(100000);		/* the thread waits now */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	kl_error_clear(&err);
	assert_int_equal(kakao_gate_enter(g, &err), -1);
	ms = ms_since(&t0);
	assert_int_equal(err.status, KL_KAKAO_BUSY);
	if (ms > 100)
		fail_msg("refused after %ld ms, want at once", ms);
	kakao_gate_leave(g);
	pthread_join(t, NULL);
	/* After a timed-out wait only half of the waiting places are open:
	 * a gate of 1 slot and 2 waiters lets one wait, refuses the next. */
	kakao_gate_free(g);
	g = kakao_gate_new(1, 2, 100, &err);
	assert_non_null(g);
	assert_int_equal(kakao_gate_enter(g, &err), 0);
	assert_int_equal(kakao_gate_enter(g, &err), -1);	/* times out */
	assert_int_equal(pthread_create(&t, NULL, wait_for_slot, g), 0);
	usleep(30000);		/* the thread waits now (100 ms) */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(kakao_gate_enter(g, &err), -1);
	if ((ms = ms_since(&t0)) > 50)
		fail_msg("refused after %ld ms, want at once (lean)", ms);
	pthread_join(t, NULL);
	kakao_gate_leave(g);
	/* No waiting place at all: refused at once, a slot free still taken. */
	kakao_gate_free(g);
	g = kakao_gate_new(1, 0, 1500, &err);
	assert_non_null(g);
	assert_int_equal(kakao_gate_enter(g, &err), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(kakao_gate_enter(g, &err), -1);
	if ((ms = ms_since(&t0)) > 100)
		fail_msg("refused after %ld ms, want at once", ms);
	kakao_gate_leave(g);
	kakao_gate_free(g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reject_remembers_how),
		cmocka_unit_test(test_reject_expires_after_ttl),
		cmocka_unit_test(test_reject_evicts_when_full),
		cmocka_unit_test(test_reject_key_differs_per_cache_and_process),
		cmocka_unit_test(test_reject_bad_sizes_and_null),
		cmocka_unit_test(test_reject_shared_by_threads),
		cmocka_unit_test(test_gate_default_cap),
		cmocka_unit_test(test_gate_refuses_beyond_cap_after_wait),
		cmocka_unit_test(test_gate_waiter_gets_freed_slot),
		cmocka_unit_test(test_gate_waiters_formula),
		cmocka_unit_test(test_gate_refuses_at_once_beyond_waiters),
	};

	return cmocka_run_group_tests_name("kakao_limits", tests, NULL, NULL);
}
