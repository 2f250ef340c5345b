/*
 * http.c: the request and response types' helpers (see http.h): header
 * lines checked on the way in, reason phrases, method names.
 *
 * Knows nothing of FastCGI, Kakao or the store. Thread-safe: its tables
 * are constant, and a response belongs to one thread.
 */
#include <stdio.h>
#include <string.h>

#include "http.h"

static const struct {
	unsigned	 bit;
	const char	*name;
} methods[] = {
	{ HTTP_GET,	"GET" },
	{ HTTP_POST,	"POST" },
	{ HTTP_DELETE,	"DELETE" },
};

/* tchar of RFC 9110 */
static int
is_tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int
http_response_header(struct http_response *resp, const char *name,
    const char *value, struct kl_error *err)
{
	const char	*p;

	if (*name == '\0')
		return kl_fail(err, KL_INTERNAL, "empty header name");
	for (p = name; *p != '\0'; p++)
		if (!is_tchar((unsigned char)*p))
			return kl_fail(err, KL_INTERNAL, "bad header name");
	if (strpbrk(value, "\r\n") != NULL)
		return kl_fail(err, KL_INTERNAL, "CR or LF in header %s",
		    name);
	kl_buf_puts(&resp->headers, name);
	kl_buf_put(&resp->headers, ": ", 2);
	kl_buf_puts(&resp->headers, value);
	if (kl_buf_put(&resp->headers, "\r\n", 2) == -1)
		return kl_fail(err, KL_INTERNAL, "out of memory for headers");
	return 0;
}

void
http_response_free(struct http_response *resp)
{
	/* Bodies carry our tokens: wiped before they go back to malloc. */
	kl_buf_free(&resp->body, true);
	kl_buf_free(&resp->headers, true);
}

const char *
http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 302: return "Found";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

unsigned
http_method_bit(const char *method)
{
	size_t	i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].name, method) == 0)
			return methods[i].bit;
	return 0;
}

void
http_method_list(unsigned bits, char *buf, size_t size)
{
	size_t	i, len = 0;
	int	n;

	buf[0] = '\0';
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if ((bits & methods[i].bit) == 0)
			continue;
		n = snprintf(buf + len, size - len, "%s%s", len ? ", " : "",
		    methods[i].name);
		if (n < 0 || (size_t)n >= size - len)
			return;
		len += (size_t)n;
	}
}
