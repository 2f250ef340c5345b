/*
 * test_handlers.c: the input side of the handlers (app/handlers.c):
 * handler_parse_authorization(), which takes the Kakao access token out of
 * an Authorization value, raw (as the old front end sends it) or after
 * "Bearer", and refuses anything that is not one token68 of at most
 * MAX_KAKAO_TOKEN characters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "body.h"
#include "handlers.h"
#include "kakao.h"
#include "kakao_gate.h"
#include "kakao_reject.h"
#include "kl_clock.h"
#include "kl_limits.h"
#include "metrics.h"
#include "store.h"
#include "store_admin.h"
#include "token.h"

#include "unit_util.h"

#define SENTINEL	'#'

/* The buffer the handler passes: MAX_KAKAO_TOKEN + 1 bytes, and a guard
 * after it that must stay untouched. */
struct tokbuf {
	char	token[MAX_KAKAO_TOKEN + 1];
	char	guard[16];
};

static void
expect_token(const char *value, const char *want)
{
	struct tokbuf	b;
	struct kl_error	err;
	size_t		i, n = strlen(want);

	memset(&b, SENTINEL, sizeof(b));
	kl_error_clear(&err);
	if (handler_parse_authorization(value, b.token, &err) != 0)
		fail_msg("refused \"%.60s\": %s", value, err.detail);
	assert_int_equal(strlen(b.token), n);
	assert_memory_equal(b.token, want, n);
	assert_int_equal(b.token[n], '\0');
	for (i = 0; i < sizeof(b.guard); i++)
		assert_int_equal(b.guard[i], SENTINEL);
}

static void
expect_refused(const char *value, const char *what)
{
	struct tokbuf	b;
	struct kl_error	err;
	size_t		i;

	memset(&b, SENTINEL, sizeof(b));
	kl_error_clear(&err);
	if (handler_parse_authorization(value, b.token, &err) != -1)
		fail_msg("accepted %s: token \"%.60s\"", what, b.token);
	assert_int_equal(err.status, KL_BAD_TOKEN);
	assert_true(err.detail[0] != '\0');
	/* Nothing of the value is handed on. */
	assert_int_equal(b.token[0], '\0');
	for (i = 0; i < sizeof(b.guard); i++)
		assert_int_equal(b.guard[i], SENTINEL);
}

static char *
repeat(char c, size_t n, const char *prefix)
{
	size_t	 plen = strlen(prefix);
	char	*s = malloc(plen + n + 1);

	assert_non_null(s);
	memcpy(s, prefix, plen);
	memset(s + plen, c, n);
	s[plen + n] = '\0';
	return s;
}

static void
test_raw_token(void **state)
{
	(void)state;
	expect_token("abc", "abc");
	expect_token("xS9-_.~+/ABCdef0123456789", "xS9-_.~+/ABCdef0123456789");
	expect_token("kDF3w9sl_Zx8FjwPq0yHhW1vGqZr2TnAAAAF",
	    "kDF3w9sl_Zx8FjwPq0yHhW1vGqZr2TnAAAAF");
	/* A raw token that happens to start with the scheme's letters. */
	expect_token("BearerToken123", "BearerToken123");
}

static void
test_bearer_scheme(void **state)
{
	(void)state;
	expect_token("Bearer x", "x");
	expect_token("bearer x", "x");
	expect_token("BEARER x", "x");
	expect_token("BeArEr abc.def", "abc.def");
	expect_token("Bearer  x", "x");		/* two spaces */
	expect_token("Bearer     x", "x");
}

static void
test_surrounding_whitespace(void **state)
{
	(void)state;
	expect_token("  abc  ", "abc");
	expect_token("\tabc\t", "abc");
	expect_token(" \t Bearer xyz \t ", "xyz");
	expect_token("\tBearer xyz", "xyz");
	expect_token("Bearer xyz\t", "xyz");
}

static void
test_bearer_alone_and_empty(void **state)
{
	(void)state;
	expect_refused("Bearer", "Bearer alone");
	expect_refused("bearer", "bearer alone");
	expect_refused("Bearer ", "Bearer and a space");
	expect_refused("Bearer    ", "Bearer and spaces");
	expect_refused("  Bearer  \t", "Bearer and blanks");
	expect_refused("", "empty");
	expect_refused("   ", "spaces");
	expect_refused("\t", "tab");
}

/*
 * "Bearer" followed only by blanks is an empty token. The trailing blanks
 * are trimmed first, but the skip of spaces after "Bearer" then runs past
 * the trimmed end, so the length (end - p) goes negative and wraps: the
 * value is refused, but as "token longer than 1024", which is what the log
 * then says. The refusal must come from the emptiness check.
 */
static void
test_bearer_blank_is_empty_not_too_long(void **state)
{
	static const char *values[] = { "Bearer ", "Bearer   ", "Bearer \t" };
	struct tokbuf	b;
	struct kl_error	err;
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		kl_error_clear(&err);
		assert_int_equal(handler_parse_authorization(values[i],
		    b.token, &err), -1);
		assert_int_equal(err.status, KL_BAD_TOKEN);
		if (strstr(err.detail, "longer") != NULL)
			fail_msg("\"%s\" refused as \"%s\": the length "
			    "wrapped around", values[i], err.detail);
	}
}

static void
test_null_value(void **state)
{
	struct tokbuf	b;
	struct kl_error	err;

	(void)state;
	memset(&b, SENTINEL, sizeof(b));
	assert_int_equal(handler_parse_authorization(NULL, b.token, &err), -1);
	assert_int_equal(err.status, KL_BAD_TOKEN);
	assert_int_equal(b.token[0], '\0');
}

