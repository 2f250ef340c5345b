/*
 * test_token.c: our HS256 JWTs (app/token.c).
 *
 * token_init() on secret files with good and bad modes and lengths; a
 * token_issue() / token_verify() round trip; the payload decoded here, by
 * hand, to check claim types; and the tokens token_verify() must refuse:
 * expired, another issuer, another key, a tampered payload, alg "none",
 * HS512 with the same key, garbage.
 * Keyed files (kid:base64 lines): the first key signs and names itself,
 * all verify, a token without a kid is tried under each, removed keys and
 * unknown kids fail; the files refused (bad kids, duplicates, too many
 * keys, bad keys, mixed lines) and legacy files' line endings. The sid and
 * kakao_id claims; refresh tokens, their successors, session ids, tags
 * per key, token_secret_equal().
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

/* The token is written here, not by libjwt: libjwt itself, given the
 * key, must accept it and read the same claims; an issuer that needs JSON
 * escaping comes back as it was. */
static void
test_issue_libjwt_reads_it(void **state)
{
	static const char	 issuer[] = "a \"quoted\\ issuer\x01";
	struct token_ctx	 ctx;
	struct token_subject	 s;
	struct kl_error		 err;
	jwt_t			*jwt = NULL;
	char			*tok;
	time_t			 now = 1700000000;

	(void)state;
	ctx_from(&ctx, secret_a, issuer, 600);
	memset(&s, 0, sizeof(s));
	s.user_id = 9007199254740993ULL;	/* past a double's integers */
	s.kakao_id = 4242;
	memset(s.sid, 'c', SID_HEX_LEN);
	assert_int_equal(token_issue(&ctx, &s, now, &tok, &err), 0);
	assert_int_equal(jwt_decode(&jwt, tok, (const unsigned char *)secret_a,
	    (int)strlen(secret_a)), 0);
	assert_int_equal(jwt_get_alg(jwt), JWT_ALG_HS256);
	assert_string_equal(jwt_get_header(jwt, "kid"), ctx.keys[0].kid);
	assert_string_equal(jwt_get_header(jwt, "typ"), "JWT");
	assert_true(jwt_get_grant_int(jwt, "id") == (long)s.user_id);
	assert_string_equal(jwt_get_grant(jwt, "sub"), "9007199254740993");
	assert_true(jwt_get_grant_int(jwt, "kakao_id") == 4242);
	assert_string_equal(jwt_get_grant(jwt, "sid"), s.sid);
	assert_true(jwt_get_grant_int(jwt, "iat") == (long)now);
	assert_true(jwt_get_grant_int(jwt, "exp") == (long)now + 600);
	assert_string_equal(jwt_get_grant(jwt, "iss"), issuer);
	assert_int_equal(strlen(jwt_get_grant(jwt, "jti")), 32);
	jwt_free(jwt);
	/* And our own reader takes it back. */
	{
		struct token_claims	c;

		assert_int_equal(token_verify(&ctx, tok, now + 1, &c, &err),
		    0);
		assert_true(c.user_id == s.user_id);
		assert_int_equal(c.kakao_id, 4242);
		assert_string_equal(c.sid, s.sid);
	}
	/* A wrong key: libjwt refuses it too. */
	jwt = NULL;
	assert_int_not_equal(jwt_decode(&jwt, tok,
	    (const unsigned char *)secret_b, (int)strlen(secret_b)), 0);
	jwt_free(jwt);
	free(tok);
	token_wipe(&ctx);
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

/* ---- keyed files: several keys, kids ---- */

static const unsigned char key_c[40] = {
	0x00, 0x9f, 0x13, 0xe2, 0x5a, 0x77, 0x0d, 0xc8, 0x31, 0x4e,
	0xfe, 0x02, 0x66, 0xb9, 0x8a, 0x1c, 0x7d, 0xd0, 0x45, 0x3b,
	0x0a, 0x0d, 0xff, 0x20, 0x99, 0x56, 0xe7, 0x12, 0xab, 0x3c,
	0x88, 0x01, 0x6f, 0xc4, 0x27, 0x5e, 0xb1, 0x90, 0x0e, 0x73,
};

/* Standard base64 (+ and /), with or without its padding; malloc'd. */
static char *
b64std_encode(const unsigned char *in, size_t len, int pad)
{
	char	*u = b64url_encode(in, len), *p;
	size_t	 n = strlen(u);
	char	*out = malloc(n + 3);

	assert_non_null(out);
	for (p = u; *p != '\0'; p++)
		*p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
	memcpy(out, u, n + 1);
	while (pad && n % 4 != 0)
		out[n++] = '=';
	out[n] = '\0';
	free(u);
	return out;
}

/* Appends "kid:base64(key)" and eol to buf (size bytes); style 0:
 * base64url unpadded, 1: standard padded, 2: standard unpadded. */
static void
add_line(char *buf, size_t size, const char *kid, const void *key,
    size_t len, int style, const char *eol)
{
	char	*b = style == 0 ? b64url_encode(key, len) :
		    b64std_encode(key, len, style == 1);
	size_t	 n = strlen(buf);

	assert_true(snprintf(buf + n, size - n, "%s:%s%s", kid, b, eol) <
	    (int)(size - n));
	free(b);
}

static void
ctx_from_bytes(struct token_ctx *ctx, const void *data, size_t len)
{
	struct kl_error	 err;
	char		*path = secret_file(data, len, 0600);

	if (token_init(ctx, path, ISSUER, TTL, &err) != 0)
		fail_msg("token_init: %s", err.detail);
	remove_file(path);
}

/* token_init refuses data, with a detail holding want (a line number). */
static void
init_refused(const void *data, size_t len, const char *want)
{
	struct token_ctx	 ctx;
	struct kl_error		 err;
	char			*path = secret_file(data, len, 0600);

	kl_error_clear(&err);
	if (token_init(&ctx, path, ISSUER, TTL, &err) != -1)
		fail_msg("accepted a file that should hold %s", want);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	assert_int_equal(ctx.nkeys, 0);
	assert_int_equal(ctx.keys[0].keylen, 0);
	if (strstr(err.detail, want) == NULL)
		fail_msg("detail \"%s\" lacks \"%s\"", err.detail, want);
	remove_file(path);
}

/* ka, kb, kc: three styles of base64, three line endings. */
static void
ctx_abc(struct token_ctx *ctx)
{
	char	buf[1024] = "";

	add_line(buf, sizeof(buf), "ka", secret_a, strlen(secret_a), 0, "\n");
	add_line(buf, sizeof(buf), "kb", secret_b, strlen(secret_b), 1,
	    "\r\n\n");
	add_line(buf, sizeof(buf), "kc", key_c, sizeof(key_c), 2, "");
	ctx_from_bytes(ctx, buf, strlen(buf));
}

static void
expect_verified(const struct token_ctx *ctx, const char *jwt, uint64_t id)
{
	struct token_claims	claims;
	struct kl_error		err;

	if (token_verify(ctx, jwt, NOW, &claims, &err) != 0)
		fail_msg("refused: %s: %s", err.detail, jwt);
	assert_int_equal(claims.user_id, id);
}

static void
test_keyed_first_signs_all_verify(void **state)
{
	struct token_ctx	 ctx, rot;
	struct kl_error		 err;
	char			 payload[256], buf[1024] = "", *jwt;
	json_t			*hdr;

	(void)state;
	ctx_abc(&ctx);
	assert_int_equal(ctx.nkeys, 3);
	assert_string_equal(ctx.keys[0].kid, "ka");
	assert_string_equal(ctx.keys[1].kid, "kb");
	assert_string_equal(ctx.keys[2].kid, "kc");
	assert_int_equal(ctx.keys[0].keylen, strlen(secret_a));
	assert_memory_equal(ctx.keys[0].key, secret_a, strlen(secret_a));
	assert_int_equal(ctx.keys[1].keylen, strlen(secret_b));
	assert_memory_equal(ctx.keys[1].key, secret_b, strlen(secret_b));
	assert_int_equal(ctx.keys[2].keylen, sizeof(key_c));
	assert_memory_equal(ctx.keys[2].key, key_c, sizeof(key_c));

	/* The first key signs and names itself. */
	assert_int_equal(issue_id(&ctx, 5, NOW, &jwt, &err), 0);
	hdr = jwt_part(jwt, 0);
	assert_string_equal(json_string_value(json_object_get(hdr, "kid")),
	    "ka");
	assert_string_equal(json_string_value(json_object_get(hdr, "alg")),
	    "HS256");
	json_decref(hdr);
	expect_verified(&ctx, jwt, 5);
	free(jwt);

	/* The others verify tokens that name them. */
	good_payload(payload, sizeof(payload));
	jwt = make_signed(&ctx, 1, "{\"alg\":\"HS256\",\"kid\":\"kb\"}",
	    payload, NULL);
	expect_verified(&ctx, jwt, 5);
	free(jwt);
	jwt = make_signed(&ctx, 2, "{\"alg\":\"HS256\",\"kid\":\"kc\"}",
	    payload, NULL);
	expect_verified(&ctx, jwt, 5);
	free(jwt);
	/* A kid names the one key tried: kb's kid on ka's MAC fails. */
	jwt = make_signed(&ctx, 0, "{\"alg\":\"HS256\",\"kid\":\"kb\"}",
	    payload, NULL);
	expect_refused(&ctx, jwt, NOW);
	free(jwt);

	/* Rotation: kb moved first signs; the old file still verifies. */
	add_line(buf, sizeof(buf), "kb", secret_b, strlen(secret_b), 0, "\n");
	add_line(buf, sizeof(buf), "ka", secret_a, strlen(secret_a), 0, "\n");
	ctx_from_bytes(&rot, buf, strlen(buf));
	assert_int_equal(issue_id(&rot, 6, NOW, &jwt, &err), 0);
	hdr = jwt_part(jwt, 0);
	assert_string_equal(json_string_value(json_object_get(hdr, "kid")),
	    "kb");
	json_decref(hdr);
	expect_verified(&rot, jwt, 6);
	expect_verified(&ctx, jwt, 6);
	free(jwt);
	token_wipe(&ctx);
	token_wipe(&rot);
}

static void
test_keyed_removed_key_refused(void **state)
{
	struct token_ctx	 old, now;
	struct kl_error		 err;
	char			 a[1024] = "", b[1024] = "", payload[256], *jwt;

	(void)state;
	add_line(a, sizeof(a), "ka", secret_a, strlen(secret_a), 0, "\n");
	add_line(a, sizeof(a), "kb", secret_b, strlen(secret_b), 0, "\n");
	ctx_from_bytes(&old, a, strlen(a));
	add_line(b, sizeof(b), "kb", secret_b, strlen(secret_b), 0, "\n");
	add_line(b, sizeof(b), "kc", key_c, sizeof(key_c), 0, "\n");
	ctx_from_bytes(&now, b, strlen(b));

	assert_int_equal(issue_id(&old, 5, NOW, &jwt, &err), 0);
	expect_verified(&old, jwt, 5);
	expect_refused(&now, jwt, NOW);		/* ka is gone */
	free(jwt);
	/* Without a kid, signed by the removed key: no key of ours fits. */
	good_payload(payload, sizeof(payload));
	jwt = make_signed(&old, 0, "{\"alg\":\"HS256\"}", payload, NULL);
	expect_verified(&old, jwt, 5);
	expect_refused(&now, jwt, NOW);
	free(jwt);
	/* kb, still in both, verifies in both. */
	jwt = make_signed(&old, 1, "{\"alg\":\"HS256\",\"kid\":\"kb\"}",
	    payload, NULL);
	expect_verified(&now, jwt, 5);
	free(jwt);
}

/* A kid that is no string, or given twice: refused. */
static void
test_keyed_bad_kid_header_refused(void **state)
{
	static const char *headers[] = {
		"{\"alg\":\"HS256\",\"kid\":5}",
		"{\"alg\":\"HS256\",\"kid\":null}",
		"{\"alg\":\"HS256\",\"kid\":[\"ka\"]}",
		"{\"alg\":\"HS256\",\"kid\":\"ka\",\"kid\":\"kb\"}",
	};
	struct token_ctx	 ctx;
	char			 payload[256], *jwt;
	size_t			 i;

	(void)state;
	ctx_abc(&ctx);
	good_payload(payload, sizeof(payload));
	for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		jwt = make_signed(&ctx, 0, headers[i], payload, NULL);
		expect_refused(&ctx, jwt, NOW);
		free(jwt);
	}
	/* The control: ka's own kid on ka's MAC. */
	jwt = make_signed(&ctx, 0, "{\"alg\":\"HS256\",\"kid\":\"ka\"}",
	    payload, NULL);
	expect_verified(&ctx, jwt, 5);
	free(jwt);
}

