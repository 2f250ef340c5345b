/*
 * test_kakao_auth.c: the kauth side of the Kakao client (app/kakao_auth.c).
 *
 * Parsers first, from files under test/data/kakao_auth/, the expected
 * outcome in the name: token-ok-*, token-bad-* for
 * kakao_token_answer_parse(); error-<http>-<expect>-<what> for
 * kakao_auth_error_classify(), expect one of invalid_code, config,
 * unavailable, bad_response. Every file found is run, so adding a case is
 * adding a file; each is handed over in a buffer of exactly its length.
 *
 * Then the exchange end to end: against build/fake-kakao (started with
 * -p 0; its /oauth/token swaps "good-<id>" for "valid-<id>" and answers
 * anything else KOE320), and against a stand-in server in this file that
 * records the request it got (the form's escaping, which fields are sent)
 * and answers what a case sets (time-outs, big bodies, the JWKS). Every
 * failure's detail is checked for the code, verifier, secret and tokens.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
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
#include "kakao_auth.h"
#include "kakao_gate.h"
#include "kakao_http.h"		/* to look into the client's buffers */

#define DATA_DIR	"test/data/kakao_auth"
#define REST_KEY	"rest-key-0123456789abcdef"
#define FAKE_REST_KEY	"fake-rest-api-key"	/* the fake's -k default */
#define VERIFIER	"verifier-0123456789-abcdefghijklmnopqrstuvwxyz._~"

/* ---- reading the cases ---- */

static const char *
data_dir(void)
{
	static char	dir[256];
	static const char *ups[] = { "", "../", "../../", "../../../" };
	size_t		i;

	if (dir[0] != '\0')
		return dir;
	for (i = 0; i < sizeof(ups) / sizeof(ups[0]); i++) {
		snprintf(dir, sizeof(dir), "%s%s", ups[i], DATA_DIR);
		if (access(dir, R_OK | X_OK) == 0)
			return dir;
	}
	fail_msg("cannot find %s from the current directory", DATA_DIR);
	return NULL;
}

struct input {
	char	*data;		/* exactly len bytes, not NUL-terminated */
	size_t	 len;
};

static void
read_case(const char *name, struct input *in)
{
	char	 path[512];
	FILE	*fp;
	long	 size;

	snprintf(path, sizeof(path), "%s/%s", data_dir(), name);
	if ((fp = fopen(path, "rb")) == NULL)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	assert_true(size >= 0);
	rewind(fp);
	in->len = (size_t)size;
	in->data = malloc(in->len ? in->len : 1);
	assert_non_null(in->data);
	assert_int_equal(fread(in->data, 1, in->len, fp), in->len);
	fclose(fp);
}

static void
free_case(struct input *in)
{
	free(in->data);
	in->data = NULL;
}

/* Names in the data directory starting with prefix, sorted. */
static size_t
list_cases(const char *prefix, char names[][128], size_t max)
{
	DIR		*d;
	struct dirent	*e;
	size_t		 n = 0, i, j;
	char		 tmp[128];

	d = opendir(data_dir());
	assert_non_null(d);
	while ((e = readdir(d)) != NULL && n < max)
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
		    strlen(e->d_name) < sizeof(names[0]))
			snprintf(names[n++], sizeof(names[0]), "%s", e->d_name);
	closedir(d);
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			memcpy(tmp, names[j], sizeof(tmp));
			memcpy(names[j], names[j - 1], sizeof(tmp));
			memcpy(names[j - 1], tmp, sizeof(tmp));
		}
	return n;
}

static bool
has_case(char names[][128], size_t n, const char *name)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

/* A detail is built from fixed words, numbers and checked KOE codes: no
 * byte of what Kakao or the caller sent may show in it. */
static void
assert_detail_clean(const struct kl_error *err, const char *what)
{
	static const char *secrets[] = { "SECRETCODE", "good-", "bad-code",
	    "valid-", "refresh-", "verifier-", "s3cr", "rest-key",
	    "authorization code", "mismatch", "eyJ" };
	size_t	i;

	assert_non_null(memchr(err->detail, '\0', sizeof(err->detail)));
	assert_true(err->detail[0] != '\0');
	for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (strstr(err->detail, secrets[i]) != NULL)
			fail_msg("%s: detail \"%s\" holds \"%s\"", what,
			    err->detail, secrets[i]);
}

static bool
result_empty(const struct kakao_code_result *r)
{
	size_t	i;

	for (i = 0; i < sizeof(r->access_token); i++)
		if (r->access_token[i] != '\0')
			return false;
	return r->id_token == NULL && r->expires_in == 0;
}

/* ---- kakao_token_answer_parse ---- */

static void
parse_ok(const char *name, struct kakao_code_result *r)
{
	struct input	in;
	struct kl_error	err;

	read_case(name, &in);
	if (kakao_token_answer_parse(in.data, in.len, r, &err) != 0)
		fail_msg("%s refused: %s", name, err.detail);
	free_case(&in);
}