static void
test_other_schemes(void **state)
{
	(void)state;
	expect_refused("Basic abc", "Basic");
	expect_refused("Basic dXNlcjpwYXNz", "Basic");
	expect_refused("KakaoAK abc", "KakaoAK");
	expect_refused("Digest username=\"x\"", "Digest");
	expect_refused("Bearer abc def", "two tokens after Bearer");
	expect_refused("Bearer Bearer abc", "Bearer twice");
	expect_refused("Bearer\tabc", "tab after Bearer");
	expect_refused("Bearer: abc", "colon after Bearer");
}

static void
test_bad_characters(void **state)
{
	(void)state;
	expect_refused("abc\r\ndef", "CR LF inside");
	expect_refused("abc\r\n", "CR LF at the end");
	expect_refused("abc\n", "LF at the end");
	expect_refused("abc\r", "CR at the end");
	expect_refused("\r\nabc", "CR LF at the start");
	expect_refused("Bearer abc\r\nX-Injected: 1", "header injection");
	expect_refused("abc def", "space inside");
	expect_refused("abc\tdef", "tab inside");
	expect_refused("abc\xed\x95\x9c", "non-ASCII bytes");
	expect_refused("\xff\xfe", "non-ASCII bytes");
	expect_refused("Bearer \xc2\xa0x", "no-break space");
	expect_refused("abc\"def", "quote");
	expect_refused("abc,def", "comma");
	expect_refused("abc;def", "semicolon");
	expect_refused("abc\x7f", "DEL");
	expect_refused("abc\x01", "control");
}

static void
test_padding(void **state)
{
	(void)state;
	expect_token("abc=", "abc=");
	expect_token("abc==", "abc==");
	expect_token("Bearer abc==", "abc==");
	expect_refused("ab=c", "'=' in the middle");
	expect_refused("a=b=", "'=' in the middle");
	expect_refused("=abc", "'=' at the start");
	expect_refused("=", "only '='");
	expect_refused("Bearer ==", "only '=' after Bearer");
}

static void
test_length_limits(void **state)
{
	char	*s;

	(void)state;
	s = repeat('a', MAX_KAKAO_TOKEN, "");
	expect_token(s, s);
	free(s);

	s = repeat('a', MAX_KAKAO_TOKEN + 1, "");
	expect_refused(s, "MAX_KAKAO_TOKEN + 1 characters");
	free(s);

	s = repeat('b', MAX_KAKAO_TOKEN, "Bearer ");
	expect_token(s, s + 7);
	free(s);

	s = repeat('b', MAX_KAKAO_TOKEN + 1, "Bearer ");
	expect_refused(s, "Bearer and MAX_KAKAO_TOKEN + 1 characters");
	free(s);

	/* A short token padded with blanks past the whole-header limit. */
	s = repeat(' ', MAX_AUTH_HEADER, "abc");
	expect_refused(s, "a value over MAX_AUTH_HEADER");
	free(s);

	s = repeat('c', MAX_AUTH_HEADER + 1, "");
	expect_refused(s, "a value over MAX_AUTH_HEADER");
	free(s);

	s = repeat('c', 100000, "Bearer ");
	expect_refused(s, "a very long value");
	free(s);
}

static void
test_detail_has_no_token(void **state)
{
	struct tokbuf	b;
	struct kl_error	err;

	(void)state;
	assert_int_equal(handler_parse_authorization("Bearer secret-tok en",
	    b.token, &err), -1);
	assert_null(strstr(err.detail, "secret-tok"));
}

/* ---- handler_login against a stand-in for kapi.kakao.com ----
 *
 * A small HTTP server on 127.0.0.1 answers every request with the status
 * and body the test set, and keeps the last request head it saw. The
 * handler runs with a real store (in a temp dir), a real token context and
 * a real Kakao client pointed at that server.
 */

struct fake_kapi {
	int		 fd;
	int		 port;
	pthread_t	 thread;
	pthread_mutex_t	 lock;
	volatile int	 stop;
	int		 status;
	char		 body[4096];
	char		 last_head[4096];
	int		 requests;
};

static void *
fake_kapi_run(void *arg)
{
	struct fake_kapi	*fk = arg;
	struct pollfd		 pfd;
	char			 head[4096], out[8192];
	size_t			 n;
	ssize_t			 r;
	int			 c, len;

	while (!fk->stop) {
		pfd.fd = fk->fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if ((c = accept(fk->fd, NULL, NULL)) == -1)
			continue;
		n = 0;
		while (n < sizeof(head) - 1) {
			if ((r = read(c, head + n, sizeof(head) - 1 - n)) <= 0)
				break;
			n += (size_t)r;
			head[n] = '\0';
			if (strstr(head, "\r\n\r\n") != NULL)
				break;
		}
		head[n] = '\0';
		pthread_mutex_lock(&fk->lock);
		snprintf(fk->last_head, sizeof(fk->last_head), "%s", head);
		fk->requests++;
		len = snprintf(out, sizeof(out), "HTTP/1.1 %d X\r\n"
		    "Content-Type: application/json;charset=UTF-8\r\n"
		    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		    fk->status, strlen(fk->body), fk->body);
		pthread_mutex_unlock(&fk->lock);
		if (write(c, out, (size_t)len) != len)
			(void)0;
		close(c);
	}
	return NULL;
}

