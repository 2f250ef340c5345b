/*
 * token.c: our HS256 JWTs, and the other secrets made from the signing
 * keys: tags, refresh tokens, session ids.
 *
 * Owns the signing keys: jwt_secret_file is one legacy key or up to
 * MAX_JWT_KEYS "kid:base64" lines, the first of which signs and keys every
 * tag; all of them verify. Never touches the store or the network.
 * Tokens are written and read here, with Jansson and OpenSSL: libjwt 1.10
 * trusts the algorithm a token names, compares MACs with strcmp and checks
 * no claims, and its encoder and decoder cost a login and a verification
 * more than the rest of this file (make profile). token_verify() checks
 * the header (exactly "HS256"; a kid, when there is one, naming one of our
 * keys), then the HMAC-SHA256 under that key (CRYPTO_memcmp), then reads
 * the payload once and checks every claim.
 * token_tag() is the keyed hash other layers store in place of a secret
 * (codes, verifiers, refresh tokens), under a key derived here from a
 * signing key, so no key leaves this file. Every copy of a key, and every
 * derived key, is wiped once used.
 * Thread-safe: the context is read-only after token_init(); each call
 * allocates and frees its own buffers; token_secret_equal()'s per-process
 * key is made once, under pthread_once().
 */
#include <sys/random.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "config.h"
#include "json_writer.h"
#include "kl_buf.h"
#include "token.h"
#include "token_oidc.h"

/* Characters of n bytes in base64url without padding. */
#define B64URL_LEN(n)	(((n) * 4 + 2) / 3)
/* The longest spelling of a key in base64, padded. */
#define KEY_B64_MAX	((MAX_JWT_SECRET + 2) / 3 * 4)
/* token_verify: no kid in the header, or one naming none of our keys, so
 * any of our keys may have signed. */
#define KEY_ANY		(-2)

static void	b64url_encode(char *, const unsigned char *, size_t);
static int	key_file_parse(struct token_ctx *, const unsigned char *,
		    size_t, struct kl_error *);

/* ---- the key file ---- */

/* s can be a JSON string: valid UTF-8 (Jansson's own check). */
static bool
text_is_json_string(const char *s)
{
	json_t	*j = json_string(s);

	json_decref(j);
	return j != NULL;
}

int
token_init(struct token_ctx *ctx, const char *path, const char *issuer,
    long ttl, struct kl_error *err)
{
	struct kl_error	 perr;
	unsigned char	*buf;
	size_t		 len;
	int		 rc = -1;

	memset(ctx, 0, sizeof(*ctx));
	if ((buf = malloc(MAX_JWT_KEY_FILE)) == NULL)
		return kl_fail(err, KL_BAD_CONFIG, "jwt_secret_file %s: out "
		    "of memory", path);
	if (config_read_secret_raw("jwt_secret_file", path, buf,
	    MAX_JWT_KEY_FILE, &len, err) == -1)
		goto done;
	if (token_keys_parse(ctx, buf, len, &perr) == -1) {
		kl_fail(err, KL_BAD_CONFIG, "jwt_secret_file %s: %s", path,
		    perr.detail);
		goto done;
	}
	if (snprintf(ctx->issuer, sizeof(ctx->issuer), "%s", issuer) >=
	    (int)sizeof(ctx->issuer)) {
		token_wipe(ctx);
		kl_fail(err, KL_BAD_CONFIG, "jwt_issuer too long");
		goto done;
	}
	/* The claims are JSON: an issuer that is not UTF-8 would make
	 * tokens no reader, ours included, accepts. */
	if (!text_is_json_string(issuer)) {
		token_wipe(ctx);
		kl_fail(err, KL_BAD_CONFIG, "jwt_issuer is not UTF-8");
		goto done;
	}
	ctx->ttl = ttl;
	rc = 0;
done:
	explicit_bzero(buf, MAX_JWT_KEY_FILE);
	free(buf);
	return rc;
}

void
token_wipe(struct token_ctx *ctx)
{
	explicit_bzero(ctx->keys, sizeof(ctx->keys));
	ctx->nkeys = 0;
}

int
token_keys_parse(struct token_ctx *ctx, const unsigned char *buf, size_t len,
    struct kl_error *err)
{
	token_wipe(ctx);
	if (key_file_parse(ctx, buf, len, err) == -1) {
		token_wipe(ctx);
		return -1;
	}
	return 0;
}

