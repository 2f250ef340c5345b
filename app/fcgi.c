/*
 * fcgi.c: FastCGI I/O and routing, on libfcgi.
 *
 * Owns the accept loop of each worker thread and the FCGX_Request in it:
 * turns the params into a struct http_request (http.h), reads the body
 * within the limits of kl_limits.h and of the route (route.c), calls the
 * route's handler, and writes its struct http_response, turning a failure
 * into its HTTP status and JSON message through the table in error.c.
 * Never talks to Kakao or the store; knows handlers only through the route
 * table. Each worker touches only its own struct fcgi_worker.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "body.h"
#include "fcgi.h"
#include "fcgi_conn.h"
#include "fcgi_guard.h"
#include "fcgi_reqid.h"
#include "http.h"
#include "http_cors.h"
#include "kl_clock.h"
#include "kl_error.h"
#include "kl_limits.h"
#include "log.h"
#include "metrics.h"
#include "route.h"

int
fcgi_init(int listen_fd)
{
	fcgi_guard_listen(listen_fd);
	if (fcgi_conn_init(listen_fd, -1) == -1)
		return -1;
	return FCGX_Init() == 0 ? 0 : -1;
}

void
fcgi_drain(long serve_kept_ms)
{
	fcgi_conn_drain(serve_kept_ms);
}

void
fcgi_close_kept(void)
{
	fcgi_conn_close_all();
}

int
fcgi_listen(const char *path, int backlog)
{
	mode_t	old;
	int	fd;

	if (unlink(path) == -1 && errno != ENOENT)
		return -1;
	old = umask(0117);
	fd = FCGX_OpenSocket(path, backlog);
	umask(old);
	return fd;
}

/* Counts the params named name: libfcgi's FCGX_GetParam only sees the
 * first, and a duplicated Authorization must be refused, not guessed. */
