/*
 * config.h: the service's configuration, read once at start from a
 * "key = value" file (# starts a comment). Unknown keys and bad values are
 * refused with a message naming the file and line; the program then stops.
 * After config_load() the struct is read-only and shared by all threads.
 */
#ifndef KL_CONFIG_H
#define KL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kl_error.h"
#include "kl_limits.h"

enum config_durability {
	DURABILITY_SYNC = 0,	/* commit waits for the log on disk */
	DURABILITY_WRITE_NOSYNC,/* log written to the OS, not flushed */
	DURABILITY_NOSYNC	/* log kept in memory until it fills */
};

/* repl_ack_policy: how many sites must hold a write before it is
 * acknowledged (Berkeley DB's DB_REPMGR_ACKS_QUORUM, _ALL, _ONE). */
enum config_ack {
	ACK_QUORUM = 0,
	ACK_ALL,
	ACK_ONE
};

/* One replication site, HOST:PORT (repl_site, repl_peers). */
struct config_site {
	char			 host[MAX_REPL_HOST];
	unsigned		 port;		/* 0: not set */
};

struct config {
	char			 db_home[MAX_CONFIG_PATH];
	enum config_durability	 db_durability;
	char			 jwt_secret_file[MAX_CONFIG_PATH];
	char			 jwt_issuer[MAX_ISSUER];
	long			 jwt_ttl;
	char			 kakao_api_url[MAX_URL_LEN];
	char			 kakao_auth_url[MAX_URL_LEN];
	int64_t			 kakao_app_id;	/* 0: not checked */
	bool			 kakao_allow_other_apps; /* app id may be 0 */
	char			 kakao_rest_api_key[MAX_APP_KEY + 1];
	char			 kakao_client_secret_file[MAX_CONFIG_PATH];
	char			 kakao_admin_key_file[MAX_CONFIG_PATH];
	/* Space-separated lists, kept as written and split at load. */
	char			 redirect_uris[MAX_CONFIG_LINE];
	char			 redirect_uri[MAX_REDIRECT_URIS][MAX_URL_LEN];
	int			 n_redirect_uris;
	char			 kakao_native_app_keys[MAX_CONFIG_LINE];
	char			 native_app_key[MAX_NATIVE_APP_KEYS][MAX_APP_KEY + 1];
	int			 n_native_app_keys;
	char			 kakao_javascript_key[MAX_APP_KEY + 1];
	/* Browser sessions: the refresh token as a cookie, for requests
	 * whose Origin is one of allowed_origin (http_cors.h). */
	bool			 refresh_cookie;
	bool			 refresh_cookie_secure;	/* "__Host-", Secure */
	char			 allowed_origins[MAX_CONFIG_LINE];
	char			 allowed_origin[MAX_ALLOWED_ORIGINS][MAX_ORIGIN_LEN];
	int			 n_allowed_origins;
	char			 oidc_issuer[MAX_URL_LEN];
	long			 oidc_clock_skew;	/* seconds */
	int			 threads;
	int			 kakao_max_calls;	/* 0: kakao_gate_cap() */
	long			 upstream_timeout_ms;
	long			 upstream_connect_timeout_ms;
	char			 ca_file[MAX_CONFIG_PATH];
	bool			 legacy_acess_token;
	char			 log_file[MAX_CONFIG_PATH];	/* "": stderr */
	long			 refresh_ttl;		/* seconds */
	long			 refresh_idle_ttl;	/* seconds */
	long			 refresh_reuse_window;	/* seconds */
	bool			 verify_revocation;	/* a store read per JWT check */
	long			 unlink_retry_interval;	/* s; doubled per retry */
	/* Replication (app/store_repl.c): unset repl_site is one site. */
	char			 repl_site[MAX_REPL_HOST + 8];
	struct config_site	 repl_self;
	char			 repl_peers[MAX_CONFIG_LINE];
	struct config_site	 repl_peer[MAX_REPL_PEERS];
	int			 n_repl_peers;
	int			 repl_priority;		/* 0: never master */
	enum config_ack		 repl_ack_policy;
	long			 repl_ack_timeout_ms;
};

/* True when repl_site is set: the store is one site of a group. */
bool	config_replicated(const struct config *cfg);

/* Sets every key to its default (db_home has none and stays ""). */
void	config_defaults(struct config *cfg);

/* Reads path over the defaults. Returns 0, or -1 with err->detail naming
 * "path:line: problem". Checks that required keys are present and
 * config_check(). */
int	config_load(struct config *cfg, const char *path, struct kl_error *err);

/* The rules between keys, checked by config_load after the last line:
 * the connect time-out within the whole one; kakao_app_id set, or else
 * kakao_allow_other_apps = yes (never both); a client secret only with
 * the REST API key it belongs to; refresh_idle_ttl within refresh_ttl;
 * repl_peers only with repl_site, never naming it. */
int	config_check(const struct config *cfg, struct kl_error *err);

/* HOST:PORT as repl_site and repl_peers take it (a name or IPv4 address,
 * a port 1..65535) into out; what names the value in err's message. For
 * the admin tool's "group remove". */
int	config_site_parse(const char *what, const char *v,
	    struct config_site *out, struct kl_error *err);

/* True when every allowed origin is http:// (check_origin allows that
 * for loopback hosts only): refresh_cookie_secure = no is then allowed. */
bool	config_origins_loopback(const struct config *cfg);

/* What is allowed but must be said, at every start (the log) and by -t
 * (stderr): kakao_allow_other_apps = yes, an http:// kakao_api_url or
 * kakao_auth_url. Fills out with at most max static strings (none to
 * free); returns how many. */
#define CONFIG_MAX_WARNINGS	5
int	config_warnings(const struct config *cfg, const char **out, int max);

/* Parses one "key = value" line (no newline) into cfg; used by config_load
 * and the fuzz target. Blank and comment lines are accepted. */
int	config_parse_line(struct config *cfg, const char *line,
	    struct kl_error *err);

/* True for bytes that are long enough yet no secret: every byte the same,
 * or all whitespace (the rule of config_read_secret, and of each key of a
 * keyed jwt_secret_file). */
int	config_secret_trivial(const unsigned char *b, size_t len);

/* Reads the secret file path (what: its key, for messages) into buf, for
 * the client secret and the admin key (jwt_secret_file: the _raw form
 * below, token.c parses its lines). Refused: anything
 * but a regular file (opened O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, so a FIFO
 * or a symlink fails at once), group or world access, size bytes or more,
 * fewer than min after one trailing newline is dropped, all bytes equal or
 * all whitespace. On success *len bytes of buf are the secret; the caller
 * owns them and wipes buf (explicit_bzero) when done. On failure buf is
 * wiped and err names the file, never the bytes. */
int	config_read_secret(const char *what, const char *path,
	    unsigned char *buf, size_t size, size_t min, size_t *len,
	    struct kl_error *err);

/* config_read_secret's file checks (a regular file, no group or world
 * access, fewer than size bytes) and nothing else: on success *len bytes of
 * buf are the file's, every one of them (no newline dropped, no length or
 * content check), for a caller that parses the file itself (token.c: a
 * key file). Ownership and wiping as for config_read_secret. */
int	config_read_secret_raw(const char *what, const char *path,
	    unsigned char *buf, size_t size, size_t *len,
	    struct kl_error *err);

#endif