static void
fake_kapi_set(struct fake_kapi *fk, int status, const char *body)
{
	pthread_mutex_lock(&fk->lock);
	fk->status = status;
	snprintf(fk->body, sizeof(fk->body), "%s", body);
	pthread_mutex_unlock(&fk->lock);
}

struct login_fixture {
	struct fake_kapi	 kapi;
	char			 home[64];
	struct config		 cfg;
	struct token_ctx	 token;
	struct store		*store;
	struct kakao_client	*kakao;
	struct handler_ctx	 ctx;
};

static int
login_setup(void **state)
{
	static const char	 secret[] = "test-secret-0123456789abcdef-0123456789";
	struct login_fixture	*fx = calloc(1, sizeof(*fx));
	struct sockaddr_in	 sin;
	socklen_t		 slen = sizeof(sin);
	struct kakao_options	 opt;
	struct kl_error		 err;
	char			 url[64], keyfile[96];
	int			 fd;

	if (fx == NULL)
		return -1;
	/* The stand-in server. */
	fx->kapi.fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fx->kapi.fd == -1 ||
	    bind(fx->kapi.fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fx->kapi.fd, 16) == -1 ||
	    getsockname(fx->kapi.fd, (struct sockaddr *)&sin, &slen) == -1)
		return -1;
	fx->kapi.port = ntohs(sin.sin_port);
	pthread_mutex_init(&fx->kapi.lock, NULL);
	fake_kapi_set(&fx->kapi, 500, "{}");
	if (pthread_create(&fx->kapi.thread, NULL, fake_kapi_run,
	    &fx->kapi) != 0)
		return -1;

	config_defaults(&fx->cfg);
	snprintf(fx->home, sizeof(fx->home), "/tmp/kl-test-handlers-XXXXXX");
	if (mkdtemp(fx->home) == NULL)
		return -1;
	snprintf(keyfile, sizeof(keyfile), "%s/jwt.key", fx->home);
	if ((fd = open(keyfile, O_WRONLY | O_CREAT | O_EXCL, 0600)) == -1 ||
	    write(fd, secret, strlen(secret)) != (ssize_t)strlen(secret))
		return -1;
	close(fd);
	if (token_init(&fx->token, keyfile, "test-issuer", 3600, &err) != 0 ||
	    store_open(&fx->store, fx->home, DURABILITY_NOSYNC, &err) != 0 ||
	    kakao_global_init(&err) != 0)
		return -1;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", fx->kapi.port);
	memset(&opt, 0, sizeof(opt));
	opt.api_url = url;
	opt.timeout_ms = 5000;
	opt.connect_timeout_ms = 2000;
	if ((fx->kakao = kakao_client_new(&opt, &err)) == NULL)
		return -1;
	fx->ctx.cfg = &fx->cfg;
	fx->ctx.token = &fx->token;
	fx->ctx.store = fx->store;
	fx->ctx.kakao = fx->kakao;
	*state = fx;
	return 0;
}

static int
login_teardown(void **state)
{
	struct login_fixture	*fx = *state;

	kakao_client_free(fx->kakao);
	kakao_global_cleanup();
	store_close(fx->store);
	token_wipe(&fx->token);
	fx->kapi.stop = 1;
	pthread_join(fx->kapi.thread, NULL);
	close(fx->kapi.fd);
	pthread_mutex_destroy(&fx->kapi.lock);
	remove_tree(fx->home);
	free(fx);
	return 0;
}

static int
call_login(struct login_fixture *fx, const char *authorization,
    struct http_response *resp, struct kl_error *err)
{
	struct http_request	req;

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.path = "/users/kakao/login";
	req.authorization = authorization;
	req.authorization_count = authorization != NULL ? 1 : 0;
	memset(resp, 0, sizeof(*resp));
	kl_error_clear(err);
	return handler_login(&fx->ctx, &req, resp, err);
}

static void
test_login_success(void **state)
{
	struct login_fixture	*fx = *state;
	struct http_response	 resp;
	struct kl_error		 err;
	struct token_claims	 claims;
	json_t			*root, *user;
	json_error_t		 jerr;
	uint64_t		 first_id;

	fake_kapi_set(&fx->kapi, 200, "{\"id\":1855599935,\"kakao_account\":"
	    "{\"profile\":{\"nickname\":\"홍길동\"},\"is_email_valid\":true,"
	    "\"is_email_verified\":true,\"email\":\"h@example.com\"}}");
	if (call_login(fx, "Bearer kakao-token-1", &resp, &err) != 0)
		fail_msg("login failed: %s", err.detail);
	assert_int_equal(resp.status, 200);
	assert_non_null(resp.body.data);
	assert_true(resp.user_id > 0);
	/* The token went to Kakao as a Bearer token. */
	pthread_mutex_lock(&fx->kapi.lock);
	assert_non_null(strstr(fx->kapi.last_head, "GET /v2/user/me "));
	assert_non_null(strstr(fx->kapi.last_head,
	    "Authorization: Bearer kakao-token-1\r\n"));
	pthread_mutex_unlock(&fx->kapi.lock);

	root = json_loads(resp.body.data, 0, &jerr);
	if (root == NULL)
		fail_msg("answer is not JSON: %s", resp.body.data);
	assert_string_equal(json_string_value(json_object_get(root,
	    "message")), "SUCCESS");
	assert_true(json_is_string(json_object_get(root, "access_token")));
	/* Not asked for: no legacy key. */
	assert_null(json_object_get(root, "acess_token"));
	if (token_verify(&fx->token, json_string_value(json_object_get(root,
	    "access_token")), time(NULL), &claims, &err) != 0)
		fail_msg("issued token does not verify: %s", err.detail);
	assert_int_equal(claims.user_id, resp.user_id);
	user = json_object_get(root, "user");
	assert_true(json_is_object(user));
	assert_int_equal(json_integer_value(json_object_get(user, "id")),
	    resp.user_id);
	assert_int_equal(json_integer_value(json_object_get(user,
	    "kakao_id")), 1855599935);
	assert_string_equal(json_string_value(json_object_get(user,
	    "nickname")), "홍길동");
	assert_string_equal(json_string_value(json_object_get(user, "email")),
	    "h@example.com");
	assert_true(json_is_true(json_object_get(user, "email_verified")));
	assert_true(json_is_null(json_object_get(user, "profile_image")));
	assert_int_equal(json_integer_value(json_object_get(user,
	    "login_count")), 1);
	json_decref(root);
	http_response_free(&resp);
	first_id = resp.user_id;

	/* Again, raw token, with the legacy key asked for. */
	fx->cfg.legacy_acess_token = true;
	if (call_login(fx, "kakao-token-2", &resp, &err) != 0)
		fail_msg("second login failed: %s", err.detail);
	assert_int_equal(resp.user_id, first_id);
	root = json_loads(resp.body.data, 0, &jerr);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root,
	    "acess_token")), json_string_value(json_object_get(root,
	    "access_token")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    root, "user"), "login_count")), 2);
	json_decref(root);
	http_response_free(&resp);
}