/* A kid naming a key, with another key's MAC: refused (the named key
 * only). A kid naming none of ours (a key renamed in the file): any of our
 * keys, never a foreign one. */
static void
test_keyed_kid_names_the_key(void **state)
{
	static const char *unknown[] = {
		"{\"alg\":\"HS256\",\"kid\":\"kz\"}",
		"{\"alg\":\"HS256\",\"kid\":\"KA\"}",
		"{\"alg\":\"HS256\",\"kid\":\"ka \"}",
		"{\"alg\":\"HS256\",\"kid\":\"\"}",
		"{\"alg\":\"HS256\",\"kid\":\"../../etc/passwd\"}",
	};
	struct token_ctx	 ctx, other;
	char			 payload[256], *jwt;
	size_t			 i;

	(void)state;
	ctx_abc(&ctx);
	ctx_from(&other, "an-unrelated-key-0123456789abcdef0123", ISSUER, TTL);
	good_payload(payload, sizeof(payload));
	jwt = make_signed(&ctx, 1, "{\"alg\":\"HS256\",\"kid\":\"ka\"}",
	    payload, NULL);
	expect_refused(&ctx, jwt, NOW);
	free(jwt);
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		jwt = make_signed(&ctx, (int)(i % 3), unknown[i], payload, NULL);
		expect_verified(&ctx, jwt, 5);
		free(jwt);
		jwt = make_signed(&other, 0, unknown[i], payload, NULL);
		expect_refused(&ctx, jwt, NOW);
		free(jwt);
	}
}

