/*
 * kl_clock.h: the monotonic-clock helpers several layers need (request
 * timing, the store watchdog, the FastCGI deadline). Header-only: no state.
 */
#ifndef KL_CLOCK_H
#define KL_CLOCK_H

#include <time.h>

/* Microseconds since t0, which came from CLOCK_MONOTONIC. */
static inline long
kl_elapsed_us(const struct timespec *t0)
{
	struct timespec	t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000000L +
	    (t1.tv_nsec - t0->tv_nsec) / 1000;
}

/* Whole seconds of a monotonic clock; cheap (the coarse clock). */
static inline long long
kl_mono_seconds(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (long long)ts.tv_sec;
}

/* Milliseconds of a monotonic clock; the coarse one (a few ms) is enough
 * for deadlines. */
static inline long long
kl_mono_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The CLOCK_MONOTONIC time ms milliseconds from now, for the timed waits
 * (sem_clockwait, pthread_mutex_clocklock). */
static inline void
kl_deadline(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

#endif
