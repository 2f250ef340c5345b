/*
 * handlers_metrics.c: GET /metrics, the service's counters as Prometheus
 * text (exposition format 0.0.4).
 *
 * The counters are every process's (the metrics module's shared region),
 * so one scrape through the front server is the whole service; this adds
 * the one figure the region cannot hold, the users gauge, read from the
 * store's sequence (one record, no scan), and left out while the store is
 * not open. A process without the shared region answers 503: its own
 * counts alone would read as resets. Calls Kakao never. Thread-safe: the
 * answer is built in the request's own response.
 */
#include "handlers.h"
#include "metrics.h"
#include "store.h"

#define METRICS_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"

int
handler_metrics(struct handler_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct kl_error *err)
{
	struct metrics_gauges	g = { 0 };
	struct kl_error		serr;

	(void)req;
	if (!metrics_shared())
		return kl_fail(err, KL_METRICS_UNAVAILABLE, "no shared metrics "
		    "region (see the start-up log)");
	g.users_known = store_user_ids_reserved(ctx->store, &g.users,
	    &serr) == 0;
	if (metrics_render(&resp->body, &g, err) == -1)
		return -1;
	resp->content_type = METRICS_CONTENT_TYPE;
	resp->status = 200;
	return 0;
}
