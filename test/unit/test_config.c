/*
 * test_config.c: the key = value parser (app/config.c).
 *
 * config_parse_line() is checked key by key with good and bad values;
 * config_load() on small files written under /tmp (mkstemp), for line
 * numbers in the error, required keys, cross-key checks and defaults.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

/* Parses one line over the defaults; returns what config_parse_line did. */
static int
parse(struct config *cfg, const char *line, struct kl_error *err)
{
	config_defaults(cfg);
	kl_error_clear(err);
	return config_parse_line(cfg, line, err);
}

/* A line that must be refused, with KL_BAD_CONFIG and a detail. */
static void
refuse(const char *line)
{
	struct config	cfg;
	struct kl_error	err;

	if (parse(&cfg, line, &err) != -1)
		fail_msg("accepted: \"%s\"", line);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	assert_true(err.detail[0] != '\0');
}

static void
accept_line(struct config *cfg, const char *line)
{
	struct kl_error	err;

	if (parse(cfg, line, &err) != 0)
		fail_msg("refused: \"%s\": %s", line, err.detail);
}

/* Writes text to a new file under /tmp; returns its malloc'd path. */
static char *
write_temp(const char *text)
{
	char	*path = strdup("/tmp/kl-test-config-XXXXXX");
	FILE	*fp;
	int	 fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd != -1);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	return path;
}

static void
remove_temp(char *path)
{
	unlink(path);
	free(path);
}

/* ---- config_defaults ---- */

static void
test_defaults(void **state)
{
	struct config	cfg;

	(void)state;
	memset(&cfg, 0x5a, sizeof(cfg));
	config_defaults(&cfg);
	assert_string_equal(cfg.kakao_api_url, "https://kapi.kakao.com");
	assert_string_equal(cfg.kakao_auth_url, "https://kauth.kakao.com");
	assert_int_equal(cfg.jwt_ttl, 3600);
	assert_int_equal(cfg.upstream_timeout_ms, 3000);
	assert_int_equal(cfg.upstream_connect_timeout_ms, 1000);
	assert_int_equal(cfg.db_durability, DURABILITY_SYNC);
	assert_int_equal(cfg.threads, DEFAULT_THREADS);
	assert_int_equal(cfg.kakao_app_id, 0);
	assert_false(cfg.legacy_acess_token);
	assert_string_equal(cfg.db_home, "");
	assert_string_equal(cfg.jwt_secret_file, "");
	assert_string_equal(cfg.log_file, "");
}

/* ---- config_parse_line: lines that set nothing ---- */

static void
test_blank_and_comment_lines(void **state)
{
	static const char *lines[] = {
		"", " ", "\t", " \t \r", "# a comment", "   # indented comment",
		"\t#db_home = /x", "#", "# = =",
	};
	struct config	cfg, ref;
	struct kl_error	err;
	size_t		i;

	(void)state;
	config_defaults(&ref);
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		if (parse(&cfg, lines[i], &err) != 0)
			fail_msg("refused \"%s\"", lines[i]);
		/* Nothing changed. */
		assert_memory_equal(&cfg, &ref, sizeof(cfg));
	}
}

static void
test_structure_errors(void **state)
{
	(void)state;
	refuse("db_home");			/* missing '=' */
	refuse("db_home /var/lib/kl");		/* missing '=' */
	refuse("db_home =");			/* empty value */
	refuse("db_home =   \t ");		/* empty value */
	refuse("= /var/lib/kl");		/* empty key */
	refuse("no_such_key = 1");		/* unknown key */
	refuse("DB_HOME = /x");			/* keys are case-sensitive */
	refuse("db home = /x");			/* space inside the key */
	refuse("db_homes = /x");		/* prefix of nothing */
	refuse("db_hom = /x");			/* prefix of a key */
	refuse("legacy_access_token = yes");	/* the key is misspelled */
}

static void
test_unknown_key_named_in_detail(void **state)
{
	struct config	cfg;
	struct kl_error	err;

	(void)state;
	assert_int_equal(parse(&cfg, "frobnicate = 3", &err), -1);
	assert_non_null(strstr(err.detail, "frobnicate"));
}

static void
test_whitespace_around_key_and_value(void **state)
{
	struct config	cfg;

	(void)state;
	accept_line(&cfg, "db_home=/var/lib/kl");
	assert_string_equal(cfg.db_home, "/var/lib/kl");
	accept_line(&cfg, "   db_home   =   /var/lib/kl   ");
	assert_string_equal(cfg.db_home, "/var/lib/kl");
	accept_line(&cfg, "\tdb_home\t=\t/var/lib/kl\t");
	assert_string_equal(cfg.db_home, "/var/lib/kl");
	/* A CRLF file: the CR is not part of the value. */
	accept_line(&cfg, "db_home = /var/lib/kl\r");
	assert_string_equal(cfg.db_home, "/var/lib/kl");
	/* Spaces inside a value are kept. */
	accept_line(&cfg, "jwt_issuer = my  issuer");
	assert_string_equal(cfg.jwt_issuer, "my  issuer");
	/* Only the first '=' separates. */
	accept_line(&cfg, "redirect_uris = https://a.example/cb?x=1&y=2");
	assert_string_equal(cfg.redirect_uris, "https://a.example/cb?x=1&y=2");
}

/* ---- config_parse_line: string keys ---- */