/* A token without a kid (issued before kids) is tried under every key. */
static void
test_keyed_no_kid_any_key(void **state)
{
	struct token_ctx	 ctx, other;
	char			 payload[256], *jwt;
	int			 k;

	(void)state;
	ctx_abc(&ctx);
	good_payload(payload, sizeof(payload));
	for (k = 0; k < 3; k++) {
		jwt = make_signed(&ctx, k, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
		    payload, NULL);
		expect_verified(&ctx, jwt, 5);
		free(jwt);
	}
	/* A key not in the file: refused. */
	ctx_from(&other, "an-unrelated-key-0123456789abcdef0123", ISSUER, TTL);
	jwt = make_signed(&other, 0, "{\"alg\":\"HS256\"}", payload, NULL);
	expect_refused(&ctx, jwt, NOW);
	free(jwt);
}

static void
test_keyed_refuses_bad_kid(void **state)
{
	static const char *kids[] = {
		"k/1", "k@1", "k 1", " k1", "k1 ", "k+1", "k\t1", "",
		"kid:with", "\xc3\xa9t\xc3\xa9",
	};
	struct token_ctx	 ctx;
	char			 buf[1024], kid[MAX_JWT_KID + 2];
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(kids) / sizeof(kids[0]); i++) {
		buf[0] = '\0';
		add_line(buf, sizeof(buf), "ok", secret_a, strlen(secret_a), 0,
		    "\n");
		add_line(buf, sizeof(buf), kids[i], secret_b, strlen(secret_b),
		    0, "\n");
		init_refused(buf, strlen(buf), "line 2");
	}
	/* 64 characters of every kind allowed: accepted. */
	memset(kid, 'x', MAX_JWT_KID);
	memcpy(kid, "AZ.az_09-", 9);
	kid[MAX_JWT_KID] = '\0';
	buf[0] = '\0';
	add_line(buf, sizeof(buf), kid, secret_a, strlen(secret_a), 0, "\n");
	ctx_from_bytes(&ctx, buf, strlen(buf));
	assert_string_equal(ctx.keys[0].kid, kid);
	assert_int_equal(strlen(ctx.keys[0].kid), MAX_JWT_KID);
	/* 65: refused. */
	strcat(kid, "x");
	buf[0] = '\0';
	add_line(buf, sizeof(buf), kid, secret_a, strlen(secret_a), 0, "\n");
	init_refused(buf, strlen(buf), "line 1");
	/* As the first line, a bad kid is refused too (not a legacy key). */
	buf[0] = '\0';
	add_line(buf, sizeof(buf), "k@1", secret_a, strlen(secret_a), 0, "\n");
	init_refused(buf, strlen(buf), "line 1");
}

static void
test_keyed_refuses_duplicate_kid(void **state)
{
	char	buf[1024] = "";

	(void)state;
	add_line(buf, sizeof(buf), "k1", secret_a, strlen(secret_a), 0, "\n");
	add_line(buf, sizeof(buf), "k2", secret_b, strlen(secret_b), 0, "\n");
	add_line(buf, sizeof(buf), "k1", key_c, sizeof(key_c), 0, "\n");
	init_refused(buf, strlen(buf), "line 3");
}

