/*
 * handlers_health.c: GET /healthz (liveness) and GET /readyz (readiness).
 *
 * /healthz depends on nothing: no store, no Kakao, no config; a worker
 * that can accept answers it, so it says the process is alive and its
 * threads are not all stuck. /readyz says whether this process can serve
 * logins now: the config is loaded and the store's probe (store_probe.h:
 * a write proved at most READYZ_CACHE_MS ago, per process) succeeded;
 * otherwise 503 NOT_READY with a fixed reason phrase that names no path,
 * key or secret (the log line gets the detail). Neither ever calls Kakao,
 * curl, Berkeley DB or libjwt directly. Thread-safe: no state of its own.
 */
#include <stddef.h>

#include "handlers.h"
#include "kl_buf.h"
#include "kl_clock.h"
#include "kl_limits.h"
#include "store_probe.h"
#include "store_repl.h"

int
handler_healthz(struct handler_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct kl_error *err)
{
	(void)ctx;
	(void)req;
	if (kl_buf_puts(&resp->body, "{\"message\":\"OK\"}") == -1)
		return kl_fail(err, KL_INTERNAL, "out of memory for the answer");
	resp->status = 200;
	return 0;
}

/* The answer's reason for each store health; fixed phrases only. */
const char *
handler_ready_reason(int health)
{
	switch ((enum store_health)health) {
	case STORE_HEALTH_OK:
		return NULL;
	case STORE_HEALTH_NOT_OPEN:
		return "store not open";
	case STORE_HEALTH_RESTARTING:
		return "store restarting";
	case STORE_HEALTH_NOT_WRITABLE:
		return "store not writable";
	case STORE_HEALTH_SLOW:
		return "store not responding";
	case STORE_HEALTH_NO_MASTER:
		return "no replication master";
	}
	return "store not usable";
}

int
handler_readyz(struct handler_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct kl_error *err)
{
	struct kl_error		perr;
	enum store_health	h;
	enum store_role		role;

	(void)req;
	if (ctx->cfg == NULL) {
		resp->reason = "config not loaded";
		return kl_fail(err, KL_NOT_READY, "config not loaded");
	}
	if (ctx->store == NULL) {
		resp->reason = handler_ready_reason(STORE_HEALTH_NOT_OPEN);
		return kl_fail(err, KL_NOT_READY, "no store");
	}
	kl_error_clear(&perr);
	h = store_probe(ctx->store, kl_mono_ms(), READYZ_CACHE_MS, &perr);
	if (h != STORE_HEALTH_OK) {
		resp->reason = handler_ready_reason((int)h);
		return kl_fail(err, KL_NOT_READY, "%s", perr.detail);
	}
	/* A site of a replication group says what it is; a single site's
	 * answer stays as it always was. */
	role = store_role(ctx->store);
	if (role == STORE_ROLE_SINGLE ? kl_buf_puts(&resp->body,
	    "{\"message\":\"READY\"}") == -1 : (kl_buf_puts(&resp->body,
	    "{\"message\":\"READY\",\"role\":\"") == -1 ||
	    kl_buf_puts(&resp->body, store_role_name(role)) == -1 ||
	    kl_buf_puts(&resp->body, "\"}") == -1))
		return kl_fail(err, KL_INTERNAL, "out of memory for the answer");
	resp->status = 200;
	return 0;
}