static void
test_string_keys(void **state)
{
	static const struct {
		const char	*line;
		size_t		 offset;
		const char	*want;
	} cases[] = {
		{ "db_home = /var/lib/kakao-login",
		  offsetof(struct config, db_home), "/var/lib/kakao-login" },
		{ "jwt_secret_file = /etc/kl/jwt.key",
		  offsetof(struct config, jwt_secret_file), "/etc/kl/jwt.key" },
		{ "jwt_issuer = https://login.example",
		  offsetof(struct config, jwt_issuer), "https://login.example" },
		{ "kakao_rest_api_key = 0123456789abcdef",
		  offsetof(struct config, kakao_rest_api_key), "0123456789abcdef" },
		{ "kakao_client_secret_file = /etc/kl/client.secret",
		  offsetof(struct config, kakao_client_secret_file),
		  "/etc/kl/client.secret" },
		{ "kakao_admin_key_file = /etc/kl/admin.key",
		  offsetof(struct config, kakao_admin_key_file),
		  "/etc/kl/admin.key" },
		{ "redirect_uris = https://a.example/cb https://b.example/cb",
		  offsetof(struct config, redirect_uris),
		  "https://a.example/cb https://b.example/cb" },
		{ "ca_file = /etc/ssl/certs/ca.pem",
		  offsetof(struct config, ca_file), "/etc/ssl/certs/ca.pem" },
		{ "log_file = /var/log/kl.log",
		  offsetof(struct config, log_file), "/var/log/kl.log" },
	};
	struct config	cfg;
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		accept_line(&cfg, cases[i].line);
		assert_string_equal((char *)&cfg + cases[i].offset,
		    cases[i].want);
	}
}

static void
test_string_too_long(void **state)
{
	struct config	cfg;
	char		line[MAX_CONFIG_PATH + 64];
	size_t		n;

	(void)state;
	/* The longest value that fits: MAX_CONFIG_PATH - 1 bytes. */
	n = (size_t)snprintf(line, sizeof(line), "db_home = /");
	memset(line + n, 'a', MAX_CONFIG_PATH - 2);
	line[n + MAX_CONFIG_PATH - 2] = '\0';
	accept_line(&cfg, line);
	assert_int_equal(strlen(cfg.db_home), MAX_CONFIG_PATH - 1);
	/* One more byte does not fit and is refused, not cut. */
	line[n + MAX_CONFIG_PATH - 2] = 'a';
	line[n + MAX_CONFIG_PATH - 1] = '\0';
	refuse(line);

	n = (size_t)snprintf(line, sizeof(line), "jwt_issuer = ");
	memset(line + n, 'i', MAX_ISSUER);
	line[n + MAX_ISSUER] = '\0';
	refuse(line);
}

/* ---- config_parse_line: URLs ---- */

static void
test_url_keys_good(void **state)
{
	struct config	cfg;

	(void)state;
	accept_line(&cfg, "kakao_api_url = https://kapi.example.com");
	assert_string_equal(cfg.kakao_api_url, "https://kapi.example.com");
	accept_line(&cfg, "kakao_api_url = http://127.0.0.1:8081");
	assert_string_equal(cfg.kakao_api_url, "http://127.0.0.1:8081");
	accept_line(&cfg, "kakao_api_url = https://gw.example/kakao");
	assert_string_equal(cfg.kakao_api_url, "https://gw.example/kakao");
	accept_line(&cfg, "kakao_auth_url = https://kauth.example.com");
	assert_string_equal(cfg.kakao_auth_url, "https://kauth.example.com");
	accept_line(&cfg, "kakao_auth_url = http://localhost:9000");
	assert_string_equal(cfg.kakao_auth_url, "http://localhost:9000");
}

static void
test_url_keys_bad(void **state)
{
	static const char *values[] = {
		"kapi.kakao.com",			/* no scheme */
		"//kapi.kakao.com",			/* no scheme */
		"ftp://kapi.kakao.com",			/* other scheme */
		"file:///etc/passwd",
		"https:/kapi.kakao.com",
		"https://",				/* no host */
		"http://",
		"https:///path",			/* empty host */
		"https://kapi.kakao.com/",		/* trailing slash */
		"https://kapi.kakao.com/v2/",		/* trailing slash */
		"https://user@kapi.kakao.com",		/* user info */
		"https://user:pw@kapi.kakao.com",
		"https://kapi.kakao.com@evil.example",
	};
	char	line[256];
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		snprintf(line, sizeof(line), "kakao_api_url = %s", values[i]);
		refuse(line);
		snprintf(line, sizeof(line), "kakao_auth_url = %s", values[i]);
		refuse(line);
	}
}

static void
test_url_refused_keeps_default(void **state)
{
	struct config	cfg;
	struct kl_error	err;

	(void)state;
	assert_int_equal(parse(&cfg, "kakao_api_url = https://x.example/",
	    &err), -1);
	assert_string_equal(cfg.kakao_api_url, "https://kapi.kakao.com");
}

/* ---- config_parse_line: numbers ---- */

static void
test_number_keys_ranges(void **state)
{
	struct config	cfg;

	(void)state;
	accept_line(&cfg, "jwt_ttl = 60");
	assert_int_equal(cfg.jwt_ttl, 60);
	accept_line(&cfg, "jwt_ttl = 2592000");
	assert_int_equal(cfg.jwt_ttl, 2592000);
	accept_line(&cfg, "jwt_ttl = 7200");
	assert_int_equal(cfg.jwt_ttl, 7200);
	refuse("jwt_ttl = 59");
	refuse("jwt_ttl = 2592001");
	refuse("jwt_ttl = 0");
	refuse("jwt_ttl = -3600");

	accept_line(&cfg, "threads = 1");
	assert_int_equal(cfg.threads, 1);
	accept_line(&cfg, "threads = 256");
	assert_int_equal(cfg.threads, MAX_THREADS);
	refuse("threads = 0");
	refuse("threads = 257");
	refuse("threads = -1");
	refuse("threads = 4294967297");		/* would wrap an int */

	accept_line(&cfg, "upstream_timeout_ms = 50");
	assert_int_equal(cfg.upstream_timeout_ms, 50);
	accept_line(&cfg, "upstream_timeout_ms = 60000");
	assert_int_equal(cfg.upstream_timeout_ms, 60000);
	refuse("upstream_timeout_ms = 49");
	refuse("upstream_timeout_ms = 60001");

	accept_line(&cfg, "upstream_connect_timeout_ms = 10");
	assert_int_equal(cfg.upstream_connect_timeout_ms, 10);
	accept_line(&cfg, "upstream_connect_timeout_ms = 60000");
	assert_int_equal(cfg.upstream_connect_timeout_ms, 60000);
	refuse("upstream_connect_timeout_ms = 9");
	refuse("upstream_connect_timeout_ms = 60001");

	accept_line(&cfg, "kakao_app_id = 1");
	assert_int_equal(cfg.kakao_app_id, 1);
	accept_line(&cfg, "kakao_app_id = 424242");
	assert_int_equal(cfg.kakao_app_id, 424242);
	accept_line(&cfg, "kakao_app_id = 9223372036854775807");
	assert_true(cfg.kakao_app_id == INT64_MAX);
	refuse("kakao_app_id = 0");
	refuse("kakao_app_id = -424242");
	refuse("kakao_app_id = 9223372036854775808");	/* overflows */
	refuse("kakao_app_id = 99999999999999999999999");
}

