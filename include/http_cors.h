/*
 * http_cors.h: which browser origins may use the service (allowed_origins)
 * and the CORS headers that tell the browser so: on every answer to an
 * allowed origin, and the preflight (OPTIONS) of a cross-origin request.
 * An origin that is not allowed gets no CORS header at all, so the browser
 * keeps the answer from its page.
 *
 * Part of the http helpers: reads the configuration, knows nothing of
 * routes' handlers, tokens or the store. Thread-safe: no state.
 */
#ifndef KL_HTTP_CORS_H
#define KL_HTTP_CORS_H

#include <stdbool.h>

#include "config.h"
#include "http.h"
#include "kl_error.h"

/* True when the request carried exactly one Origin header (count) and it
 * equals one of allowed_origins byte for byte. */
bool	http_cors_allowed(const struct config *cfg, const char *origin,
	    int count);

/* Adds Access-Control-Allow-Origin (origin, echoed), -Allow-Credentials,
 * -Expose-Headers and Vary: Origin to an answer to an allowed origin. */
int	http_cors_headers(struct http_response *resp, const char *origin,
	    struct kl_error *err);

/* The preflight's answer: 204 with the route's methods (enum http_method
 * bits), the request headers a page may send (Authorization,
 * Content-Type) and how long the browser may keep it (CORS_MAX_AGE_S). */
int	http_cors_preflight(struct http_response *resp, const char *origin,
	    unsigned methods, struct kl_error *err);

#endif
