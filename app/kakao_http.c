/*
 * kakao_http.c: the curl plumbing of the kakao layer (see kakao_http.h).
 *
 * Owns the process's share handle (DNS cache and TLS sessions, one lock per
 * kind of data) and the set-up, running and judging of one transfer, for
 * kakao.c (kapi) and kakao_auth.c (kauth, JWKS). Knows no Kakao JSON: what
 * a non-200 answer means is the caller's classify function. Must not see
 * tokens beyond the answer buffers it fills, which it wipes when asked.
 * The share handle is set up once before any thread and is then safe to
 * use from all; a call belongs to one thread.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "kakao_http.h"

#define USER_AGENT	"kakao-login/1.0"

/* DNS cache and TLS sessions are shared by the threads of a process. */
static CURLSH		*share;
static pthread_mutex_t	 share_locks[CURL_LOCK_DATA_LAST];

static void
share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *u)
{
	(void)h; (void)access; (void)u;
	pthread_mutex_lock(&share_locks[data]);
}

static void
share_unlock(CURL *h, curl_lock_data data, void *u)
{
	(void)h; (void)u;
	pthread_mutex_unlock(&share_locks[data]);
}

int
kakao_http_global_init(struct kl_error *err)
{
	int	i;

	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		return kl_fail(err, KL_INTERNAL, "curl_global_init failed");
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&share_locks[i], NULL);
	if ((share = curl_share_init()) == NULL)
		return kl_fail(err, KL_INTERNAL, "curl_share_init failed");
	if (curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock) ||
	    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
	    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
	    curl_share_setopt(share, CURLSHOPT_SHARE,
	    CURL_LOCK_DATA_SSL_SESSION))
		return kl_fail(err, KL_INTERNAL, "curl_share_setopt failed");
	return 0;
}

void
kakao_http_global_cleanup(void)
{
	int	i;

	if (share != NULL)
		curl_share_cleanup(share);
	share = NULL;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&share_locks[i]);
	curl_global_cleanup();
}

/* Keeps at most MAX_KAKAO_BODY bytes (the buffer's limit); more, or no
 * memory, aborts the transfer. */
static size_t
kakao_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct kl_buf	*b = userdata;
	size_t		 n = size * nmemb;

	return kl_buf_put(b, ptr, n) == 0 ? n : 0;
}

int
kakao_call_init(struct kakao_call *c, const struct kakao_options *opt,
    const char *base, const char *key, const char *path,
    struct kl_error *err)
{
	char		url[MAX_URL_LEN + 64];
	const char	*proto;

	if ((size_t)snprintf(url, sizeof(url), "%s%s", base, path) >=
	    sizeof(url))
		return kl_fail(err, KL_BAD_CONFIG, "%s too long", key);
	proto = strncmp(base, "https://", 8) == 0 ? "https" : "http";
	c->body.limit = MAX_KAKAO_BODY;
	if ((c->easy = curl_easy_init()) == NULL)
		return kl_fail(err, KL_INTERNAL, "curl_easy_init failed");
	if (curl_easy_setopt(c->easy, CURLOPT_URL, url) ||
	    curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L) ||
	    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, opt->timeout_ms) ||
	    curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS,
	    opt->connect_timeout_ms) ||
	    curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, proto) ||
	    curl_easy_setopt(c->easy, CURLOPT_FOLLOWLOCATION, 0L) ||
	    curl_easy_setopt(c->easy, CURLOPT_SSL_VERIFYPEER, 1L) ||
	    curl_easy_setopt(c->easy, CURLOPT_SSL_VERIFYHOST, 2L) ||
	    curl_easy_setopt(c->easy, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)MAX_KAKAO_BODY) ||
	    curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPALIVE, 1L) ||
	    curl_easy_setopt(c->easy, CURLOPT_USERAGENT, USER_AGENT) ||
	    curl_easy_setopt(c->easy, CURLOPT_SHARE, share) ||
	    /* No proxy from the environment: tokens go to Kakao only. */
	    curl_easy_setopt(c->easy, CURLOPT_PROXY, "") ||
	    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, kakao_write) ||
	    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, &c->body) ||
	    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c))
		return kl_fail(err, KL_INTERNAL, "curl_easy_setopt failed");
	if (opt->ca_file != NULL && opt->ca_file[0] != '\0' &&
	    curl_easy_setopt(c->easy, CURLOPT_CAINFO, opt->ca_file))
		return kl_fail(err, KL_INTERNAL, "CURLOPT_CAINFO failed");
	return 0;
}

