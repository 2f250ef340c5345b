/*
 * kakao_gate.h: the cap on Kakao exchanges in flight in one process.
 *
 * Part of the kakao layer. A login's exchange with Kakao (the profile call,
 * and the token-info call beside it when the app id is checked) holds one
 * slot from start to end. A thread that finds every slot taken waits at
 * most the gate's wait for one, then gives up with KL_KAKAO_BUSY (503
 * KAKAO_BUSY): a flood of logins cannot burn more of the app's Kakao quota
 * at once than the cap allows. The threads the cap leaves may all wait
 * while waits end with a slot (a fast Kakao: a burst is absorbed); once
 * a wait has timed out (a slow Kakao), only half of them may for the next
 * second, the others being refused at once: a waiting thread is as lost
 * to the other routes as a calling one, so a flood of slow logins would
 * otherwise keep every thread busy and starve the routes that never call
 * Kakao. Thread-safe (a counting semaphore and atomics).
 */
#ifndef KL_KAKAO_GATE_H
#define KL_KAKAO_GATE_H

#include "kl_error.h"
#include "kl_limits.h"

struct kakao_gate;

/* The cap for kakao_max_calls (0: unset) and threads: the configured
 * value, else threads less one in KAKAO_SPARE_DIV (128 -> 124) and at
 * least one (4 -> 3), and never below 1. */
int	kakao_gate_cap(int max_calls, int threads);

/* How many threads may wait for a slot: those the cap leaves (threads -
 * cap; 128 threads, cap 124: 4). */
int	kakao_gate_waiters(int cap, int threads);

/* A gate of cap slots whose callers wait at most wait_ms for one, at most
 * waiters of them at once (0: none waits), and half of those (one when
 * waiters is 1) within KAKAO_FUTILE_WAIT_MS of a wait that timed out: the
 * other half never enter Kakao's code then, and answer the routes that do
 * not call Kakao. Free with kakao_gate_free() once no thread uses it. */
struct kakao_gate	*kakao_gate_new(int cap, int waiters, long wait_ms,
			    struct kl_error *err);
void			 kakao_gate_free(struct kakao_gate *g);

/* Takes a slot, waiting at most the gate's wait; -1 with KL_KAKAO_BUSY
 * when none came free, or at once when the gate's waiters are all
 * waiting already. g may be NULL (no cap: always 0). */
int	kakao_gate_enter(struct kakao_gate *g, struct kl_error *err);
/* Gives back the slot kakao_gate_enter() took. g may be NULL. */
void	kakao_gate_leave(struct kakao_gate *g);

/* Takes one of the waiting places without a slot, for a thread that waits
 * on another's Kakao exchange (a code posted twice): it holds a thread as
 * a waiter does, so it counts against the same bound. -1 with
 * KL_KAKAO_BUSY when they are all taken. g may be NULL. */
int	kakao_gate_wait_begin(struct kakao_gate *g, struct kl_error *err);
void	kakao_gate_wait_end(struct kakao_gate *g);

#endif
