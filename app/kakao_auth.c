/*
 * kakao_auth.c: the kauth side of the Kakao client: the authorization-code
 * exchange at /oauth/token, the JWKS fetch, and the parsing of kauth's
 * answers (see kakao_auth.h).
 *
 * Owns the kauth easy handle of each struct kakao_client (set up here,
 * freed by kakao.c with the others) and the JWKS fetcher's handle. Must
 * not keep what it handles: the form it sends (code, verifier, client
 * secret) and the answer it reads (access, refresh and id tokens) are
 * wiped from its buffers after each call, and no failure detail holds any
 * of them nor Kakao's error_description, which echoes the code. Kakao's
 * refresh_token is read past and never kept: no route of ours uses it
 * (account deletion goes through the admin key). A client's handle belongs
 * to its thread; the JWKS fetcher's calls are serialized by its caller.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "kakao_auth.h"
#include "kakao_gate.h"
#include "kakao_http.h"
#include "kl_buf.h"
#include "kl_clock.h"

#define TOKEN_PATH	"/oauth/token"
#define JWKS_PATH	"/.well-known/jwks.json"

/* Room for the whole form at its limits, every byte escaped to %XX: the
 * buffer is sized once, so it never reallocates and leaves a copy of the
 * secret behind in freed memory. */
#define FORM_NAMES	128	/* the field names, '=' and '&' */
#define FORM_MAX	(FORM_NAMES + 3 * (MAX_APP_KEY + MAX_URL_LEN + \
			    MAX_CODE + MAX_CLIENT_SECRET + MAX_CODE_VERIFIER))

struct kakao_jwks_fetcher {
	struct kakao_call	call;
};

/* ---- answers ---- */

static bool
is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* RFC 7235 token68: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" )
 * *"=". A quote, blank or control byte never reaches a header or a log. */
static bool
is_token68(const char *s, size_t len)
{
	size_t	i = 0;

	while (i < len && (is_alnum(s[i]) || (s[i] != '\0' &&
	    strchr("-._~+/", s[i]) != NULL)))
		i++;
	if (i == 0)
		return false;
	while (i < len && s[i] == '=')
		i++;
	return i == len;
}

/* A compact JWS: base64url characters and dots only (the token layer
 * checks the rest). */
static bool
is_jws_chars(const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' &&
		    s[i] != '.')
			return false;
	return len > 0;
}

/* Jansson's error text quotes the input ("near '...'"), which here is a
 * token: only the position goes into the detail. */
static json_t *
load_answer(const char *body, size_t len, const char *what,
    struct kl_error *err)
{
	json_t		*root;
	json_error_t	 jerr;

	if (body == NULL || len == 0) {
		kl_fail(err, KL_KAKAO_BAD_RESPONSE, "%s is empty", what);
		return NULL;
	}
	if ((root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		kl_fail(err, KL_KAKAO_BAD_RESPONSE, "%s is not JSON (line %d, "
		    "column %d)", what, jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		kl_fail(err, KL_KAKAO_BAD_RESPONSE, "%s is not an object",
		    what);
		return NULL;
	}
	return root;
}

static int
answer_access_token(json_t *root, struct kakao_code_result *out,
    struct kl_error *err)
{
	json_t	*v = json_object_get(root, "access_token");
	size_t	 len;

	if (!json_is_string(v))
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "token answer "
		    "has no access_token string");
	len = json_string_length(v);
	if (len > MAX_KAKAO_TOKEN)
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "token answer: "
		    "access_token over %d chars", MAX_KAKAO_TOKEN);
	if (!is_token68(json_string_value(v), len))
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "token answer: "
		    "access_token is not a token68");
	memcpy(out->access_token, json_string_value(v), len);
	out->access_token[len] = '\0';
	return 0;
}