/* A user the admin tool deactivated: Kakao says the token is good, the
 * login is refused (403 USER_DEACTIVATED) and nothing is written. */
static void
test_login_deactivated_refused(void **state)
{
	struct login_fixture	*fx = *state;
	struct http_response	 resp;
	struct kl_error		 err;
	struct store_user	 u;
	int			 revoked;

	fake_kapi_set(&fx->kapi, 200, "{\"id\":4242}");
	if (call_login(fx, "Bearer kakao-token-d", &resp, &err) != 0)
		fail_msg("login failed: %s", err.detail);
	http_response_free(&resp);
	assert_int_equal(store_user_deactivate(fx->store, resp.user_id, true,
	    time(NULL), &u, &revoked, &err), 0);
	assert_int_equal(revoked, 1);
	assert_int_equal(call_login(fx, "Bearer kakao-token-d", &resp, &err),
	    -1);
	assert_int_equal(err.status, KL_USER_DEACTIVATED);
	assert_int_equal(error_http_status(err.status), 403);
	assert_string_equal(error_message(err.status), "USER_DEACTIVATED");
	http_response_free(&resp);
	assert_int_equal(store_user_get(fx->store, 4242, &u, &err), 0);
	assert_int_equal(u.login_count, 1);
	assert_int_equal(u.status, STORE_USER_DEACTIVATED);
}

/* Strings Kakao sends come back in our answer exactly, whatever they hold:
 * quotes, backslashes, control characters, "</script>", multi-byte text. */
