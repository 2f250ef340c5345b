/*
 * kakao_auth.h: the kauth side of the Kakao client (kauth.kakao.com): the
 * authorization-code exchange and the JWKS fetch.
 *
 * The code exchange runs on a worker thread's struct kakao_client (kakao.h),
 * on a kauth handle of its own kept alive like the kapi ones; it is set up
 * only when struct kakao_options has auth_url and rest_api_key. The JWKS
 * fetcher is one per process, for the token layer's key cache. Kakao's
 * answers are parsed by pure functions (unit tests, fuzzing). No failure
 * detail ever holds a code, verifier, token, key or secret, nor Kakao's
 * error_description (Kakao echoes the code in it).
 */
#ifndef KL_KAKAO_AUTH_H
#define KL_KAKAO_AUTH_H

#include <stddef.h>

#include "kakao.h"
#include "kl_error.h"
#include "kl_limits.h"

struct kakao_code_request {
	const char	*code;			/* 1 to MAX_CODE bytes */
	const char	*redirect_uri;		/* 1 to MAX_URL_LEN bytes */
	const char	*code_verifier;		/* NULL: no PKCE; else
						   MIN_ to MAX_CODE_VERIFIER */
};

struct kakao_code_result {
	char	 access_token[MAX_KAKAO_TOKEN + 1];	/* wiped by kakao_code_result_wipe */
	char	*id_token;				/* malloc()ed, NULL when none; wipe frees */
	long	 expires_in;				/* 0 when Kakao did not say */
};

/*
 * POSTs grant_type=authorization_code&client_id=<rest api key>&
 * redirect_uri=..&code=..[&client_secret=..][&code_verifier=..] to
 * auth_url + "/oauth/token" (each value escaped with curl_easy_escape; the
 * form is built in a buffer wiped after the call) and parses the answer
 * into *out. Holds a slot of the gate like kakao_profile_fetch (none free
 * within its wait: KL_KAKAO_BUSY, no call). Not configured:
 * KL_NOT_CONFIGURED, no call. A code over MAX_CODE or empty is
 * KL_INVALID_CODE, a bad redirect_uri or verifier length KL_BAD_REQUEST,
 * both without a call. Kakao's refusals: KL_INVALID_CODE (KOE320,
 * invalid_grant), KL_KAKAO_CONFIG (KOE303, KOE006, KOE010, KOE101,
 * invalid_client, ...), then as for the profile (unavailable, timeout, bad
 * response). *out is always overwritten: on failure it holds nothing (no
 * id_token); on success the caller wipes it with kakao_code_result_wipe()
 * once done. The request body and every token are wiped from our buffers
 * after the call. *upstream_us, when not NULL, is the time spent on Kakao.
 */
int	kakao_code_exchange(struct kakao_client *kc,
	    const struct kakao_code_request *rq, struct kakao_code_result *out,
	    long *upstream_us, struct kl_error *err);
/* Wipes the access token, wipes and frees the id_token. r may be NULL. */
void	kakao_code_result_wipe(struct kakao_code_result *r);

/* Parses a 200 answer of /oauth/token: a JSON object with a string
 * access_token (a token68 of at most MAX_KAKAO_TOKEN chars), token_type
 * "bearer" (any case), an optional id_token (at most MAX_ID_TOKEN chars
 * of a compact JWS: base64url and dots; JSON null counts as none) and an
 * optional non-negative integer expires_in. Anything else is
 * KL_KAKAO_BAD_RESPONSE, and *out then holds nothing. */
int	kakao_token_answer_parse(const char *body, size_t len,
	    struct kakao_code_result *out, struct kl_error *err);
/* Maps a non-200 answer of kauth ({"error":..,"error_code":"KOE..."}) to
 * a failure; always -1. */
int	kakao_auth_error_classify(long http_status, const char *body,
	    size_t len, struct kl_error *err);

/*
 * The JWKS fetcher: one per process, with its own easy handle, not behind
 * the gate (fetches are rare). Not thread-safe: the caller serializes the
 * calls (the token layer's key cache fetches under its single-flight
 * lock). Bounded by the options' time-outs and MAX_KAKAO_BODY. Needs
 * opt->auth_url (else KL_BAD_CONFIG). Free with kakao_jwks_fetcher_free()
 * (NULL is fine), after kakao_global_init() and before
 * kakao_global_cleanup().
 */
struct kakao_jwks_fetcher;

struct kakao_jwks_fetcher	*kakao_jwks_fetcher_new(
				    const struct kakao_options *opt,
				    struct kl_error *err);
void				 kakao_jwks_fetcher_free(
				    struct kakao_jwks_fetcher *f);
/* GETs auth_url + "/.well-known/jwks.json". On success *body is malloc()ed
 * and NUL-terminated (the caller frees it), *len its length; on failure
 * *body is NULL. Matches typedef token_jwks_fetch_fn (fetcher: a struct
 * kakao_jwks_fetcher; NULL: KL_NOT_CONFIGURED). */
int	kakao_jwks_fetch(void *fetcher, char **body, size_t *len,
	    struct kl_error *err);

#endif
