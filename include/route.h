/*
 * route.h: the routing table, part of the fcgi layer. Each route says what
 * it takes (methods, body, credentials) so the fcgi layer can refuse a
 * request before its handler runs. Whether a route may wait on Kakao is
 * not a flag: every Kakao call takes a slot of the kakao layer's gate,
 * which keeps threads free for the routes that never call Kakao.
 */
#ifndef KL_ROUTE_H
#define KL_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "handlers.h"

enum route_body {
	ROUTE_BODY_IGNORED = 0,	/* read (framing is checked) but unused */
	ROUTE_BODY_FIELDS,	/* a form or JSON object, parsed into fields */
	ROUTE_BODY_FIELDS_OPTIONAL,	/* the same, or an empty body: no fields */
	ROUTE_BODY_PARAMS	/* GET: the query string as a form; POST: the
				 * body's fields, or the query's when empty */
};

enum route_auth {
	ROUTE_AUTH_NONE = 0,	/* no credentials, or the handler reads them */
	ROUTE_AUTH_KAKAO,	/* a Kakao access token in Authorization */
	ROUTE_AUTH_BEARER,	/* our JWT, as Authorization: Bearer */
	ROUTE_AUTH_KAKAO_AK	/* Kakao's admin key: KakaoAK <key> */
};

struct route {
	const char	*path;		/* matched exactly, as sent */
	unsigned	 methods;	/* enum http_method bits */
	enum route_body	 body;
	size_t		 body_max;	/* bytes, at most MAX_BODY */
	enum route_auth	 auth;
	handler_fn	 fn;
};

/* The route of path, or NULL. */
const struct route	*route_find(const char *path);

/* The route's metrics slot: its index in the table plus one; 0 for NULL
 * (no route), so a client cannot make label values. */
size_t			 route_slot(const struct route *rt);

/* The table, for tests and the README check. */
const struct route	*route_table(size_t *count);

#endif