static void
test_login_answer_escapes_strings(void **state)
{
	struct login_fixture	*fx = *state;
	struct http_response	 resp;
	struct kl_error		 err;
	json_t			*root, *user;
	json_error_t		 jerr;
	size_t			 i;

	fake_kapi_set(&fx->kapi, 200, "{\"id\":77,\"kakao_account\":"
	    "{\"profile\":{\"nickname\":\"a\\\"b\\\\c\\n\\t\\u0001\\u001f"
	    "</script>\\u007f\\u2028김\",\"profile_image_url\":"
	    "\"http://x/?a=\\\"1\\\"\"},\"is_email_valid\":true,"
	    "\"is_email_verified\":false,\"email\":\"q\\\"@example.com\"}}");
	if (call_login(fx, "Bearer kakao-token-esc", &resp, &err) != 0)
		fail_msg("login failed: %s", err.detail);
	root = json_loads(resp.body.data, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		fail_msg("answer is not JSON (%s): %s", jerr.text, resp.body.data);
	user = json_object_get(root, "user");
	assert_string_equal(json_string_value(json_object_get(user,
	    "nickname")), "a\"b\\c\n\t\x01\x1f</script>\x7f\xe2\x80\xa8김");
	assert_string_equal(json_string_value(json_object_get(user, "email")),
	    "q\"@example.com");
	assert_true(json_is_false(json_object_get(user, "email_verified")));
	assert_string_equal(json_string_value(json_object_get(user,
	    "profile_image")), "http://x/?a=\"1\"");
	assert_string_equal(json_string_value(json_object_get(user,
	    "status")), "active");
	/* Raw control bytes never reach the answer. */
	for (i = 0; resp.body.data[i] != '\0'; i++)
		assert_true((unsigned char)resp.body.data[i] >= 0x20);
	json_decref(root);
	http_response_free(&resp);
}

/* U+2028 and U+2029 are legal raw in JSON but end a line in JavaScript
 * before ES2019: an answer embedded in a script must carry them escaped. */
static void
test_login_answer_escapes_line_separators(void **state)
{
	struct login_fixture	*fx = *state;
	struct http_response	 resp;
	struct kl_error		 err;
	json_t			*root, *user;
	json_error_t		 jerr;

	fake_kapi_set(&fx->kapi, 200, "{\"id\":78,\"kakao_account\":"
	    "{\"profile\":{\"nickname\":\"a\xe2\x80\xa8" "b\\u2029c\xe2\x80\xa7"
	    "\xe2\x80\xaa\"},\"email\":\"x\\u2028@example.com\"}}");
	if (call_login(fx, "Bearer kakao-token-ls", &resp, &err) != 0)
		fail_msg("login failed: %s", err.detail);
	/* Never raw in the bytes... */
	if (strstr(resp.body.data, "\xe2\x80\xa8") != NULL ||
	    strstr(resp.body.data, "\xe2\x80\xa9") != NULL)
		fail_msg("raw U+2028/U+2029 in the answer: %s", resp.body.data);
	assert_non_null(strstr(resp.body.data, "a\\u2028b\\u2029c"));
	/* ...and the same text once decoded; neighbours stay as they are. */
	root = json_loads(resp.body.data, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		fail_msg("answer is not JSON (%s): %s", jerr.text, resp.body.data);
	user = json_object_get(root, "user");
	assert_string_equal(json_string_value(json_object_get(user,
	    "nickname")), "a\xe2\x80\xa8" "b\xe2\x80\xa9" "c\xe2\x80\xa7\xe2\x80\xaa");
	assert_string_equal(json_string_value(json_object_get(user, "email")),
	    "x\xe2\x80\xa8@example.com");
	json_decref(root);
	http_response_free(&resp);
}

static void
test_login_bad_authorization_does_not_call_kakao(void **state)
{
	struct login_fixture	*fx = *state;
	struct http_request	 req;
	struct http_response	 resp;
	struct kl_error		 err;
	int			 before;

	pthread_mutex_lock(&fx->kapi.lock);
	before = fx->kapi.requests;
	pthread_mutex_unlock(&fx->kapi.lock);
	assert_int_equal(call_login(fx, NULL, &resp, &err), -1);
	assert_int_equal(err.status, KL_BAD_TOKEN);
	assert_int_equal(call_login(fx, "Basic abc", &resp, &err), -1);
	assert_int_equal(err.status, KL_BAD_TOKEN);
	/* Two Authorization headers. */
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.path = "/users/kakao/login";
	req.authorization = "Bearer abc";
	req.authorization_count = 2;
	assert_int_equal(handler_login(&fx->ctx, &req, &resp, &err), -1);
	assert_int_equal(err.status, KL_BAD_TOKEN);
	assert_null(resp.body.data);
	pthread_mutex_lock(&fx->kapi.lock);
	assert_int_equal(fx->kapi.requests, before);
	pthread_mutex_unlock(&fx->kapi.lock);
}

static void
test_login_kakao_failures(void **state)
{
	static const struct {
		int		 status;
		const char	*body;
		enum kl_status	 want;
	} cases[] = {
		{ 401, "{\"msg\":\"this access token does not exist\","
		  "\"code\":-401}", KL_KAKAO_REJECTED },
		{ 200, "{\"connected_at\":\"2021-08-18T08:54:05Z\"}",
		  KL_KAKAO_BAD_RESPONSE },
		{ 200, "<html>oops</html>", KL_KAKAO_BAD_RESPONSE },
		{ 200, "", KL_KAKAO_BAD_RESPONSE },
		{ 503, "{\"msg\":\"service check\",\"code\":-9798}",
		  KL_KAKAO_UNAVAILABLE },
	};
	struct login_fixture	*fx = *state;
	struct http_response	 resp;
	struct kl_error		 err;
	size_t			 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_kapi_set(&fx->kapi, cases[i].status, cases[i].body);
		assert_int_equal(call_login(fx, "Bearer tok", &resp, &err), -1);
		if (err.status != cases[i].want)
			fail_msg("kakao %d %s: status %d (%s), want %d",
			    cases[i].status, cases[i].body, (int)err.status,
			    err.detail, (int)cases[i].want);
		assert_null(resp.body.data);
		assert_int_equal(resp.user_id, 0);
	}
}

static int
kapi_requests(struct fake_kapi *fk)
{
	int	n;

	pthread_mutex_lock(&fk->lock);
	n = fk->requests;
	pthread_mutex_unlock(&fk->lock);
	return n;
}

/* The fixture's client again, with a reject cache and a gate. */
static struct kakao_client *
limited_client(struct login_fixture *fx, struct kakao_reject *rc,
    struct kakao_gate *g)
{
	struct kakao_options	 opt;
	struct kakao_client	*kc;
	struct kl_error		 err;
	char			 url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", fx->kapi.port);
	memset(&opt, 0, sizeof(opt));
	opt.api_url = url;
	opt.timeout_ms = 5000;
	opt.connect_timeout_ms = 2000;
	opt.reject = rc;
	opt.gate = g;
	if ((kc = kakao_client_new(&opt, &err)) == NULL)
		fail_msg("kakao_client_new: %s", err.detail);
	return kc;
}

/* A token Kakao refused is refused again, the same way, without asking
 * Kakao; other failures are not remembered. */
static void
test_login_remembers_rejected_token(void **state)
{
	struct login_fixture	*fx = *state;
	struct kakao_reject	*rc;
	struct kakao_client	*plain = fx->ctx.kakao;
	struct http_response	 resp;
	struct kl_error		 err;
	int			 i, before;

	rc = kakao_reject_new(KAKAO_REJECT_SLOTS, KAKAO_REJECT_TTL_S, NULL,
	    &err);
	assert_non_null(rc);
	fx->ctx.kakao = limited_client(fx, rc, NULL);
	fake_kapi_set(&fx->kapi, 401, "{\"msg\":\"this access token does "
	    "not exist\",\"code\":-401}");
	before = kapi_requests(&fx->kapi);
	for (i = 0; i < 5; i++) {
		assert_int_equal(call_login(fx, "Bearer rej-1", &resp, &err),
		    -1);
		assert_int_equal(err.status, KL_KAKAO_REJECTED);
		assert_null(resp.body.data);
	}
	assert_int_equal(kapi_requests(&fx->kapi), before + 1);
	/* The raw form of the same token is the same token. */
	assert_int_equal(call_login(fx, "rej-1", &resp, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_REJECTED);
	assert_int_equal(kapi_requests(&fx->kapi), before + 1);
	/* Kakao in trouble is not the token's fault: asked every time. */
	fake_kapi_set(&fx->kapi, 503, "{\"msg\":\"x\",\"code\":-9798}");
	for (i = 0; i < 2; i++) {
		assert_int_equal(call_login(fx, "Bearer rej-2", &resp, &err),
		    -1);
		assert_int_equal(err.status, KL_KAKAO_UNAVAILABLE);
	}
	assert_int_equal(kapi_requests(&fx->kapi), before + 3);
	/* Kakao would now take anything: the refused one stays refused. */
	fake_kapi_set(&fx->kapi, 200, "{\"id\":4242}");
	assert_int_equal(call_login(fx, "Bearer rej-1", &resp, &err), -1);
	assert_int_equal(err.status, KL_KAKAO_REJECTED);
	assert_null(strstr(err.detail, "rej-1"));
	assert_int_equal(kapi_requests(&fx->kapi), before + 3);
	assert_int_equal(call_login(fx, "Bearer rej-2", &resp, &err), 0);
	http_response_free(&resp);
	assert_int_equal(kapi_requests(&fx->kapi), before + 4);

	kakao_client_free(fx->ctx.kakao);
	fx->ctx.kakao = plain;
	kakao_reject_free(rc);
}

/* Every slot taken: 503 KAKAO_BUSY after the short wait, no Kakao call. */
static void
test_login_busy_when_gate_full(void **state)
{
	struct login_fixture	*fx = *state;
	struct kakao_gate	*g;
	struct kakao_client	*plain = fx->ctx.kakao;
	struct http_response	 resp;
	struct kl_error		 err;
	struct timespec		 t0;
	long			 us;
	int			 before;

	g = kakao_gate_new(1, 1, 100, &err);
	assert_non_null(g);
	fx->ctx.kakao = limited_client(fx, NULL, g);
	fake_kapi_set(&fx->kapi, 200, "{\"id\":4343}");
	before = kapi_requests(&fx->kapi);
	assert_int_equal(kakao_gate_enter(g, &err), 0);	/* another login */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(call_login(fx, "Bearer busy-1", &resp, &err), -1);
	us = kl_elapsed_us(&t0);
	assert_int_equal(err.status, KL_KAKAO_BUSY);
	assert_int_equal(error_http_status(err.status), 503);
	assert_string_equal(error_message(err.status), "KAKAO_BUSY");
	assert_true(us >= 90000 && us < 1000000);
	assert_int_equal(kapi_requests(&fx->kapi), before);
	kakao_gate_leave(g);
	/* The slot is back, and a login gives it back when done. */
	assert_int_equal(call_login(fx, "Bearer busy-1", &resp, &err), 0);
	http_response_free(&resp);
	assert_int_equal(call_login(fx, "Bearer busy-2", &resp, &err), 0);
	http_response_free(&resp);
	assert_int_equal(kapi_requests(&fx->kapi), before + 2);

	kakao_client_free(fx->ctx.kakao);
	fx->ctx.kakao = plain;
	kakao_gate_free(g);
}

/* GET /metrics: 503 without the shared region; with it, the text, which
 * counts the login just made and reads the users gauge from the store. */
#define BROWSER_ORIGIN	"https://app.example.com"

/* The refresh cookie's value from the first Set-Cookie line of resp
 * ("" when none), and how many Set-Cookie lines there are. */
static int
set_cookies(const struct http_response *resp, char *value, size_t size,
    long *max_age)
{
	const char	*p, *h = resp->headers.data;
	int		 n = 0;

	value[0] = '\0';
	*max_age = -1;
	for (p = h; p != NULL && (p = strstr(p, "Set-Cookie: ")) != NULL;
	    p += 12, n++) {
		if (n == 0) {
			assert_memory_equal(p + 12, "__Host-kl_refresh=", 18);
			snprintf(value, size, "%.*s",
			    (int)strcspn(p + 30, ";"), p + 30);
			assert_non_null(strstr(p, "; Path=/; "));
			assert_non_null(strstr(p, "; HttpOnly; SameSite=Strict; "
			    "Secure\r\n"));
			*max_age = strtol(strstr(p, "Max-Age=") + 8, NULL, 10);
		}
	}
	return n;
}

static int
call_session(struct login_fixture *fx, handler_fn fn, const char *origin,
    const char *cookie, const char *authorization,
    struct http_response *resp, struct kl_error *err)
{
	struct http_request	req;

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.origin = origin;
	req.origin_count = origin != NULL;
	req.cookie = cookie;
	req.cookie_count = cookie != NULL;
	req.authorization = authorization;
	req.authorization_count = authorization != NULL;
	memset(resp, 0, sizeof(*resp));
	kl_error_clear(err);
	return fn(&fx->ctx, &req, resp, err);
}

/*
 * refresh_cookie = yes: a login from an allowed Origin answers no
 * refresh_token in the body and sets the cookie on both paths; the
 * refresh takes it from the cookie (only with the Origin), rotates it;
 * a logout by cookie alone revokes the session and clears the cookie,
 * after which the cookie refreshes nothing and is cleared again.
 */
static void
test_browser_session_in_cookie(void **state)
{
	struct login_fixture	*fx = *state;
	struct http_response	 resp;
	struct kl_error		 err;
	struct http_request	 req;
	struct body_fields	*fields = calloc(1, sizeof(*fields));
	char			 first[64], second[64], hdr[128], other[80];
	long			 age;
	json_t			*root;

	fx->cfg.refresh_cookie = true;
	fx->cfg.n_allowed_origins = 1;
	snprintf(fx->cfg.allowed_origin[0], MAX_ORIGIN_LEN, BROWSER_ORIGIN);
	fake_kapi_set(&fx->kapi, 200, "{\"id\":77001}");

	/* Without the Origin: the body has the token, no cookie. */
	assert_int_equal(call_login(fx, "Bearer t-1", &resp, &err), 0);
	root = json_loads(resp.body.data, 0, NULL);
	assert_true(json_is_string(json_object_get(root, "refresh_token")));
	json_decref(root);
	assert_int_equal(set_cookies(&resp, first, sizeof(first), &age), 0);
	http_response_free(&resp);

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.authorization = "Bearer t-2";
	req.authorization_count = 1;
	req.origin = BROWSER_ORIGIN;
	req.origin_count = 1;
	memset(&resp, 0, sizeof(resp));
	kl_error_clear(&err);
	assert_int_equal(handler_login(&fx->ctx, &req, &resp, &err), 0);
	root = json_loads(resp.body.data, 0, NULL);
	assert_null(json_object_get(root, "refresh_token"));
	assert_true(json_is_string(json_object_get(root, "access_token")));
	json_decref(root);
	assert_int_equal(set_cookies(&resp, first, sizeof(first), &age), 1);
	assert_int_equal(strlen(first), REFRESH_TOKEN_LEN);
	assert_int_equal(age, fx->cfg.refresh_idle_ttl);
	http_response_free(&resp);

	/* The cookie without an allowed Origin: refused, nothing cleared. */
	snprintf(hdr, sizeof(hdr), "other=1; __Host-kl_refresh=%s", first);
	assert_int_equal(call_session(fx, handler_token_refresh, NULL, hdr,
	    NULL, &resp, &err), -1);
	assert_int_equal(err.status, KL_ORIGIN_NOT_ALLOWED);
	assert_int_equal(set_cookies(&resp, second, sizeof(second), &age), 0);
	http_response_free(&resp);
	assert_int_equal(call_session(fx, handler_token_refresh,
	    "https://evil.example.com", hdr, NULL, &resp, &err), -1);
	assert_int_equal(err.status, KL_ORIGIN_NOT_ALLOWED);
	http_response_free(&resp);

	/* With it: rotated, the successor in the cookie. */
	if (call_session(fx, handler_token_refresh, BROWSER_ORIGIN, hdr, NULL,
	    &resp, &err) != 0)
		fail_msg("cookie refresh failed: %s", err.detail);
	assert_int_equal(set_cookies(&resp, second, sizeof(second), &age), 1);
	assert_string_not_equal(first, second);
	assert_null(strstr(resp.body.data, "refresh_token"));
	http_response_free(&resp);

	/* A doubled cookie (tossing) is not used, and is cleared. */
	snprintf(hdr, sizeof(hdr), "__Host-kl_refresh=%s; "
	    "__Host-kl_refresh=%s", second, first);
	assert_int_equal(call_session(fx, handler_token_refresh,
	    BROWSER_ORIGIN, hdr, NULL, &resp, &err), -1);
	assert_int_equal(err.status, KL_BAD_REFRESH);
	assert_int_equal(set_cookies(&resp, first, sizeof(first), &age), 1);
	assert_string_equal(first, "");
	assert_int_equal(age, 0);
	http_response_free(&resp);

	/* A second session of the user, its token in the body. */
	assert_int_equal(call_login(fx, "Bearer t-3", &resp, &err), 0);
	root = json_loads(resp.body.data, 0, NULL);
	snprintf(other, sizeof(other), "refresh_token=%s",
	    json_string_value(json_object_get(root, "refresh_token")));
	json_decref(root);
	http_response_free(&resp);

	/* Logout by the cookie alone, all=1 asked: 200, cleared, only the
	 * cookie's session revoked (review: all=1 needs our JWT). */
	snprintf(hdr, sizeof(hdr), "__Host-kl_refresh=%s", second);
	assert_int_equal(body_parse("application/x-www-form-urlencoded",
	    "all=1", 5, fields, &err), 0);
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.origin = BROWSER_ORIGIN;
	req.origin_count = 1;
	req.cookie = hdr;
	req.cookie_count = 1;
	req.fields = fields;
	memset(&resp, 0, sizeof(resp));
	kl_error_clear(&err);
	if (handler_logout(&fx->ctx, &req, &resp, &err) != 0)
		fail_msg("cookie logout failed: %s", err.detail);
	assert_int_equal(resp.status, 200);
	assert_true(resp.user_id > 0);
	assert_int_equal(set_cookies(&resp, first, sizeof(first), &age), 1);
	assert_int_equal(age, 0);
	assert_null(strstr(resp.headers.data, "WWW-Authenticate"));
	http_response_free(&resp);
	assert_int_equal(call_session(fx, handler_token_refresh,
	    BROWSER_ORIGIN, hdr, NULL, &resp, &err), -1);
	assert_int_equal(err.status, KL_BAD_REFRESH);
	assert_int_equal(set_cookies(&resp, first, sizeof(first), &age), 1);
	assert_int_equal(age, 0);
	http_response_free(&resp);

	/* The other session still refreshes. */
	assert_int_equal(body_parse("application/x-www-form-urlencoded",
	    other, strlen(other), fields, &err), 0);
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.fields = fields;
	memset(&resp, 0, sizeof(resp));
	kl_error_clear(&err);
	if (handler_token_refresh(&fx->ctx, &req, &resp, &err) != 0)
		fail_msg("the other session was revoked: %s", err.detail);
	http_response_free(&resp);

	/* The revoked cookie again, all=1: it names nobody now, and without
	 * a JWT the logout is refused. */
	assert_int_equal(body_parse("application/x-www-form-urlencoded",
	    "all=1", 5, fields, &err), 0);
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.origin = BROWSER_ORIGIN;
	req.origin_count = 1;
	req.cookie = hdr;
	req.cookie_count = 1;
	req.fields = fields;
	memset(&resp, 0, sizeof(resp));
	kl_error_clear(&err);
	assert_int_equal(handler_logout(&fx->ctx, &req, &resp, &err), -1);
	assert_int_equal(err.status, KL_BAD_ACCESS_TOKEN);
	assert_int_equal(set_cookies(&resp, first, sizeof(first), &age), 1);
	assert_int_equal(age, 0);
	http_response_free(&resp);

	/* No cookie and no JWT: the logout is refused as before. */
	assert_int_equal(call_session(fx, handler_logout, BROWSER_ORIGIN,
	    NULL, NULL, &resp, &err), -1);
	assert_int_equal(err.status, KL_BAD_ACCESS_TOKEN);
	http_response_free(&resp);
	fx->cfg.refresh_cookie = false;
	fx->cfg.n_allowed_origins = 0;
	body_wipe(fields);
	free(fields);
}

static void
test_metrics_route(void **state)
{
	static const char *const routes[] = { "/users/kakao/login" };
	struct login_fixture	*fx = *state;
	struct http_request	 req;
	struct http_response	 resp;
	struct kl_error		 err;
	bool			 replaced;

	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.path = "/metrics";
	memset(&resp, 0, sizeof(resp));
	if (!metrics_shared()) {
		assert_int_equal(handler_metrics(&fx->ctx, &req, &resp, &err),
		    -1);
		assert_int_equal(err.status, KL_METRICS_UNAVAILABLE);
		http_response_free(&resp);
	}
	assert_int_equal(metrics_open(fx->home, routes, 1, &replaced, &err),
	    0);
	fake_kapi_set(&fx->kapi, 200, "{\"id\":1855599000}");
	if (call_login(fx, "Bearer kakao-token-m", &resp, &err) != 0)
		fail_msg("login failed: %s", err.detail);
	http_response_free(&resp);
	memset(&resp, 0, sizeof(resp));
	assert_int_equal(handler_metrics(&fx->ctx, &req, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.content_type,
	    "text/plain; version=0.0.4; charset=utf-8");
	assert_non_null(strstr(resp.body.data, "\nkakao_login_users 16\n"));
	assert_non_null(strstr(resp.body.data,
	    "\nkakao_login_users_created_total 1\n"));
	assert_non_null(strstr(resp.body.data, "\nkakao_login_kakao_requests_"
	    "total{endpoint=\"/v2/user/me\",outcome=\"ok\"} 1\n"));
	http_response_free(&resp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw_token),
		cmocka_unit_test(test_bearer_scheme),
		cmocka_unit_test(test_surrounding_whitespace),
		cmocka_unit_test(test_bearer_alone_and_empty),
		cmocka_unit_test(test_bearer_blank_is_empty_not_too_long),
		cmocka_unit_test(test_null_value),
		cmocka_unit_test(test_other_schemes),
		cmocka_unit_test(test_bad_characters),
		cmocka_unit_test(test_padding),
		cmocka_unit_test(test_length_limits),
		cmocka_unit_test(test_detail_has_no_token),
		cmocka_unit_test_setup_teardown(
		    test_login_answer_escapes_strings, login_setup,
		    login_teardown),
		cmocka_unit_test_setup_teardown(
		    test_login_answer_escapes_line_separators, login_setup,
		    login_teardown),
		cmocka_unit_test_setup_teardown(test_login_deactivated_refused,
		    login_setup, login_teardown),
		cmocka_unit_test_setup_teardown(test_login_success,
		    login_setup, login_teardown),
		cmocka_unit_test_setup_teardown(
		    test_login_bad_authorization_does_not_call_kakao,
		    login_setup, login_teardown),
		cmocka_unit_test_setup_teardown(test_login_kakao_failures,
		    login_setup, login_teardown),
		cmocka_unit_test_setup_teardown(
		    test_login_remembers_rejected_token, login_setup,
		    login_teardown),
		cmocka_unit_test_setup_teardown(test_login_busy_when_gate_full,
		    login_setup, login_teardown),
		cmocka_unit_test_setup_teardown(test_browser_session_in_cookie,
		    login_setup, login_teardown),
		cmocka_unit_test_setup_teardown(test_metrics_route,
		    login_setup, login_teardown),
	};

	return cmocka_run_group_tests_name("handlers", tests, NULL, NULL);
}
