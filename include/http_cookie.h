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
 * __Secure- prefix: a browser keeps such a cookie only from a secure
 * origin, with Secure set, so an http page cannot plant one. */
#define HTTP_COOKIE_REFRESH_SECURE	"__Secure-kl_refresh"
#define HTTP_COOKIE_REFRESH_PLAIN	"kl_refresh"

/* The paths it is sent to, and no others: the refresh and the logout. */
#define HTTP_COOKIE_PATH_REFRESH	"/users/token/refresh"
#define HTTP_COOKIE_PATH_LOGOUT		"/users/logout"

/*
 * Looks for the cookie called name in a Cookie header's value (RFC 6265:
 * "a=b; c=d", a value optionally in double quotes). Returns 1 with its
 * value copied into out (size bytes, terminated), 0 when header is NULL
 * or holds no such cookie, -1 when that cookie cannot be trusted: sent
 * twice (a sibling subdomain may have planted a second one, cookie
 * tossing), empty, longer than size - 1, or with bytes outside RFC 6265's
 * cookie-octet. Other cookies are skipped, whatever they hold.
 */
int	http_cookie_find(const char *header, const char *name, char *out,
	    size_t size);

/* The name of the refresh cookie for this configuration. */
const char *http_cookie_refresh_name(bool secure);

/*
 * Adds the Set-Cookie lines of the refresh cookie, one per path:
 * value for max_age seconds (> 0), HttpOnly, SameSite=Strict, and Secure
 * with the __Secure- name when secure. value NULL clears it (empty value,
 * Max-Age=0). value must be cookie-octets (a refresh token is). 0, or -1
 * with KL_INTERNAL (out of memory, a value that is not).
 */
int	http_cookie_refresh_set(struct http_response *resp, bool secure,
	    const char *value, long max_age, struct kl_error *err);

#endif