static void
test_number_keys_not_numbers(void **state)
{
	static const char *keys[] = {
		"jwt_ttl", "threads", "upstream_timeout_ms",
		"upstream_connect_timeout_ms", "kakao_app_id",
	};
	static const char *values[] = {
		"abc", "12abc", "1.5", "100ms", "0x100", "1e3", "--5",
		"100 200", "one",
	};
	char	line[128];
	size_t	i, j;

	(void)state;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		for (j = 0; j < sizeof(values) / sizeof(values[0]); j++) {
			snprintf(line, sizeof(line), "%s = %s", keys[i],
			    values[j]);
			refuse(line);
		}
}

static void
test_number_range_named_in_detail(void **state)
{
	struct config	cfg;
	struct kl_error	err;

	(void)state;
	assert_int_equal(parse(&cfg, "threads = 1000", &err), -1);
	assert_non_null(strstr(err.detail, "threads"));
	assert_int_equal(cfg.threads, DEFAULT_THREADS);
}

/* ---- config_parse_line: booleans and durability ---- */

static void
test_bool_spellings(void **state)
{
	static const char *yes[] = { "yes", "true", "1" };
	static const char *no[] = { "no", "false", "0" };
	static const char *bad[] = {
		"maybe", "2", "-1", "y", "n", "yess", "tru", "true false",
	};
	struct config	cfg;
	char		line[64];
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(line, sizeof(line), "legacy_acess_token = %s", yes[i]);
		accept_line(&cfg, line);
		assert_true(cfg.legacy_acess_token);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		snprintf(line, sizeof(line), "legacy_acess_token = %s", no[i]);
		config_defaults(&cfg);
		cfg.legacy_acess_token = true;
		if (config_parse_line(&cfg, line, NULL) != 0)
			fail_msg("refused \"%s\"", line);
		assert_false(cfg.legacy_acess_token);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "legacy_acess_token = %s", bad[i]);
		refuse(line);
	}
}

static void
test_durability_words(void **state)
{
	static const char *bad[] = {
		"SYNC", "fsync", "write-nosync", "writenosync", "async", "0",
		"nosync2",
	};
	struct config	cfg;
	char		line[64];
	size_t		i;

	(void)state;
	accept_line(&cfg, "db_durability = write_nosync");
	assert_int_equal(cfg.db_durability, DURABILITY_WRITE_NOSYNC);
	accept_line(&cfg, "db_durability = nosync");
	assert_int_equal(cfg.db_durability, DURABILITY_NOSYNC);
	config_defaults(&cfg);
	cfg.db_durability = DURABILITY_NOSYNC;
	assert_int_equal(config_parse_line(&cfg, "db_durability = sync",
	    NULL), 0);
	assert_int_equal(cfg.db_durability, DURABILITY_SYNC);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "db_durability = %s", bad[i]);
		refuse(line);
	}
}

/* ---- config_load ---- */

static const char minimal[] =
    "db_home = /var/lib/kakao-login\n"
    "jwt_secret_file = /etc/kakao-login/jwt.key\n"
    "kakao_app_id = 424242\n";

static void
test_load_minimal_keeps_defaults(void **state)
{
	struct config	 cfg;
	struct kl_error	 err;
	char		*path = write_temp(minimal);

	(void)state;
	config_defaults(&cfg);
	if (config_load(&cfg, path, &err) != 0)
		fail_msg("refused: %s", err.detail);
	assert_string_equal(cfg.db_home, "/var/lib/kakao-login");
	assert_string_equal(cfg.jwt_secret_file, "/etc/kakao-login/jwt.key");
	assert_string_equal(cfg.kakao_api_url, "https://kapi.kakao.com");
	assert_string_equal(cfg.kakao_auth_url, "https://kauth.kakao.com");
	assert_int_equal(cfg.jwt_ttl, 3600);
	assert_int_equal(cfg.upstream_timeout_ms, 3000);
	assert_int_equal(cfg.upstream_connect_timeout_ms, 1000);
	assert_int_equal(cfg.db_durability, DURABILITY_SYNC);
	remove_temp(path);
}