void
kakao_call_free(struct kakao_call *c)
{
	if (c->easy != NULL)
		curl_easy_cleanup(c->easy);
	curl_slist_free_all(c->headers);
	kl_buf_free(&c->body, true);
	memset(c, 0, sizeof(*c));
}

void
kakao_call_reset(struct kakao_call *c)
{
	kl_buf_reset(&c->body);
	c->result = CURLE_GOT_NOTHING;	/* unless the transfer finishes */
	c->http_status = 0;
}

void
kakao_call_wipe(struct kakao_call *c)
{
	if (c->body.data != NULL)
		explicit_bzero(c->body.data, c->body.cap);
	kl_buf_shrink(&c->body, KAKAO_BUF_KEEP);
}

int
kakao_call_run(CURLM *multi, struct kl_error *err)
{
	struct kakao_call	*c;
	CURLMsg			*msg;
	CURLMcode		 mc;
	int			 running = 0, left;

	do {
		mc = curl_multi_perform(multi, &running);
		if (mc == CURLM_OK && running > 0)
			mc = curl_multi_poll(multi, NULL, 0, 1000, NULL);
	} while (mc == CURLM_OK && running > 0);
	if (mc != CURLM_OK)
		return kl_fail(err, KL_INTERNAL, "curl multi: %s",
		    curl_multi_strerror(mc));
	while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    (char **)&c);
		c->result = msg->data.result;
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE,
		    &c->http_status);
	}
	return 0;
}

void
kakao_call_perform(struct kakao_call *c)
{
	c->result = curl_easy_perform(c->easy);
	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->http_status);
}

int
kakao_call_outcome(const struct kakao_call *c, const char *what,
    kakao_classify_fn *classify, struct kl_error *err)
{
	curl_off_t	sent_at = 0;

	switch (c->result) {
	case CURLE_OK:
		break;
	case CURLE_OPERATION_TIMEDOUT:
		/* Never ready to send (even on a kept-alive connection,
		 * this is set): the connection itself timed out. */
		curl_easy_getinfo(c->easy, CURLINFO_PRETRANSFER_TIME_T,
		    &sent_at);
		if (sent_at <= 0)
			return kl_fail(err, KL_KAKAO_UNAVAILABLE, "%s: connect "
			    "timed out", what);
		return kl_fail(err, KL_KAKAO_TIMEOUT, "%s: timed out", what);
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		if (c->body.overflow || c->result == CURLE_FILESIZE_EXCEEDED)
			return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "%s: body "
			    "over %d bytes", what, MAX_KAKAO_BODY);
		return kl_fail(err, KL_INTERNAL, "%s: out of memory", what);
	case CURLE_PARTIAL_FILE:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "%s: %s", what,
		    curl_easy_strerror(c->result));
	default:
		return kl_fail(err, KL_KAKAO_UNAVAILABLE, "%s: %s", what,
		    curl_easy_strerror(c->result));
	}
	if (c->http_status != 200)
		return classify(c->http_status, c->body.data, c->body.len,
		    err);
	return 0;
}

void
kakao_call_count(const struct kakao_call *c, enum metrics_kakao_endpoint ep)
{
	enum metrics_kakao_outcome	o;
	curl_off_t			us = 0;

	if (c->result == CURLE_OPERATION_TIMEDOUT)
		o = METRICS_KAKAO_TIMEOUT;
	else if (c->result != CURLE_OK)
		o = METRICS_KAKAO_ERROR;
	else if (c->http_status == 200)
		o = METRICS_KAKAO_OK;
	else if (c->http_status >= 400 && c->http_status < 500 &&
	    c->http_status != 429)
		o = METRICS_KAKAO_REFUSED;
	else
		o = METRICS_KAKAO_ERROR;
	curl_easy_getinfo(c->easy, CURLINFO_TOTAL_TIME_T, &us);
	metrics_kakao(ep, o, (long)us);
}
