/*
 * kakao.h: the client for Kakao's REST API (kapi.kakao.com).
 *
 * kakao_global_init() runs once before any thread; then each worker thread
 * makes its own struct kakao_client, which keeps its connections to Kakao
 * alive across requests. A client is never shared between threads. The
 * same client exchanges authorization codes at kauth.kakao.com: see
 * kakao_auth.h.
 */
#ifndef KL_KAKAO_H
#define KL_KAKAO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kl_error.h"
#include "kl_limits.h"

struct kakao_reject;
struct kakao_gate;

struct kakao_options {
	const char	*api_url;		/* no trailing slash */
	int64_t		 app_id;		/* 0: do not check */
	long		 timeout_ms;
	long		 connect_timeout_ms;
	const char	*ca_file;		/* NULL or "": system store */
	/* kauth (kakao_auth.h). auth_url or rest_api_key NULL or "": the
	 * code flow is not configured (KL_NOT_CONFIGURED, no call). */
	const char	*auth_url;		/* no trailing slash */
	const char	*rest_api_key;		/* copied; the client_id */
	/* Sent as client_secret when not NULL. The bytes are main's: they
	 * must outlive every client (main wipes them at exit); not copied. */
	const char	*client_secret;
	size_t		 client_secret_len;
	/* Shared by the clients of a process, owned by the caller, who
	 * frees them after the clients; NULL: no cache, no cap. */
	struct kakao_reject	*reject;	/* tokens Kakao refused */
	struct kakao_gate	*gate;		/* exchanges in flight */
	/* The admin key (kakao_admin_key_file), for unlink: main's bytes, which
	 * must outlive every client (main wipes them at exit); not copied.
	 * NULL: no admin calls (KL_NOT_CONFIGURED, no call). Else it must
	 * look like a key: MIN_ADMIN_KEY to MAX_ADMIN_KEY printable bytes, no
	 * blank (kakao_client_new refuses others with KL_BAD_CONFIG). */
	const char	*admin_key;
	size_t		 admin_key_len;
};

/* What /v2/user/me told us. Strings are "" when Kakao did not say. */
struct kakao_profile {
	int64_t	id;
	char	nickname[MAX_NICKNAME + 1];
	bool	has_nickname;
	char	email[MAX_EMAIL + 1];
	bool	has_email;
	bool	email_verified;		/* is_email_valid && is_email_verified */
	char	profile_image[MAX_PROFILE_IMAGE + 1];
	bool	has_profile_image;
};

/* What /v1/user/access_token_info told us. */
struct kakao_token_info {
	int64_t	id;
	int64_t	app_id;
	long	expires_in;
};

struct kakao_client;

int	kakao_global_init(struct kl_error *err);
void	kakao_global_cleanup(void);

/* The options are copied (but client_secret, see there). Free the client
 * with kakao_client_free(). */
struct kakao_client	*kakao_client_new(const struct kakao_options *opt,
			    struct kl_error *err);
void			 kakao_client_free(struct kakao_client *kc);

/*
 * Checks an access token with Kakao and fetches the user's profile. When
 * the client has an app id, token info is fetched at the same time and a
 * token of another app fails with KL_WRONG_APP. *upstream_us, when not
 * NULL, receives the time spent waiting on Kakao.
 * A token Kakao refused (KL_KAKAO_REJECTED, KL_WRONG_APP) is remembered in
 * the reject cache and refused the same way, without a call, while it is
 * remembered. The exchange holds a slot of the gate; none free within its
 * wait fails with KL_KAKAO_BUSY, without a call.
 */
int	kakao_profile_fetch(struct kakao_client *kc, const char *access_token,
	    struct kakao_profile *profile, long *upstream_us,
	    struct kl_error *err);

/* A waiting place of the client's gate (kakao_gate_wait_begin), for a
 * request that waits on another request's exchange. */
int	kakao_wait_begin(struct kakao_client *kc, struct kl_error *err);
void	kakao_wait_end(struct kakao_client *kc);

/*
 * Unlinks the Kakao user target_id from our app: POST {api_url}/v1/user/unlink,
 * Authorization: KakaoAK <admin key>, form target_id_type=user_id&target_id=<id>.
 * 0 when Kakao answered {"id":<target_id>}; also 0, with *already set, when Kakao
 * says the user is not linked (-101). Holds a slot of the client's gate (none free
 * in time: KL_KAKAO_BUSY, no call). Failures: KL_NOT_CONFIGURED (no admin key),
 * KL_BAD_REQUEST (target_id not positive; no call), KL_KAKAO_CONFIG (the
 * admin key refused: 401 / -401; also -3, -5: the API not enabled or not
 * permitted), KL_KAKAO_UNAVAILABLE, KL_KAKAO_TIMEOUT, KL_KAKAO_BAD_RESPONSE
 * (e.g. another id answered). *already is false unless set as said. The
 * header holding the key is built per call and wiped after it; no detail
 * holds the key. Its own kapi handle, beside the profile's.
 */
int	kakao_user_unlink(struct kakao_client *kc, int64_t target_id,
	    bool *already, struct kl_error *err);

/* Parsers of Kakao's answers, pure functions (unit tests, fuzzing). */
/* Parses an unlink (or logout) answer: {"id":N} with N == want_id (a JSON
 * object; other members ignored, duplicates refused). Anything else is
 * KL_KAKAO_BAD_RESPONSE. Pure. */
int	kakao_unlink_answer_parse(const char *body, size_t len,
	    int64_t want_id, struct kl_error *err);
int	kakao_profile_parse(const char *body, size_t len,
	    struct kakao_profile *profile, struct kl_error *err);
int	kakao_token_info_parse(const char *body, size_t len,
	    struct kakao_token_info *info, struct kl_error *err);
/* Maps a non-200 answer (status and body) to a failure; always -1. */
int	kakao_error_classify(long http_status, const char *body, size_t len,
	    struct kl_error *err);

#endif
