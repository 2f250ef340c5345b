/*
 * config.h: the service's configuration, read once at start from a
 * "key = value" file (# starts a comment). Unknown keys and bad values are
 * refused with a message naming the file and line; the program then stops.
 * After config_load() the struct is read-only and shared by all threads.
 */
#ifndef KL_CONFIG_H
#define KL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "kl_error.h"
#include "kl_limits.h"

enum config_durability {
	DURABILITY_SYNC = 0,	/* commit waits for the log on disk */
	DURABILITY_WRITE_NOSYNC,/* log written to the OS, not flushed */
	DURABILITY_NOSYNC	/* log kept in memory until it fills */
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
	char			 kakao_rest_api_key[MAX_CONFIG_LINE];
	char			 kakao_client_secret_file[MAX_CONFIG_PATH];
	char			 kakao_admin_key_file[MAX_CONFIG_PATH];
	char			 redirect_uris[MAX_CONFIG_LINE];
	int			 threads;
	int			 kakao_max_calls;	/* 0: kakao_gate_cap() */
	long			 upstream_timeout_ms;
	long			 upstream_connect_timeout_ms;
	char			 ca_file[MAX_CONFIG_PATH];
	bool			 legacy_acess_token;
	char			 log_file[MAX_CONFIG_PATH];	/* "": stderr */
};

/* Sets every key to its default (db_home has none and stays ""). */
void	config_defaults(struct config *cfg);

/* Reads path over the defaults. Returns 0, or -1 with err->detail naming
 * "path:line: problem". Checks that required keys are present. */
int	config_load(struct config *cfg, const char *path, struct kl_error *err);

/* Parses one "key = value" line (no newline) into cfg; used by config_load
 * and the fuzz target. Blank and comment lines are accepted. */
int	config_parse_line(struct config *cfg, const char *line,
	    struct kl_error *err);

#endif
