/*
 * kl_error.h: the one error idiom of kakao-login.
 *
 * A function that can fail returns 0 on success or -1 on failure and, on
 * failure, fills a caller-supplied struct kl_error: a status that says what
 * kind of failure it is and a detail string for the log. The detail never
 * holds a token, key or secret. Only the fcgi layer turns a status into an
 * HTTP status and message, through error_http_status() and error_message().
 */
#ifndef KL_ERROR_H
#define KL_ERROR_H

#include "kl_limits.h"

enum kl_status {
	KL_OK = 0,
	KL_BAD_TOKEN,		/* 400 INVALID_TOKEN: no or malformed Authorization */
	KL_KAKAO_REJECTED,	/* 401 NOT_FOUND_IN_KAKAO: Kakao says invalid/expired */
	KL_WRONG_APP,		/* 401 WRONG_APP: token issued to another app */
	KL_KAKAO_BAD_RESPONSE,	/* 502: Kakao answered something unusable */
	KL_KAKAO_UNAVAILABLE,	/* 502: unreachable, 5xx, quota */
	KL_KAKAO_TIMEOUT,	/* 504: too slow */
	KL_KAKAO_BUSY,		/* 503: our cap on concurrent Kakao calls */
	KL_STORE_FAILED,	/* 500 INTERNAL_ERROR: database trouble */
	KL_INTERNAL,		/* 500 INTERNAL_ERROR: anything else of ours */
	KL_NOT_FOUND,		/* 404 */
	KL_METHOD_NOT_ALLOWED,	/* 405 */
	KL_TOO_LARGE,		/* 413 */
	KL_BAD_REQUEST,		/* 400 BAD_REQUEST: request framing we refuse */
	KL_INVALID_CODE,	/* 400: code invalid, used, expired, or a bad repeat */
	KL_REDIRECT_MISMATCH,	/* 400: redirect_uri not in redirect_uris */
	KL_KAKAO_CONFIG,	/* 502: Kakao refuses our app's set-up (KOE010, ...) */
	KL_BAD_ID_TOKEN,	/* 401: an id_token failed a check */
	KL_NOT_CONFIGURED,	/* 501: the route's keys are not configured */
	KL_BAD_ACCESS_TOKEN,	/* 401: our JWT missing, bad or expired */
	KL_BAD_REFRESH,		/* 401: refresh token unknown, expired or revoked */
	KL_REFRESH_REUSED,	/* 401: a rotated refresh token, after the window */
	KL_ORIGIN_NOT_ALLOWED,	/* 403: the refresh cookie without an allowed Origin */
	KL_UNAUTHORIZED,	/* 401: Kakao's unlink callback, wrong key or app */
	KL_NOT_READY,		/* 503: /readyz, the store cannot serve (yet) */
	KL_METRICS_UNAVAILABLE,	/* 503: no shared metrics region (metrics.c) */
	KL_USER_DEACTIVATED,	/* 403: the user was deactivated by the admin tool */
	KL_NO_MASTER,		/* 503: a write, and this site is not the master */
	KL_NOT_DURABLE,		/* 503: a write the replicas did not acknowledge */
	KL_BAD_CONFIG,		/* start-up only: configuration refused */
	KL_STATUS_COUNT
};

struct kl_error {
	enum kl_status	status;
	char		detail[MAX_ERROR_DETAIL];
};

/* Fills err (which may be NULL) and returns -1, so callers can write
 * "return kl_fail(err, KL_..., "what %s", x);". */
int		 kl_fail(struct kl_error *err, enum kl_status status,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void		 kl_error_clear(struct kl_error *err);

/* The one status -> HTTP table. */
int		 error_http_status(enum kl_status status);
const char	*error_message(enum kl_status status);

#endif