static void
test_load_full_file(void **state)
{
	struct config	 cfg;
	struct kl_error	 err;
	char		*path = write_temp(
	    "# kakao-login\n"
	    "\n"
	    "db_home = /srv/kl\n"
	    "  db_durability = write_nosync\n"
	    "jwt_secret_file = /etc/kl/jwt.key\r\n"
	    "jwt_issuer = issuer-x\n"
	    "jwt_ttl = 900\n"
	    "\t# indented comment\n"
	    "kakao_api_url = http://127.0.0.1:8081\n"
	    "kakao_auth_url = http://127.0.0.1:8082\n"
	    "kakao_app_id = 424242\n"
	    "threads = 4\n"
	    "upstream_timeout_ms = 500\n"
	    "upstream_connect_timeout_ms = 500\n"
	    "legacy_acess_token = yes\n"
	    "log_file = /var/log/kl.log");	/* no final newline */

	(void)state;
	config_defaults(&cfg);
	if (config_load(&cfg, path, &err) != 0)
		fail_msg("refused: %s", err.detail);
	assert_string_equal(cfg.db_home, "/srv/kl");
	assert_int_equal(cfg.db_durability, DURABILITY_WRITE_NOSYNC);
	assert_string_equal(cfg.jwt_secret_file, "/etc/kl/jwt.key");
	assert_string_equal(cfg.jwt_issuer, "issuer-x");
	assert_int_equal(cfg.jwt_ttl, 900);
	assert_string_equal(cfg.kakao_api_url, "http://127.0.0.1:8081");
	assert_string_equal(cfg.kakao_auth_url, "http://127.0.0.1:8082");
	assert_int_equal(cfg.kakao_app_id, 424242);
	assert_int_equal(cfg.threads, 4);
	assert_int_equal(cfg.upstream_timeout_ms, 500);
	assert_int_equal(cfg.upstream_connect_timeout_ms, 500);
	assert_true(cfg.legacy_acess_token);
	assert_string_equal(cfg.log_file, "/var/log/kl.log");
	remove_temp(path);
}

/* err.detail names the file and the line: "path:line: problem". */
static void
expect_load_error_at(const char *text, unsigned line, const char *word)
{
	struct config	 cfg;
	struct kl_error	 err;
	char		*path = write_temp(text), want[128];

	config_defaults(&cfg);
	kl_error_clear(&err);
	if (config_load(&cfg, path, &err) != -1)
		fail_msg("accepted a bad file (line %u)", line);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	snprintf(want, sizeof(want), "%s:%u: ", path, line);
	if (strstr(err.detail, want) == NULL)
		fail_msg("detail \"%s\" does not name \"%s\"", err.detail, want);
	if (word != NULL && strstr(err.detail, word) == NULL)
		fail_msg("detail \"%s\" does not mention \"%s\"", err.detail,
		    word);
	remove_temp(path);
}

static void
test_load_names_bad_line(void **state)
{
	(void)state;
	expect_load_error_at("db_home = /x\nbogus_key = 1\n", 2, "bogus_key");
	expect_load_error_at("# c\n\n\n\njwt_ttl = 5\n", 5, "jwt_ttl");
	expect_load_error_at(
	    "db_home = /x\n"
	    "jwt_secret_file = /k\n"
	    "threads = 4\n"
	    "kakao_api_url = https://kapi.kakao.com/\n", 4, "kakao_api_url");
	expect_load_error_at("db_home /x\n", 1, NULL);
	expect_load_error_at("db_home = /x\njwt_ttl =\n", 2, "jwt_ttl");
	/* A bad last line without a newline is still named. */
	expect_load_error_at("db_home = /x\nthreads = 999", 2, "threads");
}

static void
test_load_line_too_long(void **state)
{
	char	*text;
	size_t	 n;

	(void)state;
	text = malloc(MAX_CONFIG_LINE * 2 + 64);
	assert_non_null(text);
	n = (size_t)sprintf(text, "db_home = /x\nredirect_uris = ");
	memset(text + n, 'u', MAX_CONFIG_LINE + 10);
	n += MAX_CONFIG_LINE + 10;
	strcpy(text + n, "\njwt_secret_file = /k\n");
	expect_load_error_at(text, 2, NULL);
	free(text);
}

static void
test_load_required_keys(void **state)
{
	struct config	 cfg;
	struct kl_error	 err;
	char		*path;

	(void)state;
	path = write_temp("jwt_secret_file = /k\n");
	config_defaults(&cfg);
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	assert_non_null(strstr(err.detail, "db_home"));
	remove_temp(path);

	path = write_temp("db_home = /x\n");
	config_defaults(&cfg);
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	assert_non_null(strstr(err.detail, "jwt_secret_file"));
	remove_temp(path);

	path = write_temp("# nothing\n");
	config_defaults(&cfg);
	assert_int_equal(config_load(&cfg, path, &err), -1);
	remove_temp(path);

	path = write_temp("");
	config_defaults(&cfg);
	assert_int_equal(config_load(&cfg, path, &err), -1);
	remove_temp(path);
}

static void
test_load_connect_timeout_above_total(void **state)
{
	struct config	 cfg;
	struct kl_error	 err;
	char		*path;

	(void)state;
	path = write_temp("db_home = /x\njwt_secret_file = /k\nkakao_app_id = 1\n"
	    "upstream_timeout_ms = 100\nupstream_connect_timeout_ms = 200\n");
	config_defaults(&cfg);
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	assert_non_null(strstr(err.detail, "upstream_connect_timeout_ms"));
	remove_temp(path);

	/* Against the default total (3000). */
	path = write_temp("db_home = /x\njwt_secret_file = /k\nkakao_app_id = 1\n"
	    "upstream_connect_timeout_ms = 3001\n");
	config_defaults(&cfg);
	assert_int_equal(config_load(&cfg, path, &err), -1);
	remove_temp(path);

	/* Equal is fine, in either order of the lines. */
	path = write_temp("db_home = /x\njwt_secret_file = /k\nkakao_app_id = 1\n"
	    "upstream_connect_timeout_ms = 200\nupstream_timeout_ms = 200\n");
	config_defaults(&cfg);
	if (config_load(&cfg, path, &err) != 0)
		fail_msg("refused: %s", err.detail);
	remove_temp(path);
}

static void
test_load_missing_file(void **state)
{
	struct config	cfg;
	struct kl_error	err;

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(config_load(&cfg, "/nonexistent/kl-test/conf", &err),
	    -1);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	assert_non_null(strstr(err.detail, "/nonexistent/kl-test/conf"));
}


/* ---- http:// only to this machine ---- */

