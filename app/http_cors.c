/*
 * http_cors.c: CORS for allowed_origins (see http_cors.h). The origin is
 * echoed only after it matched a configured one, so what goes into the
 * header is the operator's string, never a client's guess. Thread-safe.
 */
#include <stdio.h>
#include <string.h>

#include "http_cors.h"
#include "kl_limits.h"

bool
http_cors_allowed(const struct config *cfg, const char *origin, int count)
{
	int	i;

	if (origin == NULL || count != 1)
		return false;
	for (i = 0; i < cfg->n_allowed_origins; i++)
		if (strcmp(cfg->allowed_origin[i], origin) == 0)
			return true;
	return false;
}

int
http_cors_headers(struct http_response *resp, const char *origin,
    struct kl_error *err)
{
	if (http_response_header(resp, "Access-Control-Allow-Origin", origin,
	    err) == -1 ||
	    http_response_header(resp, "Access-Control-Allow-Credentials",
	    "true", err) == -1 ||
	    http_response_header(resp, "Access-Control-Expose-Headers",
	    "X-Request-Id, WWW-Authenticate", err) == -1 ||
	    http_response_header(resp, "Vary", "Origin", err) == -1)
		return -1;
	return 0;
}

int
http_cors_preflight(struct http_response *resp, const char *origin,
    unsigned methods, struct kl_error *err)
{
	char	list[64], age[16];

	http_method_list(methods, list, sizeof(list));
	snprintf(age, sizeof(age), "%d", CORS_MAX_AGE_S);
	if (http_cors_headers(resp, origin, err) == -1 ||
	    http_response_header(resp, "Access-Control-Allow-Methods", list,
	    err) == -1 ||
	    http_response_header(resp, "Access-Control-Allow-Headers",
	    "Authorization, Content-Type", err) == -1 ||
	    http_response_header(resp, "Access-Control-Max-Age", age,
	    err) == -1)
		return -1;
	resp->status = 204;
	return 0;
}
