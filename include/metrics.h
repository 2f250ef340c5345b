/*
 * metrics.h: the service's counters, shared by all its processes, and
 * their Prometheus text (GET /metrics).
 *
 * A bottom layer, beside log: every layer may count into it, and it calls
 * nothing above it. Counting is a few relaxed atomic adds on a fixed-size
 * region that every process maps (a file in db_home), so one scrape of any
 * process sees the whole service, a worker that dies keeps its counts, and
 * nothing is summed. Until metrics_open() succeeds (unit tests, the bulk
 * loader, a region that cannot be made) the counts go to a region private
 * to the process, so a count never needs a check.
 */
#ifndef KL_METRICS_H
#define KL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kl_buf.h"
#include "kl_error.h"

/* build_info's version label: the GNUmakefile's VERSION, compiled into
 * metrics.o (as into main.o) and only there, so every user of this header
 * reads the one string. */
extern const char	metrics_version[];

/* The region's file inside db_home. */
#define METRICS_FILE	"metrics.region"

/* The Kakao endpoints we call, as labelled. */
enum metrics_kakao_endpoint {
	METRICS_KAKAO_USER_ME = 0,	/* kapi GET /v2/user/me */
	METRICS_KAKAO_TOKEN_INFO,	/* kapi GET /v1/user/access_token_info */
	METRICS_KAKAO_OAUTH_TOKEN,	/* kauth POST /oauth/token */
	METRICS_KAKAO_JWKS,		/* kauth GET /.well-known/jwks.json */
	METRICS_KAKAO_UNLINK,		/* kapi POST /v1/user/unlink */
	METRICS_KAKAO_ENDPOINTS
};

/* How a Kakao call went, judged on the transfer and its HTTP status. */
enum metrics_kakao_outcome {
	METRICS_KAKAO_OK = 0,		/* 200 */
	METRICS_KAKAO_REFUSED,		/* 4xx but 429: Kakao said no */
	METRICS_KAKAO_ERROR,		/* 5xx, 429, other status, transport */
	METRICS_KAKAO_TIMEOUT,		/* upstream_timeout_ms passed */
	METRICS_KAKAO_BUSY,		/* not sent: kakao_max_calls reached */
	METRICS_KAKAO_OUTCOMES
};

/*
 * Maps (creating it when missing) the region dir/METRICS_FILE and makes
 * it this process's, and counts this process's start. routes are the
 * route table's paths: route slot i + 1 is routes[i], slot 0 every path
 * that is no route ("other"). A file of another layout (an upgrade) is
 * replaced, and *replaced says so. Call before any thread starts. On
 * failure (-1, err says why) the process keeps counting into its private
 * region and metrics_shared() stays false.
 */
int	metrics_open(const char *dir, const char *const *routes,
	    size_t nroutes, bool *replaced, struct kl_error *err);

/* True when this process counts into the shared region. */
bool	metrics_shared(void);

/* One answered request: its route slot (0: other), HTTP status, and time
 * from accept to answer. */
void	metrics_request(size_t route_slot, int http_status, long duration_us);

/* One Kakao call and how long it took (duration_us < 0: it was not sent,
 * so no latency is observed). */
void	metrics_kakao(enum metrics_kakao_endpoint ep,
	    enum metrics_kakao_outcome outcome, long duration_us);

/* The store: a transaction or read retried after a deadlock or lock
 * time-out; a call that failed with a storage error; a user created. */
void	metrics_store_retry(void);
void	metrics_store_failure(void);
void	metrics_user_created(void);

/* What the renderer cannot read from the region. */
struct metrics_gauges {
	bool		users_known;	/* false: the store is not open */
	uint64_t	users;		/* user ids reserved (see README) */
};

/*
 * Appends the Prometheus text (format 0.0.4) of the region and g to out,
 * at most METRICS_TEXT_MAX bytes. Returns 0, or -1 (KL_INTERNAL) when it
 * does not fit or memory ran out.
 */
int	metrics_render(struct kl_buf *out, const struct metrics_gauges *g,
	    struct kl_error *err);

#endif