static int
answer_id_token(json_t *root, struct kakao_code_result *out,
    struct kl_error *err)
{
	json_t	*v = json_object_get(root, "id_token");
	size_t	 len;

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "token answer: "
		    "id_token is not a string");
	len = json_string_length(v);
	if (len > MAX_ID_TOKEN)
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "token answer: "
		    "id_token over %d chars", MAX_ID_TOKEN);
	if (!is_jws_chars(json_string_value(v), len))
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "token answer: "
		    "id_token is not a compact JWS");
	if ((out->id_token = strndup(json_string_value(v), len)) == NULL)
		return kl_fail(err, KL_INTERNAL, "out of memory");
	return 0;
}

static int
answer_rest(json_t *root, struct kakao_code_result *out,
    struct kl_error *err)
{
	json_t		*v = json_object_get(root, "token_type");
	json_int_t	 n;

	if (!json_is_string(v) || json_string_length(v) != 6 ||
	    strcasecmp(json_string_value(v), "bearer") != 0)
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "token answer: "
		    "token_type is not bearer");
	if ((v = json_object_get(root, "expires_in")) == NULL)
		return 0;
	if (!json_is_integer(v) || (n = json_integer_value(v)) < 0)
		return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "token answer: "
		    "expires_in is not a count of seconds");
	out->expires_in = (long)n;
	return 0;
}

int
kakao_token_answer_parse(const char *body, size_t len,
    struct kakao_code_result *out, struct kl_error *err)
{
	json_t	*root;
	int	 rc;

	memset(out, 0, sizeof(*out));
	if ((root = load_answer(body, len, "token answer", err)) == NULL)
		return -1;
	/* refresh_token and refresh_token_expires_in are never read. */
	rc = answer_access_token(root, out, err) == 0 &&
	    answer_rest(root, out, err) == 0 &&
	    answer_id_token(root, out, err) == 0 ? 0 : -1;
	json_decref(root);
	if (rc == -1)
		kakao_code_result_wipe(out);
	return rc;
}

void
kakao_code_result_wipe(struct kakao_code_result *r)
{
	if (r == NULL)
		return;
	if (r->id_token != NULL) {
		explicit_bzero(r->id_token, strlen(r->id_token));
		free(r->id_token);
	}
	explicit_bzero(r, sizeof(*r));
	r->id_token = NULL;
}

/* ---- errors ---- */

/* "KOE" and 1 to 4 digits: safe to log. */
static bool
is_koe(const char *s)
{
	size_t	n;

	if (s == NULL || strncmp(s, "KOE", 3) != 0)
		return false;
	n = strspn(s + 3, "0123456789");
	return n >= 1 && n <= 4 && s[3 + n] == '\0';
}

/* The OAuth error names we log; anything else is logged as "other". */
static const char *
error_name(const char *s)
{
	static const char *known[] = {
		"invalid_request", "invalid_client", "invalid_grant",
		"unauthorized_client", "unsupported_grant_type",
		"invalid_scope", "access_denied", "server_error",
		"temporarily_unavailable", "misconfigured",
	};
	size_t	i;

	if (s == NULL)
		return "none";
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(s, known[i]) == 0)
			return known[i];
	return "other";
}

/* What a KOE code or an OAuth error says, KL_OK when neither says. */
static enum kl_status
auth_error_status(long http_status, const char *koe, const char *error)
{
	static const char *config[] = { "KOE303", "KOE006", "KOE010",
	    "KOE101" };
	size_t	i;

	if (koe != NULL && strcmp(koe, "KOE320") == 0)
		return KL_INVALID_CODE;
	for (i = 0; koe != NULL && i < sizeof(config) / sizeof(config[0]); i++)
		if (strcmp(koe, config[i]) == 0)
			return KL_KAKAO_CONFIG;
	if (error != NULL && strcmp(error, "invalid_grant") == 0)
		return KL_INVALID_CODE;
	if (error != NULL && (strcmp(error, "invalid_client") == 0 ||
	    strcmp(error, "unauthorized_client") == 0))
		return KL_KAKAO_CONFIG;
	if (koe != NULL && (http_status == 400 || http_status == 401))
		return KL_KAKAO_CONFIG;
	return KL_OK;
}

