/*
 * test_kakao_admin.c: the Kakao client's admin calls (app/kakao_admin.c).
 *
 * The unlink answer's parser first, on strings. Then kakao_user_unlink()
 * end to end against build/fake-kakao (started here with -p 0 and -K, the
 * admin key it accepts; its GET /__unlinked?id=N tells what it did, GET
 * /__admin?fail= takes it down), and against a stand-in server in this
 * file that records the request it got (the exact KakaoAK header, the
 * form) and answers what a case sets. Every failure's detail is checked
 * for the admin key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>

#include "kakao.h"
#include "kakao_gate.h"
#include "kakao_http.h"		/* to look into the client's buffers */

#define ADMIN_KEY	"unit-admin-key-0123456789abcdef"	/* the fake's -K */
#define OTHER_KEY	"other-admin-key-0123456789abcdef"

static const char	*argv0;

/* ---- kakao_unlink_answer_parse ---- */

static int
parse(const char *s, int64_t want, struct kl_error *err)
{
	return kakao_unlink_answer_parse(s, strlen(s), want, err);
}

static void
test_parse_good(void **state)
{
	static const char	trailing[] = "{\"id\":42}{\"id\":43}";
	struct kl_error		err;

	(void)state;
	assert_int_equal(parse("{\"id\":42}", 42, &err), 0);
	assert_int_equal(parse(" {\"id\" : 42 }\n", 42, &err), 0);
	assert_int_equal(parse("{\"msg\":\"x\",\"id\":42}", 42, &err), 0);
	assert_int_equal(parse("{\"id\":9223372036854775807}", INT64_MAX,
	    &err), 0);
	/* Only len bytes are read. */
	assert_int_equal(kakao_unlink_answer_parse(trailing, 9, 42, &err), 0);
	assert_int_equal(kakao_unlink_answer_parse(trailing,
	    sizeof(trailing) - 1, 42, &err), -1);
}