static void
test_keyed_refuses_more_than_8(void **state)
{
	struct token_ctx	ctx;
	unsigned char		key[MIN_JWT_SECRET];
	char			buf[4096] = "", kid[8];
	int			i;

	(void)state;
	for (i = 0; i < MAX_JWT_KEYS + 1; i++) {
		memset(key, 'a' + i, sizeof(key));
		key[0] = 'Z';
		snprintf(kid, sizeof(kid), "k%d", i);
		add_line(buf, sizeof(buf), kid, key, sizeof(key), 0, "\n");
		if (i == MAX_JWT_KEYS - 1) {
			ctx_from_bytes(&ctx, buf, strlen(buf));
			assert_int_equal(ctx.nkeys, MAX_JWT_KEYS);
			assert_string_equal(ctx.keys[7].kid, "k7");
		}
	}
	init_refused(buf, strlen(buf), "line 9");
}

static void
test_keyed_refuses_bad_keys(void **state)
{
	static const struct {
		const char	*what;
		const char	*line;
	} cases[] = {
		{ "31 bytes", "k2:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZQ" },
		{ "no key", "k2:" },
		{ "a character outside base64",
		  "k2:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYx*" },
		{ "a space", "k2: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYx" },
		{ "a space after", "k2:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYx "
		  },
		{ "padding in the middle",
		  "k2:MDEy=MzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYx" },
		{ "three = ", "k2:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYx==="
		  },
		{ "wrong padding",
		  "k2:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYxMg=" },
		{ "non-canonical last character",
		  "k2:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYxMh" },
		{ "48 x 'a'",
		  "k2:YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh" },
		{ "32 spaces", "k2:ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICA" },
	};
	struct token_ctx	 ctx;
	char			 buf[1024], *line;
	unsigned char		*big;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf[0] = '\0';
		add_line(buf, sizeof(buf), "k1", secret_a, strlen(secret_a), 0,
		    "\n");
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s\n",
		    cases[i].line);
		init_refused(buf, strlen(buf), "line 2");
	}
	/* 32 bytes (the first case and one more), padded or not: fine. */
	ctx_from_bytes(&ctx, "k2:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYx\n",
	    48);
	assert_int_equal(ctx.keys[0].keylen, 33);
	ctx_from_bytes(&ctx, "k2:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYxMg==",
	    51);
	assert_int_equal(ctx.keys[0].keylen, 34);
	assert_memory_equal(ctx.keys[0].key, "0123456789abcdef0123456789abcdef12",
	    34);
	/* MAX_JWT_SECRET bytes fit, one more does not. */
	big = malloc(MAX_JWT_SECRET + 1);
	line = malloc(2 * MAX_JWT_SECRET);
	assert_non_null(big);
	assert_non_null(line);
	for (i = 0; i <= MAX_JWT_SECRET; i++)
		big[i] = (unsigned char)(i * 7 + 3);
	line[0] = '\0';
	add_line(line, 2 * MAX_JWT_SECRET, "big", big, MAX_JWT_SECRET, 1, "\n");
	ctx_from_bytes(&ctx, line, strlen(line));
	assert_int_equal(ctx.keys[0].keylen, MAX_JWT_SECRET);
	assert_memory_equal(ctx.keys[0].key, big, MAX_JWT_SECRET);
	line[0] = '\0';
	add_line(line, 2 * MAX_JWT_SECRET, "big", big, MAX_JWT_SECRET + 1, 1,
	    "\n");
	init_refused(line, strlen(line), "line 1");
	free(line);
	free(big);
}

/* A keyed file with a line that is not: refused, naming the line, never
 * its bytes; and a legacy-looking first line before keyed ones too. */
static void
test_keyed_refuses_mixed(void **state)
{
	struct token_ctx	 ctx;
	struct kl_error		 err;
	char			 buf[1024] = "", *path;

	(void)state;
	add_line(buf, sizeof(buf), "k1", secret_a, strlen(secret_a), 0, "\n");
	strcat(buf, "\n");
	add_line(buf, sizeof(buf), "k2", secret_b, strlen(secret_b), 0, "\n");
	strcat(buf, "0123456789abcdef0123456789abcdef-legacy\n");
	init_refused(buf, strlen(buf), "line 4");
	path = secret_file(buf, strlen(buf), 0600);
	assert_int_equal(token_init(&ctx, path, ISSUER, TTL, &err), -1);
	assert_null(strstr(err.detail, "0123456789abcdef"));
	assert_null(strstr(err.detail, "MDEy"));
	remove_file(path);

	/* A keyed file whose first line lost its ':'. */
	snprintf(buf, sizeof(buf), "k1MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNk"
	    "ZWYx\n");
	add_line(buf, sizeof(buf), "k2", secret_b, strlen(secret_b), 0, "\n");
	init_refused(buf, strlen(buf), "line 2");

	/* Binary bytes in a keyed line: it no longer looks keyed. */
	buf[0] = '\0';
	add_line(buf, sizeof(buf), "k1", secret_a, strlen(secret_a), 0, "\n");
	strcat(buf, "k2:\x01MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYx\n");
	init_refused(buf, strlen(buf), "line 2");
}

/* ---- legacy files: one key, a kid made from it ---- */

static char *
hand_signed(const void *key, size_t keylen, const char *header,
    const char *payload)
{
	struct token_ctx	 k;
	char			*jwt;

	memset(&k, 0, sizeof(k));
	memcpy(k.keys[0].key, key, keylen);
	k.keys[0].keylen = keylen;
	k.nkeys = 1;
	jwt = make_signed(&k, 0, header, payload, NULL);
	explicit_bzero(&k, sizeof(k));
	return jwt;
}

