/*
 * kakao_gate.c: the cap on Kakao exchanges in flight (see kakao_gate.h).
 *
 * Owns one POSIX semaphore per process, waited on with the monotonic clock
 * (sem_clockwait), so a change of the wall clock cannot stretch or skip the
 * wait, and the count of threads waiting on it (an atomic). Knows nothing
 * of HTTP, tokens or curl. Thread-safe.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kakao_gate.h"
#include "kl_clock.h"

struct kakao_gate {
	sem_t		slots;
	int		cap;
	int		waiters_max;	/* while waits get slots */
	int		waiters_lean;	/* after a wait timed out */
	atomic_int	waiting;
	atomic_llong	timed_out_ms;	/* monotonic; 0: never */
	long		wait_ms;
};

int
kakao_gate_cap(int max_calls, int threads)
{
	int	cap;

	if (max_calls > 0)
		return max_calls;
	/* At least one thread stays free of Kakao, once there are two. */
	cap = threads - (threads / KAKAO_SPARE_DIV > 0 ?
	    threads / KAKAO_SPARE_DIV : 1);
	return cap > 0 ? cap : 1;
}

int
kakao_gate_waiters(int cap, int threads)
{
	return threads > cap ? threads - cap : 0;
}

struct kakao_gate *
kakao_gate_new(int cap, int waiters, long wait_ms, struct kl_error *err)
{
	struct kakao_gate	*g;

	if (cap <= 0 || waiters < 0 || wait_ms < 0) {
		kl_fail(err, KL_INTERNAL, "kakao gate: bad cap or wait");
		return NULL;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL) {
		kl_fail(err, KL_INTERNAL, "kakao gate: out of memory");
		return NULL;
	}
	if (sem_init(&g->slots, 0, (unsigned)cap) == -1) {
		kl_fail(err, KL_INTERNAL, "kakao gate: sem_init: %s",
		    strerror(errno));
		free(g);
		return NULL;
	}
	g->cap = cap;
	g->waiters_max = waiters;
	/* One spare thread cannot be split: it may always wait. */
	g->waiters_lean = waiters >= 2 ? waiters / 2 : waiters;
	atomic_init(&g->waiting, 0);
	atomic_init(&g->timed_out_ms, 0);
	g->wait_ms = wait_ms;
	return g;
}

void
kakao_gate_free(struct kakao_gate *g)
{
	if (g == NULL)
		return;
	sem_destroy(&g->slots);
	free(g);
}

/* How many may wait now: all the spare threads while waits end with a
 * slot (Kakao answers fast, a waiter is soon a caller and then free), half
 * of them for KAKAO_FUTILE_WAIT_MS after a wait timed out (Kakao is slow:
 * a waiter only holds a thread the other routes need). */
static int
waiters_now(struct kakao_gate *g)
{
	long long	t = atomic_load(&g->timed_out_ms);

	if (t != 0 && kl_mono_ms() - t < KAKAO_FUTILE_WAIT_MS)
		return g->waiters_lean;
	return g->waiters_max;
}

/* Takes a waiting place: returns -1 when all are taken (*max: how many
 * there are now). The one place that counts waiters; kakao_gate_wait_end
 * gives the place back. */
static int
waiting_take(struct kakao_gate *g, int *max)
{
	*max = waiters_now(g);
	if (atomic_fetch_add(&g->waiting, 1) >= *max) {
		atomic_fetch_sub(&g->waiting, 1);
		return -1;
	}
	return 0;
}

int
kakao_gate_enter(struct kakao_gate *g, struct kl_error *err)
{
	struct timespec	until;
	int		rc, max;

	if (g == NULL)
		return 0;
	if (sem_trywait(&g->slots) == 0)
		return 0;
	if (waiting_take(g, &max) == -1)
		return kl_fail(err, KL_KAKAO_BUSY, "all %d Kakao call slots "
		    "busy and %d threads waiting", g->cap, max);
	kl_deadline(&until, g->wait_ms);
	while ((rc = sem_clockwait(&g->slots, CLOCK_MONOTONIC, &until)) == -1 &&
	    errno == EINTR)
		;
	kakao_gate_wait_end(g);
	if (rc == 0)
		return 0;
	atomic_store(&g->timed_out_ms, kl_mono_ms());
	return kl_fail(err, KL_KAKAO_BUSY, "all %d Kakao call slots busy "
	    "for %ld ms", g->cap, g->wait_ms);
}

void
kakao_gate_leave(struct kakao_gate *g)
{
	if (g != NULL)
		sem_post(&g->slots);
}

int
kakao_gate_wait_begin(struct kakao_gate *g, struct kl_error *err)
{
	int	max;

	if (g == NULL)
		return 0;
	if (waiting_take(g, &max) == -1)
		return kl_fail(err, KL_KAKAO_BUSY, "%d threads already wait on "
		    "Kakao", max);
	return 0;
}

void
kakao_gate_wait_end(struct kakao_gate *g)
{
	if (g != NULL)
		atomic_fetch_sub(&g->waiting, 1);
}
