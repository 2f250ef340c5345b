/*
 * test_token.c: our HS256 JWTs (app/token.c).
 *
 * token_init() on secret files with good and bad modes and lengths; a
 * token_issue() / token_verify() round trip; the payload decoded here, by
 * hand, to check claim types; and the tokens token_verify() must refuse:
 * expired, another issuer, another key, a tampered payload, alg "none",
 * HS512 with the same key, garbage.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "token.h"

#define NOW	((time_t)1700000000)
#define TTL	3600L
#define ISSUER	"kakao-login-test"

static const char secret_a[] = "0123456789abcdef0123456789abcdef-key-A";
static const char secret_b[] = "fedcba9876543210fedcba9876543210-key-B";

/* ---- helpers ---- */

/* Writes len bytes to a new file under /tmp with the given mode. */
static char *
secret_file(const void *data, size_t len, mode_t mode)
{
	char	*path = strdup("/tmp/kl-test-secret-XXXXXX");
	int	 fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd != -1);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
	return path;
}

static void
remove_file(char *path)
{
	unlink(path);
	free(path);
}

static void
ctx_from(struct token_ctx *ctx, const char *secret, const char *issuer,
    long ttl)
{
	struct kl_error	 err;
	char		*path = secret_file(secret, strlen(secret), 0600);

	if (token_init(ctx, path, issuer, ttl, &err) != 0)
		fail_msg("token_init: %s", err.detail);
	remove_file(path);
}

/* token_issue for a user of id alone: no Kakao id, no session. */
static int
issue_id(const struct token_ctx *ctx, uint64_t id, time_t now, char **jwt,
    struct kl_error *err)
{
	struct token_subject	s;

	memset(&s, 0, sizeof(s));
	s.user_id = id;
	return token_issue(ctx, &s, now, jwt, err);
}

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding; returns a malloc'd string. */
static char *
b64url_encode(const unsigned char *in, size_t len)
{
	char	*out = malloc(len * 4 / 3 + 4), *p;
	size_t	 i;
	uint32_t v;

	assert_non_null(out);
	p = out;
	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*p++ = b64url[v >> 18 & 63];
		*p++ = b64url[v >> 12 & 63];
		*p++ = b64url[v >> 6 & 63];
		*p++ = b64url[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*p++ = b64url[v >> 18 & 63];
		*p++ = b64url[v >> 12 & 63];
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*p++ = b64url[v >> 18 & 63];
		*p++ = b64url[v >> 12 & 63];
		*p++ = b64url[v >> 6 & 63];
	}
	*p = '\0';
	return out;
}

/* base64url (no padding) of len chars; returns malloc'd bytes, NUL-ended,
 * or NULL on a character outside the alphabet. */
static char *
b64url_decode(const char *in, size_t len, size_t *outlen)
{
	char		*out = malloc(len * 3 / 4 + 4);
	const char	*c;
	uint32_t	 v = 0;
	size_t		 i, n = 0;
	int		 bits = 0;

	assert_non_null(out);
	for (i = 0; i < len; i++) {
		if ((c = memchr(b64url, in[i], 64)) == NULL || in[i] == '\0') {
			free(out);
			return NULL;
		}
		v = v << 6 | (uint32_t)(c - b64url);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)(v >> bits & 0xff);
		}
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}

/* The JSON object of one part (0: header, 1: payload) of a JWT. */
static json_t *
jwt_part(const char *jwt, int part)
{
	const char	*start = jwt, *dot;
	char		*raw;
	size_t		 n = 0;
	json_t		*obj;
	json_error_t	 jerr;

	while (part-- > 0) {
		start = strchr(start, '.');
		assert_non_null(start);
		start++;
	}
	dot = strchr(start, '.');
	assert_non_null(dot);
	raw = b64url_decode(start, (size_t)(dot - start), &n);
	assert_non_null(raw);
	obj = json_loadb(raw, n, 0, &jerr);
	if (obj == NULL)
		fail_msg("part is not JSON: %s", jerr.text);
	free(raw);
	assert_true(json_is_object(obj));
	return obj;
}

/* header.payload.signature from JSON texts and a raw signature string. */
static char *
make_jwt(const char *header, const char *payload, const char *sig)
{
	char	*h = b64url_encode((const unsigned char *)header,
		    strlen(header));
	char	*p = b64url_encode((const unsigned char *)payload,
		    strlen(payload));
	char	*out;

	assert_true(asprintf(&out, "%s.%s.%s", h, p, sig) > 0);
	free(h);
	free(p);
	return out;
}