static bool
kid_char(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* A line that looks keyed: printable ASCII (tabs too) with a ':' in it.
 * A random binary key hardly ever has such a line; a keyed file with a
 * typo in its kid still does, and is refused rather than taken for one
 * legacy key. */
static bool
line_keyed(const unsigned char *p, size_t n)
{
	size_t	i;
	bool	colon = false;

	for (i = 0; i < n; i++) {
		if ((p[i] < ' ' || p[i] > '~') && p[i] != '\t')
			return false;
		colon |= p[i] == ':';
	}
	return colon;
}

/* The next line of buf[*off .. len) into *line, *n, without its LF or
 * CR LF; false at the end. */
static bool
next_line(const unsigned char *buf, size_t len, size_t *off,
    const unsigned char **line, size_t *n)
{
	const unsigned char	*nl;

	if (*off >= len)
		return false;
	*line = buf + *off;
	if ((nl = memchr(*line, '\n', len - *off)) == NULL) {
		*n = len - *off;
		*off = len;
		return true;
	}
	*n = (size_t)(nl - *line);
	*off += *n + 1;
	if (*n > 0 && (*line)[*n - 1] == '\r')
		(*n)--;
	return true;
}

/* Checks a key's bytes and copies them into k. at: "" or "line N: ". */
static int
key_store(struct token_key *k, const unsigned char *key, size_t len,
    const char *at, struct kl_error *err)
{
	if (len < MIN_JWT_SECRET)
		return kl_fail(err, KL_BAD_CONFIG, "%skey shorter than %d "
		    "bytes", at, MIN_JWT_SECRET);
	if (len > MAX_JWT_SECRET)
		return kl_fail(err, KL_BAD_CONFIG, "%skey longer than %d "
		    "bytes", at, MAX_JWT_SECRET);
	if (config_secret_trivial(key, len))
		return kl_fail(err, KL_BAD_CONFIG, "%skey is every byte the "
		    "same or whitespace: not a secret", at);
	memcpy(k->key, key, len);
	k->keylen = len;
	return 0;
}

/* Standard or url-safe base64, padding optional, canonical, into out
 * (MAX_JWT_SECRET bytes); -1 when it is not that or decodes to more. */
static int
key_b64_decode(const unsigned char *in, size_t len, unsigned char *out,
    size_t *outlen)
{
	char		t[KEY_B64_MAX];
	unsigned char	raw[KEY_B64_MAX * 3 / 4];
	size_t		i, n;
	int		rc = -1;

	if (len > 0 && in[len - 1] == '=') {
		if (len % 4 != 0)
			return -1;
		len--;
		if (in[len - 1] == '=')
			len--;
	}
	if (len > sizeof(t))
		return -1;
	for (i = 0; i < len; i++)
		t[i] = in[i] == '+' ? '-' : in[i] == '/' ? '_' : (char)in[i];
	if (token_b64url_decode(t, len, raw, &n) == 0 && n <= MAX_JWT_SECRET) {
		memcpy(out, raw, n);
		*outlen = n;
		rc = 0;
	}
	explicit_bzero(t, sizeof(t));
	explicit_bzero(raw, sizeof(raw));
	return rc;
}

/* The kid of a keyed line: 1..MAX_JWT_KID kid characters before the
 * first ':'. Returns its length, or 0. */
static size_t
line_kid(const unsigned char *p, size_t n)
{
	size_t	k = 0;

	while (k < n && kid_char(p[k]))
		k++;
	return k > 0 && k <= MAX_JWT_KID && k < n && p[k] == ':' ? k : 0;
}

/* One keyed line into ctx->keys. */
static int
key_line(struct token_ctx *ctx, const unsigned char *p, size_t n,
    unsigned lineno, struct kl_error *err)
{
	struct token_key	*k = &ctx->keys[ctx->nkeys];
	unsigned char		 key[MAX_JWT_SECRET];
	char			 at[32];
	size_t			 kidlen, keylen = 0;
	int			 i, rc = -1;

	snprintf(at, sizeof(at), "line %u: ", lineno);
	if (ctx->nkeys == MAX_JWT_KEYS)
		return kl_fail(err, KL_BAD_CONFIG, "%smore than %d keys", at,
		    MAX_JWT_KEYS);
	if ((kidlen = line_kid(p, n)) == 0)
		return kl_fail(err, KL_BAD_CONFIG, "%sthe kid before ':' is "
		    "not 1 to %d of A-Z a-z 0-9 . _ -", at, MAX_JWT_KID);
	memcpy(k->kid, p, kidlen);
	k->kid[kidlen] = '\0';
	for (i = 0; i < ctx->nkeys; i++)
		if (strcmp(ctx->keys[i].kid, k->kid) == 0)
			return kl_fail(err, KL_BAD_CONFIG, "%sthe kid of an "
			    "earlier line again", at);
	if (key_b64_decode(p + kidlen + 1, n - kidlen - 1, key,
	    &keylen) == -1)
		kl_fail(err, KL_BAD_CONFIG, "%sthe key is not base64 of at "
		    "most %d bytes", at, MAX_JWT_SECRET);
	else if (key_store(k, key, keylen, at, err) == 0) {
		ctx->nkeys++;
		rc = 0;
	}
	explicit_bzero(key, sizeof(key));
	return rc;
}

/* Every line empty or keyed; first is the line number of the first
 * non-empty one, keyed. */
static int
key_file_keyed(struct token_ctx *ctx, const unsigned char *buf, size_t len,
    unsigned first, struct kl_error *err)
{
	const unsigned char	*line;
	size_t			 off = 0, n;
	unsigned		 lineno = 0;

	while (next_line(buf, len, &off, &line, &n)) {
		lineno++;
		if (n == 0)
			continue;
		if (!line_keyed(line, n))
			return kl_fail(err, KL_BAD_CONFIG, "line %u: not "
			    "kid:base64key, though line %u is", lineno, first);
		if (key_line(ctx, line, n, lineno, err) == -1)
			return -1;
	}
	return 0;
}

/* The whole file but one final LF or CR LF is the key; its kid is "k" and
 * 8 hex digits of its SHA-256. */
static int
key_file_legacy(struct token_ctx *ctx, const unsigned char *buf, size_t len,
    struct kl_error *err)
{
	struct token_key	*k = &ctx->keys[0];
	unsigned char		 md[SHA256_DIGEST_LENGTH];

	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
	}
	if (key_store(k, buf, len, "", err) == -1)
		return -1;
	if (SHA256(k->key, k->keylen, md) == NULL)
		return kl_fail(err, KL_BAD_CONFIG, "SHA-256 failed");
	k->kid[0] = 'k';
	kl_hex_encode(k->kid + 1, md, 4);
	explicit_bzero(md, sizeof(md));
	ctx->nkeys = 1;
	return 0;
}

