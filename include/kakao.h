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

/* Parsers of Kakao's answers, pure functions (unit tests, fuzzing). */
int	kakao_profile_parse(const char *body, size_t len,
	    struct kakao_profile *profile, struct kl_error *err);
int	kakao_token_info_parse(const char *body, size_t len,
	    struct kakao_token_info *info, struct kl_error *err);
/* Maps a non-200 answer (status and body) to a failure; always -1. */
int	kakao_error_classify(long http_status, const char *body, size_t len,
	    struct kl_error *err);

#endif