static void
test_token_answer_full(void **state)
{
	struct kakao_code_result	r;

	(void)state;
	parse_ok("token-ok-full.json", &r);
	assert_string_equal(r.access_token, "valid-42");
	assert_int_equal(r.expires_in, 21599);
	assert_non_null(r.id_token);
	assert_true(strncmp(r.id_token, "eyJhbGciOiJSUzI1NiIs", 20) == 0);
	assert_int_equal(strlen(r.id_token), 116);
	kakao_code_result_wipe(&r);
	assert_true(result_empty(&r));
	kakao_code_result_wipe(&r);		/* twice is fine */
	kakao_code_result_wipe(NULL);
}

static void
test_token_answer_optional_fields(void **state)
{
	struct kakao_code_result	r;

	(void)state;
	parse_ok("token-ok-minimal.json", &r);
	assert_string_equal(r.access_token, "valid-7");
	assert_null(r.id_token);
	assert_int_equal(r.expires_in, 0);
	parse_ok("token-ok-bearer-any-case.json", &r);
	assert_string_equal(r.access_token, "valid-8");
	parse_ok("token-ok-id-token-null.json", &r);
	assert_null(r.id_token);
	parse_ok("token-ok-token68-chars.json", &r);
	assert_string_equal(r.access_token, "aZ09-._~+/==");
	/* Whatever the refresh token is, it is not looked at. */
	parse_ok("token-ok-refresh-token-garbage.json", &r);
	assert_string_equal(r.access_token, "valid-11");
}

static void
test_token_answer_at_limits(void **state)
{
	struct kakao_code_result	r;

	(void)state;
	parse_ok("token-ok-access-token-at-limit.json", &r);
	assert_int_equal(strlen(r.access_token), MAX_KAKAO_TOKEN);
	parse_ok("token-ok-id-token-at-limit.json", &r);
	assert_non_null(r.id_token);
	assert_int_equal(strlen(r.id_token), MAX_ID_TOKEN);
	kakao_code_result_wipe(&r);
}

static void
test_token_answer_all_ok_files(void **state)
{
	static char			names[64][128];
	struct kakao_code_result	r;
	size_t				n, i;

	(void)state;
	n = list_cases("token-ok-", names, 64);
	assert_true(n >= 8);
	for (i = 0; i < n; i++) {
		parse_ok(names[i], &r);
		assert_true(r.access_token[0] != '\0');
		kakao_code_result_wipe(&r);
	}
}

static void
test_token_answer_all_bad_files(void **state)
{
	static const char *required[] = {
		"token-bad-empty.txt", "token-bad-not-json.html",
		"token-bad-not-object.json", "token-bad-access-token-missing.json",
		"token-bad-access-token-quote.json",
		"token-bad-access-token-space.json",
		"token-bad-access-token-nul.json",
		"token-bad-access-token-over-limit.json",
		"token-bad-id-token-over-limit.json",
		"token-bad-token-type-missing.json",
		"token-bad-error-answer.json",
	};
	static char			names[64][128];
	struct kakao_code_result	r;
	struct kl_error			err;
	struct input			in;
	size_t				n, i;

	(void)state;
	n = list_cases("token-bad-", names, 64);
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!has_case(names, n, required[i]))
			fail_msg("missing case %s/%s", data_dir(), required[i]);
	for (i = 0; i < n; i++) {
		read_case(names[i], &in);
		kl_error_clear(&err);
		memset(&r, 0x5a, sizeof(r));	/* parse must clear it */
		if (kakao_token_answer_parse(in.data, in.len, &r, &err) != -1)
			fail_msg("%s accepted", names[i]);
		if (err.status != KL_KAKAO_BAD_RESPONSE)
			fail_msg("%s: status %d", names[i], (int)err.status);
		if (!result_empty(&r))
			fail_msg("%s: result not empty after a failure",
			    names[i]);
		assert_detail_clean(&err, names[i]);
		free_case(&in);
	}
}