/* Keyed when the first non-empty line looks keyed; then every line must
 * be. Otherwise one legacy key, and no line may look keyed: a keyed file
 * whose first line lost its ':' is refused, not read as one key. */
static int
key_file_parse(struct token_ctx *ctx, const unsigned char *buf, size_t len,
    struct kl_error *err)
{
	const unsigned char	*line;
	size_t			 off = 0, n;
	unsigned		 lineno = 0, first = 0;

	while (next_line(buf, len, &off, &line, &n)) {
		lineno++;
		if (n == 0)
			continue;
		if (first == 0 && line_keyed(line, n))
			return key_file_keyed(ctx, buf, len, lineno, err);
		if (first == 0)
			first = lineno;
		else if (line_keyed(line, n))
			return kl_fail(err, KL_BAD_CONFIG, "line %u looks like "
			    "kid:base64key but line %u does not", lineno,
			    first);
	}
	return key_file_legacy(ctx, buf, len, err);
}

/* ---- issuing ---- */

_Static_assert(STORE_TAG_LEN == SHA256_DIGEST_LENGTH, "a tag is a SHA-256 MAC");
_Static_assert(REFRESH_TOKEN_BYTES == SHA256_DIGEST_LENGTH,
    "a successor is a SHA-256 MAC");
_Static_assert((REFRESH_TOKEN_BYTES * 4 + 2) / 3 == REFRESH_TOKEN_LEN,
    "REFRESH_TOKEN_LEN spells REFRESH_TOKEN_BYTES in base64url");
_Static_assert(SID_HEX_LEN == 2 * STORE_SID_LEN, "a sid is spelt in hex");

static int
random_bytes(void *buf, size_t len, struct kl_error *err)
{
	if (getrandom(buf, len, 0) != (ssize_t)len)
		return kl_fail(err, KL_INTERNAL, "getrandom: %s",
		    strerror(errno));
	return 0;
}

static int
token_new_jti(char out[33], struct kl_error *err)
{
	unsigned char	rnd[16];

	if (random_bytes(rnd, sizeof(rnd), err) == -1)
		return -1;
	kl_hex_encode(out, rnd, sizeof(rnd));
	return 0;
}

/* Exactly SID_HEX_LEN lowercase hex digits. */
static bool
sid_valid(const char *sid)
{
	size_t	i;

	for (i = 0; i < SID_HEX_LEN; i++)
		if ((sid[i] < '0' || sid[i] > '9') &&
		    (sid[i] < 'a' || sid[i] > 'f'))
			return false;
	return sid[SID_HEX_LEN] == '\0';
}