static void
test_parse_bad(void **state)
{
	static const char *bad[] = {
		"{\"id\":43}",			/* another user */
		"{\"id\":420}",
		"<html>not json</html>",
		"{\"id\":42",
		"{}",
		"{\"msg\":\"ok\"}",
		"{\"id\":-42}",
		"{\"id\":0}",
		"{\"id\":18446744073709551616}",	/* over int64 */
		"{\"id\":99999999999999999999999999}",
		"{\"id\":\"42\"}",
		"{\"id\":42.0}",
		"{\"id\":null}",
		"{\"id\":true}",
		"[42]",
		"42",
		"{\"id\":42,\"id\":42}",		/* duplicates refused */
		"",
	};
	struct kl_error	err;
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		if (parse(bad[i], 42, &err) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_int_equal(err.status, KL_KAKAO_BAD_RESPONSE);
		assert_true(err.detail[0] != '\0');
	}
	assert_int_equal(kakao_unlink_answer_parse(NULL, 0, 42, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_BAD_RESPONSE);
	/* A huge answer: refused, not cut. */
	{
		size_t	 n = 1024 * 1024, k;
		char	*big = malloc(n + 32);

		assert_non_null(big);
		k = (size_t)sprintf(big, "{\"id\":42,\"pad\":\"");
		memset(big + k, 'x', n);
		assert_int_equal(kakao_unlink_answer_parse(big, k + n, 42,
		    &err), -1);
		memcpy(big + k + n, "\"}", 2);
		assert_int_equal(kakao_unlink_answer_parse(big, k + n + 2, 42,
		    &err), 0);
		free(big);
	}
}

/* ---- a stand-in server ---- */

enum standin_mode { ANSWER, HANG };

struct standin {
	int			 fd, port;
	pthread_t		 thread;
	pthread_mutex_t		 lock;
	volatile int		 stop;
	enum standin_mode	 mode;
	int			 status;
	char			 answer[256];
	char			 head[8192];
	char			 body[1024];
	int			 requests;
};

static struct standin	si;

static size_t
content_length(const char *head)
{
	const char	*p = strcasestr(head, "\r\nContent-Length:");

	return p == NULL ? 0 : (size_t)strtoul(p + 17, NULL, 10);
}

static void
standin_serve(int c)
{
	char	buf[16384], out[512];
	size_t	n = 0, hlen = 0, want = 0;
	ssize_t	r;
	char	*e, drain;
	int	len;

	while (n < sizeof(buf) - 1 && (r = read(c, buf + n,
	    sizeof(buf) - 1 - n)) > 0) {
		n += (size_t)r;
		buf[n] = '\0';
		if (hlen == 0 && (e = strstr(buf, "\r\n\r\n")) != NULL) {
			hlen = (size_t)(e - buf) + 4;
			want = hlen + content_length(buf);
		}
		if (hlen != 0 && n >= want)
			break;
	}
	buf[n] = '\0';
	pthread_mutex_lock(&si.lock);
	si.requests++;
	snprintf(si.head, sizeof(si.head), "%.*s", (int)hlen, buf);
	snprintf(si.body, sizeof(si.body), "%s", buf + hlen);
	pthread_mutex_unlock(&si.lock);
	if (si.mode == HANG) {
		while (!si.stop && read(c, &drain, 1) > 0)
			;
		return;
	}
	len = snprintf(out, sizeof(out), "HTTP/1.1 %d X\r\n"
	    "Content-Type: application/json;charset=UTF-8\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", si.status,
	    strlen(si.answer), si.answer);
	if (write(c, out, (size_t)len) != len)
		(void)0;	/* the client gave up */
}

static void *
standin_run(void *arg)
{
	struct pollfd	pfd;
	int		c;

	(void)arg;
	while (!si.stop) {
		pfd.fd = si.fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if ((c = accept(si.fd, NULL, NULL)) == -1)
			continue;
		standin_serve(c);
		close(c);
	}
	return NULL;
}

static void
standin_set(enum standin_mode mode, int status, const char *answer)
{
	pthread_mutex_lock(&si.lock);
	si.mode = mode;
	si.status = status;
	snprintf(si.answer, sizeof(si.answer), "%s", answer);
	si.requests = 0;
	si.head[0] = si.body[0] = '\0';
	pthread_mutex_unlock(&si.lock);
}

/* A copy of what the stand-in got: a failed assertion must not leave
 * its lock held. */
static void
standin_got(int *requests, char head[8192], char body[1024])
{
	pthread_mutex_lock(&si.lock);
	*requests = si.requests;
	memcpy(head, si.head, sizeof(si.head));
	memcpy(body, si.body, sizeof(si.body));
	pthread_mutex_unlock(&si.lock);
}

static int
listen_loopback(int *port)
{
	struct sockaddr_in	sin;
	socklen_t		slen = sizeof(sin);
	int			fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 16) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &slen) == -1)
		return -1;
	*port = ntohs(sin.sin_port);
	return fd;
}

/* ---- the fake Kakao ---- */

static pid_t	fake_pid = -1;
static int	fake_port;

/* $FAKE_KAKAO, else the fake of this suite's build (build/unit/x ->
 * build/fake-kakao, build/san/unit/x -> build/san/fake-kakao), which the
 * GNUmakefile builds before this suite. */
static const char *
fake_path(void)
{
	static char	 path[1024];
	const char	*env = getenv("FAKE_KAKAO");
	char		 dir[1024];

	if (env != NULL && access(env, X_OK) == 0)
		return env;
	snprintf(dir, sizeof(dir), "%s", argv0);
	snprintf(path, sizeof(path), "%s/../fake-kakao", dirname(dir));
	return access(path, X_OK) == 0 ? path : NULL;
}