static int
param_count(FCGX_ParamArray envp, const char *name)
{
	size_t	len = strlen(name);
	int	n = 0;

	for (; envp != NULL && *envp != NULL; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			n++;
	return n;
}

/* The request path: REQUEST_URI up to '?', exactly as the client sent it,
 * so no front-server normalisation can make two paths reach one route. */
static void
request_path(FCGX_Request *fr, char *out, size_t size)
{
	const char	*uri;
	size_t		 len;

	if ((uri = FCGX_GetParam("REQUEST_URI", fr->envp)) == NULL &&
	    (uri = FCGX_GetParam("DOCUMENT_URI", fr->envp)) == NULL &&
	    (uri = FCGX_GetParam("SCRIPT_NAME", fr->envp)) == NULL)
		uri = "";
	len = strcspn(uri, "?");
	if (len >= size)
		len = size - 1;	/* too long for any route: stays unmatched */
	memcpy(out, uri, len);
	out[len] = '\0';
}

/* CONTENT_LENGTH: 1 to 18 decimal digits (no sign, no blanks), at most
 * max. Returns the length, or -1 with err filled. */
static long long
content_length(const char *cl, size_t max, struct kl_error *err)
{
	long long	want = 0;
	size_t		i;

	for (i = 0; cl[i] != '\0'; i++) {
		if (cl[i] < '0' || cl[i] > '9' || i >= 18)
			return kl_fail(err, KL_BAD_REQUEST, "bad CONTENT_LENGTH");
		want = want * 10 + (cl[i] - '0');
	}
	if (i == 0)
		return kl_fail(err, KL_BAD_REQUEST, "bad CONTENT_LENGTH");
	if (want > (long long)max)
		return kl_fail(err, KL_TOO_LARGE, "body of %lld bytes", want);
	return want;
}

/*
 * The buffer is reused by every request of this worker: it is cleared
 * first, so a request without a body never sees the previous one's.
 */
int
fcgi_read_body(FCGX_Stream *in, const char *cl, size_t max, char *buf,
    size_t *len, struct kl_error *err)
{
	long long	want;
	int		n;

	*len = 0;
	buf[0] = '\0';
	if (max > MAX_BODY)
		max = MAX_BODY;
	want = (long long)max + 1;
	if (cl != NULL && *cl != '\0' &&
	    (want = content_length(cl, max, err)) < 0)
		return -1;
	/* Read to the end of stdin, but never past the limit: a body longer
	 * than announced is as wrong as a shorter one. */
	n = FCGX_GetStr(buf, (int)max + 1, in);
	/* A failed read ends the stream early, as if the body were whole. */
	/* A refused body may still hold a code or a token: wiped, since
	 * the caller only wipes the bytes of a body it accepted. */
	if (n < 0 || FCGX_GetError(in) != 0) {
		explicit_bzero(buf, max + 1);
		return kl_fail(err, KL_BAD_REQUEST, "cannot read the body");
	}
	if ((size_t)n > max) {
		explicit_bzero(buf, (size_t)n);
		return kl_fail(err, KL_TOO_LARGE, "body over %zu bytes", max);
	}
	if (want <= (long long)max && n != want) {
		explicit_bzero(buf, (size_t)n);
		return kl_fail(err, KL_BAD_REQUEST, "body of %d bytes, "
		    "CONTENT_LENGTH %lld", n, want);
	}
	*len = (size_t)n;
	buf[n] = '\0';
	return 0;
}

/* Every answer names its request id (fcgi_reqid.c: plain bytes only). */
static void
write_answer(FCGX_Request *fr, const char *rid,
    const struct http_response *resp, const char *body, size_t len)
{
	/* 204: no body, so neither its type nor its length (RFC 9110). */
	if (resp->status == 204) {
		FCGX_FPrintF(fr->out, "Status: 204 %s\r\n"
		    "Cache-Control: no-store\r\n"
		    "X-Request-Id: %s\r\n", http_reason(204), rid);
		if (resp->headers.len > 0)
			FCGX_PutStr(resp->headers.data, (int)resp->headers.len,
			    fr->out);
		FCGX_PutStr("\r\n", 2, fr->out);
		return;
	}
	FCGX_FPrintF(fr->out,
	    "Status: %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %lu\r\n"
	    "Cache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "X-Request-Id: %s\r\n",
	    resp->status, http_reason(resp->status),
	    resp->content_type ? resp->content_type :
	    "application/json; charset=utf-8", (unsigned long)len, rid);
	if (resp->headers.len > 0)
		FCGX_PutStr(resp->headers.data, (int)resp->headers.len,
		    fr->out);
	FCGX_PutStr("\r\n", 2, fr->out);
	FCGX_PutStr(body, (int)len, fr->out);
}

/* A reason phrase goes into the JSON unescaped: lower-case letters and
 * spaces only, or it is left out. */
static bool
reason_ok(const char *r)
{
	return r != NULL && r[0] != '\0' && strlen(r) < 64 &&
	    strspn(r, "abcdefghijklmnopqrstuvwxyz ") == strlen(r);
}

/* The failure's answer: its status and message from error.c's table (and
 * the handler's reason phrase, if any), the header lines the handler
 * added, and Allow on a 405. */
static void
write_failure(FCGX_Request *fr, const char *rid, const struct route *rt,
    struct http_response *resp, const struct kl_error *err)
{
	struct kl_error	 herr;
	char		 msg[160], allow[64];
	int		 n;

	resp->status = error_http_status(err->status);
	resp->content_type = NULL;
	if (err->status == KL_METHOD_NOT_ALLOWED && rt != NULL) {
		http_method_list(rt->methods, allow, sizeof(allow));
		http_response_header(resp, "Allow", allow, &herr);
	}
	if (reason_ok(resp->reason))
		n = snprintf(msg, sizeof(msg), "{\"message\":\"%s\","
		    "\"reason\":\"%s\"}", error_message(err->status),
		    resp->reason);
	else
		n = snprintf(msg, sizeof(msg), "{\"message\":\"%s\"}",
		    error_message(err->status));
	write_answer(fr, rid, resp, msg, (size_t)n);
}

/* The request as the handlers see it. Strings point into fr's params and
 * path[], valid until FCGX_Finish_r. */
static void
request_fill(FCGX_Request *fr, struct fcgi_reqid *ids, struct http_request *req,
    char *path, size_t path_size, char *rid)
{
	const char	*uri, *q;

	memset(req, 0, sizeof(*req));
	request_path(fr, path, path_size);
	req->path = path;
	if ((req->method = FCGX_GetParam("REQUEST_METHOD", fr->envp)) == NULL)
		req->method = "";
	req->method_bit = http_method_bit(req->method);
	uri = FCGX_GetParam("REQUEST_URI", fr->envp);
	req->query = uri != NULL && (q = strchr(uri, '?')) != NULL ? q + 1 : "";
	req->content_type = FCGX_GetParam("CONTENT_TYPE", fr->envp);
	/* Counted only when present: most requests carry neither. */
	if ((req->cookie = FCGX_GetParam("HTTP_COOKIE", fr->envp)) != NULL)
		req->cookie_count = param_count(fr->envp, "HTTP_COOKIE");
	if ((req->origin = FCGX_GetParam("HTTP_ORIGIN", fr->envp)) != NULL)
		req->origin_count = param_count(fr->envp, "HTTP_ORIGIN");
	if ((req->client_addr = FCGX_GetParam("REMOTE_ADDR", fr->envp)) ==
	    NULL)
		req->client_addr = "";
	req->authorization = FCGX_GetParam("HTTP_AUTHORIZATION", fr->envp);
	req->authorization_count = param_count(fr->envp, "HTTP_AUTHORIZATION");
	req->request_id = fcgi_reqid_pick(ids,
	    FCGX_GetParam("HTTP_X_REQUEST_ID", fr->envp),
	    param_count(fr->envp, "HTTP_X_REQUEST_ID"), rid);
}

/* The fields a route reads: its body's, or its query's (ROUTE_BODY_PARAMS:
 * Kakao's unlink callback sends them either way). An empty optional body
 * is no field at all. */
static int
request_fields(const struct route *rt, struct http_request *req,
    struct body_fields *fields, struct kl_error *err)
{
	const char	*src = req->body, *type = req->content_type;
	size_t		 len = req->body_len;

	switch (rt->body) {
	case ROUTE_BODY_IGNORED:
		return 0;
	case ROUTE_BODY_FIELDS:
		break;
	case ROUTE_BODY_FIELDS_OPTIONAL:
		if (len == 0) {
			body_wipe(fields);
			req->fields = fields;
			return 0;
		}
		break;
	case ROUTE_BODY_PARAMS:
		if (req->method_bit == HTTP_GET || len == 0) {
			src = req->query;
			len = strlen(req->query);
			type = "application/x-www-form-urlencoded";
			if (len > rt->body_max)
				return kl_fail(err, KL_BAD_REQUEST, "query "
				    "over %zu bytes", rt->body_max);
		}
		break;
	}
	if (body_parse(type, len > 0 ? src : NULL, len, fields, err) == -1)
		return -1;
	req->fields = fields;
	return 0;
}

/* Route, method and body: what is refused before a handler runs. A
 * route that reads fields gets them parsed into fields. */
static int
request_admit(FCGX_Request *fr, const struct route *rt,
    struct http_request *req, char *body, struct body_fields *fields,
    struct kl_error *err)
{
	if (rt == NULL)
		return kl_fail(err, KL_NOT_FOUND, "no route");
	if ((rt->methods & req->method_bit) == 0)
		return kl_fail(err, KL_METHOD_NOT_ALLOWED, "method not allowed");
	if (fcgi_read_body(fr->in, FCGX_GetParam("CONTENT_LENGTH", fr->envp),
	    rt->body_max, body, &req->body_len, err) == -1)
		return -1;
	req->body = body;
	return request_fields(rt, req, fields, err);
}

static void
request_log(const struct http_request *req, const struct http_response *resp,
    int rc, const struct kl_error *err, long duration_us)
{
	struct log_request	lr;

	memset(&lr, 0, sizeof(lr));
	lr.request_id = req->request_id;
	lr.client = req->client_addr;
	lr.method = req->method;
	lr.path = req->path;
	lr.status = resp->status;
	lr.message = rc == 0 ? "SUCCESS" : error_message(err->status);
	lr.detail = rc == 0 ? "" : err->detail;
	lr.user_id = resp->user_id;
	lr.duration_us = duration_us;
	lr.upstream_us = resp->upstream_us;
	log_request(&lr);
}

/* A browser's preflight of a cross-origin request to a route, from an
 * allowed origin: answered here, no handler runs. Others fall through (an
 * OPTIONS of an origin not allowed is a 405 like any other method). */
static bool
is_preflight(const struct route *rt, const struct http_request *req,
    bool cors)
{
	return cors && rt != NULL && strcmp(req->method, "OPTIONS") == 0;
}

static int
preflight(FCGX_Request *fr, const struct route *rt, struct http_request *req,
    char *body, struct http_response *resp, struct kl_error *err)
{
	if (fcgi_read_body(fr->in, FCGX_GetParam("CONTENT_LENGTH", fr->envp),
	    rt->body_max, body, &req->body_len, err) == -1)
		return -1;
	return http_cors_preflight(resp, req->origin, rt->methods, err);
}

/* Serves one accepted request. ids, body and fields are the worker's. */
static void
serve(struct fcgi_worker *w, FCGX_Request *fr, struct fcgi_reqid *ids,
    char *body, struct body_fields *fields)
{
	const struct route	*rt;
	struct http_request	 req;
	struct http_response	 resp;
	struct kl_error		 err;
	struct timespec		 t0;
	char			 path[MAX_PATH_LEN], rid[FCGI_REQID_SIZE];
	struct kl_error		 herr;
	long			 us;
	int			 rc;
	bool			 cors;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	kl_error_clear(&err);
	memset(&resp, 0, sizeof(resp));
	request_fill(fr, ids, &req, path, sizeof(path), rid);
	rt = route_find(path);
	cors = req.origin != NULL &&
	    http_cors_allowed(w->ctx->cfg, req.origin, req.origin_count);
	if (is_preflight(rt, &req, cors)) {
		if ((rc = preflight(fr, rt, &req, body, &resp, &err)) == 0)
			cors = false;	/* it has its headers */
	} else if ((rc = request_admit(fr, rt, &req, body, fields,
	    &err)) == 0)
		rc = rt->fn(w->ctx, &req, &resp, &err);
	/* Failures too: the page reads the error's JSON. Out of memory for
	 * these leaves the answer without them (the browser hides it). */
	if (cors)
		http_cors_headers(&resp, req.origin, &herr);

	if (rc == 0)
		write_answer(fr, rid, &resp, resp.body.data ?
		    resp.body.data : "", resp.body.len);
	else
		write_failure(fr, rid, rt, &resp, &err);
	us = kl_elapsed_us(&t0);
	metrics_request(route_slot(rt), resp.status, us);
	request_log(&req, &resp, rc, &err, us);
	http_response_free(&resp);
	/* The next request must not find this one's body (codes, tokens). */
	explicit_bzero(body, req.body_len);
	if (req.fields != NULL)
		body_wipe(fields);
}

static void
set_state(struct fcgi_worker *w, enum fcgi_worker_state s)
{
	pthread_mutex_lock(&w->state_lock);
	w->state = s;
	pthread_mutex_unlock(&w->state_lock);
}

/*
 * The rest of a body the answer did not need (a GET's, one over the
 * limit) is read and dropped before the answer ends, so that a connection
 * kept open (FCGI_KEEP_CONN) stays kept. Closed instead, right after
 * END_REQUEST, it may already be back in nginx's pool with the next
 * request on it, which nginx answers 502 (a POST is not retried): found
 * in CI. Bounded: a longer body still closes the connection, and the
 * guard's request deadline holds while reading. Wiped: it may hold a
 * token.
 */
static void
discard_body(FCGX_Request *fr)
{
	char	buf[4096];
	size_t	total = 0;
	int	n;

	if (!fr->keepConnection)
		return;
	while (total < FCGI_UNREAD_MAX &&
	    (n = FCGX_GetStr(buf, (int)sizeof(buf), fr->in)) > 0)
		total += (size_t)n;
	if (total > 0)
		explicit_bzero(buf, sizeof(buf));
}

void *
fcgi_worker_run(void *arg)
{
	struct fcgi_worker	*w = arg;
	struct body_fields	*fields;
	struct fcgi_reqid	 ids;
	FCGX_Request		 fr;
	char			*body;
	int			 rc;

	/* Both live as long as the thread, freed below. */
	body = malloc(MAX_BODY + 1);
	fields = calloc(1, sizeof(*fields));
	if (body == NULL || fields == NULL ||
	    FCGX_InitRequest(&fr, w->listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_warn("worker cannot start: out of memory");
		free(body);
		free(fields);
		set_state(w, WORKER_DONE);
		return NULL;
	}
	fcgi_reqid_init(&ids);
	/* At stop, kept connections are still served (fcgi_conn_drain). */
	while (!atomic_load(w->stop) || fcgi_conn_kept() > 0) {
		set_state(w, WORKER_IDLE);
		if (atomic_load(w->stop) && fcgi_conn_kept() == 0)
			break;
		rc = FCGX_Accept_r(&fr);
		set_state(w, WORKER_BUSY);
		if (rc < 0) {
			if (errno != EINTR && !atomic_load(w->stop)) {
				log_warn("accept: %s", strerror(errno));
				sleep(1);	/* do not spin on a broken socket */
			}
			continue;
		}
		serve(w, &fr, &ids, body, fields);
		discard_body(&fr);
		FCGX_Finish_r(&fr);
	}
	FCGX_Free(&fr, 1);
	free(body);
	free(fields);
	set_state(w, WORKER_DONE);
	return NULL;
}

bool
fcgi_worker_wake(struct fcgi_worker *w, int signo)
{
	enum fcgi_worker_state	s;

	pthread_mutex_lock(&w->state_lock);
	s = w->state;
	if (s == WORKER_IDLE)
		pthread_kill(w->thread, signo);
	pthread_mutex_unlock(&w->state_lock);
	return s == WORKER_DONE;
}