static void
test_url_http_only_loopback(void **state)
{
	static const char *good[] = {
		"http://127.0.0.1", "http://127.0.0.1:8081", "http://127.1.2.3:80",
		"http://localhost", "http://localhost:9000",
		"http://[::1]", "http://[::1]:8080", "http://127.0.0.1:8081/gw",
		"https://kapi.kakao.com", "https://10.0.0.1:8443",
	};
	static const char *bad[] = {
		"http://kapi.kakao.com",		/* cleartext to Kakao */
		"http://10.0.0.1:8081",			/* another machine */
		"http://128.0.0.1",
		"http://127.0.0.1.evil.example",	/* a name, not an address */
		"http://localhost.evil.example",
		"http://127.evil.example",
		"http://0x7f000001", "http://2130706433", "http://0177.0.0.1",
		"http://127.0.0.1evil", "http://127.0.0.1:", "http://127.0.0.1:8o",
		"http://[::2]", "http://[::ffff:10.0.0.1]", "http://[::1",
		"http://::1", "http://LOCALHOST.", "http://localhost:80:80",
		/* Loopback, but spelt otherwise than the documented [::1]
		 * (make fuzz found the harness and the parser disagreeing). */
		"http://[0::1]", "http://[0:0:0:0:0:0:0:1]",
	};
	struct config	cfg;
	char		line[256];
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(line, sizeof(line), "kakao_api_url = %s", good[i]);
		accept_line(&cfg, line);
		assert_string_equal(cfg.kakao_api_url, good[i]);
		snprintf(line, sizeof(line), "kakao_auth_url = %s", good[i]);
		accept_line(&cfg, line);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "kakao_api_url = %s", bad[i]);
		refuse(line);
		snprintf(line, sizeof(line), "kakao_auth_url = %s", bad[i]);
		refuse(line);
	}
}

/* ---- kakao_app_id or, explicitly, kakao_allow_other_apps ---- */

/* config_load() over text; returns its result, err filled. */
static int
load_text(struct config *cfg, const char *text, struct kl_error *err)
{
	char	*path = write_temp(text);
	int	 rc;

	config_defaults(cfg);
	kl_error_clear(err);
	rc = config_load(cfg, path, err);
	remove_temp(path);
	return rc;
}

