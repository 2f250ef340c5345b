/*
 * kakao_gate.h: the cap on Kakao exchanges in flight in one process.
 *
 * Part of the kakao layer. A login's exchange with Kakao (the profile call,
 * and the token-info call beside it when the app id is checked) holds one
 * slot from start to end. A thread that finds every slot taken waits at
 * most the gate's wait for one, then gives up with KL_KAKAO_BUSY (503
 * KAKAO_BUSY): a flood of logins cannot burn more of the app's Kakao quota
 * at once than the cap allows. Only a few threads may wait at once (the
 * others are refused at once): a waiting thread is as lost to the other
 * routes as a calling one, so without that bound a flood of slow logins
 * would keep every thread busy and starve the routes that never call
 * Kakao. Thread-safe (a counting semaphore and an atomic count).
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

/* How many threads may wait for a slot: half of those the cap leaves
 * (threads - cap), so that the other half never enter Kakao's code at
 * all and always answer the routes that do not call Kakao (128 threads,
 * cap 124: 2 may wait, 2 never do). A single spare thread may wait (no
 * reserve is possible with one: 4 threads, cap 3); a cap of threads:
 * none may wait. */
int	kakao_gate_waiters(int cap, int threads);

/* A gate of cap slots whose callers wait at most wait_ms for one, at most
 * waiters of them at once (0: none waits). Free with kakao_gate_free()
 * once no thread uses it. */
struct kakao_gate	*kakao_gate_new(int cap, int waiters, long wait_ms,
			    struct kl_error *err);
void			 kakao_gate_free(struct kakao_gate *g);

/* Takes a slot, waiting at most the gate's wait; -1 with KL_KAKAO_BUSY
 * when none came free, or at once when the gate's waiters are all
 * waiting already. g may be NULL (no cap: always 0). */
int	kakao_gate_enter(struct kakao_gate *g, struct kl_error *err);
/* Gives back the slot kakao_gate_enter() took. g may be NULL. */
void	kakao_gate_leave(struct kakao_gate *g);

#endif
