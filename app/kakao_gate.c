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

struct kakao_gate {
	sem_t		slots;
	int		cap;
	int		waiters_max;
	atomic_int	waiting;
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
	int	spare = threads - cap;

	/* One spare thread is better spent smoothing a burst (threads = 4,
	 * an instant Kakao) than kept idle: from two, half are kept. */
	if (spare <= 0)
		return 0;
	return spare == 1 ? 1 : spare / 2;
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
	atomic_init(&g->waiting, 0);
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

int
kakao_gate_enter(struct kakao_gate *g, struct kl_error *err)
{
	struct timespec	until;
	int		rc;

	if (g == NULL)
		return 0;
	if (sem_trywait(&g->slots) == 0)
		return 0;
	if (atomic_fetch_add(&g->waiting, 1) >= g->waiters_max) {
		atomic_fetch_sub(&g->waiting, 1);
		return kl_fail(err, KL_KAKAO_BUSY, "all %d Kakao call slots "
		    "busy and %d threads waiting", g->cap, g->waiters_max);
	}
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += g->wait_ms / 1000;
	until.tv_nsec += (g->wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while ((rc = sem_clockwait(&g->slots, CLOCK_MONOTONIC, &until)) == -1 &&
	    errno == EINTR)
		;
	atomic_fetch_sub(&g->waiting, 1);
	if (rc == 0)
		return 0;
	return kl_fail(err, KL_KAKAO_BUSY, "all %d Kakao call slots busy "
	    "for %ld ms", g->cap, g->wait_ms);
}

void
kakao_gate_leave(struct kakao_gate *g)
{
	if (g != NULL)
		sem_post(&g->slots);
}
