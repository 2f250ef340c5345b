/*
 * handlers.h: one function per route. A handler validates its input, calls
 * the layers below (kakao, store, token) and chooses the answer; it never
 * calls curl, Berkeley DB or libjwt itself, and never writes to the
 * FastCGI stream.
 */
#ifndef KL_HANDLERS_H
#define KL_HANDLERS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "kl_error.h"

struct kakao_client;
struct store;
struct token_ctx;

/* What a handler may use; one per worker thread. */
struct handler_ctx {
	const struct config	*cfg;
	const struct token_ctx	*token;
	struct store		*store;
	struct kakao_client	*kakao;
};

/* The parts of a request the handlers look at, filled by the fcgi layer.
 * Strings are NUL-terminated and valid for the duration of the call. */
struct http_request {
	const char	*method;
	const char	*path;			/* without the query string */
	const char	*authorization;		/* NULL: absent */
	int		 authorization_count;	/* > 1: duplicated header */
	const char	*body;
	size_t		 body_len;
};

/* A successful answer. body is a NUL-terminated JSON text allocated with
 * malloc(); the fcgi layer frees it. Failures are returned as -1 with a
 * struct kl_error, and the fcgi layer writes them. */
struct http_response {
	int		 status;
	char		*body;
	uint64_t	 user_id;	/* for the log; 0: none */
	long		 upstream_us;	/* for the log */
};

typedef int (*handler_fn)(struct handler_ctx *, const struct http_request *,
    struct http_response *, struct kl_error *);

/* GET or POST /users/kakao/login */
int	handler_login(struct handler_ctx *ctx, const struct http_request *req,
	    struct http_response *resp, struct kl_error *err);

/* Extracts the Kakao access token from an Authorization value: the raw
 * token (as the old front end sends it) or "Bearer <token>". The token must
 * be a token68 (RFC 7235) of at most MAX_KAKAO_TOKEN characters; anything
 * else is KL_BAD_TOKEN. token must hold MAX_KAKAO_TOKEN + 1 bytes. */
int	handler_parse_authorization(const char *value, char *token,
	    struct kl_error *err);

#endif
