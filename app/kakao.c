/*
 * kakao.c: the kapi side of the Kakao client (profile, token info), the
 * per-thread client itself, and the parsing of kapi's JSON.
 *
 * Owns one curl multi handle and two kapi easy handles per worker thread
 * (profile and token info), reused for every request so connections stay
 * alive; the kauth handle beside them is kakao_auth.c's, the admin handle
 * (unlink with the admin key) kakao_admin.c's, the curl plumbing
 * and the process-wide share handle (DNS, TLS sessions) kakao_http.c's. A
 * client belongs to one thread. Before a call it asks the reject cache
 * (kakao_reject.c) and takes a slot of the gate (kakao_gate.c); both are
 * shared by the process's clients. Never sees
 * the front's HTTP request: it gets a token and returns a profile or a
 * failure status. Every transfer is bounded by the configured time-outs and
 * by MAX_KAKAO_BODY; only the scheme of the configured URL is allowed, and
 * TLS peers are verified.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "kakao.h"
#include "kakao_gate.h"
#include "kakao_http.h"
#include "kakao_reject.h"
#include "kl_clock.h"
#include "kl_text.h"

int
kakao_global_init(struct kl_error *err)
{
	return kakao_http_global_init(err);
}

void
kakao_global_cleanup(void)
{
	kakao_http_global_cleanup();
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
	if (kakao_call_init(&kc->profile, opt, opt->api_url, "kakao_api_url",
	    "/v2/user/me", err) == -1 ||
	    kakao_call_init(&kc->info, opt, opt->api_url, "kakao_api_url",
	    "/v1/user/access_token_info", err) == -1)
		goto fail;
	if (curl_easy_setopt(kc->profile.easy, CURLOPT_HTTPAUTH,
	    CURLAUTH_BEARER) ||
	    curl_easy_setopt(kc->info.easy, CURLOPT_HTTPAUTH, CURLAUTH_BEARER)) {
		kl_fail(err, KL_INTERNAL, "curl_easy_setopt failed");
		goto fail;
	}
	if (kakao_auth_client_init(kc, opt, err) == -1 ||
	    kakao_admin_client_init(kc, opt, err) == -1)
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
	kakao_call_free(&kc->profile);
	kakao_call_free(&kc->info);
	kakao_call_free(&kc->auth);
	kakao_call_free(&kc->admin);
	explicit_bzero(&kc->auth_conf, sizeof(kc->auth_conf));
	explicit_bzero(&kc->admin_conf, sizeof(kc->admin_conf));
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
		kl_copy_utf8(p->nickname, sizeof(p->nickname), s);
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
	if (s != NULL && kl_is_web_url(s) &&
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

static int
call_start(struct kakao_client *kc, struct kakao_call *c, const char *token,
    struct kl_error *err)
{
	kakao_call_reset(c);
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
	if (kakao_gate_enter(kc->gate, err) == -1) {
		metrics_kakao(METRICS_KAKAO_USER_ME, METRICS_KAKAO_BUSY, -1);
		if (check_app)
			metrics_kakao(METRICS_KAKAO_TOKEN_INFO,
			    METRICS_KAKAO_BUSY, -1);
		return -1;
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (call_start(kc, &kc->profile, token, err) == -1)
		goto done;
	if (check_app && call_start(kc, &kc->info, token, err) == -1)
		goto done;
	if (kakao_call_run(kc->multi, err) == -1)
		goto done;
	kakao_call_count(&kc->profile, METRICS_KAKAO_USER_ME);
	if (check_app)
		kakao_call_count(&kc->info, METRICS_KAKAO_TOKEN_INFO);

	if (check_app) {
		info_rc = kakao_call_outcome(&kc->info, "token info",
		    kakao_error_classify, &info_err);
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
	if (kakao_call_outcome(&kc->profile, "profile",
	    kakao_error_classify, err) == -1 ||
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

int
kakao_wait_begin(struct kakao_client *kc, struct kl_error *err)
{
	return kakao_gate_wait_begin(kc->gate, err);
}

void
kakao_wait_end(struct kakao_client *kc)
{
	kakao_gate_wait_end(kc->gate);
}