static void
expect_refused(const struct token_ctx *ctx, const char *jwt, time_t now)
{
	struct token_claims	claims;
	struct kl_error		err;

	kl_error_clear(&err);
	if (token_verify(ctx, jwt, now, &claims, &err) != -1)
		fail_msg("accepted: %s", jwt);
	assert_int_equal(err.status, KL_BAD_TOKEN);
	assert_int_equal(claims.user_id, 0);
}

/* ---- token_init ---- */

static void
test_init_missing_file(void **state)
{
	struct token_ctx	ctx;
	struct kl_error		err;

	(void)state;
	assert_int_equal(token_init(&ctx, "/nonexistent/kl-test/jwt.key",
	    ISSUER, TTL, &err), -1);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	assert_int_equal(ctx.keys[0].keylen, 0);
}

static void
test_init_short_secret(void **state)
{
	struct token_ctx	 ctx;
	struct kl_error		 err;
	char			*path;

	(void)state;
	/* 31 bytes. */
	path = secret_file(secret_a, MIN_JWT_SECRET - 1, 0600);
	assert_int_equal(token_init(&ctx, path, ISSUER, TTL, &err), -1);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	assert_int_equal(ctx.keys[0].keylen, 0);
	remove_file(path);
	/* 31 bytes and a newline: the newline does not count. */
	path = secret_file("0123456789abcdef0123456789abcde\n", 32, 0600);
	assert_int_equal(token_init(&ctx, path, ISSUER, TTL, &err), -1);
	remove_file(path);
	/* Empty. */
	path = secret_file("", 0, 0600);
	assert_int_equal(token_init(&ctx, path, ISSUER, TTL, &err), -1);
	remove_file(path);
}

static void
test_init_refuses_readable_by_others(void **state)
{
	static const mode_t modes[] = { 0640, 0604, 0644, 0660, 0606, 0620 };
	struct token_ctx	 ctx;
	struct kl_error		 err;
	char			*path;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		path = secret_file(secret_a, strlen(secret_a), modes[i]);
		kl_error_clear(&err);
		if (token_init(&ctx, path, ISSUER, TTL, &err) != -1)
			fail_msg("mode %03o accepted", (unsigned)modes[i]);
		assert_int_equal(err.status, KL_BAD_CONFIG);
		assert_int_equal(ctx.keys[0].keylen, 0);
		remove_file(path);
	}
}

static void
test_init_accepts_0600_and_0400(void **state)
{
	struct token_ctx	 ctx;
	struct kl_error		 err;
	char			*path;

	(void)state;
	path = secret_file(secret_a, strlen(secret_a), 0600);
	if (token_init(&ctx, path, ISSUER, TTL, &err) != 0)
		fail_msg("refused: %s", err.detail);
	assert_int_equal(ctx.keys[0].keylen, strlen(secret_a));
	assert_memory_equal(ctx.keys[0].key, secret_a, strlen(secret_a));
	assert_string_equal(ctx.issuer, ISSUER);
	assert_int_equal(ctx.ttl, TTL);
	token_wipe(&ctx);
	assert_int_equal(ctx.nkeys, 0);
	assert_int_equal(ctx.keys[0].keylen, 0);
	remove_file(path);

	path = secret_file(secret_a, strlen(secret_a), 0400);
	assert_int_equal(token_init(&ctx, path, ISSUER, TTL, &err), 0);
	remove_file(path);
}

static void
test_init_strips_one_newline(void **state)
{
	struct token_ctx	 ctx;
	struct kl_error		 err;
	char			 buf[128], *path;

	(void)state;
	/* Exactly 32 bytes and a newline: the key is the 32 bytes. */
	snprintf(buf, sizeof(buf), "%.32s\n", secret_a);
	path = secret_file(buf, strlen(buf), 0600);
	if (token_init(&ctx, path, ISSUER, TTL, &err) != 0)
		fail_msg("refused: %s", err.detail);
	assert_int_equal(ctx.keys[0].keylen, 32);
	assert_memory_equal(ctx.keys[0].key, secret_a, 32);
	remove_file(path);

	/* Two newlines: only one is stripped. */
	snprintf(buf, sizeof(buf), "%.32s\n\n", secret_a);
	path = secret_file(buf, strlen(buf), 0600);
	assert_int_equal(token_init(&ctx, path, ISSUER, TTL, &err), 0);
	assert_int_equal(ctx.keys[0].keylen, 33);
	assert_memory_equal(ctx.keys[0].key, buf, 33);
	remove_file(path);

	/* A newline inside the key is part of it. */
	snprintf(buf, sizeof(buf), "%.16s\n%.16s", secret_a, secret_a + 16);
	path = secret_file(buf, strlen(buf), 0600);
	assert_int_equal(token_init(&ctx, path, ISSUER, TTL, &err), 0);
	assert_int_equal(ctx.keys[0].keylen, 33);
	remove_file(path);
}