static void
test_token_answer_respects_len(void **state)
{
	static const char		 body[] =
	    "{\"access_token\":\"a\",\"token_type\":\"bearer\"}xyz";
	struct kakao_code_result	 r;
	struct kl_error			 err;

	(void)state;
	assert_int_equal(kakao_token_answer_parse(body, sizeof(body) - 4, &r,
	    &err), 0);
	assert_string_equal(r.access_token, "a");
	assert_int_equal(kakao_token_answer_parse(body, sizeof(body) - 5, &r,
	    &err), -1);
	assert_int_equal(kakao_token_answer_parse(body, sizeof(body) - 1, &r,
	    &err), -1);
	assert_int_equal(kakao_token_answer_parse(NULL, 0, &r, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_BAD_RESPONSE);
	assert_int_equal(kakao_token_answer_parse(body, 0, &r, NULL), -1);
}

/* ---- kakao_auth_error_classify ---- */

static enum kl_status
expected_status(const char *expect)
{
	if (strncmp(expect, "invalid_code-", 13) == 0)
		return KL_INVALID_CODE;
	if (strncmp(expect, "config-", 7) == 0)
		return KL_KAKAO_CONFIG;
	if (strncmp(expect, "unavailable-", 12) == 0)
		return KL_KAKAO_UNAVAILABLE;
	if (strncmp(expect, "bad_response-", 13) == 0)
		return KL_KAKAO_BAD_RESPONSE;
	fail_msg("error case with unknown expectation: %s", expect);
	return KL_OK;
}

static void
test_error_all_files(void **state)
{
	static const char *required[] = {
		"error-400-invalid_code-koe320.json",
		"error-400-config-koe303.json", "error-400-config-koe006.json",
		"error-401-config-koe010.json", "error-401-config-koe101.json",
		"error-400-invalid_code-invalid-grant-other-koe.json",
		"error-401-config-invalid-client-no-koe.json",
		"error-400-config-other-koe-400.json",
		"error-429-unavailable-rate-limited.json",
		"error-500-unavailable-server-error.json",
		"error-400-bad_response-garbage.txt",
	};
	static char	names[64][128];
	struct kl_error	err;
	struct input	in;
	enum kl_status	want;
	size_t		n, i;
	long		http;
	char		*end;

	(void)state;
	n = list_cases("error-", names, 64);
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!has_case(names, n, required[i]))
			fail_msg("missing case %s/%s", data_dir(), required[i]);
	for (i = 0; i < n; i++) {
		http = strtol(names[i] + 6, &end, 10);
		assert_true(http >= 100 && http <= 599 && *end == '-');
		want = expected_status(end + 1);
		read_case(names[i], &in);
		kl_error_clear(&err);
		assert_int_equal(kakao_auth_error_classify(http, in.data,
		    in.len, &err), -1);
		if (err.status != want)
			fail_msg("%s: status %d, want %d (%s)", names[i],
			    (int)err.status, (int)want, err.detail);
		assert_detail_clean(&err, names[i]);
		free_case(&in);
	}
}

/* The detail names the KOE code and the HTTP status. */
static void
test_error_detail_names_koe_and_status(void **state)
{
	struct kl_error	err;
	struct input	in;

	(void)state;
	read_case("error-401-config-koe010.json", &in);
	kakao_auth_error_classify(401, in.data, in.len, &err);
	assert_non_null(strstr(err.detail, "KOE010"));
	assert_non_null(strstr(err.detail, "401"));
	free_case(&in);
	/* A KOE field that is not a bare KOE code is not logged. */
	read_case("error-400-bad_response-koe-malformed.json", &in);
	kakao_auth_error_classify(400, in.data, in.len, &err);
	assert_null(strstr(err.detail, "KOE320"));
	free_case(&in);
}