/* The claims of a token for s issued at now, as JSON, into b. */
static void
token_claims_json(const struct token_ctx *ctx, const struct token_subject *s,
    time_t now, const char *jti, struct kl_buf *b)
{
	char	sub[24];

	snprintf(sub, sizeof(sub), "%" PRIu64, s->user_id);
	jw_raw(b, "{\"id\":");
	jw_u64(b, s->user_id);
	jw_raw(b, ",\"sub\":");
	jw_string(b, sub);
	if (s->kakao_id != 0) {
		jw_raw(b, ",\"kakao_id\":");
		jw_i64(b, s->kakao_id);
	}
	if (s->sid[0] != '\0') {
		jw_raw(b, ",\"sid\":");
		jw_string(b, s->sid);
	}
	jw_raw(b, ",\"iat\":");
	jw_i64(b, (int64_t)now);
	jw_raw(b, ",\"exp\":");
	jw_i64(b, (int64_t)now + ctx->ttl);
	jw_raw(b, ",\"iss\":");
	jw_string(b, ctx->issuer);
	jw_raw(b, ",\"jti\":");
	jw_string(b, jti);
	jw_raw(b, "}");
}

/*
 * header.payload.signature, written here rather than by libjwt: its
 * encoder builds both parts as Jansson trees, dumps them and signs
 * through its own layers, 8.7 us a token against 3.4 (a loop of 100,000),
 * and under load 9% of a login's CPU (make profile). What it wrote is
 * what this writes: compact JSON, base64url without padding, HMAC-SHA256.
 */
int
token_issue(const struct token_ctx *ctx, const struct token_subject *s,
    time_t now, char **out, struct kl_error *err)
{
	const struct token_key	*k = &ctx->keys[0];
	struct kl_buf		 hdr = { 0 }, claims = { 0 };
	unsigned char		 mac[EVP_MAX_MD_SIZE];
	unsigned int		 maclen = 0;
	char			 jti[33], *t, *p;
	size_t			 hlen, clen;
	int			 rc = -1;

	*out = NULL;
	if (ctx->nkeys < 1 || k->keylen == 0)
		return kl_fail(err, KL_INTERNAL, "token key not loaded");
	if (s->user_id > (uint64_t)INT64_MAX)
		return kl_fail(err, KL_INTERNAL, "user id out of range");
	if (s->kakao_id < 0)
		return kl_fail(err, KL_INTERNAL, "kakao id out of range");
	if (s->sid[0] != '\0' && !sid_valid(s->sid))
		return kl_fail(err, KL_INTERNAL, "sid is not %d lowercase "
		    "hex digits", SID_HEX_LEN);
	if (token_new_jti(jti, err) == -1)
		return -1;
	jw_raw(&hdr, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":");
	jw_string(&hdr, k->kid);
	jw_raw(&hdr, "}");
	token_claims_json(ctx, s, now, jti, &claims);
	if (kl_buf_bad(&hdr) || kl_buf_bad(&claims)) {
		kl_fail(err, KL_INTERNAL, "out of memory for a token");
		goto done;
	}
	hlen = B64URL_LEN(hdr.len);
	clen = B64URL_LEN(claims.len);
	if ((t = malloc(hlen + 1 + clen + 1 + B64URL_LEN(32) + 1)) == NULL) {
		kl_fail(err, KL_INTERNAL, "out of memory for a token");
		goto done;
	}
	b64url_encode(t, (const unsigned char *)hdr.data, hdr.len);
	t[hlen] = '.';
	b64url_encode(t + hlen + 1, (const unsigned char *)claims.data,
	    claims.len);
	p = t + hlen + 1 + clen;
	if (HMAC(EVP_sha256(), k->key, (int)k->keylen, (unsigned char *)t,
	    (size_t)(p - t), mac, &maclen) == NULL || maclen != 32) {
		explicit_bzero(t, (size_t)(p - t));
		free(t);
		kl_fail(err, KL_INTERNAL, "token: HMAC failed");
		goto done;
	}
	*p++ = '.';
	b64url_encode(p, mac, maclen);
	*out = t;
	rc = 0;
done:
	explicit_bzero(mac, sizeof(mac));
	kl_buf_free(&hdr, false);
	kl_buf_free(&claims, true);
	return rc;
}

/* ---- verifying ---- */

/* An integer claim that must be present. */
static int
claim_long(const json_t *payload, const char *name, long *out)
{
	const json_t	*v = json_object_get(payload, name);

	if (!json_is_integer(v))
		return -1;
	*out = (long)json_integer_value(v);
	return 0;
}

