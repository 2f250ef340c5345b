/*
 * token.c: issuing and checking our HS256 JWTs with libjwt 1.10.
 *
 * Owns the signing key. Never touches the store or the network.
 * libjwt 1.10 trusts the algorithm a token names (and matches its name
 * without case), compares MACs with strcmp and checks no claims, so
 * token_verify() first checks the header says exactly "HS256" and the
 * HMAC-SHA256 itself (OpenSSL, CRYPTO_memcmp), then lets libjwt decode and
 * checks every claim.
 * token_tag() is the keyed hash other layers store in place of a secret
 * (codes, verifiers), under a key derived here from the JWT secret, so the
 * key never leaves this file.
 * Thread-safe: the context is read-only after token_init(); each call makes
 * and frees its own jwt_t.
 */
#include <sys/random.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "config.h"
#include "kl_buf.h"
#include "token.h"
#include "token_oidc.h"

int
token_init(struct token_ctx *ctx, const char *path, const char *issuer,
    long ttl, struct kl_error *err)
{
	memset(ctx, 0, sizeof(*ctx));
	if (config_read_secret("jwt_secret_file", path, ctx->key,
	    sizeof(ctx->key), MIN_JWT_SECRET, &ctx->keylen, err) == -1)
		return -1;
	if (snprintf(ctx->issuer, sizeof(ctx->issuer), "%s", issuer) >=
	    (int)sizeof(ctx->issuer)) {
		token_wipe(ctx);
		return kl_fail(err, KL_BAD_CONFIG, "jwt_issuer too long");
	}
	ctx->ttl = ttl;
	return 0;
}

void
token_wipe(struct token_ctx *ctx)
{
	explicit_bzero(ctx->key, sizeof(ctx->key));
	ctx->keylen = 0;
}

static int
token_new_jti(char out[33], struct kl_error *err)
{
	unsigned char	rnd[16];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return kl_fail(err, KL_INTERNAL, "getrandom: %s",
		    strerror(errno));
	kl_hex_encode(out, rnd, sizeof(rnd));
	return 0;
}

int
token_issue(const struct token_ctx *ctx, uint64_t user_id, time_t now,
    char **out, struct kl_error *err)
{
	jwt_t	*jwt = NULL;
	char	 sub[24], jti[33];
	int	 rc = -1;

	*out = NULL;
	if (user_id > (uint64_t)INT64_MAX)
		return kl_fail(err, KL_INTERNAL, "user id out of range");
	if (token_new_jti(jti, err) == -1)
		return -1;
	snprintf(sub, sizeof(sub), "%" PRIu64, user_id);
	if (jwt_new(&jwt) != 0) {
		kl_fail(err, KL_INTERNAL, "jwt_new failed");
		goto done;
	}
	if (jwt_add_grant_int(jwt, "id", (long)user_id) != 0 ||
	    jwt_add_grant(jwt, "sub", sub) != 0 ||
	    jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
	    jwt_add_grant_int(jwt, "exp", (long)(now + ctx->ttl)) != 0 ||
	    jwt_add_grant(jwt, "iss", ctx->issuer) != 0 ||
	    jwt_add_grant(jwt, "jti", jti) != 0) {
		kl_fail(err, KL_INTERNAL, "jwt_add_grant failed");
		goto done;
	}
	if (jwt_set_alg(jwt, JWT_ALG_HS256, ctx->key, (int)ctx->keylen) != 0) {
		kl_fail(err, KL_INTERNAL, "jwt_set_alg failed");
		goto done;
	}
	if ((*out = jwt_encode_str(jwt)) == NULL) {
		kl_fail(err, KL_INTERNAL, "jwt_encode_str failed");
		goto done;
	}
	rc = 0;
done:
	jwt_free(jwt);
	return rc;
}

/* An integer claim that must be present; libjwt reports absence in errno. */
static int
claim_long(jwt_t *jwt, const char *name, long *out)
{
	errno = 0;
	*out = jwt_get_grant_int(jwt, name);
	return errno == 0 ? 0 : -1;
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

/* The header is a JSON object, no duplicate names, whose "alg" is the
 * string "HS256" exactly. */
static int
token_check_header(const char *b64, size_t len)
{
	unsigned char	*raw;
	size_t		 n;
	json_t		*hdr = NULL;
	json_t		*alg;
	int		 ok = 0;

	if ((raw = malloc(len * 3 / 4 + 1)) == NULL)
		return -1;
	if (token_b64url_decode(b64, len, raw, &n) == 0 &&
	    (hdr = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES,
	    NULL)) != NULL && json_is_object(hdr) &&
	    (alg = json_object_get(hdr, "alg")) != NULL &&
	    json_is_string(alg) && strcmp(json_string_value(alg), "HS256") == 0)
		ok = 1;
	json_decref(hdr);
	free(raw);
	return ok ? 0 : -1;
}

/* header.payload.signature: exactly HS256, and the signature is the
 * HMAC-SHA256 of header.payload under our key, compared in constant time. */