static void
test_init_refuses_directory(void **state)
{
	struct token_ctx	ctx;
	struct kl_error		err;
	char			dir[] = "/tmp/kl-test-secretdir-XXXXXX";

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0700), 0);
	assert_int_equal(token_init(&ctx, dir, ISSUER, TTL, &err), -1);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	rmdir(dir);
}

/* The detail is for the log: it never carries the key. */
static void
test_init_detail_has_no_secret(void **state)
{
	struct token_ctx	 ctx;
	struct kl_error		 err;
	char			*path;

	(void)state;
	path = secret_file("short-secret-XYZ", 16, 0600);
	assert_int_equal(token_init(&ctx, path, ISSUER, TTL, &err), -1);
	assert_null(strstr(err.detail, "short-secret-XYZ"));
	remove_file(path);
}


/* A FIFO as the secret: refused at once, not a hang waiting for a writer.
 * token_init runs in a child, so a hang is a failure, not a stuck suite. */
static void
test_init_refuses_fifo_quickly(void **state)
{
	struct token_ctx	ctx;
	struct kl_error		err;
	char			dir[] = "/tmp/kl-test-fifo-XXXXXX", path[64];
	pid_t			pid;
	int			status = 0, i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/jwt.secret", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	if ((pid = fork()) == 0)
		_exit(token_init(&ctx, path, ISSUER, TTL, &err) == -1 &&
		    err.status == KL_BAD_CONFIG &&
		    strstr(err.detail, "regular") != NULL ? 0 : 1);
	assert_true(pid > 0);
	for (i = 0; i < 200 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(10000);
	if (i == 200) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		unlink(path);
		rmdir(dir);
		fail_msg("token_init on a FIFO still blocked after 2 s");
	}
	unlink(path);
	rmdir(dir);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* A symlink to a good secret is not followed. */
static void
test_init_refuses_symlink(void **state)
{
	struct token_ctx	 ctx;
	struct kl_error		 err;
	char			*path, link[80];

	(void)state;
	path = secret_file(secret_a, strlen(secret_a), 0600);
	snprintf(link, sizeof(link), "%s.link", path);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(token_init(&ctx, link, ISSUER, TTL, &err), -1);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	unlink(link);
	remove_file(path);
}

/* Long enough but no secret: every byte the same, or only whitespace. */
static void
test_init_refuses_uniform_secret(void **state)
{
	static const struct {
		const char	*what;
		const char	*bytes;
		size_t		 len;
	} cases[] = {
		{ "32 spaces", "                                ", 32 },
		{ "32 NUL bytes", "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
		  "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 32 },
		{ "48 a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 48 },
		{ "48 0xff", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
		  "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
		  "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
		  "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 48 },
		{ "mixed whitespace", " \t\r\n\v\f \t\r\n\v\f \t\r\n\v\f"
		  " \t\r\n\v\f \t\r\n\v\f \t\r\n\v\f", 36 },
		{ "32 spaces and a newline", "                                \n",
		  33 },
	};
	struct token_ctx	 ctx;
	struct kl_error		 err;
	char			*path;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		path = secret_file(cases[i].bytes, cases[i].len, 0600);
		kl_error_clear(&err);
		if (token_init(&ctx, path, ISSUER, TTL, &err) != -1)
			fail_msg("accepted a secret of %s", cases[i].what);
		assert_int_equal(err.status, KL_BAD_CONFIG);
		assert_int_equal(ctx.keys[0].keylen, 0);
		remove_file(path);
	}
	/* One byte different is a (weak, but) real key: accepted. */
	path = secret_file("                               x", 32, 0600);
	if (token_init(&ctx, path, ISSUER, TTL, &err) != 0)
		fail_msg("refused: %s", err.detail);
	remove_file(path);
}

/* ---- issue and verify ---- */

static void
test_round_trip(void **state)
{
	struct token_ctx	 ctx;
	struct token_claims	 claims;
	struct kl_error		 err;
	char			*jwt = NULL;
	size_t			 i;

	(void)state;
	ctx_from(&ctx, secret_a, ISSUER, TTL);
	if (issue_id(&ctx, 12345, NOW, &jwt, &err) != 0)
		fail_msg("token_issue: %s", err.detail);
	assert_non_null(jwt);
	if (token_verify(&ctx, jwt, NOW, &claims, &err) != 0)
		fail_msg("token_verify: %s", err.detail);
	assert_int_equal(claims.user_id, 12345);
	assert_int_equal(claims.iat, NOW);
	assert_int_equal(claims.exp, NOW + TTL);
	assert_int_equal(strlen(claims.jti), 32);
	for (i = 0; i < 32; i++)
		assert_non_null(strchr("0123456789abcdef", claims.jti[i]));
	/* Still good one second before exp. */
	assert_int_equal(token_verify(&ctx, jwt, NOW + TTL - 1, &claims, &err),
	    0);
	free(jwt);
}

static void
test_round_trip_large_user_id(void **state)
{
	struct token_ctx	 ctx;
	struct token_claims	 claims;
	struct kl_error		 err;
	char			*jwt = NULL;
	uint64_t		 id = (uint64_t)INT64_MAX;

	(void)state;
	ctx_from(&ctx, secret_a, ISSUER, TTL);
	assert_int_equal(issue_id(&ctx, id, NOW, &jwt, &err), 0);
	if (token_verify(&ctx, jwt, NOW, &claims, &err) != 0)
		fail_msg("token_verify: %s", err.detail);
	assert_true(claims.user_id == id);
	free(jwt);
	/* Beyond INT64_MAX an id cannot be a JSON integer: refused. */
	assert_int_equal(issue_id(&ctx, id + 1, NOW, &jwt, &err), -1);
	assert_null(jwt);
}

static void
test_payload_claims_and_types(void **state)
{
	struct token_ctx	 ctx;
	struct kl_error		 err;
	char			*jwt;
	json_t			*payload, *header, *v;

	(void)state;
	ctx_from(&ctx, secret_a, ISSUER, TTL);
	assert_int_equal(issue_id(&ctx, 777, NOW, &jwt, &err), 0);

	header = jwt_part(jwt, 0);
	assert_string_equal(json_string_value(json_object_get(header, "alg")),
	    "HS256");

	payload = jwt_part(jwt, 1);
	v = json_object_get(payload, "id");
	assert_true(json_is_integer(v));	/* a number, as the old service */
	assert_int_equal(json_integer_value(v), 777);
	v = json_object_get(payload, "sub");
	assert_true(json_is_string(v));
	assert_string_equal(json_string_value(v), "777");
	v = json_object_get(payload, "iat");
	assert_true(json_is_integer(v));
	assert_int_equal(json_integer_value(v), NOW);
	v = json_object_get(payload, "exp");
	assert_true(json_is_integer(v));
	assert_int_equal(json_integer_value(v), NOW + TTL);
	v = json_object_get(payload, "iss");
	assert_true(json_is_string(v));
	assert_string_equal(json_string_value(v), ISSUER);
	v = json_object_get(payload, "jti");
	assert_true(json_is_string(v));
	assert_int_equal(strlen(json_string_value(v)), 32);
	assert_int_equal(strspn(json_string_value(v), "0123456789abcdef"), 32);

	json_decref(header);
	json_decref(payload);
	free(jwt);
}

static void
test_jti_differs(void **state)
{
	struct token_ctx	 ctx;
	struct token_claims	 c1, c2;
	struct kl_error		 err;
	char			*a, *b;

	(void)state;
	ctx_from(&ctx, secret_a, ISSUER, TTL);
	assert_int_equal(issue_id(&ctx, 1, NOW, &a, &err), 0);
	assert_int_equal(issue_id(&ctx, 1, NOW, &b, &err), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(token_verify(&ctx, a, NOW, &c1, &err), 0);
	assert_int_equal(token_verify(&ctx, b, NOW, &c2, &err), 0);
	assert_string_not_equal(c1.jti, c2.jti);
	free(a);
	free(b);
}

/* ---- what token_verify refuses ---- */

static void
test_refuses_expired(void **state)
{
	struct token_ctx	 ctx;
	struct kl_error		 err;
	char			*jwt;

	(void)state;
	ctx_from(&ctx, secret_a, ISSUER, TTL);
	assert_int_equal(issue_id(&ctx, 5, NOW, &jwt, &err), 0);
	expect_refused(&ctx, jwt, NOW + TTL);		/* exp == now */
	expect_refused(&ctx, jwt, NOW + TTL + 1);
	expect_refused(&ctx, jwt, NOW + 10 * TTL);
	free(jwt);
}

static void
test_refuses_future_iat(void **state)
{
	struct token_ctx	 ctx;
	struct kl_error		 err;
	char			*jwt;

	(void)state;
	ctx_from(&ctx, secret_a, ISSUER, TTL);
	/* Issued an hour in the future of the verifier's clock. */
	assert_int_equal(issue_id(&ctx, 5, NOW + 3600, &jwt, &err), 0);
	expect_refused(&ctx, jwt, NOW);
	free(jwt);
}

static void
test_refuses_wrong_issuer(void **state)
{
	struct token_ctx	 a, b;
	struct kl_error		 err;
	char			*jwt;

	(void)state;
	ctx_from(&a, secret_a, "issuer-a", TTL);
	ctx_from(&b, secret_a, "issuer-b", TTL);	/* same key */
	assert_int_equal(issue_id(&a, 5, NOW, &jwt, &err), 0);
	expect_refused(&b, jwt, NOW);
	free(jwt);
}

static void
test_refuses_other_key(void **state)
{
	struct token_ctx	 a, b;
	struct kl_error		 err;
	char			*jwt;

	(void)state;
	ctx_from(&a, secret_a, ISSUER, TTL);
	ctx_from(&b, secret_b, ISSUER, TTL);
	assert_int_equal(issue_id(&b, 5, NOW, &jwt, &err), 0);
	expect_refused(&a, jwt, NOW);
	free(jwt);
}

/* The signature of a real token on another payload. */
static void
test_refuses_tampered_payload(void **state)
{
	struct token_ctx	 ctx;
	struct kl_error		 err;
	char			*jwt, *forged, *payload_txt, *p;
	const char		*sig;
	json_t			*payload;

	(void)state;
	ctx_from(&ctx, secret_a, ISSUER, TTL);
	assert_int_equal(issue_id(&ctx, 5, NOW, &jwt, &err), 0);
	payload = jwt_part(jwt, 1);
	json_object_set_new(payload, "id", json_integer(1));
	json_object_set_new(payload, "sub", json_string("1"));
	payload_txt = json_dumps(payload, JSON_COMPACT);
	assert_non_null(payload_txt);
	p = b64url_encode((const unsigned char *)payload_txt,
	    strlen(payload_txt));
	sig = strrchr(jwt, '.') + 1;
	assert_true(asprintf(&forged, "%.*s.%s.%s",
	    (int)(strchr(jwt, '.') - jwt), jwt, p, sig) > 0);
	expect_refused(&ctx, forged, NOW);
	free(forged);
	free(p);

	/* One character of the payload changed. */
	forged = strdup(jwt);
	assert_non_null(forged);
	p = strchr(forged, '.') + 5;
	*p = (*p == 'A') ? 'B' : 'A';
	expect_refused(&ctx, forged, NOW);
	free(forged);

	/* One character of the signature changed. */
	forged = strdup(jwt);
	assert_non_null(forged);
	p = strrchr(forged, '.') + 3;
	*p = (*p == 'A') ? 'B' : 'A';
	expect_refused(&ctx, forged, NOW);
	free(forged);

	/* The signature removed. */
	forged = strdup(jwt);
	assert_non_null(forged);
	strrchr(forged, '.')[1] = '\0';
	expect_refused(&ctx, forged, NOW);
	free(forged);

	free(payload_txt);
	json_decref(payload);
	free(jwt);
}

static void
test_refuses_alg_none(void **state)
{
	struct token_ctx	 ctx;
	char			 payload[256];
	char			*jwt;

	(void)state;
	ctx_from(&ctx, secret_a, ISSUER, TTL);
	snprintf(payload, sizeof(payload), "{\"id\":5,\"sub\":\"5\",\"iat\":%lld,"
	    "\"exp\":%lld,\"iss\":\"%s\",\"jti\":\"0123456789abcdef0123456789"
	    "abcdef\"}", (long long)NOW, (long long)(NOW + TTL), ISSUER);
	jwt = make_jwt("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, "");
	expect_refused(&ctx, jwt, NOW);
	free(jwt);
	/* With a dummy signature. */
	jwt = make_jwt("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, "AAAA");
	expect_refused(&ctx, jwt, NOW);
	free(jwt);
	/* Other spellings. */
	jwt = make_jwt("{\"alg\":\"None\",\"typ\":\"JWT\"}", payload, "");
	expect_refused(&ctx, jwt, NOW);
	free(jwt);
	jwt = make_jwt("{\"typ\":\"JWT\"}", payload, "");
	expect_refused(&ctx, jwt, NOW);
	free(jwt);
}

static void
test_refuses_hs512_same_key(void **state)
{
	struct token_ctx	 ctx;
	struct token_claims	 claims;
	struct kl_error		 err;
	jwt_t			*j = NULL;
	char			*s;

	(void)state;
	ctx_from(&ctx, secret_a, ISSUER, TTL);
	assert_int_equal(jwt_new(&j), 0);
	assert_int_equal(jwt_add_grant_int(j, "id", 5), 0);
	assert_int_equal(jwt_add_grant(j, "sub", "5"), 0);
	assert_int_equal(jwt_add_grant_int(j, "iat", (long)NOW), 0);
	assert_int_equal(jwt_add_grant_int(j, "exp", (long)(NOW + TTL)), 0);
	assert_int_equal(jwt_add_grant(j, "iss", ISSUER), 0);
	assert_int_equal(jwt_add_grant(j, "jti",
	    "0123456789abcdef0123456789abcdef"), 0);
	assert_int_equal(jwt_set_alg(j, JWT_ALG_HS512, ctx.keys[0].key,
	    (int)ctx.keys[0].keylen), 0);
	s = jwt_encode_str(j);
	assert_non_null(s);
	expect_refused(&ctx, s, NOW);
	free(s);

	/* The same claims with HS256 are accepted: only alg made the
	 * difference above. */
	assert_int_equal(jwt_set_alg(j, JWT_ALG_HS256, ctx.keys[0].key,
	    (int)ctx.keys[0].keylen), 0);
	s = jwt_encode_str(j);
	assert_non_null(s);
	if (token_verify(&ctx, s, NOW, &claims, &err) != 0)
		fail_msg("hand-made HS256 refused: %s", err.detail);
	assert_int_equal(claims.user_id, 5);
	free(s);
	jwt_free(j);
}

/* Hand-made HS256 tokens, signed with the right key, one claim wrong each. */
static void
test_refuses_bad_claims(void **state)
{
	static const struct {
		const char	*what;
		const char	*claims;	/* iat 1700000000 = NOW */
	} cases[] = {
		{ "no id", "{\"sub\":\"5\",\"iat\":1700000000,"
		  "\"exp\":1700003600,\"iss\":\"" ISSUER "\"}" },
		{ "id 0", "{\"id\":0,\"sub\":\"0\",\"iat\":1700000000,"
		  "\"exp\":1700003600,\"iss\":\"" ISSUER "\"}" },
		{ "id negative", "{\"id\":-5,\"sub\":\"-5\","
		  "\"iat\":1700000000,\"exp\":1700003600,"
		  "\"iss\":\"" ISSUER "\"}" },
		{ "id a string", "{\"id\":\"5\",\"sub\":\"5\","
		  "\"iat\":1700000000,\"exp\":1700003600,"
		  "\"iss\":\"" ISSUER "\"}" },
		{ "id a float", "{\"id\":5.0,\"sub\":\"5\","
		  "\"iat\":1700000000,\"exp\":1700003600,"
		  "\"iss\":\"" ISSUER "\"}" },
		{ "sub differs from id", "{\"id\":5,\"sub\":\"6\","
		  "\"iat\":1700000000,\"exp\":1700003600,"
		  "\"iss\":\"" ISSUER "\"}" },
		{ "no sub", "{\"id\":5,\"iat\":1700000000,"
		  "\"exp\":1700003600,\"iss\":\"" ISSUER "\"}" },
		{ "sub a number", "{\"id\":5,\"sub\":5,\"iat\":1700000000,"
		  "\"exp\":1700003600,\"iss\":\"" ISSUER "\"}" },
		{ "no exp", "{\"id\":5,\"sub\":\"5\",\"iat\":1700000000,"
		  "\"iss\":\"" ISSUER "\"}" },
		{ "exp a string", "{\"id\":5,\"sub\":\"5\","
		  "\"iat\":1700000000,\"exp\":\"1700003600\","
		  "\"iss\":\"" ISSUER "\"}" },
		{ "no iat", "{\"id\":5,\"sub\":\"5\",\"exp\":1700003600,"
		  "\"iss\":\"" ISSUER "\"}" },
		{ "iat after exp", "{\"id\":5,\"sub\":\"5\","
		  "\"iat\":1700000030,\"exp\":1700000020,"
		  "\"iss\":\"" ISSUER "\"}" },
		{ "no iss", "{\"id\":5,\"sub\":\"5\",\"iat\":1700000000,"
		  "\"exp\":1700003600}" },
		{ "iss a prefix", "{\"id\":5,\"sub\":\"5\","
		  "\"iat\":1700000000,\"exp\":1700003600,"
		  "\"iss\":\"kakao-login\"}" },
	};
	struct token_ctx	 ctx;
	struct token_claims	 claims;
	struct kl_error		 err;
	jwt_t			*j;
	char			*s;
	size_t			 i;

	(void)state;
	ctx_from(&ctx, secret_a, ISSUER, TTL);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(jwt_new(&j), 0);
		if (jwt_add_grants_json(j, cases[i].claims) != 0)
			fail_msg("%s: bad test JSON", cases[i].what);
		assert_int_equal(jwt_set_alg(j, JWT_ALG_HS256, ctx.keys[0].key,
		    (int)ctx.keys[0].keylen), 0);
		s = jwt_encode_str(j);
		assert_non_null(s);
		kl_error_clear(&err);
		if (token_verify(&ctx, s, NOW + 10, &claims, &err) != -1)
			fail_msg("accepted a token with %s", cases[i].what);
		assert_int_equal(err.status, KL_BAD_TOKEN);
		free(s);
		jwt_free(j);
	}
}


/* header.payload signed with HMAC-SHA256 under ctx's keys[key], by hand:
 * what a forger holding the key, or libjwt, would produce for any header.
 * The raw MAC goes to mac (32 bytes) when not NULL. */
static char *
make_signed(const struct token_ctx *ctx, int key, const char *header,
    const char *payload, unsigned char *mac)
{
	unsigned char	 m[EVP_MAX_MD_SIZE];
	unsigned int	 mlen = 0;
	char		*unsigned_jwt, *sig, *out;

	unsigned_jwt = make_jwt(header, payload, "");
	unsigned_jwt[strlen(unsigned_jwt) - 1] = '\0';	/* drop the '.' */
	assert_non_null(HMAC(EVP_sha256(), ctx->keys[key].key,
	    (int)ctx->keys[key].keylen,
	    (unsigned char *)unsigned_jwt, strlen(unsigned_jwt), m, &mlen));
	assert_int_equal(mlen, 32);
	if (mac != NULL)
		memcpy(mac, m, 32);
	sig = b64url_encode(m, mlen);
	assert_true(asprintf(&out, "%s.%s", unsigned_jwt, sig) > 0);
	free(unsigned_jwt);
	free(sig);
	return out;
}

static void
good_payload(char *buf, size_t size)
{
	snprintf(buf, size, "{\"id\":5,\"sub\":\"5\",\"iat\":%lld,"
	    "\"exp\":%lld,\"iss\":\"%s\",\"jti\":\"0123456789abcdef0123456789"
	    "abcdef\"}", (long long)NOW, (long long)(NOW + TTL), ISSUER);
}

/* The header must say "HS256" exactly: libjwt 1.10 compares alg names
 * case-insensitively, so "hs256" signed with our key got in. */
static void
test_refuses_alg_other_spelling(void **state)
{
	static const char *headers[] = {
		"{\"alg\":\"hs256\",\"typ\":\"JWT\"}",
		"{\"alg\":\"Hs256\",\"typ\":\"JWT\"}",
		"{\"alg\":\"HS256 \",\"typ\":\"JWT\"}",
		"{\"alg\":[\"HS256\"],\"typ\":\"JWT\"}",
		"{\"alg\":\"HS256\",\"alg\":\"hs256\",\"typ\":\"JWT\"}",
		"[\"HS256\"]",
	};
	struct token_ctx	 ctx;
	struct token_claims	 claims;
	struct kl_error		 err;
	char			 payload[256], *jwt;
	size_t			 i;

	(void)state;
	ctx_from(&ctx, secret_a, ISSUER, TTL);
	good_payload(payload, sizeof(payload));
	for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		jwt = make_signed(&ctx, 0, headers[i], payload, NULL);
		kl_error_clear(&err);
		if (token_verify(&ctx, jwt, NOW, &claims, &err) != -1)
			fail_msg("accepted header %s", headers[i]);
		assert_int_equal(err.status, KL_BAD_TOKEN);
		free(jwt);
	}
	/* The same, spelled right, is accepted: only alg differed. */
	jwt = make_signed(&ctx, 0, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload,
	    NULL);
	if (token_verify(&ctx, jwt, NOW, &claims, &err) != 0)
		fail_msg("refused a good hand-made token: %s", err.detail);
	assert_int_equal(claims.user_id, 5);
	free(jwt);
}

/* Every byte of the MAC counts, the last one too, and the signature is
 * canonical base64url (no second spelling of the same bytes). */
static void
test_refuses_signature_changes(void **state)
{
	struct token_ctx	 ctx;
	unsigned char		 mac[32];
	char			 payload[256], *jwt, *forged, *sig, *dot;
	size_t			 i, n;
	const char		*hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

	(void)state;
	ctx_from(&ctx, secret_a, ISSUER, TTL);
	good_payload(payload, sizeof(payload));
	jwt = make_signed(&ctx, 0, hdr, payload, mac);
	dot = strrchr(jwt, '.');
	for (i = 0; i < 32; i += 31) {		/* the first and last byte */
		mac[i] ^= 0x01;
		sig = b64url_encode(mac, 32);
		assert_true(asprintf(&forged, "%.*s.%s", (int)(dot - jwt), jwt,
		    sig) > 0);
		expect_refused(&ctx, forged, NOW);
		free(forged);
		free(sig);
		mac[i] ^= 0x01;
	}
	/* The last character carries 4 bits of the MAC and 2 zero bits:
	 * setting those bits decodes to the same MAC, still refused. */
	forged = strdup(jwt);
	assert_non_null(forged);
	n = strlen(forged);
	assert_int_equal(n - (size_t)(dot - jwt) - 1, 43);
	forged[n - 1] = b64url[(strchr(b64url, forged[n - 1]) - b64url) | 1];
	expect_refused(&ctx, forged, NOW);
	free(forged);
	/* Truncated, padded, or with a byte more. */
	forged = strdup(jwt);
	assert_non_null(forged);
	forged[strlen(forged) - 1] = '\0';
	expect_refused(&ctx, forged, NOW);
	free(forged);
	assert_true(asprintf(&forged, "%s=", jwt) > 0);
	expect_refused(&ctx, forged, NOW);
	free(forged);
	assert_true(asprintf(&forged, "%sAA", jwt) > 0);
	expect_refused(&ctx, forged, NOW);
	free(forged);
	/* A fourth part. */
	assert_true(asprintf(&forged, "%s.", jwt) > 0);
	expect_refused(&ctx, forged, NOW);
	free(forged);
	free(jwt);
}

static void
test_refuses_garbage(void **state)
{
	static const char *garbage[] = {
		"", ".", "..", "...", "abc", "a.b.c", "not a jwt at all",
		"eyJhbGciOiJIUzI1NiJ9", "eyJhbGciOiJIUzI1NiJ9..",
		"eyJhbGciOiJIUzI1NiJ9.e30.", "%%%.%%%.%%%",
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.bm90IGpzb24.AAAA",
	};
	struct token_ctx	ctx;
	size_t			i;

	(void)state;
	ctx_from(&ctx, secret_a, ISSUER, TTL);
	for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
		expect_refused(&ctx, garbage[i], NOW);
}

static void
test_verify_without_key(void **state)
{
	struct token_ctx	 ctx, empty;
	struct token_claims	 claims;
	struct kl_error		 err;
	char			*jwt;

	(void)state;
	ctx_from(&ctx, secret_a, ISSUER, TTL);
	assert_int_equal(issue_id(&ctx, 5, NOW, &jwt, &err), 0);
	memset(&empty, 0, sizeof(empty));
	snprintf(empty.issuer, sizeof(empty.issuer), ISSUER);
	assert_int_equal(token_verify(&empty, jwt, NOW, &claims, &err), -1);
	free(jwt);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_missing_file),
		cmocka_unit_test(test_init_short_secret),
		cmocka_unit_test(test_init_refuses_readable_by_others),
		cmocka_unit_test(test_init_accepts_0600_and_0400),
		cmocka_unit_test(test_init_strips_one_newline),
		cmocka_unit_test(test_init_refuses_directory),
		cmocka_unit_test(test_init_detail_has_no_secret),
		cmocka_unit_test(test_init_refuses_fifo_quickly),
		cmocka_unit_test(test_init_refuses_symlink),
		cmocka_unit_test(test_init_refuses_uniform_secret),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_round_trip_large_user_id),
		cmocka_unit_test(test_payload_claims_and_types),
		cmocka_unit_test(test_jti_differs),
		cmocka_unit_test(test_refuses_expired),
		cmocka_unit_test(test_refuses_future_iat),
		cmocka_unit_test(test_refuses_wrong_issuer),
		cmocka_unit_test(test_refuses_other_key),
		cmocka_unit_test(test_refuses_tampered_payload),
		cmocka_unit_test(test_refuses_alg_none),
		cmocka_unit_test(test_refuses_hs512_same_key),
		cmocka_unit_test(test_refuses_bad_claims),
		cmocka_unit_test(test_refuses_alg_other_spelling),
		cmocka_unit_test(test_refuses_signature_changes),
		cmocka_unit_test(test_refuses_garbage),
		cmocka_unit_test(test_verify_without_key),
	};

	return cmocka_run_group_tests_name("token", tests, NULL, NULL);
}
