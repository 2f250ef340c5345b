/*
 * fuzz_config.c: the bytes, split on '\n' (each line a NUL-terminated
 * copy, so an embedded NUL ends the line), go one line after another to
 * config_parse_line() on a struct config filled by config_defaults().
 * Unlike config_load() it goes on after a refused line, to reach more keys.
 *
 * Beyond "does not crash" it asserts, after every line: a refused line is
 * KL_BAD_CONFIG and leaves the struct byte for byte as it was; every string
 * field ends with a NUL inside its array; the numeric fields stay within
 * the ranges of the key table in app/config.c (or keep their defaults);
 * db_durability is one of the three; the two URLs start with https://,
 * or with http:// and a loopback host, hold no '@' and end without '/'.
 * At the end, config_check() passing means kakao_app_id is set or
 * kakao_allow_other_apps is yes, not both.
 */
#include <assert.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T(field)	(memchr(c->field, '\0', sizeof(c->field)) != NULL)

static bool
url_ok(const char *u)
{
	size_t	len = strlen(u);

	if (strncmp(u, "http://", 7) == 0) {
		/* Cleartext only to this machine. */
		u += 7;
		if (strncmp(u, "127.", 4) != 0 &&
		    strncmp(u, "[::1]", 5) != 0 &&
		    strncmp(u, "localhost", 9) != 0)
			return false;
		return strchr(u, '@') == NULL && u[len - 8] != '/';
	}
	return strncmp(u, "https://", 8) == 0 && strchr(u, '@') == NULL &&
	    u[len - 1] != '/';
}

static void
check(const struct config *c)
{
	unsigned char	b;

	assert(T(db_home) && T(jwt_secret_file) && T(jwt_issuer));
	assert(T(kakao_api_url) && T(kakao_auth_url));
	assert(T(kakao_rest_api_key) && T(kakao_client_secret_file));
	assert(T(kakao_admin_key_file) && T(redirect_uris));
	assert(T(ca_file) && T(log_file));
	assert(c->db_durability == DURABILITY_SYNC ||
	    c->db_durability == DURABILITY_WRITE_NOSYNC ||
	    c->db_durability == DURABILITY_NOSYNC);
	/* The key table's ranges; kakao_app_id is 0 (unset) or 1.. */
	assert(c->jwt_ttl >= 60 && c->jwt_ttl <= 30L * 86400);
	assert(c->kakao_app_id >= 0);
	assert(c->threads >= 1 && c->threads <= MAX_THREADS);
	assert(c->upstream_timeout_ms >= 50 && c->upstream_timeout_ms <= 60000);
	assert(c->upstream_connect_timeout_ms >= 10 &&
	    c->upstream_connect_timeout_ms <= 60000);
	memcpy(&b, &c->legacy_acess_token, 1);
	assert(b <= 1);
	memcpy(&b, &c->kakao_allow_other_apps, 1);
	assert(b <= 1);
	assert(url_ok(c->kakao_api_url));
	assert(url_ok(c->kakao_auth_url));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config	 cfg, before;
	struct kl_error		 err;
	const uint8_t		*p = data, *end = data + size, *nl;
	char			*line;
	size_t			 len;

	config_defaults(&cfg);
	check(&cfg);
	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		len = (size_t)(nl - p);
		if ((line = malloc(len + 1)) == NULL)
			abort();
		memcpy(line, p, len);
		line[len] = '\0';
		memcpy(&before, &cfg, sizeof(cfg));
		if (config_parse_line(&cfg, line, &err) == -1) {
			assert(err.status == KL_BAD_CONFIG);
			assert(memchr(err.detail, '\0', sizeof(err.detail)));
			assert(memcmp(&before, &cfg, sizeof(cfg)) == 0);
		}
		check(&cfg);
		free(line);
		p = nl + 1;
	}
	if (config_check(&cfg, &err) == 0)
		assert((cfg.kakao_app_id != 0) != cfg.kakao_allow_other_apps);
	else
		assert(err.status == KL_BAD_CONFIG);
	return 0;
}
