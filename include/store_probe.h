/*
 * store_probe.h: does the store take a write now? For readiness (GET
 * /readyz): the answer a load balancer takes a site in or out of rotation
 * by, proved by a small write rather than assumed from an open handle.
 *
 * Part of the store layer (app/store_probe.c); knows nothing of HTTP. Any
 * thread may call it; results are cached per struct store (per process).
 */
#ifndef KL_STORE_PROBE_H
#define KL_STORE_PROBE_H

#include <stdint.h>

#include "kl_error.h"

struct store;

enum store_health {
	STORE_HEALTH_OK = 0,
	STORE_HEALTH_NOT_OPEN,		/* the environment is not open (yet) */
	STORE_HEALTH_RESTARTING,	/* handles unusable: the process is
					 * being replaced (store_needs_restart) */
	STORE_HEALTH_NOT_WRITABLE,	/* the probe's write or flush failed */
	STORE_HEALTH_NO_MASTER,		/* a replica that knows no master (an
					 * election, or still joining) */
	STORE_HEALTH_SLOW		/* a probe has run for longer than
					 * max_age_ms (or no result came
					 * within it) */
};

/*
 * The store's health at now_ms (a monotonic clock in milliseconds: the
 * caller's, so tests can move it). Not open and restarting are read from
 * flags, each call. Otherwise the answer is the last probe's, when it is
 * younger than max_age_ms; else this call probes: one transaction
 * rewrites the probe record, then the log is flushed to disk whatever
 * db_durability says (one fdatasync). One thread probes at a time: the
 * others meanwhile get the last result, or SLOW once it is older than
 * twice max_age_ms; before any result they wait at most max_age_ms for
 * the first. So a storm of calls costs one write per max_age_ms per
 * process, and never holds threads on a disk that hangs.
 * Fills err (KL_STORE_FAILED, the detail for the log) unless OK.
 */
enum store_health	store_probe(struct store *st, long long now_ms,
			    long long max_age_ms, struct kl_error *err);

/* How many probes have written, all processes together (tests, tools). */
int	store_probe_count(struct store *st, uint64_t *count,
	    struct kl_error *err);

#endif
