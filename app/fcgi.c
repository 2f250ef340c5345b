/*
 * fcgi.c: FastCGI I/O and routing, on libfcgi.
 *
 * Owns the accept loop of each worker thread and the FCGX_Request in it:
 * reads the params and the body within the limits of kl_limits.h, picks
 * the route, calls its handler, and writes the answer, turning a failure
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

#include "fcgi.h"
#include "fcgi_guard.h"
#include "kl_clock.h"
#include "kl_error.h"
#include "kl_limits.h"
#include "log.h"

struct route {
	const char	*path;
	const char	*allow;		/* methods, as the Allow header says */
	handler_fn	 fn;
};

static const struct route routes[] = {
	{ "/users/kakao/login",	"GET, POST",	handler_login },
};

int
fcgi_init(int listen_fd)
{
	fcgi_guard_listen(listen_fd);
	return FCGX_Init() == 0 ? 0 : -1;
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

static bool
method_allowed(const char *allow, const char *method)
{
	size_t	len = strlen(method);
	const char *p = allow;

	/* strstr() finds "" everywhere: the loop below would never end. */
	if (len == 0)
		return false;
	while ((p = strstr(p, method)) != NULL) {
		if ((p == allow || p[-1] == ' ') &&
		    (p[len] == ',' || p[len] == '\0'))
			return true;
		p += len;
	}
	return false;
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
 * MAX_BODY. Returns the length, or -1 with err filled. */
static long long
content_length(const char *cl, struct kl_error *err)
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
	if (want > MAX_BODY)
		return kl_fail(err, KL_TOO_LARGE, "body of %lld bytes", want);
	return want;
}

/*
 * The buffer is reused by every request of this worker: it is cleared
 * first, so a request without a body never sees the previous one's.
 */
int
fcgi_read_body(FCGX_Stream *in, const char *cl, char *buf, size_t *len,
    struct kl_error *err)
{
	long long	want = MAX_BODY + 1;
	int		n;

	*len = 0;
	buf[0] = '\0';
	if (cl != NULL && *cl != '\0' && (want = content_length(cl, err)) < 0)
		return -1;
	/* Read to the end of stdin, but never past the limit: a body longer
	 * than announced is as wrong as a shorter one. */
	n = FCGX_GetStr(buf, MAX_BODY + 1, in);
	/* A failed read ends the stream early, as if the body were whole. */
	if (n < 0 || FCGX_GetError(in) != 0) {
		buf[0] = '\0';
		return kl_fail(err, KL_BAD_REQUEST, "cannot read the body");
	}
	if (n > MAX_BODY) {
		buf[0] = '\0';
		return kl_fail(err, KL_TOO_LARGE, "body over %d bytes", MAX_BODY);
	}
	if (want <= MAX_BODY && n != want) {
		buf[0] = '\0';
		return kl_fail(err, KL_BAD_REQUEST, "body of %d bytes, "
		    "CONTENT_LENGTH %lld", n, want);
	}
	*len = (size_t)n;
	buf[n] = '\0';
	return 0;
}

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

static void
write_answer(FCGX_Request *fr, int status, const char *body,
    const char *allow)
{
	FCGX_FPrintF(fr->out,
	    "Status: %d %s\r\n"
	    "Content-Type: application/json; charset=utf-8\r\n"
	    "Content-Length: %lu\r\n"
	    "Cache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "%s%s%s"
	    "\r\n", status, reason_phrase(status),
	    (unsigned long)strlen(body), allow ? "Allow: " : "",
	    allow ? allow : "", allow ? "\r\n" : "");
	FCGX_PutStr(body, (int)strlen(body), fr->out);
}

/* Serves one accepted request. */
static void
serve(struct fcgi_worker *w, FCGX_Request *fr, char *body)
{
	const struct route	*rt = NULL;
	struct http_request	 req;
	struct http_response	 resp;
	struct kl_error		 err;
	struct log_request	 lr;
	struct timespec		 t0;
	char			 path[MAX_PATH_LEN], msg[64];
	const char		*allow = NULL;
	size_t			 i;
	int			 rc = -1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	kl_error_clear(&err);
	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	request_path(fr, path, sizeof(path));
	req.path = path;
	if ((req.method = FCGX_GetParam("REQUEST_METHOD", fr->envp)) == NULL)
		req.method = "";
	req.authorization = FCGX_GetParam("HTTP_AUTHORIZATION", fr->envp);
	req.authorization_count = param_count(fr->envp, "HTTP_AUTHORIZATION");

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]) && rt == NULL; i++)
		if (strcmp(routes[i].path, path) == 0)
			rt = &routes[i];
	if (rt == NULL)
		kl_fail(&err, KL_NOT_FOUND, "no route");
	else if (!method_allowed(rt->allow, req.method)) {
		allow = rt->allow;
		kl_fail(&err, KL_METHOD_NOT_ALLOWED, "method not allowed");
	} else if (fcgi_read_body(fr->in, FCGX_GetParam("CONTENT_LENGTH",
	    fr->envp), body, &req.body_len, &err) == 0) {
		req.body = body;
		rc = rt->fn(&w->ctx, &req, &resp, &err);
	}

	if (rc == 0) {
		write_answer(fr, resp.status, resp.body, NULL);
	} else {
		resp.status = error_http_status(err.status);
		snprintf(msg, sizeof(msg), "{\"message\":\"%s\"}",
		    error_message(err.status));
		write_answer(fr, resp.status, msg, allow);
	}
	memset(&lr, 0, sizeof(lr));
	lr.method = req.method;
	lr.path = path;
	lr.status = resp.status;
	lr.message = rc == 0 ? "SUCCESS" : error_message(err.status);
	lr.detail = rc == 0 ? "" : err.detail;
	lr.user_id = resp.user_id;
	lr.duration_us = kl_elapsed_us(&t0);
	lr.upstream_us = resp.upstream_us;
	log_request(&lr);
	free(resp.body);
}

static void
set_state(struct fcgi_worker *w, enum fcgi_worker_state s)
{
	pthread_mutex_lock(&w->state_lock);
	w->state = s;
	pthread_mutex_unlock(&w->state_lock);
}

void *
fcgi_worker_run(void *arg)
{
	struct fcgi_worker	*w = arg;
	FCGX_Request		 fr;
	char			*body;
	int			 rc;

	if ((body = malloc(MAX_BODY + 1)) == NULL ||
	    FCGX_InitRequest(&fr, w->listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_warn("worker cannot start: out of memory");
		free(body);
		set_state(w, WORKER_DONE);
		return NULL;
	}
	while (!atomic_load(w->stop)) {
		set_state(w, WORKER_IDLE);
		if (atomic_load(w->stop))
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
		serve(w, &fr, body);
		FCGX_Finish_r(&fr);
	}
	FCGX_Free(&fr, 1);
	free(body);
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
