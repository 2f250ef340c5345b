/*
 * http.h: the request and the answer as the handlers see them.
 *
 * The fcgi layer fills a struct http_request from the FastCGI params and
 * the body, and writes a struct http_response out; handlers read the one
 * and fill the other, and neither side sees libfcgi. A response owns its
 * two buffers (body, extra header lines) until http_response_free().
 * Plain data: one request and one response per worker thread at a time.
 */
#ifndef KL_HTTP_H
#define KL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kl_buf.h"
#include "kl_error.h"

/* Methods as bits, so a route lists the ones it takes. */
enum http_method {
	HTTP_GET	= 1 << 0,
	HTTP_POST	= 1 << 1,
	HTTP_DELETE	= 1 << 2
};

struct body_fields;

/* The parts of a request the handlers look at. Strings are NUL-terminated,
 * "" when absent unless said otherwise, and valid for the call only. */
struct http_request {
	const char	*method;
	unsigned	 method_bit;		/* 0: none of enum http_method */
	const char	*path;			/* without the query string */
	const char	*query;			/* after '?', as sent */
	const char	*content_type;		/* NULL: absent */
	const char	*cookie;		/* NULL: absent */
	int		 cookie_count;		/* > 1: several Cookie headers */
	const char	*origin;		/* NULL: absent */
	int		 origin_count;		/* > 1: duplicated header */
	const char	*client_addr;		/* REMOTE_ADDR */
	const char	*request_id;		/* fcgi_reqid.c: plain bytes */
	const char	*authorization;		/* NULL: absent */
	int		 authorization_count;	/* > 1: duplicated header */
	const char	*body;
	size_t		 body_len;
	/* The parsed fields, for routes that read a form or JSON body;
	 * NULL for the others. */
	const struct body_fields *fields;
};

/* An answer. A handler that succeeds sets status and writes body (JSON,
 * unless content_type says otherwise); one that fails returns -1 with a
 * struct kl_error and the fcgi layer writes the error body, keeping any
 * header lines the handler added (WWW-Authenticate, say). */
struct http_response {
	int		 status;
	struct kl_buf	 body;
	struct kl_buf	 headers;	/* "Name: value\r\n" lines */
	const char	*content_type;	/* NULL: JSON */
	/* A failure's fixed reason phrase (a string constant of lower-case
	 * letters and spaces, naming no path, key or secret), answered as
	 * "reason" beside the message; NULL: none. */
	const char	*reason;
	/* Set by a route that answers tokens, before it does: the refresh
	 * token goes into a cookie, not the body (handler_cookie_mode). */
	bool		 refresh_in_cookie;
	uint64_t	 user_id;	/* for the log; 0: none */
	long		 upstream_us;	/* for the log */
};

/* Adds a header line. name is a token, value has no CR, LF or NUL (a
 * header split by a value would be a response-splitting hole): anything
 * else is refused with KL_INTERNAL, as is running out of memory. */
int		 http_response_header(struct http_response *resp,
		    const char *name, const char *value, struct kl_error *err);

/* Frees what the response holds; it may be reused after. */
void		 http_response_free(struct http_response *resp);

/* "OK", "Found", "Too Many Requests", ... ; "Status" for an unknown code. */
const char	*http_reason(int status);

/* The enum http_method bit of a method name, 0 for any other. */
unsigned	 http_method_bit(const char *method);

/* Writes the names of the bits in methods as an Allow value ("GET,
 * POST") into buf (size bytes, always terminated). */
void		 http_method_list(unsigned methods, char *buf, size_t size);

#endif