static void
test_error_no_body(void **state)
{
	struct kl_error	err;

	(void)state;
	assert_int_equal(kakao_auth_error_classify(503, NULL, 0, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_UNAVAILABLE);
	assert_int_equal(kakao_auth_error_classify(401, NULL, 0, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_BAD_RESPONSE);
	assert_int_equal(kakao_auth_error_classify(400, "", 0, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_BAD_RESPONSE);
	assert_int_equal(kakao_auth_error_classify(500, NULL, 0, NULL), -1);
}

/* ---- a stand-in server ---- */

enum standin_mode { ANSWER, HANG };

struct standin {
	int			 fd, port;
	pthread_t		 thread;
	pthread_mutex_t		 lock;
	volatile int		 stop;
	/* set by a case */
	enum standin_mode	 mode;
	int			 status;
	char			*answer;	/* malloc()ed */
	size_t			 answer_len;
	/* filled by the server */
	char			 head[8192];
	char			 body[16384];
	size_t			 body_len;
	int			 requests;
};

static struct standin	si;

static size_t
content_length(const char *head)
{
	const char	*p = strcasestr(head, "\r\nContent-Length:");

	return p == NULL ? 0 : (size_t)strtoul(p + 17, NULL, 10);
}

/* Reads one request: the head, then Content-Length bytes of body. */
static void
standin_read(int c, char *buf, size_t cap, size_t *head_len, size_t *total)
{
	size_t	n = 0, want = 0;
	ssize_t	r;
	char	*e;

	*head_len = 0;
	while (n < cap - 1) {
		if ((r = read(c, buf + n, cap - 1 - n)) <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
		if (*head_len == 0 && (e = strstr(buf, "\r\n\r\n")) != NULL) {
			*head_len = (size_t)(e - buf) + 4;
			want = *head_len + content_length(buf);
		}
		if (*head_len != 0 && n >= want)
			break;
	}
	buf[n] = '\0';
	*total = n;
}

static void
standin_serve(int c)
{
	static char	buf[32768];
	char		out[256];
	size_t		head_len, total;
	int		len;
	char		drain;

	standin_read(c, buf, sizeof(buf), &head_len, &total);
	pthread_mutex_lock(&si.lock);
	si.requests++;
	snprintf(si.head, sizeof(si.head), "%.*s", (int)head_len, buf);
	si.body_len = total - head_len < sizeof(si.body) - 1 ?
	    total - head_len : sizeof(si.body) - 1;
	memcpy(si.body, buf + head_len, si.body_len);
	si.body[si.body_len] = '\0';
	pthread_mutex_unlock(&si.lock);
	if (si.mode == HANG) {
		/* Until the client gives up. */
		while (!si.stop && read(c, &drain, 1) > 0)
			;
		return;
	}
	len = snprintf(out, sizeof(out), "HTTP/1.1 %d X\r\n"
	    "Content-Type: application/json;charset=UTF-8\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n", si.status,
	    si.answer_len);
	if (write(c, out, (size_t)len) != len ||
	    write(c, si.answer, si.answer_len) != (ssize_t)si.answer_len)
		(void)0;	/* the client gave up (the size cap) */
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
standin_set(int status, const char *answer, size_t len)
{
	pthread_mutex_lock(&si.lock);
	si.mode = ANSWER;
	si.status = status;
	free(si.answer);
	si.answer = malloc(len + 1);
	assert_non_null(si.answer);
	memcpy(si.answer, answer, len);
	si.answer_len = len;
	si.requests = 0;
	si.head[0] = si.body[0] = '\0';
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

/* The fake's binary: $FAKE_KAKAO, or beside the build this test is in. */
static const char *
fake_path(void)
{
	static const char *paths[] = { "build/fake-kakao",
	    "build/san/fake-kakao", "../fake-kakao", "../../build/fake-kakao" };
	const char	*env = getenv("FAKE_KAKAO");
	size_t		 i;

	if (env != NULL && access(env, X_OK) == 0)
		return env;
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

static int
fake_start(void)
{
	const char	*path = fake_path();
	char		 line[128];
	int		 fds[2];
	FILE		*fp;

	if (path == NULL)
		return -1;
	if (pipe(fds) == -1)
		return -1;
	if ((fake_pid = fork()) == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(path, path, "-p", "0", "-q", (char *)NULL);
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

/* The fake's counters, read with a curl of our own. */
static size_t
stats_write(char *p, size_t size, size_t n, void *ud)
{
	strncat(ud, p, size * n < 255 ? size * n : 255);
	return size * n;
}

static void
fake_stats(long long *requests, long long *connections)
{
	char	 url[64], out[512] = "";
	CURL	*h = curl_easy_init();

	assert_non_null(h);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/__stats", fake_port);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, stats_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_easy_cleanup(h);
	if (sscanf(out, "{\"requests\":%lld,\"connections\":%lld", requests,
	    connections) != 2)
		fail_msg("fake stats: %s", out);
}

/* ---- fixtures ---- */

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
	if (fake_start() == -1)
		fprintf(stderr, "# fake-kakao not found or not started: "
		    "its cases are skipped (make build/fake-kakao)\n");
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	si.stop = 1;
	pthread_join(si.thread, NULL);
	close(si.fd);
	free(si.answer);
	pthread_mutex_destroy(&si.lock);
	if (fake_pid > 0) {
		kill(fake_pid, SIGTERM);
		waitpid(fake_pid, NULL, 0);
	}
	kakao_global_cleanup();
	return 0;
}

static struct kakao_client *
client_at(int port, const char *rest_key, const char *secret,
    struct kakao_gate *gate, long timeout_ms)
{
	static char		 url[64];
	struct kakao_options	 opt;
	struct kakao_client	*kc;
	struct kl_error		 err;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	memset(&opt, 0, sizeof(opt));
	opt.api_url = url;
	opt.auth_url = url;
	opt.rest_api_key = rest_key;
	opt.client_secret = secret;
	opt.client_secret_len = secret != NULL ? strlen(secret) : 0;
	opt.timeout_ms = timeout_ms;
	opt.connect_timeout_ms = 1000;
	opt.gate = gate;
	if ((kc = kakao_client_new(&opt, &err)) == NULL)
		fail_msg("kakao_client_new: %s", err.detail);
	return kc;
}

static void
need_fake(void)
{
	if (fake_port <= 0)
		skip();
}

/* The answer buffer holds nothing of the last answer. */
static void
assert_answer_wiped(const struct kakao_client *kc)
{
	const struct kl_buf	*b = &kc->auth.body;
	size_t			 i;

	if (b->data == NULL)
		return;
	for (i = 0; i < b->cap; i++)
		if (b->data[i] != '\0')
			fail_msg("answer buffer byte %zu not wiped", i);
}

/* ---- the exchange against the fake Kakao ---- */

static void
test_exchange_good_code(void **state)
{
	struct kakao_client		*kc;
	struct kakao_code_request	 rq = { "good-42",
	    "https://app.example/cb", NULL };
	struct kakao_code_result	 r;
	struct kakao_profile		 p;
	struct kl_error			 err;
	long				 us = -1;

	(void)state;
	need_fake();
	kc = client_at(fake_port, FAKE_REST_KEY, NULL, NULL, 3000);
	if (kakao_code_exchange(kc, &rq, &r, &us, &err) != 0)
		fail_msg("exchange: %s", err.detail);
	assert_string_equal(r.access_token, "valid-42");
	assert_int_equal(r.expires_in, 21599);
	assert_null(r.id_token);
	assert_true(us > 0);
	assert_answer_wiped(kc);
	/* The kapi handles of the same client still work beside it. */
	if (kakao_profile_fetch(kc, r.access_token, &p, NULL, &err) != 0)
		fail_msg("profile: %s", err.detail);
	assert_int_equal(p.id, 42);
	kakao_code_result_wipe(&r);
	/* A verifier sent for a code without a challenge: ignored, as by Kakao. */
	rq.code = "good-43";
	rq.code_verifier = VERIFIER;
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), 0);
	assert_string_equal(r.access_token, "valid-43");
	kakao_code_result_wipe(&r);
	kakao_client_free(kc);
}

static void
test_exchange_bad_code(void **state)
{
	struct kakao_client		*kc;
	struct kakao_code_request	 rq = { "bad-code-4711",
	    "https://app.example/cb", VERIFIER };
	struct kakao_code_result	 r;
	struct kl_error			 err;

	(void)state;
	need_fake();
	kc = client_at(fake_port, FAKE_REST_KEY, "s3cr3t-value", NULL, 3000);
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), -1);
	assert_int_equal(err.status, KL_INVALID_CODE);
	assert_non_null(strstr(err.detail, "KOE320"));
	assert_non_null(strstr(err.detail, "400"));
	assert_detail_clean(&err, "bad code");
	assert_true(result_empty(&r));
	assert_answer_wiped(kc);
	kakao_client_free(kc);
}

/* One connection for several exchanges: the handle is kept alive. */
static void
test_exchange_keeps_connection(void **state)
{
	struct kakao_client		*kc;
	/* Codes work once, like Kakao's: three of them. */
	static const char		*codes[] = { "good-7.ua", "good-7.ub",
	    "good-7.uc" };
	struct kakao_code_request	 rq = { NULL, "https://app.example/cb",
	    NULL };
	struct kakao_code_result	 r;
	struct kl_error			 err;
	long long			 req0, conn0, req1, conn1;
	int				 i;

	(void)state;
	need_fake();
	kc = client_at(fake_port, FAKE_REST_KEY, NULL, NULL, 3000);
	fake_stats(&req0, &conn0);
	for (i = 0; i < 3; i++) {
		rq.code = codes[i];
		assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err),
		    0);
		kakao_code_result_wipe(&r);
	}
	fake_stats(&req1, &conn1);
	assert_int_equal(req1 - req0, 4);	/* 3 exchanges, 1 stats */
	assert_int_equal(conn1 - conn0, 2);	/* the client's, the stats' */
	kakao_client_free(kc);
}

/* Neither costs a Kakao call. */
static void
test_exchange_not_configured_or_busy(void **state)
{
	struct kakao_client		*kc;
	struct kakao_gate		*g;
	struct kakao_code_request	 rq = { "good-1",
	    "https://app.example/cb", NULL };
	struct kakao_code_result	 r;
	struct kl_error			 err;
	long long			 req0, conn0, req1, conn1;

	(void)state;
	need_fake();
	fake_stats(&req0, &conn0);
	kc = client_at(fake_port, NULL, NULL, NULL, 3000);
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), -1);
	assert_int_equal(err.status, KL_NOT_CONFIGURED);
	kakao_client_free(kc);
	kc = client_at(fake_port, "", NULL, NULL, 3000);
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), -1);
	assert_int_equal(err.status, KL_NOT_CONFIGURED);
	kakao_client_free(kc);

	g = kakao_gate_new(1, 1, 50, &err);
	assert_non_null(g);
	kc = client_at(fake_port, FAKE_REST_KEY, NULL, g, 3000);
	assert_int_equal(kakao_gate_enter(g, &err), 0);
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_BUSY);
	kakao_gate_leave(g);
	/* The slot is given back after an exchange. */
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), 0);
	kakao_code_result_wipe(&r);
	assert_int_equal(kakao_gate_enter(g, &err), 0);
	kakao_gate_leave(g);
	fake_stats(&req1, &conn1);
	assert_int_equal(req1 - req0, 2);	/* the exchange, 1 stats */
	kakao_client_free(kc);
	kakao_gate_free(g);
}

