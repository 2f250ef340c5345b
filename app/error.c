/*
 * error.c: the status -> HTTP table and the helpers that fill struct kl_error.
 *
 * This is the only place that knows which HTTP status and which message a
 * failure gets; handlers and the layers below only speak in enum kl_status.
 * Thread-safe: the table is constant.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kl_error.h"

static const struct {
	int		 http;
	const char	*message;
} status_table[KL_STATUS_COUNT] = {
	[KL_OK]			= { 200, "SUCCESS" },
	[KL_BAD_TOKEN]		= { 400, "INVALID_TOKEN" },
	[KL_KAKAO_REJECTED]	= { 401, "NOT_FOUND_IN_KAKAO" },
	[KL_WRONG_APP]		= { 401, "WRONG_APP" },
	[KL_KAKAO_BAD_RESPONSE]	= { 502, "KAKAO_BAD_RESPONSE" },
	[KL_KAKAO_UNAVAILABLE]	= { 502, "KAKAO_UNAVAILABLE" },
	[KL_KAKAO_TIMEOUT]	= { 504, "KAKAO_TIMEOUT" },
	[KL_KAKAO_BUSY]		= { 503, "KAKAO_BUSY" },
	[KL_STORE_FAILED]	= { 500, "INTERNAL_ERROR" },
	[KL_INTERNAL]		= { 500, "INTERNAL_ERROR" },
	[KL_NOT_FOUND]		= { 404, "NOT_FOUND" },
	[KL_METHOD_NOT_ALLOWED]	= { 405, "METHOD_NOT_ALLOWED" },
	[KL_TOO_LARGE]		= { 413, "TOO_LARGE" },
	[KL_BAD_REQUEST]	= { 400, "BAD_REQUEST" },
	[KL_INVALID_CODE]	= { 400, "INVALID_CODE" },
	[KL_REDIRECT_MISMATCH]	= { 400, "REDIRECT_URI_MISMATCH" },
	[KL_KAKAO_CONFIG]	= { 502, "KAKAO_CONFIG_ERROR" },
	[KL_BAD_ID_TOKEN]	= { 401, "INVALID_ID_TOKEN" },
	[KL_NOT_CONFIGURED]	= { 501, "NOT_CONFIGURED" },
	[KL_BAD_ACCESS_TOKEN]	= { 401, "INVALID_ACCESS_TOKEN" },
	[KL_BAD_REFRESH]	= { 401, "INVALID_REFRESH_TOKEN" },
	[KL_REFRESH_REUSED]	= { 401, "REFRESH_REUSED" },
	[KL_ORIGIN_NOT_ALLOWED]	= { 403, "ORIGIN_NOT_ALLOWED" },
	[KL_UNAUTHORIZED]	= { 401, "UNAUTHORIZED" },
	[KL_NOT_READY]		= { 503, "NOT_READY" },
	[KL_METRICS_UNAVAILABLE] = { 503, "METRICS_UNAVAILABLE" },
	[KL_USER_DEACTIVATED]	= { 403, "USER_DEACTIVATED" },
	[KL_NO_MASTER]		= { 503, "NO_MASTER" },
	[KL_NOT_DURABLE]	= { 503, "NOT_DURABLE" },
	[KL_BAD_CONFIG]		= { 500, "INTERNAL_ERROR" },
};

int
kl_fail(struct kl_error *err, enum kl_status status, const char *fmt, ...)
{
	va_list	ap;

	if (err == NULL)
		return -1;
	err->status = status;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return -1;
}

void
kl_error_clear(struct kl_error *err)
{
	if (err == NULL)
		return;
	err->status = KL_OK;
	err->detail[0] = '\0';
}

int
error_http_status(enum kl_status status)
{
	if ((unsigned)status >= KL_STATUS_COUNT)
		return 500;
	return status_table[status].http;
}

const char *
error_message(enum kl_status status)
{
	if ((unsigned)status >= KL_STATUS_COUNT)
		return "INTERNAL_ERROR";
	return status_table[status].message;
}