static void
test_legacy_line_endings(void **state)
{
	struct token_ctx	 lf, crlf, cr;
	unsigned char		 md[32];
	char			 buf[128], payload[256], want[16], *jwt;
	json_t			*hdr;

	(void)state;
	snprintf(buf, sizeof(buf), "%.32s\n", secret_a);
	ctx_from_bytes(&lf, buf, 33);
	snprintf(buf, sizeof(buf), "%.32s\r\n", secret_a);
	ctx_from_bytes(&crlf, buf, 34);
	snprintf(buf, sizeof(buf), "%.32s\r", secret_a);
	ctx_from_bytes(&cr, buf, 33);
	assert_int_equal(lf.nkeys, 1);
	assert_int_equal(lf.keys[0].keylen, 32);
	assert_int_equal(crlf.keys[0].keylen, 32);
	assert_memory_equal(crlf.keys[0].key, secret_a, 32);
	/* A lone final CR is part of the key. */
	assert_int_equal(cr.keys[0].keylen, 33);
	assert_memory_equal(cr.keys[0].key, buf, 33);

	/* The kid: "k" and 8 hex digits of SHA-256(key). */
	assert_non_null(EVP_Digest(secret_a, 32, md, NULL, EVP_sha256(),
	    NULL));
	snprintf(want, sizeof(want), "k%02x%02x%02x%02x", md[0], md[1], md[2],
	    md[3]);
	assert_string_equal(lf.keys[0].kid, want);
	assert_string_equal(crlf.keys[0].kid, want);
	assert_string_not_equal(cr.keys[0].kid, want);
	assert_int_equal(issue_id(&lf, 5, NOW, &jwt, NULL), 0);
	hdr = jwt_part(jwt, 0);
	assert_string_equal(json_string_value(json_object_get(hdr, "kid")),
	    want);
	json_decref(hdr);
	free(jwt);

	/* Signed with key + "\r": only the CR file verifies it; signed
	 * without the CR: only the others. Without kids, as old tokens. */
	good_payload(payload, sizeof(payload));
	jwt = hand_signed(buf, 33, "{\"alg\":\"HS256\"}", payload);
	expect_verified(&cr, jwt, 5);
	expect_refused(&lf, jwt, NOW);
	expect_refused(&crlf, jwt, NOW);
	free(jwt);
	jwt = hand_signed(secret_a, 32, "{\"alg\":\"HS256\"}", payload);
	expect_refused(&cr, jwt, NOW);
	expect_verified(&lf, jwt, 5);
	expect_verified(&crlf, jwt, 5);
	free(jwt);

	/* LF CR LF: one LF (or CR LF) goes, the rest is key. */
	snprintf(buf, sizeof(buf), "%.32s\n\r\n", secret_a);
	ctx_from_bytes(&cr, buf, 35);
	assert_int_equal(cr.keys[0].keylen, 33);
	assert_memory_equal(cr.keys[0].key, buf, 33);
}

/* ---- session claims ---- */

static void
test_session_claims_round_trip(void **state)
{
	struct token_ctx	 ctx;
	struct token_subject	 s;
	struct token_claims	 c;
	struct kl_error		 err;
	unsigned char		 sid[STORE_SID_LEN];
	char			*jwt;
	json_t			*p, *v;

	(void)state;
	ctx_abc(&ctx);
	memset(&s, 0, sizeof(s));
	s.user_id = 9;
	s.kakao_id = 1855599935;
	assert_int_equal(token_sid_new(sid, s.sid, &err), 0);
	assert_int_equal(token_issue(&ctx, &s, NOW, &jwt, &err), 0);
	p = jwt_part(jwt, 1);
	v = json_object_get(p, "kakao_id");
	assert_true(json_is_integer(v));
	assert_int_equal(json_integer_value(v), 1855599935);
	v = json_object_get(p, "sid");
	assert_true(json_is_string(v));
	assert_string_equal(json_string_value(v), s.sid);
	json_decref(p);
	if (token_verify(&ctx, jwt, NOW, &c, &err) != 0)
		fail_msg("refused: %s", err.detail);
	assert_int_equal(c.user_id, 9);
	assert_int_equal(c.kakao_id, 1855599935);
	assert_string_equal(c.sid, s.sid);
	free(jwt);

	/* Neither: the claims are left out, and read back as 0 and "". */
	s.kakao_id = 0;
	s.sid[0] = '\0';
	assert_int_equal(token_issue(&ctx, &s, NOW, &jwt, &err), 0);
	p = jwt_part(jwt, 1);
	assert_null(json_object_get(p, "kakao_id"));
	assert_null(json_object_get(p, "sid"));
	json_decref(p);
	assert_int_equal(token_verify(&ctx, jwt, NOW, &c, &err), 0);
	assert_int_equal(c.kakao_id, 0);
	assert_string_equal(c.sid, "");
	free(jwt);

	/* token_issue refuses what it must not sign. */
	s.kakao_id = -1;
	assert_int_equal(token_issue(&ctx, &s, NOW, &jwt, &err), -1);
	assert_null(jwt);
	s.kakao_id = 1;
	snprintf(s.sid, sizeof(s.sid), "0123456789ABCDEF0123456789abcdef");
	assert_int_equal(token_issue(&ctx, &s, NOW, &jwt, &err), -1);
	assert_int_equal(err.status, KL_INTERNAL);
	snprintf(s.sid, sizeof(s.sid), "0123456789abcdef");
	assert_int_equal(token_issue(&ctx, &s, NOW, &jwt, &err), -1);
}