int
kakao_auth_error_classify(long http_status, const char *body, size_t len,
    struct kl_error *err)
{
	json_t		*root = NULL;
	const char	*koe = NULL, *error = NULL;
	enum kl_status	 st;
	int		 rc;

	if (body != NULL && len > 0 &&
	    (root = json_loadb(body, len, 0, NULL)) != NULL &&
	    json_is_object(root)) {
		koe = json_string_value(json_object_get(root, "error_code"));
		error = json_string_value(json_object_get(root, "error"));
		if (!is_koe(koe))
			koe = NULL;
		/* error_description is never read: it echoes the code. */
	}
	if (http_status == 429 || http_status >= 500)
		st = KL_KAKAO_UNAVAILABLE;
	else if ((st = auth_error_status(http_status, koe, error)) == KL_OK)
		st = KL_KAKAO_BAD_RESPONSE;
	rc = kl_fail(err, st, "kauth %ld %s %s", http_status,
	    koe != NULL ? koe : "no-KOE", error_name(error));
	json_decref(root);
	return rc;
}

/* A JWKS answer other than 200: Kakao busy or failing, or nonsense. */
static int
jwks_error_classify(long http_status, const char *body, size_t len,
    struct kl_error *err)
{
	(void)body; (void)len;
	if (http_status == 429 || http_status >= 500)
		return kl_fail(err, KL_KAKAO_UNAVAILABLE, "jwks: kauth %ld",
		    http_status);
	return kl_fail(err, KL_KAKAO_BAD_RESPONSE, "jwks: kauth %ld",
	    http_status);
}

/* ---- the code exchange ---- */

int
kakao_auth_client_init(struct kakao_client *kc,
    const struct kakao_options *opt, struct kl_error *err)
{
	struct kakao_auth_conf	*conf = &kc->auth_conf;
	struct curl_slist	*h = NULL, *h2;
	size_t			 keylen;

	if (opt->auth_url == NULL || opt->auth_url[0] == '\0' ||
	    opt->rest_api_key == NULL || opt->rest_api_key[0] == '\0')
		return 0;
	if ((keylen = strlen(opt->rest_api_key)) > MAX_APP_KEY)
		return kl_fail(err, KL_BAD_CONFIG, "kakao_rest_api_key over "
		    "%d bytes", MAX_APP_KEY);
	if (opt->client_secret != NULL &&
	    opt->client_secret_len > MAX_CLIENT_SECRET)
		return kl_fail(err, KL_BAD_CONFIG, "client secret over %d "
		    "bytes", MAX_CLIENT_SECRET);
	memcpy(conf->rest_api_key, opt->rest_api_key, keylen + 1);
	conf->client_secret = opt->client_secret;
	conf->client_secret_len = opt->client_secret_len;
	if (kakao_call_init(&kc->auth, opt, opt->auth_url, "kakao_auth_url",
	    TOKEN_PATH, err) == -1)
		return -1;
	/* "Expect:" off: curl would wait for a 100 before a large form. */
	if ((h = curl_slist_append(NULL, "Content-Type: "
	    "application/x-www-form-urlencoded;charset=utf-8")) == NULL ||
	    (h2 = curl_slist_append(h, "Expect:")) == NULL) {
		curl_slist_free_all(h);
		return kl_fail(err, KL_INTERNAL, "out of memory");
	}
	kc->auth.headers = h2;
	if (curl_easy_setopt(kc->auth.easy, CURLOPT_HTTPHEADER, h2) ||
	    curl_easy_setopt(kc->auth.easy, CURLOPT_POST, 1L))
		return kl_fail(err, KL_INTERNAL, "curl_easy_setopt failed");
	conf->on = true;
	return 0;
}

/* Grows b to hold n bytes without another allocation, by appending
 * zeros: what a reallocation leaves behind in freed memory is zeros. */
