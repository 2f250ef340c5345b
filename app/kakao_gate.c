/*
 * kakao_gate.c: the cap on Kakao exchanges in flight (see kakao_gate.h).
 *
 * Owns one POSIX semaphore per process, waited on with the monotonic clock
 * (sem_clockwait), so a change of the wall clock cannot stretch or skip the
 * wait. Knows nothing of HTTP, tokens or curl. Thread-safe.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kakao_gate.h"

struct kakao_gate {
	sem_t	slots;
	int	cap;
	long	wait_ms;
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

struct kakao_gate *
kakao_gate_new(int cap, long wait_ms, struct kl_error *err)
{
	struct kakao_gate	*g;

	if (cap <= 0 || wait_ms < 0) {
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