static void
test_refuses_bad_session_claims(void **state)
{
	static const char *extra[] = {
		"\"sid\":\"0123456789ABCDEF0123456789abcdef\"",
		"\"sid\":\"0123456789abcdef0123456789abcde\"",
		"\"sid\":\"0123456789abcdef0123456789abcdef0\"",
		"\"sid\":\"0123456789abcdef0123456789abcdeg\"",
		"\"sid\":\"\"",
		"\"sid\":12345678901234567890",
		"\"sid\":null",
		"\"sid\":[\"0123456789abcdef0123456789abcdef\"]",
		"\"kakao_id\":0",
		"\"kakao_id\":-7",
		"\"kakao_id\":\"7\"",
		"\"kakao_id\":7.5",
		"\"kakao_id\":null",
		"\"kakao_id\":true",
	};
	struct token_ctx	 ctx;
	struct token_claims	 c;
	struct kl_error		 err;
	char			 payload[512], *jwt;
	size_t			 i;

	(void)state;
	ctx_abc(&ctx);
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		snprintf(payload, sizeof(payload), "{\"id\":5,\"sub\":\"5\","
		    "\"iat\":%lld,\"exp\":%lld,\"iss\":\"%s\",%s}",
		    (long long)NOW, (long long)(NOW + TTL), ISSUER, extra[i]);
		jwt = make_signed(&ctx, 0, "{\"alg\":\"HS256\",\"kid\":\"ka\"}",
		    payload, NULL);
		kl_error_clear(&err);
		if (token_verify(&ctx, jwt, NOW, &c, &err) != -1)
			fail_msg("accepted %s", extra[i]);
		assert_int_equal(err.status, KL_BAD_TOKEN);
		assert_int_equal(c.kakao_id, 0);
		assert_string_equal(c.sid, "");
		free(jwt);
	}
	/* The control: both right. */
	snprintf(payload, sizeof(payload), "{\"id\":5,\"sub\":\"5\",\"iat\":%lld,"
	    "\"exp\":%lld,\"iss\":\"%s\",\"kakao_id\":7,"
	    "\"sid\":\"0123456789abcdef0123456789abcdef\"}", (long long)NOW,
	    (long long)(NOW + TTL), ISSUER);
	jwt = make_signed(&ctx, 0, "{\"alg\":\"HS256\",\"kid\":\"ka\"}",
	    payload, NULL);
	if (token_verify(&ctx, jwt, NOW, &c, &err) != 0)
		fail_msg("refused: %s", err.detail);
	assert_int_equal(c.kakao_id, 7);
	assert_string_equal(c.sid, "0123456789abcdef0123456789abcdef");
	free(jwt);
}

/* ---- refresh tokens, session ids, tags ---- */

static void
test_refresh_new_and_decode(void **state)
{
	unsigned char	raw[REFRESH_TOKEN_BYTES], zero[REFRESH_TOKEN_BYTES];
	char		a[REFRESH_TOKEN_LEN + 1], b[REFRESH_TOKEN_LEN + 1];
	char		*again;
	struct kl_error	err;

	(void)state;
	memset(zero, 0, sizeof(zero));
	assert_int_equal(token_refresh_new(a, &err), 0);
	assert_int_equal(token_refresh_new(b, &err), 0);
	assert_int_equal(strlen(a), REFRESH_TOKEN_LEN);
	assert_int_equal(strlen(a), 43);
	assert_int_equal(strspn(a, b64url), REFRESH_TOKEN_LEN);
	assert_string_not_equal(a, b);
	assert_int_equal(token_refresh_decode(a, raw, &err), 0);
	assert_memory_not_equal(raw, zero, sizeof(raw));
	again = b64url_encode(raw, sizeof(raw));
	assert_string_equal(again, a);
	free(again);
}

static void
test_refresh_decode_refuses(void **state)
{
	unsigned char	raw[REFRESH_TOKEN_BYTES], zero[REFRESH_TOKEN_BYTES];
	char		good[REFRESH_TOKEN_LEN + 1], bad[64];
	struct kl_error	err;
	size_t		i;
	const char	*p;

	(void)state;
	memset(zero, 0, sizeof(zero));
	assert_int_equal(token_refresh_new(good, &err), 0);
	for (i = 0; i < 8; i++) {
		switch (i) {
		case 0:		/* 42 characters */
			snprintf(bad, sizeof(bad), "%.42s", good);
			break;
		case 1:		/* 44 */
			snprintf(bad, sizeof(bad), "%sA", good);
			break;
		case 2:		/* padded */
			snprintf(bad, sizeof(bad), "%s=", good);
			break;
		case 3:		/* '=' as the 43rd */
			snprintf(bad, sizeof(bad), "%.42s=", good);
			break;
		case 4:		/* the last character's two spare bits set */
			snprintf(bad, sizeof(bad), "%s", good);
			p = strchr(b64url, bad[42]);
			bad[42] = b64url[(p - b64url) | 3];
			if (bad[42] == good[42])
				bad[42] = b64url[(p - b64url) | 1];
			break;
		case 5:		/* standard base64's + */
			snprintf(bad, sizeof(bad), "+%.42s", good + 1);
			break;
		case 6:
			bad[0] = '\0';
			break;
		case 7:		/* 43 but a NUL-ended 43 with a space */
			snprintf(bad, sizeof(bad), " %.42s", good + 1);
			break;
		}
		memset(raw, 0xaa, sizeof(raw));
		kl_error_clear(&err);
		if (token_refresh_decode(bad, raw, &err) != -1)
			fail_msg("case %zu accepted: %s", i, bad);
		assert_int_equal(err.status, KL_BAD_REFRESH);
		assert_memory_equal(raw, zero, sizeof(raw));
	}
	assert_int_equal(token_refresh_decode(NULL, raw, &err), -1);
	assert_int_equal(err.status, KL_BAD_REFRESH);
	assert_int_equal(token_refresh_decode(good, raw, &err), 0);
}