/* A string claim, or NULL when absent or not a string. */
static const char *
claim_string(const json_t *payload, const char *name)
{
	return json_string_value(json_object_get(payload, name));
}

/* kakao_id: absent (0), or an integer above 0. */
static int
claim_kakao_id(const json_t *payload, int64_t *out)
{
	long	v;

	*out = 0;
	if (claim_long(payload, "kakao_id", &v) == -1)
		return json_object_get(payload, "kakao_id") != NULL ? -1 : 0;
	if (v <= 0)
		return -1;
	*out = v;
	return 0;
}

/* sid: absent (""), or SID_HEX_LEN lowercase hex digits. */
static int
claim_sid(const json_t *payload, char sid[SID_HEX_LEN + 1])
{
	const char	*v;

	sid[0] = '\0';
	if ((v = claim_string(payload, "sid")) == NULL)
		return json_object_get(payload, "sid") != NULL ? -1 : 0;
	if (!sid_valid(v))
		return -1;
	memcpy(sid, v, SID_HEX_LEN + 1);
	return 0;
}

/* Strict base64url, no padding: the alphabet only, a length that can end
 * a byte, zero bits after the last byte (one spelling per byte string).
 * Decodes len chars into out (room for len * 3 / 4 bytes); -1 if bad.
 * Shared with the id_token files through token_oidc.h. */
int
token_b64url_decode(const char *in, size_t len, unsigned char *out,
    size_t *outlen)
{
	uint32_t	v = 0;
	size_t		i, n = 0;
	int		bits = 0, c;

	if (len % 4 == 1)
		return -1;
	for (i = 0; i < len; i++) {
		c = (unsigned char)in[i];
		if (c >= 'A' && c <= 'Z')
			c -= 'A';
		else if (c >= 'a' && c <= 'z')
			c = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			c = c - '0' + 52;
		else if (c == '-')
			c = 62;
		else if (c == '_')
			c = 63;
		else
			return -1;
		v = (v << 6 | (uint32_t)c) & 0xffffff;
		if ((bits += 6) >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(v >> bits);
		}
	}
	if (bits > 0 && (v & ((1u << bits) - 1)) != 0)
		return -1;
	*outlen = n;
	return 0;
}

/* "typ", when a string, is "JWT" in any case, as libjwt 1.10 required
 * of the tokens it decoded for us. */
static bool
typ_ok(const json_t *typ)
{
	return !json_is_string(typ) ||
	    strcasecmp(json_string_value(typ), "JWT") == 0;
}

/* The header is a JSON object, no duplicate names, whose "alg" is the
 * string "HS256" exactly, whose "typ" passes typ_ok() and whose "kid",
 * when there is one, is a string.
 * Returns the index of the key it names, KEY_ANY for a header without a
 * kid or with one naming none of ours (a key renamed in the file keeps its
 * tokens; the signature still has to be one of our keys'), or -1. */
static int
token_header_key(const struct token_ctx *ctx, const char *b64, size_t len)
{
	unsigned char	*raw;
	size_t		 n;
	json_t		*hdr = NULL, *alg, *kid;
	int		 i, key = -1;

	if ((raw = malloc(len * 3 / 4 + 1)) == NULL)
		return -1;
	if (token_b64url_decode(b64, len, raw, &n) == 0 &&
	    (hdr = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES,
	    NULL)) != NULL && json_is_object(hdr) &&
	    (alg = json_object_get(hdr, "alg")) != NULL &&
	    json_is_string(alg) && strcmp(json_string_value(alg), "HS256") == 0 &&
	    typ_ok(json_object_get(hdr, "typ"))) {
		if ((kid = json_object_get(hdr, "kid")) == NULL)
			key = KEY_ANY;
		else if (json_is_string(kid)) {
			for (i = 0; i < ctx->nkeys && key == -1; i++)
				if (strcmp(json_string_value(kid),
				    ctx->keys[i].kid) == 0)
					key = i;
			if (key == -1)
				key = KEY_ANY;
		}
	}
	json_decref(hdr);
	free(raw);
	return key;
}

/* sig is the HMAC-SHA256 of msg under k, compared in constant time. */
static bool
token_mac_ok(const struct token_key *k, const char *msg, size_t len,
    const unsigned char *sig, size_t siglen)
{
	unsigned char	mac[EVP_MAX_MD_SIZE];
	unsigned int	maclen = 0;
	bool		ok = false;

	if (HMAC(EVP_sha256(), k->key, (int)k->keylen,
	    (const unsigned char *)msg, len, mac, &maclen) != NULL &&
	    maclen == 32 && siglen == maclen)
		ok = CRYPTO_memcmp(mac, sig, maclen) == 0;
	explicit_bzero(mac, sizeof(mac));
	return ok;
}