/* What the caller should have refused never reaches Kakao either. */
static void
test_exchange_refuses_bad_input(void **state)
{
	static char			 long_code[MAX_CODE + 2];
	static char			 long_uri[MAX_URL_LEN + 2];
	struct kakao_client		*kc;
	struct kakao_code_request	 rq;
	struct kakao_code_result	 r;
	struct kl_error			 err;

	(void)state;
	memset(long_code, 'c', sizeof(long_code) - 1);
	memset(long_uri, 'u', sizeof(long_uri) - 1);
	standin_set(200, "{}", 2);
	kc = client_at(si.port, REST_KEY, NULL, NULL, 3000);
	rq = (struct kakao_code_request){ "", "https://a/cb", NULL };
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), -1);
	assert_int_equal(err.status, KL_INVALID_CODE);
	rq.code = long_code;
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), -1);
	assert_int_equal(err.status, KL_INVALID_CODE);
	rq.code = "good-1";
	rq.redirect_uri = long_uri;
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), -1);
	assert_int_equal(err.status, KL_BAD_REQUEST);
	rq.redirect_uri = "";
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), -1);
	assert_int_equal(err.status, KL_BAD_REQUEST);
	rq.redirect_uri = "https://a/cb";
	rq.code_verifier = "short-verifier";
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), -1);
	assert_int_equal(err.status, KL_BAD_REQUEST);
	assert_detail_clean(&err, "short verifier");
	assert_int_equal(si.requests, 0);
	kakao_client_free(kc);
}