static void
test_refresh_successor(void **state)
{
	struct token_ctx	ctx;
	struct kl_error		err;
	char			p1[REFRESH_TOKEN_LEN + 1], p2[REFRESH_TOKEN_LEN + 1];
	char			s1[REFRESH_TOKEN_LEN + 1], s2[REFRESH_TOKEN_LEN + 1];
	char			s3[REFRESH_TOKEN_LEN + 1], s4[REFRESH_TOKEN_LEN + 1];
	unsigned char		raw[REFRESH_TOKEN_BYTES], k[32], want[32];
	unsigned int		n;
	char			*w;

	(void)state;
	ctx_abc(&ctx);
	assert_int_equal(token_refresh_new(p1, &err), 0);
	assert_int_equal(token_refresh_new(p2, &err), 0);
	assert_int_equal(token_refresh_successor(&ctx, 0, p1, s1, &err), 0);
	assert_int_equal(token_refresh_successor(&ctx, 0, p1, s2, &err), 0);
	assert_string_equal(s1, s2);			/* deterministic */
	assert_int_equal(strlen(s1), REFRESH_TOKEN_LEN);
	assert_string_not_equal(s1, p1);
	assert_int_equal(token_refresh_decode(s1, raw, &err), 0);
	assert_int_equal(token_refresh_successor(&ctx, 1, p1, s3, &err), 0);
	assert_string_not_equal(s1, s3);		/* per key */
	assert_int_equal(token_refresh_successor(&ctx, 0, p2, s4, &err), 0);
	assert_string_not_equal(s1, s4);		/* per parent */

	/* The construction, computed here, for key 1. */
	assert_int_equal(token_refresh_decode(p1, raw, &err), 0);
	assert_non_null(HMAC(EVP_sha256(), secret_b, (int)strlen(secret_b),
	    (const unsigned char *)"kakao-login refresh successor", 29, k, &n));
	assert_non_null(HMAC(EVP_sha256(), k, 32, raw, sizeof(raw), want, &n));
	w = b64url_encode(want, 32);
	assert_string_equal(s3, w);
	free(w);

	/* No such key; a parent that is not a refresh token. */
	assert_int_equal(token_refresh_successor(&ctx, 3, p1, s2, &err), -1);
	assert_int_equal(err.status, KL_INTERNAL);
	assert_int_equal(token_refresh_successor(&ctx, -1, p1, s2, &err), -1);
	assert_int_equal(err.status, KL_INTERNAL);
	p1[42] = '\0';
	assert_int_equal(token_refresh_successor(&ctx, 0, p1, s2, &err), -1);
	assert_int_equal(err.status, KL_BAD_REFRESH);
}

static void
test_tag_key_per_key(void **state)
{
	struct token_ctx	ctx, b_first;
	struct kl_error		err;
	unsigned char		t0[STORE_TAG_LEN], t1[STORE_TAG_LEN];
	unsigned char		t[STORE_TAG_LEN];
	char			buf[1024] = "";

	(void)state;
	ctx_abc(&ctx);
	assert_int_equal(token_tag_key(&ctx, 0, "refresh", "x", 1, t0, &err),
	    0);
	assert_int_equal(token_tag(&ctx, "refresh", "x", 1, t, &err), 0);
	assert_memory_equal(t0, t, sizeof(t));		/* token_tag: keys[0] */
	assert_int_equal(token_tag_key(&ctx, 1, "refresh", "x", 1, t1, &err),
	    0);
	assert_memory_not_equal(t0, t1, sizeof(t0));
	assert_int_equal(token_tag_key(&ctx, 2, "refresh", "x", 1, t, &err),
	    0);
	assert_memory_not_equal(t, t1, sizeof(t));
	assert_memory_not_equal(t, t0, sizeof(t));
	/* keys[1]'s tag is the tag of a file where that key comes first. */
	add_line(buf, sizeof(buf), "kb", secret_b, strlen(secret_b), 0, "\n");
	ctx_from_bytes(&b_first, buf, strlen(buf));
	assert_int_equal(token_tag(&b_first, "refresh", "x", 1, t, &err), 0);
	assert_memory_equal(t, t1, sizeof(t));
	/* No such key. */
	assert_int_equal(token_tag_key(&ctx, 3, "refresh", "x", 1, t, &err),
	    -1);
	assert_int_equal(err.status, KL_INTERNAL);
	assert_int_equal(token_tag_key(&ctx, -1, "refresh", "x", 1, t, &err),
	    -1);
	assert_int_equal(token_tag_key(&b_first, 1, "refresh", "x", 1, t,
	    &err), -1);
}

static void
test_sid_new(void **state)
{
	unsigned char	a[STORE_SID_LEN], b[STORE_SID_LEN];
	char		ha[SID_HEX_LEN + 1], hb[SID_HEX_LEN + 1], want[3];
	struct kl_error	err;
	size_t		i;

	(void)state;
	assert_int_equal(token_sid_new(a, ha, &err), 0);
	assert_int_equal(token_sid_new(b, hb, &err), 0);
	assert_int_equal(strlen(ha), SID_HEX_LEN);
	assert_int_equal(strspn(ha, "0123456789abcdef"), SID_HEX_LEN);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_string_not_equal(ha, hb);
	for (i = 0; i < STORE_SID_LEN; i++) {
		snprintf(want, sizeof(want), "%02x", a[i]);
		assert_memory_equal(ha + 2 * i, want, 2);
	}
}