/* header.payload.signature: the header as token_header_key() wants it and
 * the signature the HMAC-SHA256 of header.payload under the key it names;
 * otherwise under any of ours (every key is tried, each in constant
 * time, none skipped). Returns the key's index or -1. */
static int
token_check_hs256(const struct token_ctx *ctx, const char *token)
{
	unsigned char	 sig[JWT_SIG_MAX];
	const char	*d1, *d2;
	size_t		 siglen, b64len, msglen;
	int		 key, i, found = -1;

	if ((d1 = strchr(token, '.')) == NULL ||
	    (d2 = strchr(d1 + 1, '.')) == NULL || strchr(d2 + 1, '.') != NULL)
		return -1;
	if ((key = token_header_key(ctx, token, (size_t)(d1 - token))) == -1)
		return -1;
	b64len = strlen(d2 + 1);
	if (b64len > 4 * sizeof(sig) / 3 ||
	    token_b64url_decode(d2 + 1, b64len, sig, &siglen) == -1)
		return -1;
	msglen = (size_t)(d2 - token);
	if (key != KEY_ANY)
		return token_mac_ok(&ctx->keys[key], token, msglen, sig,
		    siglen) ? key : -1;
	for (i = 0; i < ctx->nkeys; i++)
		if (token_mac_ok(&ctx->keys[i], token, msglen, sig, siglen) &&
		    found == -1)
			found = i;
	return found;
}

/* iss (ours), exp, iat, id and sub (id in decimal) always; kakao_id and
 * sid when present. */
static int
token_check_claims(const struct token_ctx *ctx, const json_t *payload,
    time_t now, struct token_claims *claims, struct kl_error *err)
{
	const char	*iss, *sub, *jti;
	char		 want_sub[24], sid[SID_HEX_LEN + 1];
	long		 id, iat, exp;
	int64_t		 kakao_id;

	if ((iss = claim_string(payload, "iss")) == NULL ||
	    strcmp(iss, ctx->issuer) != 0)
		return kl_fail(err, KL_BAD_TOKEN, "jwt iss mismatch");
	if (claim_long(payload, "exp", &exp) == -1 ||
	    claim_long(payload, "iat", &iat) == -1 ||
	    claim_long(payload, "id", &id) == -1)
		return kl_fail(err, KL_BAD_TOKEN, "jwt lacks exp, iat or id");
	if (exp <= (long)now)
		return kl_fail(err, KL_BAD_TOKEN, "jwt expired");
	if (iat > (long)now + 60 || iat > exp || id <= 0)
		return kl_fail(err, KL_BAD_TOKEN, "jwt iat or id out of range");
	snprintf(want_sub, sizeof(want_sub), "%ld", id);
	if ((sub = claim_string(payload, "sub")) == NULL ||
	    strcmp(sub, want_sub) != 0)
		return kl_fail(err, KL_BAD_TOKEN, "jwt sub does not match id");
	if (claim_kakao_id(payload, &kakao_id) == -1)
		return kl_fail(err, KL_BAD_TOKEN, "jwt kakao_id is not an "
		    "integer above 0");
	if (claim_sid(payload, sid) == -1)
		return kl_fail(err, KL_BAD_TOKEN, "jwt sid is not %d lowercase "
		    "hex digits", SID_HEX_LEN);
	if ((jti = claim_string(payload, "jti")) != NULL)
		snprintf(claims->jti, sizeof(claims->jti), "%s", jti);
	claims->user_id = (uint64_t)id;
	claims->kakao_id = kakao_id;
	memcpy(claims->sid, sid, sizeof(claims->sid));
	claims->iat = (time_t)iat;
	claims->exp = (time_t)exp;
	return 0;
}

int
token_verify(const struct token_ctx *ctx, const char *token, time_t now,
    struct token_claims *claims, struct kl_error *err)
{
	const char	*d1, *d2;
	unsigned char	*raw = NULL;
	json_t		*payload = NULL;
	size_t		 len, n;
	int		 rc = -1;