static void
form_reserve(struct kl_buf *b, size_t n)
{
	static const char	zeros[1024];
	size_t			k;

	while (!kl_buf_bad(b) && b->len < n) {
		k = n - b->len < sizeof(zeros) ? n - b->len : sizeof(zeros);
		kl_buf_put(b, zeros, k);
	}
	kl_buf_reset(b);
}

/* Appends "&name=<escaped value>"; the escaped copy is wiped. */
static int
form_put(struct kl_buf *b, CURL *easy, const char *name, const char *value,
    size_t len)
{
	char	*esc = NULL;
	int	 rc;

	/* curl_easy_escape takes a length of 0 for "use strlen". */
	if (len > 0 && (esc = curl_easy_escape(easy, value, (int)len)) == NULL)
		return -1;
	rc = (b->len > 0 ? kl_buf_puts(b, "&") : 0) | kl_buf_puts(b, name) |
	    kl_buf_puts(b, "=") | (esc != NULL ? kl_buf_puts(b, esc) : 0);
	if (esc != NULL) {
		explicit_bzero(esc, strlen(esc));
		curl_free(esc);
	}
	return rc;
}

static int
form_build(struct kakao_client *kc, const struct kakao_code_request *rq,
    struct kl_buf *form, struct kl_error *err)
{
	const struct kakao_auth_conf	*conf = &kc->auth_conf;
	CURL				*easy = kc->auth.easy;
	int				 rc;

	form->limit = FORM_MAX;
	form_reserve(form, FORM_MAX);
	rc = form_put(form, easy, "grant_type", "authorization_code", 18) |
	    form_put(form, easy, "client_id", conf->rest_api_key,
	    strlen(conf->rest_api_key)) |
	    form_put(form, easy, "redirect_uri", rq->redirect_uri,
	    strlen(rq->redirect_uri)) |
	    form_put(form, easy, "code", rq->code, strlen(rq->code));
	if (conf->client_secret != NULL)
		rc |= form_put(form, easy, "client_secret",
		    conf->client_secret, conf->client_secret_len);
	if (rq->code_verifier != NULL)
		rc |= form_put(form, easy, "code_verifier", rq->code_verifier,
		    strlen(rq->code_verifier));
	if (rc != 0 || kl_buf_bad(form))
		return kl_fail(err, KL_INTERNAL, "code exchange: cannot "
		    "build the form");
	return 0;
}

/* What the caller should have checked already, checked again: the form's
 * room is computed from these limits. */
static int
request_check(const struct kakao_code_request *rq, struct kl_error *err)
{
	size_t	n;

	if (rq->code == NULL || (n = strlen(rq->code)) == 0 || n > MAX_CODE)
		return kl_fail(err, KL_INVALID_CODE, "code empty or over %d "
		    "bytes", MAX_CODE);
	if (rq->redirect_uri == NULL || (n = strlen(rq->redirect_uri)) == 0 ||
	    n > MAX_URL_LEN)
		return kl_fail(err, KL_BAD_REQUEST, "redirect_uri empty or "
		    "over %d bytes", MAX_URL_LEN);
	if (rq->code_verifier != NULL &&
	    ((n = strlen(rq->code_verifier)) < MIN_CODE_VERIFIER ||
	    n > MAX_CODE_VERIFIER))
		return kl_fail(err, KL_BAD_REQUEST, "code_verifier of %zu "
		    "bytes, not %d to %d", n, MIN_CODE_VERIFIER,
		    MAX_CODE_VERIFIER);
	return 0;
}

/* One exchange on the kauth handle, the gate's slot held by the caller. */
static int
exchange_run(struct kakao_client *kc, const struct kl_buf *form,
    struct kakao_code_result *out, struct kl_error *err)
{
	struct kakao_call	*c = &kc->auth;
	int			 rc = -1;