/* allowed_origins: exactly what a browser sends as Origin. */
static void
test_allowed_origins(void **state)
{
	struct config	cfg;
	static const char *bad[] = {
		"allowed_origins = https://a.example/",
		"allowed_origins = https://a.example/path",
		"allowed_origins = HTTPS://a.example",
		"allowed_origins = https://A.example",
		"allowed_origins = https://a.example:443",
		"allowed_origins = http://127.0.0.1:80",
		"allowed_origins = https://a.example:0443",
		"allowed_origins = https://a.example:65536",
		"allowed_origins = https://a.example:",
		"allowed_origins = http://a.example",
		"allowed_origins = http://127.0.0.1.example",
		"allowed_origins = https://user@a.example",
		"allowed_origins = https://",
		"allowed_origins = https://.a.example",
		"allowed_origins = null",
		"allowed_origins = *",
		"allowed_origins = https://[::2]",
		"allowed_origins = https://a.example https://a.example",
		"allowed_origins = https://a https://b https://c https://d "
		    "https://e https://f https://g https://h https://i",
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refuse(bad[i]);
	accept_line(&cfg, "allowed_origins = https://app.example.com "
	    "http://127.0.0.1:8080 http://localhost http://[::1]:3000 "
	    "https://a-b.example:8443");
	assert_int_equal(cfg.n_allowed_origins, 5);
	assert_string_equal(cfg.allowed_origin[0], "https://app.example.com");
	assert_string_equal(cfg.allowed_origin[3], "http://[::1]:3000");
	assert_true(cfg.refresh_cookie_secure);	/* the default */
	assert_false(cfg.refresh_cookie);
}

/* The replication keys: HOST:PORT each, peers only with a site. */
static void
test_repl_keys(void **state)
{
	struct config	cfg;
	struct kl_error	err;
	const char	*warn[CONFIG_MAX_WARNINGS];
	static const char *bad[] = {
		"repl_site = 127.0.0.1",
		"repl_site = :7001",
		"repl_site = 127.0.0.1:",
		"repl_site = 127.0.0.1:0",
		"repl_site = 127.0.0.1:07001",
		"repl_site = 127.0.0.1:65536",
		"repl_site = 127.0.0.1:70x1",
		"repl_site = [::1]:7001",
		"repl_site = -a.example:7001",
		"repl_site = a_b.example:7001",
		"repl_site = a.example:7001 b.example:7002",
		"repl_peers = a:1 b:2 c:3 d:4 e:5 f:6 g:7 h:8 i:9",
		"repl_peers = a:1 a:1",
		"repl_peers = a:1 b",
		"repl_ack_policy = majority",
		"repl_ack_timeout_ms = 0",
		"repl_priority = -1",
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refuse(bad[i]);
	config_defaults(&cfg);
	assert_false(config_replicated(&cfg));
	assert_int_equal(cfg.repl_ack_policy, ACK_QUORUM);
	assert_int_equal(cfg.repl_ack_timeout_ms, 1000);
	assert_int_equal(cfg.repl_priority, 100);
	accept_line(&cfg, "repl_site = db1.example:7001");
	assert_true(config_replicated(&cfg));
	assert_string_equal(cfg.repl_self.host, "db1.example");
	assert_int_equal(cfg.repl_self.port, 7001);
	accept_line(&cfg, "repl_peers = 10.0.0.2:7001  db3.example:65535");
	assert_int_equal(cfg.n_repl_peers, 2);
	assert_string_equal(cfg.repl_peer[1].host, "db3.example");
	assert_int_equal(cfg.repl_peer[1].port, 65535);
	accept_line(&cfg, "repl_ack_policy = all");
	assert_int_equal(cfg.repl_ack_policy, ACK_ALL);

	/* Peers without a site of our own, or naming it. */
	assert_int_equal(load_text(&cfg, "db_home = /x\njwt_secret_file = /k\n"
	    "kakao_app_id = 1\nrepl_peers = 127.0.0.1:7002\n", &err), -1);
	assert_non_null(strstr(err.detail, "repl_site"));
	assert_int_equal(load_text(&cfg, "db_home = /x\njwt_secret_file = /k\n"
	    "kakao_app_id = 1\nrepl_site = 127.0.0.1:7001\n"
	    "repl_peers = 127.0.0.1:7002 127.0.0.1:7001\n", &err), -1);
	assert_non_null(strstr(err.detail, "itself"));
	if (load_text(&cfg, "db_home = /x\njwt_secret_file = /k\n"
	    "kakao_app_id = 1\nrepl_site = 127.0.0.1:7001\n"
	    "repl_peers = 127.0.0.1:7002\nrepl_ack_policy = one\n",
	    &err) != 0)
		fail_msg("refused: %s", err.detail);
	assert_int_equal(config_warnings(&cfg, warn, CONFIG_MAX_WARNINGS), 1);
	assert_non_null(strstr(warn[0], "repl_ack_policy = one"));
}

static void
test_refresh_cookie_rules(void **state)
{
	struct config	cfg;
	struct kl_error	err;
	const char	*warn[CONFIG_MAX_WARNINGS];

	(void)state;
	/* The cookie without an origin could never be used. */
	assert_int_equal(load_text(&cfg, "db_home = /x\njwt_secret_file = /k\nkakao_app_id = 1\n"
	    "refresh_cookie = yes\n", &err), -1);
	assert_non_null(strstr(err.detail, "allowed_origins"));
	/* Secure may be dropped for loopback http only. */
	assert_int_equal(load_text(&cfg, "db_home = /x\njwt_secret_file = /k\nkakao_app_id = 1\n"
	    "refresh_cookie = yes\nrefresh_cookie_secure = no\n"
	    "allowed_origins = http://127.0.0.1:8080 https://a.example\n",
	    &err), -1);
	assert_non_null(strstr(err.detail, "refresh_cookie_secure"));
	if (load_text(&cfg, "db_home = /x\njwt_secret_file = /k\nkakao_app_id = 1\n"
	    "refresh_cookie = yes\nrefresh_cookie_secure = no\n"
	    "allowed_origins = http://127.0.0.1:8080\n", &err) != 0)
		fail_msg("refused: %s", err.detail);
	assert_int_equal(config_warnings(&cfg, warn, CONFIG_MAX_WARNINGS), 1);
	assert_non_null(strstr(warn[0], "refresh_cookie_secure"));
	if (load_text(&cfg, "db_home = /x\njwt_secret_file = /k\nkakao_app_id = 1\n"
	    "refresh_cookie = yes\nallowed_origins = https://a.example\n",
	    &err) != 0)
		fail_msg("refused: %s", err.detail);
	assert_int_equal(config_warnings(&cfg, warn, CONFIG_MAX_WARNINGS), 0);
}

static void
test_load_requires_app_id_or_allow(void **state)
{
	struct config	cfg;
	struct kl_error	err;

	(void)state;
	/* Neither: refused, and the message names both ways out. */
	assert_int_equal(load_text(&cfg, "db_home = /x\njwt_secret_file = /k\n",
	    &err), -1);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	assert_non_null(strstr(err.detail, "kakao_app_id"));
	assert_non_null(strstr(err.detail, "kakao_allow_other_apps"));
	/* Saying no is the same as not saying. */
	assert_int_equal(load_text(&cfg, "db_home = /x\njwt_secret_file = /k\n"
	    "kakao_allow_other_apps = no\n", &err), -1);
	/* The app id. */
	if (load_text(&cfg, "db_home = /x\njwt_secret_file = /k\n"
	    "kakao_app_id = 424242\n", &err) != 0)
		fail_msg("refused: %s", err.detail);
	assert_int_equal(cfg.kakao_app_id, 424242);
	assert_false(cfg.kakao_allow_other_apps);
	/* Or, explicitly, other apps' tokens. */
	if (load_text(&cfg, "db_home = /x\njwt_secret_file = /k\n"
	    "kakao_allow_other_apps = yes\n", &err) != 0)
		fail_msg("refused: %s", err.detail);
	assert_int_equal(cfg.kakao_app_id, 0);
	assert_true(cfg.kakao_allow_other_apps);
	/* Both contradict each other. */
	assert_int_equal(load_text(&cfg, "db_home = /x\njwt_secret_file = /k\n"
	    "kakao_app_id = 424242\nkakao_allow_other_apps = yes\n", &err), -1);
	assert_non_null(strstr(err.detail, "kakao_allow_other_apps"));
}

/* etc/kakao-login.conf, as shipped and with its app id line uncommented:
 * the sample stays true to the rules (run from the repository root). */
static char *
sample_text(int with_app_id)
{
	FILE	*fp = fopen("etc/kakao-login.conf", "r");
	char	*text, *p;
	long	 size;

	if (fp == NULL)
		fail_msg("etc/kakao-login.conf: run from the repository root");
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	rewind(fp);
	text = calloc(1, (size_t)size + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)size, fp), (size_t)size);
	fclose(fp);
	if (with_app_id) {
		p = strstr(text, "\n#kakao_app_id = ");
		if (p == NULL)
			fail_msg("sample lacks a \"#kakao_app_id = \" line");
		p[1] = ' ';
	}
	return text;
}

