/*
 * http_cookie.h: the refresh cookie of browser sessions (refresh_cookie =
 * yes): finding it in a request's Cookie header, and the Set-Cookie lines
 * that set, rotate and clear it.
 *
 * Part of the http helpers, under the handlers: knows the cookie's name,
 * paths and attributes, nothing of what the token means (token.h) or of
 * the store. Thread-safe: no state.
 */
#ifndef KL_HTTP_COOKIE_H
#define KL_HTTP_COOKIE_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "kl_error.h"

/* With refresh_cookie_secure (the default) the name carries the
 * __Host- prefix: a browser keeps such a cookie only when it is Secure,
 * has Path=/ and no Domain, from a secure origin, so neither an http page
 * nor a sibling subdomain (Domain=parent) can plant one in its place
 * (found in review: with __Secure- and narrow paths a sibling could force
 * a logout loop or a login as someone else). Path=/ follows: it goes with
 * every request to the site, which only the service reads (HttpOnly). */
#define HTTP_COOKIE_REFRESH_SECURE	"__Host-kl_refresh"
#define HTTP_COOKIE_REFRESH_PLAIN	"kl_refresh"

/*
 * Looks for the cookie called name in a Cookie header's value (RFC 6265:
 * "a=b; c=d", a value optionally in double quotes). Returns 1 with its
 * value copied into out (size bytes, terminated), 0 when header is NULL
 * or holds no such cookie, -1 when that cookie cannot be trusted: sent
 * twice (a sibling subdomain may have planted a second one, cookie
 * tossing), empty, longer than size - 1, or with bytes outside RFC 6265's
 * cookie-octet. Other cookies are skipped, whatever they hold, and however
 * long the header (the front's header limit and the guard's params cap
 * bound it).
 */
int	http_cookie_find(const char *header, const char *name, char *out,
	    size_t size);

/* The name of the refresh cookie for this configuration. */
const char *http_cookie_refresh_name(bool secure);

/*
 * Adds the one Set-Cookie line of the refresh cookie: value for max_age
 * seconds (> 0), Path=/, HttpOnly, SameSite=Strict, and Secure with the
 * __Host- name when secure. value NULL clears it (empty value, Max-Age=0).
 * value must be cookie-octets (a refresh token is). 0, or -1 with
 * KL_INTERNAL (out of memory, a value that is not; then no line is added).
 */
int	http_cookie_refresh_set(struct http_response *resp, bool secure,
	    const char *value, long max_age, struct kl_error *err);

#endif
