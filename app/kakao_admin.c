/*
 * kakao_admin.c: the Kakao client's admin calls: unlinking a user from our
 * app (POST /v1/user/unlink on kapi with the admin key and target_id), and
 * the parsing of its answer (see kakao.h).
 *
 * Owns the admin easy handle of each struct kakao_client (set up here only
 * when an admin key is configured, freed by kakao.c with the others). The
 * admin key stays main's: it is read, never copied, but for the one
 * Authorization header built for each call, which is wiped with curl's
 * list copy of it as soon as the call ends (the request curl assembles
 * from it inside the handle is curl's, beyond our reach); no failure
 * detail and no log line holds it. Knows nothing of the store or the front: it is given a Kakao
 * user id and says what Kakao answered. A client's handle belongs to its
 * thread; the gate it enters is shared and thread-safe.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "kakao.h"
#include "kakao_gate.h"
#include "kakao_http.h"

#define UNLINK_PATH	"/v1/user/unlink"
#define AUTH_PREFIX	"Authorization: KakaoAK "
#define FORM_CT		"Content-Type: application/x-www-form-urlencoded;" \
			    "charset=utf-8"
/* "target_id_type=user_id&target_id=" and 19 digits, with room. */
#define UNLINK_FORM_MAX	64

/* Kakao's codes for "this user is not linked to the app". */
#define CODE_NOT_LINKED	(-101)

/* ---- the answer ---- */

int
kakao_unlink_answer_parse(const char *body, size_t len, int64_t want_id,
    struct kl_error *err)
{
	json_t		*root, *v;
	json_error_t	 jerr;
	int		 rc = -1;

	if (body == NULL || len == 0)
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "unlink answer is "
		    "empty");
	/* Only the position: Jansson's text quotes the input. */
	if ((root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL)
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "unlink answer is "
		    "not JSON (line %d, column %d)", jerr.line, jerr.column);
	v = json_object_get(root, "id");
	if (!json_is_object(root))
		kl_fail(err, KL_KAKAO_BAD_RESPONSE, "unlink answer is not an "
		    "object");
	else if (!json_is_integer(v) || json_integer_value(v) <= 0)
		kl_fail(err, KL_KAKAO_BAD_RESPONSE, "unlink answer has no "
		    "usable id");
	else if ((int64_t)json_integer_value(v) != want_id)
		kl_fail(err, KL_KAKAO_BAD_RESPONSE, "unlink answer names "
		    "another user");
	else
		rc = 0;
	json_decref(root);
	return rc;
}

/* Kakao's "code" in an error answer, 0 when it has none. */
static long
answer_code(const char *body, size_t len)
{
	json_t	*root, *v;
	long	 code = 0;

	if (body == NULL || len == 0 ||
	    (root = json_loadb(body, len, 0, NULL)) == NULL)
		return 0;
	if (json_is_object(root) &&
	    json_is_integer(v = json_object_get(root, "code")))
		code = (long)json_integer_value(v);
	json_decref(root);
	return code;
}

/* A non-200 answer to an admin call; always -1. -101 never gets here. */
static int
admin_error_classify(long http_status, const char *body, size_t len,
    struct kl_error *err)
{
	long		code = answer_code(body, len);
	enum kl_status	st;

	/* -401: the admin key; -3, -5: the API off or not allowed. */
	if (http_status == 401 || code == -401 || code == -3 || code == -5)
		st = KL_KAKAO_CONFIG;
	else if (http_status == 429 || http_status >= 500 || code == -1 ||
	    code == -7 || code == -9798 || code == -10 || code == -603)
		st = KL_KAKAO_UNAVAILABLE;
	else
		st = KL_KAKAO_BAD_RESPONSE;
	return kl_fail(err, st, "unlink: kakao %ld code %ld", http_status,
	    code);
}

/* ---- set-up ---- */

/* MIN_ADMIN_KEY to MAX_ADMIN_KEY bytes of printable ASCII, no blank: a
 * key that cannot split or end the header it goes into. */
static bool
admin_key_ok(const char *key, size_t len)
{
	size_t	i;

	if (len < MIN_ADMIN_KEY || len > MAX_ADMIN_KEY)
		return false;
	for (i = 0; i < len; i++)
		if (key[i] <= ' ' || key[i] > '~')
			return false;
	return true;
}