static void
test_sample_config(void **state)
{
	struct config	 cfg;
	struct kl_error	 err;
	char		*text;

	(void)state;
	text = sample_text(0);
	assert_int_equal(load_text(&cfg, text, &err), -1);
	assert_non_null(strstr(err.detail, "kakao_app_id"));
	free(text);

	text = sample_text(1);
	if (load_text(&cfg, text, &err) != 0)
		fail_msg("sample with its app id refused: %s", err.detail);
	assert_true(cfg.kakao_app_id > 0);
	assert_false(cfg.kakao_allow_other_apps);
	/* Old front ends read "acess_token": on in the sample. */
	assert_true(cfg.legacy_acess_token);
	assert_string_equal(cfg.kakao_api_url, "https://kapi.kakao.com");
	assert_string_equal(cfg.kakao_auth_url, "https://kauth.kakao.com");
	free(text);
}

/* ---- config_read_secret: the one reader of secret and key files ---- */

static void
test_read_secret(void **state)
{
	unsigned char	 buf[64];
	struct kl_error	 err;
	size_t		 len = 99;
	char		*path;

	(void)state;
	/* The bytes come back, one trailing newline dropped; the key the
	 * caller names is in the messages (kakao_admin_key_file later). */
	path = write_temp("0123456789abcdef0123456789abcdef\n");
	assert_int_equal(chmod(path, 0600), 0);
	if (config_read_secret("kakao_admin_key_file", path, buf, sizeof(buf),
	    32, &len, &err) != 0)
		fail_msg("refused: %s", err.detail);
	assert_int_equal(len, 32);
	assert_memory_equal(buf, "0123456789abcdef0123456789abcdef", 32);
	/* Too short for this caller's minimum; buf wiped, len 0. */
	assert_int_equal(config_read_secret("kakao_admin_key_file", path, buf,
	    sizeof(buf), 33, &len, &err), -1);
	assert_int_equal(len, 0);
	assert_non_null(strstr(err.detail, "kakao_admin_key_file"));
	assert_null(strstr(err.detail, "0123456789abcdef"));
	assert_int_equal(buf[0], 0);
	/* Too long for buf: refused, not cut. */
	assert_int_equal(config_read_secret("x", path, buf, 32, 1, &len, &err),
	    -1);
	/* Readable by the group. */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(config_read_secret("x", path, buf, sizeof(buf), 32,
	    &len, &err), -1);
	assert_non_null(strstr(err.detail, "640"));
	remove_temp(path);
}

/* ---- issue 9: the code flow and OpenID Connect keys ---- */

static void
test_redirect_uris_split_and_checked(void **state)
{
	struct config	cfg;

	(void)state;
	accept_line(&cfg, "redirect_uris = https://a.example/cb  "
	    "http://localhost:8080/cb?x=1&y=2\thttps://b.example:8443/");
	assert_int_equal(cfg.n_redirect_uris, 3);
	assert_string_equal(cfg.redirect_uri[0], "https://a.example/cb");
	assert_string_equal(cfg.redirect_uri[1],
	    "http://localhost:8080/cb?x=1&y=2");
	assert_string_equal(cfg.redirect_uri[2], "https://b.example:8443/");
	refuse("redirect_uris = a.example/cb");
	refuse("redirect_uris = https:///cb");
	refuse("redirect_uris = https://a.example/cb#frag");
	refuse("redirect_uris = https://user@a.example/cb");
	refuse("redirect_uris = javascript:alert(1)");
	refuse("redirect_uris = https://a.example/cb https://a.example/cb");
	refuse("redirect_uris = 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17");
	/* A refused list leaves the one before whole (fuzz_config found a
	 * refused line that had already overwritten the first entries). */
	accept_line(&cfg, "redirect_uris = https://a.example/cb");
	{
		struct kl_error	err;

		assert_int_equal(config_parse_line(&cfg, "redirect_uris = "
		    "https://b.example/cb https://c.example/#x", &err), -1);
	}
	assert_int_equal(cfg.n_redirect_uris, 1);
	assert_string_equal(cfg.redirect_uri[0], "https://a.example/cb");
	/* An @ in the path is not user info. */
	accept_line(&cfg, "redirect_uris = https://a.example/cb/@me");
	assert_int_equal(cfg.n_redirect_uris, 1);
}

static void
test_app_keys(void **state)
{
	struct config	cfg;

	(void)state;
	accept_line(&cfg, "kakao_native_app_keys = abc123 def_456-x");
	assert_int_equal(cfg.n_native_app_keys, 2);
	assert_string_equal(cfg.native_app_key[0], "abc123");
	assert_string_equal(cfg.native_app_key[1], "def_456-x");
	accept_line(&cfg, "kakao_javascript_key = 0123abcd");
	assert_string_equal(cfg.kakao_javascript_key, "0123abcd");
	refuse("kakao_native_app_keys = abc 1 2 3 4 5 6 7 8");
	refuse("kakao_native_app_keys = a\"b");
	refuse("kakao_javascript_key = two words");
	refuse("kakao_rest_api_key = key/with/slash");
	refuse("kakao_native_app_keys = same same");
}

static void
test_oidc_keys(void **state)
{
	struct config	cfg;

	(void)state;
	config_defaults(&cfg);
	assert_string_equal(cfg.oidc_issuer, "https://kauth.kakao.com");
	assert_int_equal(cfg.oidc_clock_skew, 120);
	accept_line(&cfg, "oidc_clock_skew = 0");
	assert_int_equal(cfg.oidc_clock_skew, 0);
	accept_line(&cfg, "oidc_issuer = https://issuer.example");
	assert_string_equal(cfg.oidc_issuer, "https://issuer.example");
	refuse("oidc_clock_skew = 601");
	refuse("oidc_clock_skew = -1");
}

static void
test_secret_needs_rest_key(void **state)
{
	struct config	cfg;
	struct kl_error	err;

	(void)state;
	config_defaults(&cfg);
	cfg.kakao_app_id = 1;
	snprintf(cfg.kakao_client_secret_file,
	    sizeof(cfg.kakao_client_secret_file), "/etc/secret");
	assert_int_equal(config_check(&cfg, &err), -1);
	assert_non_null(strstr(err.detail, "kakao_rest_api_key"));
	snprintf(cfg.kakao_rest_api_key, sizeof(cfg.kakao_rest_api_key),
	    "abc");
	assert_int_equal(config_check(&cfg, &err), 0);
}