/* ---- the exchange against the stand-in ---- */

static const char	good_answer[] = "{\"token_type\":\"bearer\","
    "\"access_token\":\"valid-5\",\"expires_in\":60,"
    "\"refresh_token\":\"refresh-5\",\"id_token\":\"eyJa.eyJb.c2ln\"}";

/* Every value escaped: '&', '=', '+', '%' and blanks survive the trip. */
static void
test_exchange_form_escaped(void **state)
{
	struct kakao_client		*kc;
	struct kakao_code_request	 rq = { "good-5&code=evil+%41 x",
	    "https://app.example/cb?a=1&b=c+d%20e f#g", VERIFIER };
	struct kakao_code_result	 r;
	struct kl_error			 err;

	(void)state;
	standin_set(200, good_answer, strlen(good_answer));
	kc = client_at(si.port, REST_KEY, "s3cr&t=+% x", NULL, 3000);
	if (kakao_code_exchange(kc, &rq, &r, NULL, &err) != 0)
		fail_msg("exchange: %s", err.detail);
	assert_string_equal(r.access_token, "valid-5");
	assert_string_equal(r.id_token, "eyJa.eyJb.c2ln");
	assert_int_equal(r.expires_in, 60);
	kakao_code_result_wipe(&r);
	assert_answer_wiped(kc);
	assert_int_equal(si.requests, 1);
	assert_true(strncmp(si.head, "POST /oauth/token HTTP/1.1\r\n", 28) ==
	    0);
	assert_non_null(strcasestr(si.head, "\r\nContent-Type: "
	    "application/x-www-form-urlencoded"));
	assert_null(strcasestr(si.head, "\r\nAuthorization:"));
	assert_null(strcasestr(si.head, "\r\nExpect:"));
	assert_string_equal(si.body,
	    "grant_type=authorization_code"
	    "&client_id=" REST_KEY
	    "&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fa%3D1%26b%3Dc%2Bd"
	    "%2520e%20f%23g"
	    "&code=good-5%26code%3Devil%2B%2541%20x"
	    "&client_secret=s3cr%26t%3D%2B%25%20x"
	    "&code_verifier=" VERIFIER);
	kakao_client_free(kc);
}

/* No secret configured, no PKCE: neither field is sent. */
static void
test_exchange_secret_only_when_configured(void **state)
{
	struct kakao_client		*kc;
	struct kakao_code_request	 rq = { "good-6", "https://a/cb", NULL };
	struct kakao_code_result	 r;
	struct kl_error			 err;

	(void)state;
	standin_set(200, good_answer, strlen(good_answer));
	kc = client_at(si.port, REST_KEY, NULL, NULL, 3000);
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), 0);
	kakao_code_result_wipe(&r);
	assert_string_equal(si.body, "grant_type=authorization_code"
	    "&client_id=" REST_KEY "&redirect_uri=https%3A%2F%2Fa%2Fcb"
	    "&code=good-6");
	assert_null(strstr(si.body, "client_secret"));
	assert_null(strstr(si.body, "code_verifier"));
	/* The next exchange sends its own form, not a leftover. */
	rq.code = "good-7";
	standin_set(200, good_answer, strlen(good_answer));
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), 0);
	kakao_code_result_wipe(&r);
	assert_non_null(strstr(si.body, "&code=good-7"));
	assert_null(strstr(si.body, "good-6"));
	kakao_client_free(kc);
}

/* An answer fits the buffer as sized before the call (a 3 KB one would
 * have grown it from 1 KB twice): no reallocation left a copy of a token
 * in freed memory. */
static void
test_exchange_answer_buffer_sized_once(void **state)
{
	static char			 answer[4096];
	struct kakao_client		*kc;
	struct kakao_code_request	 rq = { "good-10", "https://a/cb", NULL };
	struct kakao_code_result	 r;
	struct kl_error			 err;
	int				 n;

	(void)state;
	n = snprintf(answer, sizeof(answer), "{\"token_type\":\"bearer\","
	    "\"access_token\":\"valid-10\",\"id_token\":\"a.%0*d.c\"}",
	    3000 - 4, 0);
	assert_true(n > 0 && (size_t)n < sizeof(answer));
	standin_set(200, answer, (size_t)n);
	kc = client_at(si.port, REST_KEY, NULL, NULL, 3000);
	if (kakao_code_exchange(kc, &rq, &r, NULL, &err) != 0)
		fail_msg("exchange: %s", err.detail);
	assert_int_equal(strlen(r.id_token), 3000);
	kakao_code_result_wipe(&r);
	assert_int_equal(kc->auth.body.cap, KAKAO_BUF_KEEP);
	assert_answer_wiped(kc);
	kakao_client_free(kc);
}

