/*
 * http_cookie.c: the refresh cookie (see http_cookie.h).
 *
 * The parser reads a header the client wrote: it never writes past out,
 * never reads past the header's NUL, and refuses rather than guesses when
 * the cookie it looks for is doubled or malformed. Fuzzed by
 * test/fuzz/fuzz_cookie.c. Thread-safe: no state.
 */
#include <stdio.h>
#include <string.h>

#include "http_cookie.h"
#include "kl_limits.h"

/* RFC 6265 cookie-octet: US-ASCII but controls, space, DQUOTE, comma,
 * semicolon and backslash. */
static bool
cookie_octet(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x2b) ||
	    (c >= 0x2d && c <= 0x3a) || (c >= 0x3c && c <= 0x5b) ||
	    (c >= 0x5d && c <= 0x7e);
}

/* One cookie's value at v (len bytes, quotes still on) into out. */
static int
value_copy(const char *v, size_t len, char *out, size_t size)
{
	size_t	i;

	if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
		v++;
		len -= 2;
	}
	if (len == 0 || len >= size)
		return -1;
	for (i = 0; i < len; i++)
		if (!cookie_octet((unsigned char)v[i]))
			return -1;
	memcpy(out, v, len);
	out[len] = '\0';
	return 1;
}

int
http_cookie_find(const char *header, const char *name, char *out,
    size_t size)
{
	const char	*p = header, *eq, *end;
	size_t		 nlen = strlen(name), len;
	int		 found = 0;

	if (size > 0)
		out[0] = '\0';
	if (header == NULL || size == 0)
		return 0;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		if (*p == '\0')
			break;
		len = strcspn(p, ";");
		end = p + len;
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq != NULL && (size_t)(eq - p) == nlen &&
		    memcmp(p, name, nlen) == 0) {
			if (found++ > 0)
				break;
			if (value_copy(eq + 1, (size_t)(end - eq - 1), out,
			    size) == -1) {
				out[0] = '\0';
				return -1;
			}
		}
		p += len;
	}
	if (found > 1) {
		explicit_bzero(out, size);
		return -1;
	}
	return found;
}

const char *
http_cookie_refresh_name(bool secure)
{
	return secure ? HTTP_COOKIE_REFRESH_SECURE : HTTP_COOKIE_REFRESH_PLAIN;
}

int
http_cookie_refresh_set(struct http_response *resp, bool secure,
    const char *value, long max_age, struct kl_error *err)
{
	const char	*p;
	char		 line[MAX_COOKIE_LINE];
	int		 n, rc;

	if (value == NULL) {
		value = "";
		max_age = 0;
	}
	for (p = value; *p != '\0'; p++)
		if (!cookie_octet((unsigned char)*p))
			return kl_fail(err, KL_INTERNAL, "refresh cookie: not "
			    "a cookie value");
	if (max_age < 0)
		max_age = 0;
	n = snprintf(line, sizeof(line), "%s=%s; Path=/; Max-Age=%ld; "
	    "HttpOnly; SameSite=Strict%s", http_cookie_refresh_name(secure),
	    value, max_age, secure ? "; Secure" : "");
	if (n < 0 || (size_t)n >= sizeof(line))
		return kl_fail(err, KL_INTERNAL, "refresh cookie too long");
	rc = http_response_header(resp, "Set-Cookie", line, err);
	explicit_bzero(line, sizeof(line));
	return rc;
}