/* Issue 10's keys: the session lifetimes and the revocation check. */
static void
test_session_keys(void **state)
{
	struct config	cfg;
	struct kl_error	err;

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(cfg.refresh_ttl, 30L * 86400);
	assert_int_equal(cfg.refresh_idle_ttl, 14L * 86400);
	assert_int_equal(cfg.refresh_reuse_window, 10);
	assert_false(cfg.verify_revocation);
	assert_int_equal(cfg.unlink_retry_interval, 30);
	accept_line(&cfg, "unlink_retry_interval = 1");
	assert_int_equal(cfg.unlink_retry_interval, 1);
	refuse("unlink_retry_interval = 0");
	refuse("unlink_retry_interval = 3601");
	accept_line(&cfg, "refresh_ttl = 300");
	assert_int_equal(cfg.refresh_ttl, 300);
	accept_line(&cfg, "refresh_idle_ttl = 60");
	assert_int_equal(cfg.refresh_idle_ttl, 60);
	accept_line(&cfg, "refresh_reuse_window = 0");
	assert_int_equal(cfg.refresh_reuse_window, 0);
	accept_line(&cfg, "verify_revocation = yes");
	assert_true(cfg.verify_revocation);
	refuse("refresh_ttl = 299");
	refuse("refresh_ttl = 31536001");
	refuse("refresh_idle_ttl = 59");
	refuse("refresh_reuse_window = 301");
	refuse("refresh_reuse_window = -1");
	refuse("verify_revocation = maybe");
	/* Idle longer than the whole life: refused by the check. */
	config_defaults(&cfg);
	cfg.kakao_app_id = 1;
	cfg.refresh_ttl = 3600;
	cfg.refresh_idle_ttl = 3601;
	assert_int_equal(config_check(&cfg, &err), -1);
	assert_non_null(strstr(err.detail, "refresh_idle_ttl"));
	cfg.refresh_idle_ttl = 3600;
	assert_int_equal(config_check(&cfg, &err), 0);
}

/* One more line over cfg (accept_line starts from the defaults). */
static void
add_line(struct config *cfg, const char *line)
{
	struct kl_error	err;

	if (config_parse_line(cfg, line, &err) != 0)
		fail_msg("refused: \"%s\": %s", line, err.detail);
}

/* Allowed but said: other apps, and cleartext to a loopback "Kakao". */
static void
test_warnings(void **state)
{
	const char	*w[CONFIG_MAX_WARNINGS];
	struct config	 cfg;

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(config_warnings(&cfg, w, CONFIG_MAX_WARNINGS), 0);
	add_line(&cfg, "kakao_api_url = http://127.0.0.1:8081");
	assert_int_equal(config_warnings(&cfg, w, CONFIG_MAX_WARNINGS), 1);
	assert_non_null(strstr(w[0], "kakao_api_url is http://"));
	add_line(&cfg, "kakao_auth_url = http://localhost:8081");
	add_line(&cfg, "kakao_allow_other_apps = yes");
	assert_int_equal(config_warnings(&cfg, w, CONFIG_MAX_WARNINGS), 3);
	assert_non_null(strstr(w[0], "kakao_allow_other_apps = yes"));
	assert_non_null(strstr(w[2], "kakao_auth_url is http://"));
	/* Never more than the caller has room for. */
	assert_int_equal(config_warnings(&cfg, w, 2), 2);
	add_line(&cfg, "kakao_api_url = https://kapi.kakao.com");
	add_line(&cfg, "kakao_auth_url = https://kauth.kakao.com");
	add_line(&cfg, "kakao_allow_other_apps = no");
	assert_int_equal(config_warnings(&cfg, w, CONFIG_MAX_WARNINGS), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session_keys),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_blank_and_comment_lines),
		cmocka_unit_test(test_structure_errors),
		cmocka_unit_test(test_unknown_key_named_in_detail),
		cmocka_unit_test(test_whitespace_around_key_and_value),
		cmocka_unit_test(test_string_keys),
		cmocka_unit_test(test_string_too_long),
		cmocka_unit_test(test_url_keys_good),
		cmocka_unit_test(test_url_keys_bad),
		cmocka_unit_test(test_url_refused_keeps_default),
		cmocka_unit_test(test_number_keys_ranges),
		cmocka_unit_test(test_number_keys_not_numbers),
		cmocka_unit_test(test_number_range_named_in_detail),
		cmocka_unit_test(test_bool_spellings),
		cmocka_unit_test(test_durability_words),
		cmocka_unit_test(test_load_minimal_keeps_defaults),
		cmocka_unit_test(test_load_full_file),
		cmocka_unit_test(test_load_names_bad_line),
		cmocka_unit_test(test_load_line_too_long),
		cmocka_unit_test(test_load_required_keys),
		cmocka_unit_test(test_load_connect_timeout_above_total),
		cmocka_unit_test(test_load_missing_file),
		cmocka_unit_test(test_url_http_only_loopback),
		cmocka_unit_test(test_load_requires_app_id_or_allow),
		cmocka_unit_test(test_allowed_origins),
		cmocka_unit_test(test_refresh_cookie_rules),
		cmocka_unit_test(test_sample_config),
		cmocka_unit_test(test_read_secret),
		cmocka_unit_test(test_redirect_uris_split_and_checked),
		cmocka_unit_test(test_app_keys),
		cmocka_unit_test(test_oidc_keys),
		cmocka_unit_test(test_secret_needs_rest_key),
		cmocka_unit_test(test_warnings),
		cmocka_unit_test(test_repl_keys),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
