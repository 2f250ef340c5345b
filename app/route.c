/*
 * route.c: the routing table (see route.h).
 *
 * Paths are matched exactly, as the client sent them: no decoding, no
 * "/.." or "//" folding, so no front-server normalisation can make two
 * paths reach one route. Constant data; thread-safe.
 */
#include <string.h>

#include "kl_limits.h"
#include "route.h"

static const struct route routes[] = {
	{ "/users/kakao/login", HTTP_GET | HTTP_POST, ROUTE_BODY_IGNORED,
	  MAX_BODY, ROUTE_AUTH_KAKAO, handler_login },
	{ "/users/kakao/callback", HTTP_POST, ROUTE_BODY_FIELDS,
	  MAX_BODY, ROUTE_AUTH_NONE, handler_kakao_callback },
	{ "/users/kakao/id-token", HTTP_POST, ROUTE_BODY_FIELDS,
	  MAX_BODY, ROUTE_AUTH_NONE, handler_kakao_id_token },
	{ "/users/me", HTTP_GET | HTTP_DELETE, ROUTE_BODY_IGNORED, MAX_BODY,
	  ROUTE_AUTH_BEARER, handler_users_me },
	{ "/users/token/refresh", HTTP_POST, ROUTE_BODY_FIELDS_OPTIONAL, MAX_BODY,
	  ROUTE_AUTH_NONE, handler_token_refresh },
	{ "/users/logout", HTTP_POST, ROUTE_BODY_FIELDS_OPTIONAL, MAX_BODY,
	  ROUTE_AUTH_BEARER, handler_logout },
	{ "/users/kakao/unlink", HTTP_GET | HTTP_POST, ROUTE_BODY_PARAMS,
	  MAX_BODY, ROUTE_AUTH_KAKAO_AK, handler_kakao_unlink },
	{ "/auth/verify", HTTP_GET, ROUTE_BODY_IGNORED, MAX_BODY,
	  ROUTE_AUTH_BEARER, handler_auth_verify },
	{ "/healthz", HTTP_GET, ROUTE_BODY_IGNORED, MAX_BODY,
	  ROUTE_AUTH_NONE, handler_healthz },
	{ "/readyz", HTTP_GET, ROUTE_BODY_IGNORED, MAX_BODY,
	  ROUTE_AUTH_NONE, handler_readyz },
	{ "/metrics", HTTP_GET, ROUTE_BODY_IGNORED, MAX_BODY, ROUTE_AUTH_NONE,
	  handler_metrics },
};

const struct route *
route_find(const char *path)
{
	size_t	i;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(routes[i].path, path) == 0)
			return &routes[i];
	return NULL;
}

const struct route *
route_table(size_t *count)
{
	*count = sizeof(routes) / sizeof(routes[0]);
	return routes;
}

size_t
route_slot(const struct route *rt)
{
	return rt == NULL ? 0 : (size_t)(rt - routes) + 1;
}