static int
fake_start(void)
{
	const char	*path = fake_path();
	char		 line[128];
	int		 fds[2];
	FILE		*fp;

	if (path == NULL || pipe(fds) == -1)
		return -1;
	if ((fake_pid = fork()) == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(path, path, "-p", "0", "-q", "-K", ADMIN_KEY,
		    (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	if (fake_pid == -1 || (fp = fdopen(fds[0], "r")) == NULL)
		return -1;
	if (fgets(line, sizeof(line), fp) == NULL ||
	    sscanf(line, "fake-kakao listening on 127.0.0.1:%d",
	    &fake_port) != 1)
		fake_port = 0;
	fclose(fp);
	return fake_port > 0 ? 0 : -1;
}

static size_t
get_write(char *p, size_t size, size_t n, void *ud)
{
	strncat(ud, p, size * n < 255 ? size * n : 255);
	return size * n;
}

/* GETs path from the fake with a curl of our own; the body into out. */
static void
fake_get(const char *path, char out[512])
{
	char	 url[256];
	CURL	*h = curl_easy_init();
	long	 status = 0;

	assert_non_null(h);
	out[0] = '\0';
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", fake_port, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, get_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (status != 200)
		fail_msg("fake %s: %ld %s", path, status, out);
}

/* What the fake says of user id: unlinked or not, and its unlink count. */
static void
fake_user(int64_t id, bool *unlinked, int *unlinks)
{
	char	path[64], out[512], flag[8];
	long long got;

	snprintf(path, sizeof(path), "/__unlinked?id=%lld", (long long)id);
	fake_get(path, out);
	if (sscanf(out, "{\"id\":%lld,\"unlinked\":%7[a-z],\"unlinks\":%d",
	    &got, flag, unlinks) != 3 || got != id)
		fail_msg("fake unlinked: %s", out);
	*unlinked = strcmp(flag, "true") == 0;
}

/* The fake's count of unlink calls, and of connections. */
static void
fake_calls(long long *unlinks, long long *connections)
{
	char		 out[512];
	const char	*p;

	fake_get("/__stats", out);
	if ((p = strstr(out, "\"unlink_calls\":")) == NULL ||
	    sscanf(p, "\"unlink_calls\":%lld", unlinks) != 1 ||
	    sscanf(out, "{\"requests\":%*d,\"connections\":%lld",
	    connections) != 1)
		fail_msg("fake stats: %s", out);
}

/* ---- fixtures and helpers ---- */

static int
group_setup(void **state)
{
	struct kl_error	err;

	(void)state;
	if (kakao_global_init(&err) != 0)
		return -1;
	memset(&si, 0, sizeof(si));
	pthread_mutex_init(&si.lock, NULL);
	if ((si.fd = listen_loopback(&si.port)) == -1 ||
	    pthread_create(&si.thread, NULL, standin_run, NULL) != 0)
		return -1;
	if (fake_start() == -1) {
		fprintf(stderr, "# fake-kakao not found or not started "
		    "(make build/fake-kakao, or set FAKE_KAKAO)\n");
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	si.stop = 1;
	pthread_join(si.thread, NULL);
	close(si.fd);
	pthread_mutex_destroy(&si.lock);
	if (fake_pid > 0) {
		kill(fake_pid, SIGTERM);
		waitpid(fake_pid, NULL, 0);
	}
	kakao_global_cleanup();
	return 0;
}

/* After a case that took the fake down: up again, whatever happened. */
static int
fake_up(void **state)
{
	char	out[512];

	(void)state;
	fake_get("/__admin?fail=0", out);
	return 0;
}

static struct kakao_client *
client_with(int port, const char *key, size_t key_len,
    struct kakao_gate *gate, long timeout_ms, struct kl_error *err)
{
	static char		 url[64];
	struct kakao_options	 opt;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	memset(&opt, 0, sizeof(opt));
	opt.api_url = url;
	opt.timeout_ms = timeout_ms;
	opt.connect_timeout_ms = 1000;
	opt.gate = gate;
	opt.admin_key = key;
	opt.admin_key_len = key_len;
	return kakao_client_new(&opt, err);
}

static struct kakao_client *
client_at(int port, const char *key, struct kakao_gate *gate,
    long timeout_ms)
{
	struct kakao_client	*kc;
	struct kl_error		 err;

	kc = client_with(port, key, key != NULL ? strlen(key) : 0, gate,
	    timeout_ms, &err);
	if (kc == NULL)
		fail_msg("kakao_client_new: %s", err.detail);
	return kc;
}

/* No detail names an admin key, nor its start. */
static void
assert_detail_clean(const struct kl_error *err, const char *what)
{
	static const char *keys[] = { ADMIN_KEY, OTHER_KEY, "admin-key-",
	    "0123456789" };
	size_t	i;

	assert_non_null(memchr(err->detail, '\0', sizeof(err->detail)));
	assert_true(err->detail[0] != '\0');
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strstr(err->detail, keys[i]) != NULL)
			fail_msg("%s: detail \"%s\" holds \"%s\"", what,
			    err->detail, keys[i]);
}

static void
assert_answer_wiped(const struct kakao_client *kc)
{
	const struct kl_buf	*b = &kc->admin.body;
	size_t			 i;

	for (i = 0; b->data != NULL && i < b->cap; i++)
		if (b->data[i] != '\0')
			fail_msg("answer buffer byte %zu not wiped", i);
}

/* ---- against the fake Kakao ---- */

static void
test_unlink_success(void **state)
{
	struct kakao_client	*kc;
	struct kl_error		 err;
	bool			 already = true, unlinked;
	int			 unlinks;

	(void)state;
	kc = client_at(fake_port, ADMIN_KEY, NULL, 3000);
	fake_user(9001, &unlinked, &unlinks);
	assert_false(unlinked);
	assert_int_equal(unlinks, 0);
	if (kakao_user_unlink(kc, 9001, &already, &err) != 0)
		fail_msg("unlink: %s", err.detail);
	assert_false(already);
	assert_answer_wiped(kc);
	fake_user(9001, &unlinked, &unlinks);
	assert_true(unlinked);
	assert_int_equal(unlinks, 1);
	/* Another user is untouched. */
	fake_user(9002, &unlinked, &unlinks);
	assert_false(unlinked);
	kakao_client_free(kc);
}

/* Not linked (-101) is success, with *already; a login links again. */
static void
test_unlink_already_and_relink(void **state)
{
	struct kakao_client	*kc;
	struct kakao_profile	 p;
	struct kl_error		 err;
	bool			 already, unlinked;
	int			 unlinks;

	(void)state;
	kc = client_at(fake_port, ADMIN_KEY, NULL, 3000);
	assert_int_equal(kakao_user_unlink(kc, 9003, &already, &err), 0);
	assert_false(already);
	if (kakao_user_unlink(kc, 9003, &already, &err) != 0)
		fail_msg("unlink again: %s", err.detail);
	assert_true(already);
	assert_answer_wiped(kc);
	fake_user(9003, &unlinked, &unlinks);
	assert_true(unlinked);
	assert_int_equal(unlinks, 1);

	assert_int_equal(kakao_profile_fetch(kc, "valid-9003", &p, NULL,
	    &err), 0);
	fake_user(9003, &unlinked, &unlinks);
	assert_false(unlinked);
	assert_int_equal(kakao_user_unlink(kc, 9003, &already, &err), 0);
	assert_false(already);
	fake_user(9003, &unlinked, &unlinks);
	assert_true(unlinked);
	assert_int_equal(unlinks, 2);
	kakao_client_free(kc);
}

static void
test_unlink_wrong_key(void **state)
{
	struct kakao_client	*kc;
	struct kl_error		 err;
	bool			 already = true, unlinked;
	int			 unlinks;

	(void)state;
	kc = client_at(fake_port, OTHER_KEY, NULL, 3000);
	assert_int_equal(kakao_user_unlink(kc, 9004, &already, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_CONFIG);
	assert_non_null(strstr(err.detail, "401"));
	assert_false(already);
	assert_detail_clean(&err, "wrong key");
	fake_user(9004, &unlinked, &unlinks);
	assert_false(unlinked);
	kakao_client_free(kc);
}

static void
test_unlink_kakao_down(void **state)
{
	struct kakao_client	*kc;
	struct kl_error		 err;
	char			 out[512];
	bool			 already, unlinked;
	int			 unlinks;

	(void)state;
	kc = client_at(fake_port, ADMIN_KEY, NULL, 3000);
	fake_get("/__admin?fail=1", out);
	assert_int_equal(kakao_user_unlink(kc, 9005, &already, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_UNAVAILABLE);
	assert_non_null(strstr(err.detail, "503"));
	assert_detail_clean(&err, "down");

	fake_get("/__admin?fail=drop", out);
	assert_int_equal(kakao_user_unlink(kc, 9005, &already, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_UNAVAILABLE);
	assert_detail_clean(&err, "drop");
	fake_user(9005, &unlinked, &unlinks);
	assert_false(unlinked);

	/* Back up: the same client goes on. */
	fake_get("/__admin?fail=0", out);
	assert_int_equal(kakao_user_unlink(kc, 9005, &already, &err), 0);
	assert_false(already);
	fake_user(9005, &unlinked, &unlinks);
	assert_true(unlinked);
	kakao_client_free(kc);
}

/* None of these costs a Kakao call. */
static void
test_unlink_not_configured_bad_id_busy(void **state)
{
	struct kakao_client	*kc;
	struct kakao_gate	*g;
	struct kl_error		 err;
	long long		 calls0, conn0, calls1, conn1;
	bool			 already = true;

	(void)state;
	fake_calls(&calls0, &conn0);
	kc = client_at(fake_port, NULL, NULL, 3000);
	assert_int_equal(kakao_user_unlink(kc, 9006, &already, &err), -1);
	assert_int_equal(err.status, KL_NOT_CONFIGURED);
	assert_false(already);
	kakao_client_free(kc);

	kc = client_at(fake_port, ADMIN_KEY, NULL, 3000);
	assert_int_equal(kakao_user_unlink(kc, 0, &already, &err), -1);
	assert_int_equal(err.status, KL_BAD_REQUEST);
	assert_int_equal(kakao_user_unlink(kc, -9006, &already, &err), -1);
	assert_int_equal(err.status, KL_BAD_REQUEST);
	kakao_client_free(kc);

	g = kakao_gate_new(1, 1, 50, &err);
	assert_non_null(g);
	kc = client_at(fake_port, ADMIN_KEY, g, 3000);
	assert_int_equal(kakao_gate_enter(g, &err), 0);
	assert_int_equal(kakao_user_unlink(kc, 9006, &already, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_BUSY);
	kakao_gate_leave(g);
	fake_calls(&calls1, &conn1);
	assert_int_equal(calls1 - calls0, 0);

	/* The slot is given back after a call, a failed one too. */
	assert_int_equal(kakao_user_unlink(kc, 9006, &already, &err), 0);
	assert_int_equal(kakao_user_unlink(kc, 9006, &already, &err), 0);
	assert_true(already);
	assert_int_equal(kakao_gate_enter(g, &err), 0);
	kakao_gate_leave(g);
	fake_calls(&calls1, &conn1);
	assert_int_equal(calls1 - calls0, 2);
	kakao_client_free(kc);
	kakao_gate_free(g);
}

/* One connection for several calls: the handle is kept alive. */
static void
test_unlink_keeps_connection(void **state)
{
	struct kakao_client	*kc;
	struct kl_error		 err;
	long long		 calls0, conn0, calls1, conn1;
	bool			 already;
	int64_t			 id;

	(void)state;
	kc = client_at(fake_port, ADMIN_KEY, NULL, 3000);
	fake_calls(&calls0, &conn0);
	for (id = 9010; id < 9013; id++)
		assert_int_equal(kakao_user_unlink(kc, id, &already, &err), 0);
	fake_calls(&calls1, &conn1);
	assert_int_equal(calls1 - calls0, 3);
	assert_int_equal(conn1 - conn0, 2);	/* the client's, the stats' */
	kakao_client_free(kc);
}

/* ---- the key, and the request against the stand-in ---- */

static void
test_admin_key_refused(void **state)
{
	static const char *bad[] = {
		"admin key 0123456789abcdef",		/* a blank */
		"admin-key-0123456789abcdef\r",
		"admin-key-0123456789abcdef\r\nX-Evil: 1",
		"admin-key-0123456789abcdef\n",
		"admin-key\t0123456789abcdef",
		"admin-key-0123456789abcde\x7f",
		"admin-key-0123456789abcd\xc3\xa9",
		"admin-key-01234",			/* 15 bytes */
		"",
	};
	static char		 head[8192], body[1024];
	char			 key[MAX_ADMIN_KEY + 2];
	struct kakao_client	*kc;
	struct kl_error		 err;
	size_t			 i;
	int			 requests;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kc = client_with(si.port, bad[i], strlen(bad[i]), NULL, 3000,
		    &err);
		if (kc != NULL)
			fail_msg("key %zu accepted", i);
		assert_int_equal(err.status, KL_BAD_CONFIG);
		assert_null(strstr(err.detail, "0123"));
	}
	/* A NUL inside the length. */
	kc = client_with(si.port, "admin-key-0123456789\0abcdef", 26, NULL,
	    3000, &err);
	assert_null(kc);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	/* The bounds. */
	memset(key, 'k', sizeof(key));
	kc = client_with(si.port, key, MAX_ADMIN_KEY + 1, NULL, 3000, &err);
	assert_null(kc);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	kc = client_with(si.port, key, MAX_ADMIN_KEY, NULL, 3000, &err);
	assert_non_null(kc);
	kakao_client_free(kc);
	kc = client_with(si.port, key, MIN_ADMIN_KEY, NULL, 3000, &err);
	assert_non_null(kc);
	kakao_client_free(kc);
	standin_got(&requests, head, body);
	assert_int_equal(requests, 0);
}

/* Exactly Kakao's request: one "Authorization: KakaoAK <key>" (the key's
 * len bytes, not up to a NUL), the form, its type, nothing of a bearer. */
static void
test_request_exact(void **state)
{
	static const char	 key_and_more[] = ADMIN_KEY "-not-the-key";
	static char		 head[8192], body[1024];
	struct kakao_client	*kc;
	struct kl_error		 err;
	bool			 already;
	const char		*p;
	int			 requests;

	(void)state;
	standin_set(ANSWER, 200, "{\"id\":77}");
	kc = client_with(si.port, key_and_more, strlen(ADMIN_KEY), NULL, 3000,
	    &err);
	assert_non_null(kc);
	if (kakao_user_unlink(kc, 77, &already, &err) != 0)
		fail_msg("unlink: %s", err.detail);
	assert_false(already);
	standin_got(&requests, head, body);
	assert_int_equal(requests, 1);
	assert_true(strncmp(head, "POST /v1/user/unlink HTTP/1.1\r\n",
	    31) == 0);
	p = strcasestr(head, "\r\nAuthorization:");
	assert_non_null(p);
	assert_true(strncmp(p, "\r\nAuthorization: KakaoAK " ADMIN_KEY "\r\n",
	    strlen("\r\nAuthorization: KakaoAK " ADMIN_KEY "\r\n")) == 0);
	assert_null(strcasestr(p + 2, "\r\nAuthorization:"));
	assert_null(strstr(head, "not-the-key"));
	assert_null(strcasestr(head, "Bearer"));
	assert_non_null(strcasestr(head, "\r\nContent-Type: "
	    "application/x-www-form-urlencoded"));
	assert_string_equal(body, "target_id_type=user_id&target_id=77");

	/* The next call sends the same header once, not twice. */
	standin_set(ANSWER, 200, "{\"id\":9223372036854775807}");
	assert_int_equal(kakao_user_unlink(kc, INT64_MAX, &already, &err), 0);
	standin_got(&requests, head, body);
	p = strcasestr(head, "\r\nAuthorization:");
	assert_non_null(p);
	assert_null(strcasestr(p + 2, "\r\nAuthorization:"));
	assert_string_equal(body,
	    "target_id_type=user_id&target_id=9223372036854775807");
	kakao_client_free(kc);
}

/* What each answer Kakao may give becomes. */
static void
test_answers(void **state)
{
	static const struct {
		int		 status;
		const char	*answer;
		int		 rc;
		bool		 already;
		enum kl_status	 want;
	} cases[] = {
		{ 200, "{\"id\":77}", 0, false, KL_OK },
		{ 200, "{\"id\":78}", -1, false, KL_KAKAO_BAD_RESPONSE },
		{ 200, "not json", -1, false, KL_KAKAO_BAD_RESPONSE },
		{ 200, "", -1, false, KL_KAKAO_BAD_RESPONSE },
		{ 400, "{\"msg\":\"NotRegisteredUserException\","
		    "\"code\":-101}", 0, true, KL_OK },
		{ 401, "{\"msg\":\"wrong appKey\",\"code\":-401}", -1, false,
		    KL_KAKAO_CONFIG },
		{ 401, "", -1, false, KL_KAKAO_CONFIG },
		{ 400, "{\"msg\":\"x\",\"code\":-401}", -1, false,
		    KL_KAKAO_CONFIG },
		{ 400, "{\"msg\":\"api off\",\"code\":-3}", -1, false,
		    KL_KAKAO_CONFIG },
		{ 403, "{\"msg\":\"no permission\",\"code\":-5}", -1, false,
		    KL_KAKAO_CONFIG },
		{ 400, "{\"msg\":\"bad parameter\",\"code\":-2}", -1, false,
		    KL_KAKAO_BAD_RESPONSE },
		{ 500, "{\"msg\":\"internal\",\"code\":-1}", -1, false,
		    KL_KAKAO_UNAVAILABLE },
		{ 503, "{\"msg\":\"system maintenance\",\"code\":-7}", -1,
		    false, KL_KAKAO_UNAVAILABLE },
		{ 429, "", -1, false, KL_KAKAO_UNAVAILABLE },
		{ 400, "{\"msg\":\"quota\",\"code\":-10}", -1, false,
		    KL_KAKAO_UNAVAILABLE },
		/* -101 only counts on a clean answer about the call. */
		{ 200, "{\"msg\":\"x\",\"code\":-101}", -1, false,
		    KL_KAKAO_BAD_RESPONSE },
		{ 302, "", -1, false, KL_KAKAO_BAD_RESPONSE },
	};
	struct kakao_client	*kc;
	struct kl_error		 err;
	bool			 already;
	size_t			 i;
	int			 rc;

	(void)state;
	kc = client_at(si.port, ADMIN_KEY, NULL, 3000);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		standin_set(ANSWER, cases[i].status, cases[i].answer);
		memset(&err, 0, sizeof(err));
		rc = kakao_user_unlink(kc, 77, &already, &err);
		if (rc != cases[i].rc || already != cases[i].already ||
		    (rc == -1 && err.status != cases[i].want))
			fail_msg("case %zu (%d %s): rc %d already %d status "
			    "%d (%s)", i, cases[i].status, cases[i].answer, rc,
			    already, err.status, err.detail);
		if (rc == -1)
			assert_detail_clean(&err, cases[i].answer);
		assert_answer_wiped(kc);
	}
	kakao_client_free(kc);
}

static void
test_timeouts(void **state)
{
	struct kakao_client	*kc;
	struct kl_error		 err;
	bool			 already;
	int			 fd, port;

	(void)state;
	standin_set(HANG, 0, "");
	kc = client_at(si.port, ADMIN_KEY, NULL, 300);
	assert_int_equal(kakao_user_unlink(kc, 77, &already, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_TIMEOUT);
	assert_detail_clean(&err, "timeout");
	kakao_client_free(kc);
	standin_set(ANSWER, 200, "{}");

	/* Nobody accepts: the connection itself times out or is refused. */
	fd = listen_loopback(&port);
	assert_true(fd != -1);
	close(fd);
	kc = client_at(port, ADMIN_KEY, NULL, 300);
	assert_int_equal(kakao_user_unlink(kc, 77, &already, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_UNAVAILABLE);
	kakao_client_free(kc);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_unlink_success),
		cmocka_unit_test(test_unlink_already_and_relink),
		cmocka_unit_test(test_unlink_wrong_key),
		cmocka_unit_test_teardown(test_unlink_kakao_down, fake_up),
		cmocka_unit_test(test_unlink_not_configured_bad_id_busy),
		cmocka_unit_test(test_unlink_keeps_connection),
		cmocka_unit_test(test_admin_key_refused),
		cmocka_unit_test(test_request_exact),
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_timeouts),
	};

	(void)argc;
	argv0 = argv[0];
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("kakao_admin", tests, group_setup,
	    group_teardown);
}
