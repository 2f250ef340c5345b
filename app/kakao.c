/*
 * kakao.c: libcurl calls to Kakao and the parsing of Kakao's JSON.
 *
 * Owns one curl multi handle and two easy handles per worker thread (profile
 * and token info), reused for every request so connections stay alive, and
 * a process-wide share handle for DNS and TLS sessions (locked). Before a
 * call it asks the reject cache (kakao_reject.c) and takes a slot of the
 * gate (kakao_gate.c); both are shared by the process's clients. Never sees
 * the front's HTTP request: it gets a token and returns a profile or a
 * failure status. Every transfer is bounded by the configured time-outs and
 * by MAX_KAKAO_BODY; only the scheme of the configured URL is allowed, and
 * TLS peers are verified.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "kakao.h"
#include "kakao_gate.h"
#include "kakao_reject.h"
#include "kl_buf.h"
#include "kl_clock.h"

#define USER_AGENT	"kakao-login/1.0"

struct kakao_call {
	CURL		*easy;
	struct kl_buf	 body;		/* .limit = MAX_KAKAO_BODY */
	CURLcode	 result;
	long		 http_status;
};

struct kakao_client {
	CURLM			*multi;
	struct kakao_call	 profile;
	struct kakao_call	 info;
	int64_t			 app_id;
	struct kakao_reject	*reject;	/* shared, not ours */
	struct kakao_gate	*gate;		/* shared, not ours */
};

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
kakao_global_init(struct kl_error *err)
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
kakao_global_cleanup(void)
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

static int
call_init(struct kakao_call *c, const struct kakao_options *opt,
    const char *path, struct kl_error *err)
{
	char		url[MAX_URL_LEN + 64];
	const char	*proto;

	if ((size_t)snprintf(url, sizeof(url), "%s%s", opt->api_url, path) >=
	    sizeof(url))
		return kl_fail(err, KL_BAD_CONFIG, "kakao_api_url too long");
	proto = strncmp(opt->api_url, "https://", 8) == 0 ? "https" : "http";
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
	    curl_easy_setopt(c->easy, CURLOPT_HTTPAUTH, CURLAUTH_BEARER) ||
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

static void
call_free(struct kakao_call *c)
{
	if (c->easy != NULL)
		curl_easy_cleanup(c->easy);
	kl_buf_free(&c->body, false);
	memset(c, 0, sizeof(*c));
}

struct kakao_client *
kakao_client_new(const struct kakao_options *opt, struct kl_error *err)
{
	struct kakao_client	*kc;

	if ((kc = calloc(1, sizeof(*kc))) == NULL) {
		kl_fail(err, KL_INTERNAL, "out of memory");
		return NULL;
	}
	kc->app_id = opt->app_id;
	kc->reject = opt->reject;
	kc->gate = opt->gate;
	if ((kc->multi = curl_multi_init()) == NULL) {
		kl_fail(err, KL_INTERNAL, "curl_multi_init failed");
		goto fail;
	}
	if (call_init(&kc->profile, opt, "/v2/user/me", err) == -1 ||
	    call_init(&kc->info, opt, "/v1/user/access_token_info", err) == -1)
		goto fail;
	return kc;
fail:
	kakao_client_free(kc);
	return NULL;
}

void
kakao_client_free(struct kakao_client *kc)
{
	if (kc == NULL)
		return;
	call_free(&kc->profile);
	call_free(&kc->info);
	if (kc->multi != NULL)
		curl_multi_cleanup(kc->multi);
	free(kc);
}

/* Kakao's error codes that mean "this user or token cannot log in". */
static bool
code_rejects_user(long code)
{
	return code == -401 || code == -101 || code == -103 || code == -4 ||
	    code == -406 || code == -402;
}

/* Codes that mean Kakao itself is in trouble or limiting us. */
static bool
code_unavailable(long code)
{
	return code == -1 || code == -7 || code == -9798 || code == -10 ||
	    code == -603;
}

int
kakao_error_classify(long http_status, const char *body, size_t len,
    struct kl_error *err)
{
	json_t	*root, *jcode;
	long	 code = 0;

	if (body != NULL && len > 0 &&
	    (root = json_loadb(body, len, 0, NULL)) != NULL) {
		jcode = json_object_get(root, "code");
		if (json_is_integer(jcode))
			code = (long)json_integer_value(jcode);
		json_decref(root);
	}
	if (http_status == 401 || code_rejects_user(code))
		return kl_fail(err, KL_KAKAO_REJECTED, "kakao %ld code %ld",
		    http_status, code);
	if (http_status == 429 || http_status >= 500 || code_unavailable(code))
		return kl_fail(err, KL_KAKAO_UNAVAILABLE, "kakao %ld code %ld",
		    http_status, code);
	return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "kakao %ld code %ld",
	    http_status, code);
}