/* The secret is main's bytes and their length, not a C string. */
static void
test_exchange_secret_by_length(void **state)
{
	static const char		 bytes[] = "s3cr3t-valueMORE";
	static char			 long_key[MAX_APP_KEY + 2];
	static char			 url[64];
	struct kakao_options		 opt;
	struct kakao_client		*kc;
	struct kakao_code_request	 rq = { "good-12", "https://a/cb", NULL };
	struct kakao_code_result	 r;
	struct kl_error			 err;

	(void)state;
	standin_set(200, good_answer, strlen(good_answer));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", si.port);
	memset(&opt, 0, sizeof(opt));
	opt.api_url = opt.auth_url = url;
	opt.rest_api_key = REST_KEY;
	opt.client_secret = bytes;
	opt.client_secret_len = 12;
	opt.timeout_ms = 3000;
	opt.connect_timeout_ms = 1000;
	if ((kc = kakao_client_new(&opt, &err)) == NULL)
		fail_msg("kakao_client_new: %s", err.detail);
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), 0);
	kakao_code_result_wipe(&r);
	/* The last field, when there is no verifier. */
	assert_true(si.body_len > 27 && strcmp(si.body + si.body_len - 27,
	    "&client_secret=s3cr3t-value") == 0);
	assert_null(strstr(si.body, "MORE"));
	kakao_client_free(kc);
	/* Length 0 is an empty value (curl would take 0 for strlen). */
	opt.client_secret_len = 0;
	if ((kc = kakao_client_new(&opt, &err)) == NULL)
		fail_msg("kakao_client_new: %s", err.detail);
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), 0);
	kakao_code_result_wipe(&r);
	assert_true(si.body_len > 15 && strcmp(si.body + si.body_len - 15,
	    "&client_secret=") == 0);
	kakao_client_free(kc);

	/* Over MAX_CLIENT_SECRET, or a REST API key over MAX_APP_KEY: the
	 * client is refused at start. */
	opt.client_secret_len = MAX_CLIENT_SECRET + 1;
	assert_null(kakao_client_new(&opt, &err));
	assert_int_equal(err.status, KL_BAD_CONFIG);
	opt.client_secret_len = 12;
	memset(long_key, 'k', MAX_APP_KEY + 1);
	opt.rest_api_key = long_key;
	assert_null(kakao_client_new(&opt, &err));
	assert_int_equal(err.status, KL_BAD_CONFIG);
	assert_detail_clean(&err, "long key");
}

static void
test_exchange_kakao_refusals(void **state)
{
	static const struct {
		int		 status;
		const char	*answer;
		enum kl_status	 want;
	} cases[] = {
		{ 401, "{\"error\":\"invalid_client\",\"error_description\":"
		    "\"Bad client credentials\",\"error_code\":\"KOE010\"}",
		    KL_KAKAO_CONFIG },
		{ 400, "{\"error\":\"invalid_grant\",\"error_description\":"
		    "\"redirect mismatch\",\"error_code\":\"KOE303\"}",
		    KL_KAKAO_CONFIG },
		{ 503, "<html>maintenance</html>", KL_KAKAO_UNAVAILABLE },
		{ 200, "{\"error\":\"x\"}", KL_KAKAO_BAD_RESPONSE },
		{ 200, "{\"access_token\":\"a b\",\"token_type\":\"bearer\"}",
		    KL_KAKAO_BAD_RESPONSE },
		{ 302, "", KL_KAKAO_BAD_RESPONSE },
	};
	struct kakao_client		*kc;
	struct kakao_code_request	 rq = { "good-8", "https://a/cb",
	    VERIFIER };
	struct kakao_code_result	 r;
	struct kl_error			 err;
	size_t				 i;

	(void)state;
	kc = client_at(si.port, REST_KEY, "s3cr3t-value", NULL, 3000);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		standin_set(cases[i].status, cases[i].answer,
		    strlen(cases[i].answer));
		kl_error_clear(&err);
		assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err),
		    -1);
		if (err.status != cases[i].want)
			fail_msg("%d %s: status %d (%s)", cases[i].status,
			    cases[i].answer, (int)err.status, err.detail);
		assert_true(result_empty(&r));
		assert_detail_clean(&err, cases[i].answer);
		assert_answer_wiped(kc);
	}
	kakao_client_free(kc);
}

static void
test_exchange_size_cap_and_timeouts(void **state)
{
	struct kakao_client		*kc;
	struct kakao_code_request	 rq = { "good-9", "https://a/cb", NULL };
	struct kakao_code_result	 r;
	struct kl_error			 err;
	char				*big;
	int				 fd, port;

	(void)state;
	big = malloc(MAX_KAKAO_BODY + 2);
	assert_non_null(big);
	memset(big, ' ', MAX_KAKAO_BODY + 1);
	standin_set(200, big, MAX_KAKAO_BODY + 1);
	free(big);
	kc = client_at(si.port, REST_KEY, NULL, NULL, 3000);
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_BAD_RESPONSE);
	assert_answer_wiped(kc);
	kakao_client_free(kc);

	/* Connected, sent, never answered. */
	standin_set(200, "", 0);
	si.mode = HANG;
	kc = client_at(si.port, REST_KEY, NULL, NULL, 300);
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_TIMEOUT);
	kakao_client_free(kc);
	si.mode = ANSWER;

	/* Nobody listening. */
	fd = listen_loopback(&port);
	assert_true(fd >= 0);
	close(fd);
	kc = client_at(port, REST_KEY, NULL, NULL, 300);
	assert_int_equal(kakao_code_exchange(kc, &rq, &r, NULL, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_UNAVAILABLE);
	kakao_client_free(kc);
}