int
kakao_admin_client_init(struct kakao_client *kc,
    const struct kakao_options *opt, struct kl_error *err)
{
	struct kakao_admin_conf	*conf = &kc->admin_conf;

	if (opt->admin_key == NULL)
		return 0;
	if (!admin_key_ok(opt->admin_key, opt->admin_key_len))
		return kl_fail(err, KL_BAD_CONFIG, "admin key: %d to %d "
		    "printable bytes without blanks", MIN_ADMIN_KEY,
		    MAX_ADMIN_KEY);
	if (kakao_call_init(&kc->admin, opt, opt->api_url, "kakao_api_url",
	    UNLINK_PATH, err) == -1)
		return -1;
	if (curl_easy_setopt(kc->admin.easy, CURLOPT_POST, 1L))
		return kl_fail(err, KL_INTERNAL, "curl_easy_setopt failed");
	conf->key = opt->admin_key;
	conf->key_len = opt->admin_key_len;
	conf->on = true;
	return 0;
}

/* ---- the call ---- */

/* The header list of one admin call: the key's header first. The caller
 * gives it to headers_wipe(). NULL when out of memory. */
static struct curl_slist *
headers_new(const struct kakao_admin_conf *conf)
{
	char			 line[sizeof(AUTH_PREFIX) + MAX_ADMIN_KEY];
	struct curl_slist	*h, *h2;
	size_t			 n = sizeof(AUTH_PREFIX) - 1;

	memcpy(line, AUTH_PREFIX, n);
	memcpy(line + n, conf->key, conf->key_len);
	line[n + conf->key_len] = '\0';
	h = curl_slist_append(NULL, line);
	explicit_bzero(line, sizeof(line));
	if (h == NULL)
		return NULL;
	/* "Expect:" off, as for the code exchange. */
	if ((h2 = curl_slist_append(h, FORM_CT)) == NULL ||
	    (h2 = curl_slist_append(h2, "Expect:")) == NULL) {
		explicit_bzero(h->data, strlen(h->data));
		curl_slist_free_all(h);
		return NULL;
	}
	return h2;
}

/* Wipes curl's copy of the key's header, then frees the list. */
static void
headers_wipe(struct curl_slist *h)
{
	struct curl_slist	*p;

	for (p = h; p != NULL; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(h);
}

/* Kakao's "not linked": a clean non-200 answer with code -101. */
static bool
answer_not_linked(const struct kakao_call *c)
{
	return c->result == CURLE_OK && c->http_status != 200 &&
	    answer_code(c->body.data, c->body.len) == CODE_NOT_LINKED;
}

/* One unlink on the admin handle, the gate's slot held by the caller. */
static int
unlink_run(struct kakao_client *kc, int64_t target_id, bool *already,
    struct kl_error *err)
{
	struct kakao_call	*c = &kc->admin;
	struct curl_slist	*h;
	char			 form[UNLINK_FORM_MAX];
	int			 n, rc = -1;

	n = snprintf(form, sizeof(form), "target_id_type=user_id&target_id="
	    "%" PRId64, target_id);
	if (n < 0 || (size_t)n >= sizeof(form))
		return kl_fail(err, KL_INTERNAL, "unlink: form too long");
	if ((h = headers_new(&kc->admin_conf)) == NULL)
		return kl_fail(err, KL_INTERNAL, "out of memory");
	kakao_call_reset(c);
	if (curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, h) ||
	    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, form) ||
	    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)n) ||
	    curl_multi_add_handle(kc->multi, c->easy) != CURLM_OK) {
		kl_fail(err, KL_INTERNAL, "curl: cannot start transfer");
		goto done;
	}
	if (kakao_call_run(kc->multi, err) == 0) {
		kakao_call_count(c, METRICS_KAKAO_UNLINK);
		if (answer_not_linked(c)) {
			*already = true;
			rc = 0;
		} else if (kakao_call_outcome(c, "unlink",
		    admin_error_classify, err) == 0 &&
		    kakao_unlink_answer_parse(c->body.data, c->body.len,
		    target_id, err) == 0)
			rc = 0;
	}
	curl_multi_remove_handle(kc->multi, c->easy);
done:
	/* The list and the form are about to go: the handle must not
	 * point at them. */
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	headers_wipe(h);
	kakao_call_wipe(c);
	return rc;
}

int
kakao_user_unlink(struct kakao_client *kc, int64_t target_id, bool *already,
    struct kl_error *err)
{
	int	rc;

	*already = false;
	if (!kc->admin_conf.on)
		return kl_fail(err, KL_NOT_CONFIGURED, "unlink: no admin key "
		    "(kakao_admin_key_file)");
	if (target_id <= 0)
		return kl_fail(err, KL_BAD_REQUEST, "unlink: target id %"
		    PRId64 " not positive", target_id);
	if (kakao_gate_enter(kc->gate, err) == -1) {
		metrics_kakao(METRICS_KAKAO_UNLINK, METRICS_KAKAO_BUSY, -1);
		return -1;
	}
	rc = unlink_run(kc, target_id, already, err);
	kakao_gate_leave(kc->gate);
	return rc;
}