	kakao_call_reset(c);
	/* An answer under KAKAO_BUF_KEEP then never reallocates either. */
	form_reserve(&c->body, KAKAO_BUF_KEEP - 1);
	if (curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, form->data) ||
	    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)form->len) ||
	    curl_multi_add_handle(kc->multi, c->easy) != CURLM_OK) {
		kl_fail(err, KL_INTERNAL, "curl: cannot start transfer");
		goto done;
	}
	if (kakao_call_run(kc->multi, err) == -1)
		goto remove;
	kakao_call_count(c, METRICS_KAKAO_OAUTH_TOKEN);
	if (kakao_call_outcome(c, "code exchange", kakao_auth_error_classify,
	    err) == 0 &&
	    kakao_token_answer_parse(c->body.data, c->body.len, out, err) == 0)
		rc = 0;
remove:
	curl_multi_remove_handle(kc->multi, c->easy);
done:
	/* The form is about to be wiped: the handle must not point at it. */
	curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	kakao_call_wipe(c);
	return rc;
}

int
kakao_code_exchange(struct kakao_client *kc,
    const struct kakao_code_request *rq, struct kakao_code_result *out,
    long *upstream_us, struct kl_error *err)
{
	struct kl_buf	form = { 0 };
	struct timespec	t0;
	int		rc = -1;

	memset(out, 0, sizeof(*out));
	if (upstream_us != NULL)
		*upstream_us = 0;
	if (!kc->auth_conf.on)
		return kl_fail(err, KL_NOT_CONFIGURED, "code flow not "
		    "configured (kakao_auth_url, kakao_rest_api_key)");
	if (request_check(rq, err) == -1 || form_build(kc, rq, &form,
	    err) == -1)
		goto done;
	if (kakao_gate_enter(kc->gate, err) == -1) {
		metrics_kakao(METRICS_KAKAO_OAUTH_TOKEN, METRICS_KAKAO_BUSY,
		    -1);
		goto done;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = exchange_run(kc, &form, out, err);
	kakao_gate_leave(kc->gate);
	if (upstream_us != NULL)
		*upstream_us = kl_elapsed_us(&t0);
done:
	kl_buf_free(&form, true);
	return rc;
}

/* ---- the JWKS fetch ---- */

struct kakao_jwks_fetcher *
kakao_jwks_fetcher_new(const struct kakao_options *opt, struct kl_error *err)
{
	struct kakao_jwks_fetcher	*f;

	if (opt->auth_url == NULL || opt->auth_url[0] == '\0') {
		kl_fail(err, KL_BAD_CONFIG, "jwks: kakao_auth_url not set");
		return NULL;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		kl_fail(err, KL_INTERNAL, "out of memory");
		return NULL;
	}
	if (kakao_call_init(&f->call, opt, opt->auth_url, "kakao_auth_url",
	    JWKS_PATH, err) == -1) {
		kakao_jwks_fetcher_free(f);
		return NULL;
	}
	return f;
}

void
kakao_jwks_fetcher_free(struct kakao_jwks_fetcher *f)
{
	if (f == NULL)
		return;
	kakao_call_free(&f->call);
	free(f);
}

int
kakao_jwks_fetch(void *fetcher, char **body, size_t *len,
    struct kl_error *err)
{
	struct kakao_jwks_fetcher	*f = fetcher;
	struct kakao_call		*c;
	int				 rc = -1;

	*body = NULL;
	*len = 0;
	if (f == NULL)
		return kl_fail(err, KL_NOT_CONFIGURED, "jwks: no fetcher");
	c = &f->call;
	kakao_call_reset(c);
	kakao_call_perform(c);
	kakao_call_count(c, METRICS_KAKAO_JWKS);
	if (kakao_call_outcome(c, "jwks", jwks_error_classify, err) == 0) {
		*len = c->body.len;
		if ((*body = kl_buf_take(&c->body)) == NULL) {
			*len = 0;
			kl_fail(err, KL_INTERNAL, "jwks: out of memory");
		} else
			rc = 0;
	}
	kl_buf_shrink(&c->body, KAKAO_BUF_KEEP);
	return rc;
}