static void
test_secret_equal(void **state)
{
	char	a[] = "an-admin-key-0123456789", b[] = "an-admin-key-0123456789";

	(void)state;
	assert_true(&a[0] != &b[0]);
	assert_true(token_secret_equal(a, strlen(a), b, strlen(b)));
	b[0] ^= 1;
	assert_false(token_secret_equal(a, strlen(a), b, strlen(b)));
	b[0] ^= 1;
	b[strlen(b) - 1] ^= 1;
	assert_false(token_secret_equal(a, strlen(a), b, strlen(b)));
	b[strlen(b) - 1] ^= 1;
	/* A prefix, either way round. */
	assert_false(token_secret_equal(a, strlen(a), b, strlen(b) - 1));
	assert_false(token_secret_equal(a, strlen(a) - 1, b, strlen(b)));
	/* Bytes after a NUL count. */
	assert_false(token_secret_equal("x\0a", 3, "x\0b", 3));
	assert_true(token_secret_equal("x\0a", 3, "x\0a", 3));
	/* The empty secret. */
	assert_true(token_secret_equal("", 0, NULL, 0));
	assert_false(token_secret_equal("", 0, a, strlen(a)));
	assert_false(token_secret_equal(NULL, 5, a, 5));
	/* Still equal on a second call (one per-process key). */
	assert_true(token_secret_equal(a, strlen(a), b, strlen(b)));
}

/* A token libjwt issued (the released format: libjwt's header, claims
 * sorted by name, no sid; with and without a kid) still verifies now
 * that we read tokens ourselves. */
static void
test_verify_reads_libjwt_tokens(void **state)
{
	struct token_ctx	 ctx;
	struct token_claims	 c;
	struct kl_error		 err;
	jwt_t			*jwt;
	char			*tok;
	time_t			 now = time(NULL);
	int			 with_kid;

	(void)state;
	ctx_from(&ctx, secret_a, ISSUER, TTL);
	for (with_kid = 0; with_kid <= 1; with_kid++) {
		assert_int_equal(jwt_new(&jwt), 0);
		if (with_kid)
			assert_int_equal(jwt_add_header(jwt, "kid",
			    ctx.keys[0].kid), 0);
		assert_int_equal(jwt_add_grant_int(jwt, "id", 77), 0);
		assert_int_equal(jwt_add_grant(jwt, "sub", "77"), 0);
		assert_int_equal(jwt_add_grant_int(jwt, "kakao_id", 5), 0);
		assert_int_equal(jwt_add_grant_int(jwt, "iat", (long)now), 0);
		assert_int_equal(jwt_add_grant_int(jwt, "exp",
		    (long)now + 60), 0);
		assert_int_equal(jwt_add_grant(jwt, "iss", ISSUER), 0);
		assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256,
		    (const unsigned char *)secret_a, (int)strlen(secret_a)),
		    0);
		assert_non_null(tok = jwt_encode_str(jwt));
		jwt_free(jwt);
		if (token_verify(&ctx, tok, now, &c, &err) != 0)
			fail_msg("libjwt's token refused (kid %d): %s",
			    with_kid, err.detail);
		assert_true(c.user_id == 77);
		assert_int_equal(c.kakao_id, 5);
		assert_string_equal(c.sid, "");
		free(tok);
	}
	token_wipe(&ctx);
}

/* "typ", when a string, must be "JWT" in any case, as libjwt required
 * when it decoded for us; a MAC does not make another typ ours. */
static void
test_verify_typ(void **state)
{
	struct token_ctx	 ctx;
	struct token_claims	 c;
	struct kl_error		 err;
	char			 payload[256], *tok;
	time_t			 now = NOW;

	(void)state;
	ctx_from(&ctx, secret_a, ISSUER, TTL);
	good_payload(payload, sizeof(payload));
	tok = make_signed(&ctx, 0, "{\"alg\":\"HS256\",\"typ\":\"jwt\"}",
	    payload, NULL);
	assert_int_equal(token_verify(&ctx, tok, now, &c, &err), 0);
	free(tok);
	tok = make_signed(&ctx, 0, "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}",
	    payload, NULL);
	expect_refused(&ctx, tok, now);
	free(tok);
	token_wipe(&ctx);
}

/* An issuer that is not UTF-8 is refused at start: every token's claims
 * would be JSON no reader accepts. */
static void
test_init_refuses_issuer_not_utf8(void **state)
{
	struct token_ctx	 ctx;
	struct kl_error		 err;
	char			*path = secret_file(secret_a, strlen(secret_a),
				    0600);

	(void)state;
	assert_int_equal(token_init(&ctx, path, "bad \xff issuer", TTL, &err),
	    -1);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	assert_non_null(strstr(err.detail, "UTF-8"));
	assert_int_equal(ctx.keys[0].keylen, 0);
	remove_file(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_issue_libjwt_reads_it),
		cmocka_unit_test(test_verify_reads_libjwt_tokens),
		cmocka_unit_test(test_verify_typ),
		cmocka_unit_test(test_init_refuses_issuer_not_utf8),
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
		cmocka_unit_test(test_keyed_first_signs_all_verify),
		cmocka_unit_test(test_keyed_removed_key_refused),
		cmocka_unit_test(test_keyed_bad_kid_header_refused),
		cmocka_unit_test(test_keyed_kid_names_the_key),
		cmocka_unit_test(test_keyed_no_kid_any_key),
		cmocka_unit_test(test_keyed_refuses_bad_kid),
		cmocka_unit_test(test_keyed_refuses_duplicate_kid),
		cmocka_unit_test(test_keyed_refuses_more_than_8),
		cmocka_unit_test(test_keyed_refuses_bad_keys),
		cmocka_unit_test(test_keyed_refuses_mixed),
		cmocka_unit_test(test_legacy_line_endings),
		cmocka_unit_test(test_session_claims_round_trip),
		cmocka_unit_test(test_refuses_bad_session_claims),
		cmocka_unit_test(test_refresh_new_and_decode),
		cmocka_unit_test(test_refresh_decode_refuses),
		cmocka_unit_test(test_refresh_successor),
		cmocka_unit_test(test_tag_key_per_key),
		cmocka_unit_test(test_sid_new),
		cmocka_unit_test(test_secret_equal),
	};

	return cmocka_run_group_tests_name("token", tests, NULL, NULL);
}