	memset(claims, 0, sizeof(*claims));
	if (ctx->nkeys < 1)
		return kl_fail(err, KL_INTERNAL, "token key not loaded");
	if (token_check_hs256(ctx, token) == -1)
		return kl_fail(err, KL_BAD_TOKEN, "jwt is not HS256, names "
		    "none of our keys, or its MAC does not verify");
	/* The MAC is one of our keys': the payload is ours. Read once
	 * with Jansson, not decoded again (and MACed again) by libjwt. */
	d1 = strchr(token, '.');
	d2 = strchr(d1 + 1, '.');
	len = (size_t)(d2 - d1 - 1);
	if ((raw = malloc(len * 3 / 4 + 1)) == NULL) {
		kl_fail(err, KL_INTERNAL, "out of memory for a token");
		goto done;
	}
	if (token_b64url_decode(d1 + 1, len, raw, &n) == -1 ||
	    (payload = json_loadb((const char *)raw, n,
	    JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !json_is_object(payload)) {
		kl_fail(err, KL_BAD_TOKEN, "jwt payload is not a JSON object");
		goto done;
	}
	rc = token_check_claims(ctx, payload, now, claims, err);
done:
	json_decref(payload);
	free(raw);
	if (rc == -1)
		memset(claims, 0, sizeof(*claims));
	return rc;
}

/* ---- tags and refresh tokens ---- */

/* "kakao-login tag " purpose: the message the per-purpose key is the
 * HMAC of, so tags of different purposes never collide and a tag is no
 * MAC of ours (those use a key itself). */
#define TOKEN_TAG_LABEL		"kakao-login tag "
/* The message the key of refresh successors is the HMAC of. */
#define TOKEN_SUCCESSOR_LABEL	"kakao-login refresh successor"

/* keys[key] of ctx, or NULL when there is no such key. */
static const struct token_key *
token_key_at(const struct token_ctx *ctx, int key)
{
	if (key < 0 || key >= ctx->nkeys || key >= MAX_JWT_KEYS ||
	    ctx->keys[key].keylen == 0)
		return NULL;
	return &ctx->keys[key];
}

/* HMAC-SHA256(k, label): a key for one use, derived from k; the caller
 * wipes out. */
static int
token_key_derive(const struct token_key *k, const void *label, size_t len,
    unsigned char out[SHA256_DIGEST_LENGTH])
{
	unsigned int	n = 0;

	if (HMAC(EVP_sha256(), k->key, (int)k->keylen, label, len, out,
	    &n) == NULL || n != SHA256_DIGEST_LENGTH) {
		explicit_bzero(out, SHA256_DIGEST_LENGTH);
		return -1;
	}
	return 0;
}

int
token_tag(const struct token_ctx *ctx, const char *purpose, const void *data,
    size_t len, unsigned char out[STORE_TAG_LEN], struct kl_error *err)
{
	return token_tag_key(ctx, 0, purpose, data, len, out, err);
}

int
token_tag_key(const struct token_ctx *ctx, int key, const char *purpose,
    const void *data, size_t len, unsigned char out[STORE_TAG_LEN],
    struct kl_error *err)
{
	const struct token_key	*k;
	unsigned char		 dk[SHA256_DIGEST_LENGTH];
	unsigned char		 label[sizeof(TOKEN_TAG_LABEL) - 1 +
				    MAX_TAG_PURPOSE];
	unsigned int		 outlen = 0;
	size_t			 plen;
	int			 rc = -1;

	if ((k = token_key_at(ctx, key)) == NULL)
		return kl_fail(err, KL_INTERNAL, "token key %d not loaded",
		    key);
	plen = purpose != NULL ? strlen(purpose) : 0;
	if (plen == 0 || plen > MAX_TAG_PURPOSE)
		return kl_fail(err, KL_INTERNAL, "token_tag: bad purpose");
	memcpy(label, TOKEN_TAG_LABEL, sizeof(TOKEN_TAG_LABEL) - 1);
	memcpy(label + sizeof(TOKEN_TAG_LABEL) - 1, purpose, plen);
	if (token_key_derive(k, label, sizeof(TOKEN_TAG_LABEL) - 1 + plen,
	    dk) == -1 ||
	    HMAC(EVP_sha256(), dk, sizeof(dk), data != NULL ? data :
	    (const void *)"", len, out, &outlen) == NULL ||
	    outlen != STORE_TAG_LEN)
		kl_fail(err, KL_INTERNAL, "token_tag: HMAC failed");
	else
		rc = 0;
	explicit_bzero(dk, sizeof(dk));
	return rc;
}

/* base64url of len bytes, no padding, then a NUL, into out (room for
 * (len * 4 + 2) / 3 + 1 bytes). */
static void
b64url_encode(char *out, const unsigned char *in, size_t len)
{
	static const char	abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	uint32_t		v = 0;
	size_t			i;
	int			bits = 0;

	for (i = 0; i < len; i++) {
		v = v << 8 | in[i];
		for (bits += 8; bits >= 6; bits -= 6)
			*out++ = abc[(v >> (bits - 6)) & 63];
	}
	if (bits > 0)
		*out++ = abc[(v << (6 - bits)) & 63];
	*out = '\0';
	explicit_bzero(&v, sizeof(v));
}

int
token_refresh_new(char *out, struct kl_error *err)
{
	unsigned char	raw[REFRESH_TOKEN_BYTES];

	out[0] = '\0';
	if (random_bytes(raw, sizeof(raw), err) == -1)
		return -1;
	b64url_encode(out, raw, sizeof(raw));
	explicit_bzero(raw, sizeof(raw));
	return 0;
}

int
token_refresh_decode(const char *token, unsigned char raw[REFRESH_TOKEN_BYTES],
    struct kl_error *err)
{
	unsigned char	buf[REFRESH_TOKEN_LEN * 3 / 4 + 1];
	size_t		n = 0;
	int		rc = -1;

	if (token != NULL &&
	    strnlen(token, REFRESH_TOKEN_LEN + 1) == REFRESH_TOKEN_LEN &&
	    token_b64url_decode(token, REFRESH_TOKEN_LEN, buf, &n) == 0 &&
	    n == REFRESH_TOKEN_BYTES) {
		memcpy(raw, buf, REFRESH_TOKEN_BYTES);
		rc = 0;
	} else {
		explicit_bzero(raw, REFRESH_TOKEN_BYTES);
		kl_fail(err, KL_BAD_REFRESH, "refresh token is not %d "
		    "base64url characters", REFRESH_TOKEN_LEN);
	}
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

int
token_refresh_successor(const struct token_ctx *ctx, int key,
    const char *parent, char *out, struct kl_error *err)
{
	const struct token_key	*k;
	unsigned char		 raw[REFRESH_TOKEN_BYTES];
	unsigned char		 dk[SHA256_DIGEST_LENGTH];
	unsigned char		 next[EVP_MAX_MD_SIZE];
	unsigned int		 n = 0;
	int			 rc = -1;

	out[0] = '\0';
	if ((k = token_key_at(ctx, key)) == NULL)
		return kl_fail(err, KL_INTERNAL, "token key %d not loaded",
		    key);
	if (token_refresh_decode(parent, raw, err) == -1)
		return -1;
	if (token_key_derive(k, TOKEN_SUCCESSOR_LABEL,
	    sizeof(TOKEN_SUCCESSOR_LABEL) - 1, dk) == -1 ||
	    HMAC(EVP_sha256(), dk, sizeof(dk), raw, sizeof(raw), next,
	    &n) == NULL || n != REFRESH_TOKEN_BYTES)
		kl_fail(err, KL_INTERNAL, "refresh successor: HMAC failed");
	else {
		b64url_encode(out, next, REFRESH_TOKEN_BYTES);
		rc = 0;
	}
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(dk, sizeof(dk));
	explicit_bzero(next, sizeof(next));
	return rc;
}

int
token_sid_new(unsigned char sid[STORE_SID_LEN], char hex[SID_HEX_LEN + 1],
    struct kl_error *err)
{
	hex[0] = '\0';
	if (random_bytes(sid, STORE_SID_LEN, err) == -1)
		return -1;
	kl_hex_encode(hex, sid, STORE_SID_LEN);
	return 0;
}

/* ---- comparing secrets ---- */

static pthread_once_t	equal_once = PTHREAD_ONCE_INIT;
static unsigned char	equal_key[SHA256_DIGEST_LENGTH];
static bool		equal_ready;

static void
equal_init(void)
{
	equal_ready = getrandom(equal_key, sizeof(equal_key), 0) ==
	    (ssize_t)sizeof(equal_key);
}

bool
token_secret_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	unsigned char	ma[EVP_MAX_MD_SIZE], mb[EVP_MAX_MD_SIZE];
	unsigned int	na = 0, nb = 0;
	bool		eq;

	if ((a == NULL && alen > 0) || (b == NULL && blen > 0))
		return false;
	if (pthread_once(&equal_once, equal_init) != 0 || !equal_ready)
		return false;
	eq = HMAC(EVP_sha256(), equal_key, sizeof(equal_key),
	    a != NULL ? a : (const void *)"", alen, ma, &na) != NULL &&
	    HMAC(EVP_sha256(), equal_key, sizeof(equal_key),
	    b != NULL ? b : (const void *)"", blen, mb, &nb) != NULL &&
	    na == SHA256_DIGEST_LENGTH && nb == na &&
	    CRYPTO_memcmp(ma, mb, na) == 0;
	explicit_bzero(ma, sizeof(ma));
	explicit_bzero(mb, sizeof(mb));
	return eq;
}