static int
token_check_hs256(const struct token_ctx *ctx, const char *token)
{
	unsigned char	 mac[EVP_MAX_MD_SIZE], sig[JWT_SIG_MAX];
	unsigned int	 maclen = 0;
	const char	*d1, *d2;
	size_t		 siglen, b64len;

	if ((d1 = strchr(token, '.')) == NULL ||
	    (d2 = strchr(d1 + 1, '.')) == NULL || strchr(d2 + 1, '.') != NULL)
		return -1;
	if (token_check_header(token, (size_t)(d1 - token)) == -1)
		return -1;
	b64len = strlen(d2 + 1);
	if (b64len > 4 * sizeof(sig) / 3 ||
	    token_b64url_decode(d2 + 1, b64len, sig, &siglen) == -1)
		return -1;
	if (HMAC(EVP_sha256(), ctx->key, (int)ctx->keylen,
	    (const unsigned char *)token, (size_t)(d2 - token), mac,
	    &maclen) == NULL || maclen != 32 || siglen != maclen)
		return -1;
	return CRYPTO_memcmp(mac, sig, maclen) == 0 ? 0 : -1;
}

int
token_verify(const struct token_ctx *ctx, const char *token, time_t now,
    struct token_claims *claims, struct kl_error *err)
{
	jwt_t		*jwt = NULL;
	const char	*iss, *sub, *jti;
	char		 want_sub[24];
	long		 id, iat, exp;
	int		 rc = -1;

	memset(claims, 0, sizeof(*claims));
	if (ctx->keylen == 0)
		return kl_fail(err, KL_INTERNAL, "token key not loaded");
	if (token_check_hs256(ctx, token) == -1) {
		kl_fail(err, KL_BAD_TOKEN, "jwt is not HS256 or its MAC "
		    "does not verify");
		goto done;
	}
	if (jwt_decode(&jwt, token, ctx->key, (int)ctx->keylen) != 0) {
		jwt = NULL;
		kl_fail(err, KL_BAD_TOKEN, "jwt does not decode or verify");
		goto done;
	}
	if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
		kl_fail(err, KL_BAD_TOKEN, "jwt alg is not HS256");
		goto done;
	}
	if ((iss = jwt_get_grant(jwt, "iss")) == NULL ||
	    strcmp(iss, ctx->issuer) != 0) {
		kl_fail(err, KL_BAD_TOKEN, "jwt iss mismatch");
		goto done;
	}
	if (claim_long(jwt, "exp", &exp) == -1 ||
	    claim_long(jwt, "iat", &iat) == -1 ||
	    claim_long(jwt, "id", &id) == -1) {
		kl_fail(err, KL_BAD_TOKEN, "jwt lacks exp, iat or id");
		goto done;
	}
	if (exp <= (long)now) {
		kl_fail(err, KL_BAD_TOKEN, "jwt expired");
		goto done;
	}
	if (iat > (long)now + 60 || iat > exp || id <= 0) {
		kl_fail(err, KL_BAD_TOKEN, "jwt iat or id out of range");
		goto done;
	}
	snprintf(want_sub, sizeof(want_sub), "%ld", id);
	if ((sub = jwt_get_grant(jwt, "sub")) == NULL ||
	    strcmp(sub, want_sub) != 0) {
		kl_fail(err, KL_BAD_TOKEN, "jwt sub does not match id");
		goto done;
	}
	if ((jti = jwt_get_grant(jwt, "jti")) != NULL)
		snprintf(claims->jti, sizeof(claims->jti), "%s", jti);
	claims->user_id = (uint64_t)id;
	claims->iat = (time_t)iat;
	claims->exp = (time_t)exp;
	rc = 0;
done:
	jwt_free(jwt);
	return rc;
}

/* "kakao-login tag " purpose: the message the per-purpose key is the
 * HMAC of, so tags of different purposes never collide and a tag is no
 * MAC of ours (those use the secret itself). */
#define TOKEN_TAG_LABEL	"kakao-login tag "

int
token_tag(const struct token_ctx *ctx, const char *purpose, const void *data,
    size_t len, unsigned char out[STORE_TAG_LEN], struct kl_error *err)
{
	unsigned char	 key[EVP_MAX_MD_SIZE];
	unsigned char	 label[sizeof(TOKEN_TAG_LABEL) - 1 + MAX_TAG_PURPOSE];
	unsigned int	 keylen = 0, outlen = 0;
	size_t		 plen;
	int		 rc = -1;

	if (ctx->keylen == 0)
		return kl_fail(err, KL_INTERNAL, "token key not loaded");
	plen = purpose != NULL ? strlen(purpose) : 0;
	if (plen == 0 || plen > MAX_TAG_PURPOSE)
		return kl_fail(err, KL_INTERNAL, "token_tag: bad purpose");
	memcpy(label, TOKEN_TAG_LABEL, sizeof(TOKEN_TAG_LABEL) - 1);
	memcpy(label + sizeof(TOKEN_TAG_LABEL) - 1, purpose, plen);
	if (HMAC(EVP_sha256(), ctx->key, (int)ctx->keylen, label,
	    sizeof(TOKEN_TAG_LABEL) - 1 + plen, key, &keylen) == NULL ||
	    keylen != STORE_TAG_LEN ||
	    HMAC(EVP_sha256(), key, (int)keylen, data != NULL ? data :
	    (const void *)"", len, out, &outlen) == NULL ||
	    outlen != STORE_TAG_LEN)
		kl_fail(err, KL_INTERNAL, "token_tag: HMAC failed");
	else
		rc = 0;
	explicit_bzero(key, sizeof(key));
	return rc;
}