/* Copies a UTF-8 string, cut at a character boundary to fit. */
static void
copy_utf8(char *dst, size_t size, const char *src)
{
	size_t	len = strlen(src);

	if (len >= size) {
		len = size - 1;
		while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* A string member of obj, or NULL when absent or not a string. */
static const char *
member_string(json_t *obj, const char *name)
{
	json_t	*v = json_object_get(obj, name);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool
member_true(json_t *obj, const char *name)
{
	return json_is_true(json_object_get(obj, name));
}

/* The positive 64-bit integer Kakao uses for ids, or -1. */
static int
member_id(json_t *obj, const char *name, int64_t *out)
{
	json_t	*v = json_object_get(obj, name);

	if (!json_is_integer(v) || json_integer_value(v) <= 0)
		return -1;
	*out = (int64_t)json_integer_value(v);
	return 0;
}

/* An absolute http or https URL with a host and no blank or control
 * byte: what an <img src> may safely get. javascript:, data: and the
 * like would run or render in a front end that trusts the field. */
static bool
is_web_url(const char *s)
{
	const char	*host, *p;

	if (strncasecmp(s, "https://", 8) == 0)
		host = s + 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		host = s + 7;
	else
		return false;
	if (*host == '\0' || *host == '/')
		return false;
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return false;
	return true;
}

int
kakao_profile_parse(const char *body, size_t len,
    struct kakao_profile *p, struct kl_error *err)
{
	json_t		*root, *account, *profile, *props;
	json_error_t	 jerr;
	const char	*s;

	memset(p, 0, sizeof(*p));
	if ((root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL)
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "profile is not "
		    "JSON: line %d: %s", jerr.line, jerr.text);
	if (!json_is_object(root) || member_id(root, "id", &p->id) == -1) {
		json_decref(root);
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "profile has no "
		    "usable id");
	}
	account = json_object_get(root, "kakao_account");
	profile = json_object_get(account, "profile");
	props = json_object_get(root, "properties");

	if ((s = member_string(profile, "nickname")) == NULL)
		s = member_string(props, "nickname");
	if (s != NULL && *s != '\0') {
		copy_utf8(p->nickname, sizeof(p->nickname), s);
		p->has_nickname = true;
	}
	if ((s = member_string(account, "email")) != NULL && *s != '\0' &&
	    strlen(s) < sizeof(p->email)) {
		memcpy(p->email, s, strlen(s) + 1);
		p->has_email = true;
		p->email_verified = member_true(account, "is_email_valid") &&
		    member_true(account, "is_email_verified");
	}
	if ((s = member_string(profile, "profile_image_url")) == NULL)
		s = member_string(props, "profile_image");
	if (s != NULL && is_web_url(s) &&
	    strlen(s) < sizeof(p->profile_image)) {
		memcpy(p->profile_image, s, strlen(s) + 1);
		p->has_profile_image = true;
	}
	json_decref(root);
	return 0;
}

int
kakao_token_info_parse(const char *body, size_t len,
    struct kakao_token_info *info, struct kl_error *err)
{
	json_t		*root, *v;
	json_error_t	 jerr;
	int		 rc = 0;

	memset(info, 0, sizeof(*info));
	if ((root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL)
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "token info is not "
		    "JSON: line %d: %s", jerr.line, jerr.text);
	if (!json_is_object(root) || member_id(root, "id", &info->id) == -1 ||
	    member_id(root, "app_id", &info->app_id) == -1)
		rc = kl_fail(err, KL_KAKAO_BAD_RESPONSE, "token info lacks a "
		    "usable id or app_id");
	else if (json_is_integer(v = json_object_get(root, "expires_in")))
		info->expires_in = (long)json_integer_value(v);
	json_decref(root);
	return rc;
}

/* Turns a finished transfer into 0 or a failure. */
static int
call_outcome(const struct kakao_call *c, const char *what,
    struct kl_error *err)
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
		return kakao_error_classify(c->http_status, c->body.data,
		    c->body.len, err);
	return 0;
}

/* Runs the added transfers to completion; each is bounded by its own
 * CURLOPT_TIMEOUT_MS, so this loop ends. */
static int
run_transfers(struct kakao_client *kc, struct kl_error *err)
{
	struct kakao_call	*c;
	CURLMsg			*msg;
	CURLMcode		 mc;
	int			 running = 0, left;

	do {
		mc = curl_multi_perform(kc->multi, &running);
		if (mc == CURLM_OK && running > 0)
			mc = curl_multi_poll(kc->multi, NULL, 0, 1000, NULL);
	} while (mc == CURLM_OK && running > 0);
	if (mc != CURLM_OK)
		return kl_fail(err, KL_INTERNAL, "curl multi: %s",
		    curl_multi_strerror(mc));
	while ((msg = curl_multi_info_read(kc->multi, &left)) != NULL) {
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

static int
call_start(struct kakao_client *kc, struct kakao_call *c, const char *token,
    struct kl_error *err)
{
	kl_buf_reset(&c->body);
	c->result = CURLE_GOT_NOTHING;	/* unless the transfer finishes */
	c->http_status = 0;
	if (curl_easy_setopt(c->easy, CURLOPT_XOAUTH2_BEARER, token) ||
	    curl_multi_add_handle(kc->multi, c->easy) != CURLM_OK)
		return kl_fail(err, KL_INTERNAL, "curl: cannot start transfer");
	return 0;
}

int
kakao_profile_fetch(struct kakao_client *kc, const char *token,
    struct kakao_profile *profile, long *upstream_us, struct kl_error *err)
{
	struct kakao_token_info	info;
	struct kl_error		info_err;
	struct timespec		t0;
	enum kl_status		remembered;
	bool			check_app = kc->app_id != 0;
	size_t			len = strlen(token);
	int			rc = -1, info_rc = 0;

	if (upstream_us != NULL)
		*upstream_us = 0;
	/* Neither costs a Kakao call. */
	if (kakao_reject_check(kc->reject, token, len, &remembered))
		return kl_fail(err, remembered, "Kakao refused this token "
		    "lately (remembered)");
	if (kakao_gate_enter(kc->gate, err) == -1)
		return -1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (call_start(kc, &kc->profile, token, err) == -1)
		goto done;
	if (check_app && call_start(kc, &kc->info, token, err) == -1)
		goto done;
	if (run_transfers(kc, err) == -1)
		goto done;

	if (check_app) {
		info_rc = call_outcome(&kc->info, "token info", &info_err);
		if (info_rc == 0)
			info_rc = kakao_token_info_parse(kc->info.body.data,
			    kc->info.body.len, &info, &info_err);
		/* Another app's token is refused whatever the profile says. */
		if (info_rc == 0 && info.app_id != kc->app_id) {
			kl_fail(err, KL_WRONG_APP, "token of app %lld",
			    (long long)info.app_id);
			goto done;
		}
	}
	if (call_outcome(&kc->profile, "profile", err) == -1 ||
	    kakao_profile_parse(kc->profile.body.data, kc->profile.body.len,
	    profile, err) == -1)
		goto done;
	if (check_app) {
		if (info_rc == -1) {
			*err = info_err;
			goto done;
		}
		if (info.id != profile->id) {
			kl_fail(err, KL_KAKAO_BAD_RESPONSE, "token info id "
			    "differs from profile id");
			goto done;
		}
	}
	rc = 0;
done:
	curl_multi_remove_handle(kc->multi, kc->profile.easy);
	if (check_app)
		curl_multi_remove_handle(kc->multi, kc->info.easy);
	/* The token must not linger in the handles between requests. */
	curl_easy_setopt(kc->profile.easy, CURLOPT_XOAUTH2_BEARER, NULL);
	curl_easy_setopt(kc->info.easy, CURLOPT_XOAUTH2_BEARER, NULL);
	/* One large answer must not keep its buffer for the thread's
	 * lifetime. */
	kl_buf_shrink(&kc->profile.body, KAKAO_BUF_KEEP);
	kl_buf_shrink(&kc->info.body, KAKAO_BUF_KEEP);
	kakao_gate_leave(kc->gate);
	if (rc == -1 && err != NULL && (err->status == KL_KAKAO_REJECTED ||
	    err->status == KL_WRONG_APP))
		kakao_reject_remember(kc->reject, token, len, err->status);
	if (upstream_us != NULL)
		*upstream_us = kl_elapsed_us(&t0);
	return rc;
}