/* ---- the JWKS fetch ---- */

static struct kakao_jwks_fetcher *
fetcher_at(int port)
{
	static char			 url[64];
	struct kakao_options		 opt;
	struct kakao_jwks_fetcher	*f;
	struct kl_error			 err;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	memset(&opt, 0, sizeof(opt));
	opt.auth_url = url;
	opt.timeout_ms = 2000;
	opt.connect_timeout_ms = 1000;
	if ((f = kakao_jwks_fetcher_new(&opt, &err)) == NULL)
		fail_msg("kakao_jwks_fetcher_new: %s", err.detail);
	return f;
}

static void
test_jwks_fetch(void **state)
{
	static const char		 jwks[] = "{\"keys\":[{\"kid\":\"k1\","
	    "\"kty\":\"RSA\",\"alg\":\"RS256\",\"use\":\"sig\",\"n\":\"q80\","
	    "\"e\":\"AQAB\"}]}";
	struct kakao_jwks_fetcher	*f = fetcher_at(si.port);
	struct kl_error			 err;
	char				*body = (char *)1;
	size_t				 len = 1;

	(void)state;
	standin_set(200, jwks, strlen(jwks));
	if (kakao_jwks_fetch(f, &body, &len, &err) != 0)
		fail_msg("jwks: %s", err.detail);
	assert_int_equal(len, strlen(jwks));
	assert_string_equal(body, jwks);
	free(body);
	assert_true(strncmp(si.head, "GET /.well-known/jwks.json HTTP/1.1\r\n",
	    37) == 0);
	/* Twice: the handle is reused. */
	assert_int_equal(kakao_jwks_fetch(f, &body, &len, &err), 0);
	assert_string_equal(body, jwks);
	free(body);

	standin_set(500, "oops", 4);
	assert_int_equal(kakao_jwks_fetch(f, &body, &len, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_UNAVAILABLE);
	assert_null(body);
	assert_int_equal(len, 0);
	standin_set(404, "nope", 4);
	assert_int_equal(kakao_jwks_fetch(f, &body, &len, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_BAD_RESPONSE);
	assert_null(body);
	kakao_jwks_fetcher_free(f);
}

static void
test_jwks_limits_and_config(void **state)
{
	struct kakao_jwks_fetcher	*f;
	struct kakao_options		 opt;
	struct kl_error			 err;
	char				*body, *big;
	size_t				 len;

	(void)state;
	big = malloc(MAX_KAKAO_BODY + 1);
	assert_non_null(big);
	memset(big, ' ', MAX_KAKAO_BODY + 1);
	standin_set(200, big, MAX_KAKAO_BODY + 1);
	free(big);
	f = fetcher_at(si.port);
	assert_int_equal(kakao_jwks_fetch(f, &body, &len, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_BAD_RESPONSE);
	assert_null(body);
	kakao_jwks_fetcher_free(f);

	assert_int_equal(kakao_jwks_fetch(NULL, &body, &len, &err), -1);
	assert_int_equal(err.status, KL_NOT_CONFIGURED);
	memset(&opt, 0, sizeof(opt));
	assert_null(kakao_jwks_fetcher_new(&opt, &err));
	assert_int_equal(err.status, KL_BAD_CONFIG);
	opt.auth_url = "";
	assert_null(kakao_jwks_fetcher_new(&opt, &err));
	kakao_jwks_fetcher_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_answer_full),
		cmocka_unit_test(test_token_answer_optional_fields),
		cmocka_unit_test(test_token_answer_at_limits),
		cmocka_unit_test(test_token_answer_all_ok_files),
		cmocka_unit_test(test_token_answer_all_bad_files),
		cmocka_unit_test(test_token_answer_respects_len),
		cmocka_unit_test(test_error_all_files),
		cmocka_unit_test(test_error_detail_names_koe_and_status),
		cmocka_unit_test(test_error_no_body),
		cmocka_unit_test(test_exchange_good_code),
		cmocka_unit_test(test_exchange_bad_code),
		cmocka_unit_test(test_exchange_keeps_connection),
		cmocka_unit_test(test_exchange_not_configured_or_busy),
		cmocka_unit_test(test_exchange_refuses_bad_input),
		cmocka_unit_test(test_exchange_form_escaped),
		cmocka_unit_test(test_exchange_secret_only_when_configured),
		cmocka_unit_test(test_exchange_answer_buffer_sized_once),
		cmocka_unit_test(test_exchange_secret_by_length),
		cmocka_unit_test(test_exchange_kakao_refusals),
		cmocka_unit_test(test_exchange_size_cap_and_timeouts),
		cmocka_unit_test(test_jwks_fetch),
		cmocka_unit_test(test_jwks_limits_and_config),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("kakao_auth", tests, group_setup,
	    group_teardown);
}
