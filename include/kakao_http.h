/*
 * kakao_http.h: the curl plumbing the kakao layer's files share. Internal
 * to the layer: only app/kakao*.c include it; the rest of the service sees
 * kakao.h and kakao_auth.h.
 *
 * A struct kakao_call is one easy handle and its answer buffer, set up
 * once (URL, scheme, TLS checks, time-outs, size cap, no proxy) and reused
 * for every request so its connection stays alive. struct kakao_client is
 * defined here so that kakao.c (kapi), kakao_auth.c (kauth) and
 * kakao_admin.c (kapi's admin calls) all reach the per-thread handles. Nothing here is thread-safe except the process's
 * share handle (DNS, TLS sessions), which is locked; a call and a client
 * belong to one thread.
 */
#ifndef KL_KAKAO_HTTP_H
#define KL_KAKAO_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include "kakao.h"
#include "kl_buf.h"
#include "kl_error.h"
#include "kl_limits.h"
#include "metrics.h"

struct kakao_call {
	CURL			*easy;
	struct kl_buf		 body;		/* .limit = MAX_KAKAO_BODY */
	CURLcode		 result;
	long			 http_status;
	struct curl_slist	*headers;	/* NULL, or owned by the call */
};

/* What the code flow needs from the options, kept per client. */
struct kakao_auth_conf {
	bool		 on;		/* auth_url and rest_api_key set */
	char		 rest_api_key[MAX_APP_KEY + 1];
	const char	*client_secret;		/* main's bytes, not ours */
	size_t		 client_secret_len;
};

/* The admin key, kept per client: main's bytes, not ours. */
struct kakao_admin_conf {
	bool		 on;		/* admin_key set */
	const char	*key;
	size_t		 key_len;
};

struct kakao_client {
	CURLM			*multi;
	struct kakao_call	 profile;	/* kapi /v2/user/me */
	struct kakao_call	 info;		/* kapi access_token_info */
	struct kakao_call	 auth;		/* kauth /oauth/token, when on */
	struct kakao_call	 admin;		/* kapi /v1/user/unlink, when on */
	int64_t			 app_id;
	struct kakao_auth_conf	 auth_conf;
	struct kakao_admin_conf	 admin_conf;
	struct kakao_reject	*reject;	/* shared, not ours */
	struct kakao_gate	*gate;		/* shared, not ours */
};

/* Maps a non-200 answer to a failure; always returns -1. */
typedef int kakao_classify_fn(long http_status, const char *body,
    size_t len, struct kl_error *err);

/* The process's share handle (DNS cache, TLS sessions). */
int	kakao_http_global_init(struct kl_error *err);
void	kakao_http_global_cleanup(void);

/* Sets up c for base + path (base is the configured URL, named key in
 * messages). Only base's scheme is allowed, TLS peers are verified, no
 * proxy is used, no redirect followed. On failure c may be half set up:
 * kakao_call_free() it. */
int	kakao_call_init(struct kakao_call *c, const struct kakao_options *opt,
	    const char *base, const char *key, const char *path,
	    struct kl_error *err);
/* Frees the handle, the headers and the buffer (wiped: it may have held
 * tokens). c may be zeroed (never set up). */
void	kakao_call_free(struct kakao_call *c);
/* Readies c for the next transfer: empty body, no result yet. */
void	kakao_call_reset(struct kakao_call *c);
/* Wipes the whole answer buffer (it held tokens), then gives up its
 * memory when over KAKAO_BUF_KEEP. */
void	kakao_call_wipe(struct kakao_call *c);

/* Runs the transfers added to multi to completion, filling each call's
 * result and status (each is bounded by its own time-out). */
int	kakao_call_run(CURLM *multi, struct kl_error *err);
/* The same for one call on its own, without a multi handle. */
void	kakao_call_perform(struct kakao_call *c);

/* Turns a finished transfer into 0 (a 200) or a failure: time-outs,
 * the size cap, transport errors, then classify() for any other status. */
int	kakao_call_outcome(const struct kakao_call *c, const char *what,
	    kakao_classify_fn *classify, struct kl_error *err);

/* Counts a finished transfer of c in the metrics as a call to ep: its
 * outcome from the transfer and HTTP status alone (what Kakao did, not
 * what we made of the answer), its time as curl measured it. */
void	kakao_call_count(const struct kakao_call *c,
	    enum metrics_kakao_endpoint ep);

/* kakao_auth.c: sets up kc->auth and kc->auth_conf from opt (nothing when
 * the code flow is not configured). */
int	kakao_auth_client_init(struct kakao_client *kc,
	    const struct kakao_options *opt, struct kl_error *err);

/* kakao_admin.c: sets up kc->admin and kc->admin_conf from opt (nothing
 * when no admin key is set; KL_BAD_CONFIG for one that is not a key). */
int	kakao_admin_client_init(struct kakao_client *kc,
	    const struct kakao_options *opt, struct kl_error *err);

#endif
