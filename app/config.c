/*
 * config.c: reads the key = value configuration file.
 *
 * Owns the table of accepted keys: each key names the field it fills and the
 * kind of value it takes, which says how the value is checked. The file is
 * read once at start, before any thread exists; nothing here runs per
 * request. Knows nothing of HTTP, Kakao or the store beyond the values.
 * Also reads the secret files the keys name (config_read_secret, or
 * config_read_secret_raw for a file its caller parses), for the layers
 * above that hold keys: the bytes are theirs to keep and wipe.
 */
#include <arpa/inet.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"

enum key_kind { K_STRING, K_URL, K_LONG, K_INT, K_INT64, K_BOOL, K_DURABILITY,
	K_APP_KEY, K_REDIRECT_URIS, K_APP_KEYS, K_ORIGINS, K_SITE, K_SITES, K_ACK };

struct config_key {
	const char	*name;
	size_t		 offset;	/* into struct config */
	size_t		 size;		/* of the field */
	enum key_kind	 kind;
	long long	 min, max;	/* numeric kinds */
};

#define F(field)	offsetof(struct config, field), \
			sizeof(((struct config *)0)->field)

static const struct config_key keys[] = {
	{ "db_home",			F(db_home), K_STRING, 0, 0 },
	{ "db_durability",		F(db_durability), K_DURABILITY, 0, 0 },
	{ "jwt_secret_file",		F(jwt_secret_file), K_STRING, 0, 0 },
	{ "jwt_issuer",			F(jwt_issuer), K_STRING, 0, 0 },
	{ "jwt_ttl",			F(jwt_ttl), K_LONG, 60, 30L * 86400 },
	{ "kakao_api_url",		F(kakao_api_url), K_URL, 0, 0 },
	{ "kakao_auth_url",		F(kakao_auth_url), K_URL, 0, 0 },
	{ "kakao_app_id",		F(kakao_app_id), K_INT64, 1, LLONG_MAX },
	{ "kakao_allow_other_apps",	F(kakao_allow_other_apps), K_BOOL, 0, 0 },
	{ "kakao_rest_api_key",		F(kakao_rest_api_key), K_APP_KEY, 0, 0 },
	{ "kakao_client_secret_file",	F(kakao_client_secret_file), K_STRING, 0, 0 },
	{ "kakao_admin_key_file",	F(kakao_admin_key_file), K_STRING, 0, 0 },
	{ "redirect_uris",		F(redirect_uris), K_REDIRECT_URIS, 0, 0 },
	{ "kakao_native_app_keys",	F(kakao_native_app_keys), K_APP_KEYS, 0, 0 },
	{ "kakao_javascript_key",	F(kakao_javascript_key), K_APP_KEY, 0, 0 },
	{ "refresh_cookie",		F(refresh_cookie), K_BOOL, 0, 0 },
	{ "refresh_cookie_secure",	F(refresh_cookie_secure), K_BOOL, 0, 0 },
	{ "allowed_origins",		F(allowed_origins), K_ORIGINS, 0, 0 },
	{ "oidc_issuer",		F(oidc_issuer), K_STRING, 0, 0 },
	{ "oidc_clock_skew",		F(oidc_clock_skew), K_LONG, 0, MAX_OIDC_CLOCK_SKEW },
	{ "threads",			F(threads), K_INT, 1, MAX_THREADS },
	{ "kakao_max_calls",		F(kakao_max_calls), K_INT, 1, MAX_THREADS },
	{ "upstream_timeout_ms",	F(upstream_timeout_ms), K_LONG, 50, 60000 },
	{ "upstream_connect_timeout_ms", F(upstream_connect_timeout_ms), K_LONG, 10, 60000 },
	{ "ca_file",			F(ca_file), K_STRING, 0, 0 },
	{ "legacy_acess_token",		F(legacy_acess_token), K_BOOL, 0, 0 },
	{ "log_file",			F(log_file), K_STRING, 0, 0 },
	{ "refresh_ttl",		F(refresh_ttl), K_LONG, 300, MAX_REFRESH_TTL },
	{ "refresh_idle_ttl",		F(refresh_idle_ttl), K_LONG, 60, MAX_REFRESH_TTL },
	{ "refresh_reuse_window",	F(refresh_reuse_window), K_LONG, 0, MAX_REFRESH_REUSE_WINDOW },
	{ "verify_revocation",		F(verify_revocation), K_BOOL, 0, 0 },
	{ "unlink_retry_interval",	F(unlink_retry_interval), K_LONG, 1, UNLINK_MAX_RETRY_S },
	{ "repl_site",			F(repl_site), K_SITE, 0, 0 },
	{ "repl_peers",			F(repl_peers), K_SITES, 0, 0 },
	{ "repl_priority",		F(repl_priority), K_INT, 0, 1000000 },
	{ "repl_ack_policy",		F(repl_ack_policy), K_ACK, 0, 0 },
	{ "repl_ack_timeout_ms",	F(repl_ack_timeout_ms), K_LONG, 10, 60000 },
};

void
config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->db_durability = DURABILITY_SYNC;
	snprintf(cfg->jwt_issuer, sizeof(cfg->jwt_issuer), "kakao-login");
	cfg->jwt_ttl = DEFAULT_JWT_TTL;
	snprintf(cfg->kakao_api_url, sizeof(cfg->kakao_api_url),
	    "https://kapi.kakao.com");
	snprintf(cfg->kakao_auth_url, sizeof(cfg->kakao_auth_url),
	    "https://kauth.kakao.com");
	snprintf(cfg->oidc_issuer, sizeof(cfg->oidc_issuer),
	    "https://kauth.kakao.com");
	cfg->oidc_clock_skew = DEFAULT_OIDC_CLOCK_SKEW;
	cfg->threads = DEFAULT_THREADS;
	cfg->upstream_timeout_ms = DEFAULT_UPSTREAM_TIMEOUT_MS;
	cfg->upstream_connect_timeout_ms = DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS;
	cfg->refresh_ttl = DEFAULT_REFRESH_TTL;
	cfg->refresh_idle_ttl = DEFAULT_REFRESH_IDLE_TTL;
	cfg->refresh_reuse_window = DEFAULT_REFRESH_REUSE_WINDOW;
	cfg->unlink_retry_interval = UNLINK_FIRST_RETRY_S;
	cfg->refresh_cookie_secure = true;
	cfg->repl_priority = DEFAULT_REPL_PRIORITY;
	cfg->repl_ack_policy = ACK_QUORUM;
	cfg->repl_ack_timeout_ms = DEFAULT_REPL_ACK_TIMEOUT_MS;
}

bool
config_replicated(const struct config *cfg)
{
	return cfg->repl_self.port != 0;
}

static const struct config_key *
key_find(const char *name, size_t len)
{
	size_t	i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strlen(keys[i].name) == len &&
		    memcmp(keys[i].name, name, len) == 0)
			return &keys[i];
	return NULL;
}

static int
parse_number(const struct config_key *k, const char *v, long long *out,
    struct kl_error *err)
{
	char		*end;
	long long	 n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0')
		return kl_fail(err, KL_BAD_CONFIG, "%s: not a number", k->name);
	if (n < k->min || n > k->max)
		return kl_fail(err, KL_BAD_CONFIG, "%s: %lld is outside %lld..%lld",
		    k->name, n, k->min, k->max);
	*out = n;
	return 0;
}

/* True when host (len bytes, no port) names this machine: localhost, a
 * dotted-quad 127.0.0.0/8 address or [::1]. Names that merely start like
 * one (127.0.0.1.example) are not. */
static int
host_is_loopback(const char *host, size_t len)
{
	char		buf[64];
	unsigned char	a[16];

	if (len == 0 || len >= sizeof(buf))
		return 0;
	memcpy(buf, host, len);
	buf[len] = '\0';
	if (strcmp(buf, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, buf, a) == 1)
		return a[0] == 127;
	/* IPv6: only the one spelling the documentation gives, so that what
	 * an operator reads in the file is what it means. */
	return strcmp(buf, "[::1]") == 0;
}

/* Cleartext goes only to this machine (the fake Kakao, a local gateway):
 * the host, then an optional :port of digits, then the end or a path. */
static int
check_http_host(const struct config_key *k, const char *host,
    struct kl_error *err)
{
	size_t	hlen, plen;

	if (*host == '[')
		hlen = strcspn(host, "]") + 1;
	else
		hlen = strcspn(host, ":/");
	if (hlen > strlen(host) || !host_is_loopback(host, hlen))
		return kl_fail(err, KL_BAD_CONFIG, "%s: http:// only to a "
		    "loopback address (127.0.0.0/8, [::1], localhost); use "
		    "https://", k->name);
	host += hlen;
	if (*host == ':') {
		plen = strspn(host + 1, "0123456789");
		if (plen == 0 || plen > 5 ||
		    (host[1 + plen] != '\0' && host[1 + plen] != '/'))
			return kl_fail(err, KL_BAD_CONFIG, "%s: bad port",
			    k->name);
	} else if (*host != '\0' && *host != '/')
		return kl_fail(err, KL_BAD_CONFIG, "%s: bad host", k->name);
	return 0;
}

/* Only http and https, no user info, no trailing slash; the scheme later
 * limits which protocols libcurl may speak. */
static int
check_url(const struct config_key *k, const char *v, struct kl_error *err)
{
	const char	*host;
	size_t		 len = strlen(v);

	if (strncmp(v, "https://", 8) == 0)
		host = v + 8;
	else if (strncmp(v, "http://", 7) == 0)
		host = v + 7;
	else
		return kl_fail(err, KL_BAD_CONFIG, "%s: must start with "
		    "https:// or http://", k->name);
	if (*host == '\0' || *host == '/' || strchr(host, '@') != NULL)
		return kl_fail(err, KL_BAD_CONFIG, "%s: bad host", k->name);
	if (v[len - 1] == '/')
		return kl_fail(err, KL_BAD_CONFIG, "%s: no trailing slash",
		    k->name);
	if (host == v + 7)
		return check_http_host(k, host, err);
	return 0;
}

/* A Kakao app key: what the developer console shows (hex today), so
 * letters, digits, '-' and '_' only, 1 to MAX_APP_KEY of them. */
static int
check_app_key(const char *name, const char *v, size_t len,
    struct kl_error *err)
{
	size_t	i;

	if (len == 0 || len > MAX_APP_KEY)
		return kl_fail(err, KL_BAD_CONFIG, "%s: a key of 1 to %d "
		    "characters", name, MAX_APP_KEY);
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)v[i]) && v[i] != '-' && v[i] != '_')
			return kl_fail(err, KL_BAD_CONFIG, "%s: a key has "
			    "characters other than letters, digits, - and _",
			    name);
	return 0;
}

/* A redirect URI as the front end registered it with Kakao: absolute
 * http or https with a host, no fragment, no user info. It is compared
 * byte for byte with what the front end sends, so it is kept as is. */
static int
check_redirect_uri(const char *v, size_t len, struct kl_error *err)
{
	const char	*host;
	size_t		 i;

	if (len >= MAX_URL_LEN)
		return kl_fail(err, KL_BAD_CONFIG, "redirect_uris: a URI over "
		    "%d bytes", MAX_URL_LEN - 1);
	if (len > 8 && strncmp(v, "https://", 8) == 0)
		host = v + 8;
	else if (len > 7 && strncmp(v, "http://", 7) == 0)
		host = v + 7;
	else
		return kl_fail(err, KL_BAD_CONFIG, "redirect_uris: each must "
		    "start with https:// or http:// and name a host");
	if (*host == '/' || *host == ':')
		return kl_fail(err, KL_BAD_CONFIG, "redirect_uris: no host");
	for (i = 0; i < len; i++)
		if ((unsigned char)v[i] <= 0x20 || v[i] == 0x7f ||
		    v[i] == '#' || (v + i >= host && v[i] == '@' &&
		    memchr(host, '/', (size_t)(v + i - host)) == NULL))
			return kl_fail(err, KL_BAD_CONFIG, "redirect_uris: a "
			    "URI with a fragment, user info or control bytes");
	return 0;
}

/*
 * An origin as a browser sends it (RFC 6454): lower-case scheme://host,
 * then :port only when it is not the scheme's default (a browser leaves
 * :443 and :80 out, so such an entry would never match). https anywhere,
 * http only to a loopback host (make demo). Compared byte for byte.
 */
static int
check_origin(const char *v, size_t len, struct kl_error *err)
{
	const char	*host, *end = v + len;
	size_t		 hlen, plen;
	long		 port;
	bool		 tls;

	if (len >= MAX_ORIGIN_LEN)
		return kl_fail(err, KL_BAD_CONFIG, "allowed_origins: an origin "
		    "over %d bytes", MAX_ORIGIN_LEN - 1);
	if ((tls = len > 8 && strncmp(v, "https://", 8) == 0))
		host = v + 8;
	else if (len > 7 && strncmp(v, "http://", 7) == 0)
		host = v + 7;
	else
		return kl_fail(err, KL_BAD_CONFIG, "allowed_origins: each must "
		    "start with https:// or http:// (lower case)");
	if (*host == '[')
		hlen = end - host >= 5 && strncmp(host, "[::1]", 5) == 0 ? 5 : 0;
	else
		hlen = strspn(host, "abcdefghijklmnopqrstuvwxyz0123456789.-");
	if (hlen == 0 || host + hlen > end || host[0] == '.' ||
	    host[0] == '-' || host[hlen - 1] == '.')
		return kl_fail(err, KL_BAD_CONFIG, "allowed_origins: a bad "
		    "host (lower-case letters, digits, '.', '-'; [::1])");
	if (!tls && !host_is_loopback(host, hlen))
		return kl_fail(err, KL_BAD_CONFIG, "allowed_origins: http:// "
		    "only for a loopback host; use https://");
	host += hlen;
	if (host == end)
		return 0;
	plen = strspn(host + 1, "0123456789");
	if (*host != ':' || plen == 0 || plen > 5 || host + 1 + plen != end ||
	    host[1] == '0')
		return kl_fail(err, KL_BAD_CONFIG, "allowed_origins: only "
		    "scheme://host[:port], no path or trailing slash");
	port = strtol(host + 1, NULL, 10);
	if (port > 65535 || port == (tls ? 443 : 80))
		return kl_fail(err, KL_BAD_CONFIG, "allowed_origins: port %ld "
		    "%s", port, port > 65535 ? "out of range" : "is the "
		    "default: browsers send the origin without it");
	return 0;
}

/*
 * HOST:PORT of a replication site (len bytes of v): a DNS name or an IPv4
 * address (letters, digits, '.', '-'; Berkeley DB resolves it), a port
 * 1..65535 without a leading zero. IPv6 literals are not taken.
 */
static int
check_site(const char *what, const char *v, size_t len,
    struct config_site *out, struct kl_error *err)
{
	const char	*colon;
	size_t		 hlen, plen;
	long		 port;

	colon = memchr(v, ':', len);
	hlen = colon == NULL ? 0 : (size_t)(colon - v);
	if (hlen == 0 || hlen >= MAX_REPL_HOST || strspn(v, "abcdefghijklmnop"
	    "qrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != hlen ||
	    v[0] == '-' || v[0] == '.')
		return kl_fail(err, KL_BAD_CONFIG, "%s: expected HOST:PORT (a "
		    "name or IPv4 address, then a port)", what);
	plen = len - hlen - 1;
	if (plen == 0 || plen > 5 || strspn(colon + 1, "0123456789") < plen ||
	    colon[1] == '0')
		return kl_fail(err, KL_BAD_CONFIG, "%s: a bad port after %.*s",
		    what, (int)hlen, v);
	port = strtol(colon + 1, NULL, 10);
	if (port > 65535)
		return kl_fail(err, KL_BAD_CONFIG, "%s: port %ld out of range",
		    what, port);
	memcpy(out->host, v, hlen);
	out->host[hlen] = '\0';
	out->port = (unsigned)port;
	return 0;
}

int
config_site_parse(const char *what, const char *v, struct config_site *out,
    struct kl_error *err)
{
	return check_site(what, v, strlen(v), out, err);
}

static bool
site_equal(const struct config_site *a, const struct config_site *b)
{
	return a->port == b->port && strcasecmp(a->host, b->host) == 0;
}

/* The next space-separated entry of a list value: *p moves to its first
 * byte; returns its length (0: no more). The caller steps past it. */
static size_t
next_entry(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
	return strcspn(*p, " \t");
}

/* repl_peers: up to MAX_REPL_PEERS sites, none twice; a refused list
 * leaves cfg as it was. */
static int
sites_set(struct config *cfg, const char *v, struct kl_error *err)
{
	struct config_site	 tmp[MAX_REPL_PEERS];
	const char		*p = v;
	size_t			 len;
	int			 n = 0, i;

	while ((len = next_entry(&p)) > 0) {
		if (n == MAX_REPL_PEERS)
			return kl_fail(err, KL_BAD_CONFIG, "repl_peers: more "
			    "than %d entries", MAX_REPL_PEERS);
		if (check_site("repl_peers", p, len, &tmp[n], err) == -1)
			return -1;
		for (i = 0; i < n; i++)
			if (site_equal(&tmp[i], &tmp[n]))
				return kl_fail(err, KL_BAD_CONFIG, "repl_peers: "
				    "an entry given twice");
		n++;
		p += len;
	}
	memcpy(cfg->repl_peer, tmp, sizeof(tmp[0]) * (size_t)n);
	cfg->n_repl_peers = n;
	return 0;
}

/* Splits a space-separated list of redirect URIs or app keys into its
 * array in cfg, checking each entry. A refused list leaves cfg as it was
 * (the entries are gathered in a copy first). */
static int
list_set(struct config *cfg, const struct config_key *k, const char *v,
    struct kl_error *err)
{
	static __thread char	 tmp[MAX_REDIRECT_URIS][MAX_URL_LEN];
	const char		*p = v;
	size_t			 len, width;
	int			 n = 0, max, i, rc;
	bool			 uris = k->kind == K_REDIRECT_URIS;
	bool			 origins = k->kind == K_ORIGINS;

	max = uris ? MAX_REDIRECT_URIS : origins ? MAX_ALLOWED_ORIGINS :
	    MAX_NATIVE_APP_KEYS;
	width = uris ? MAX_URL_LEN : origins ? MAX_ORIGIN_LEN :
	    MAX_APP_KEY + 1;
	while ((len = next_entry(&p)) > 0) {
		if (n == max)
			return kl_fail(err, KL_BAD_CONFIG, "%s: more than %d "
			    "entries", k->name, max);
		rc = uris ? check_redirect_uri(p, len, err) : origins ?
		    check_origin(p, len, err) : check_app_key(k->name, p, len,
		    err);
		if (rc != 0)
			return -1;
		memcpy(tmp[n], p, len);
		tmp[n][len] = '\0';
		for (i = 0; i < n; i++)
			if (strcmp(tmp[i], tmp[n]) == 0)
				return kl_fail(err, KL_BAD_CONFIG, "%s: an entry "
				    "given twice", k->name);
		n++;
		p += len;
	}
	for (i = 0; i < n; i++)
		memcpy(uris ? cfg->redirect_uri[i] : origins ?
		    cfg->allowed_origin[i] : cfg->native_app_key[i], tmp[i],
		    width);
	if (uris)
		cfg->n_redirect_uris = n;
	else if (origins)
		cfg->n_allowed_origins = n;
	else
		cfg->n_native_app_keys = n;
	return 0;
}

static int
key_set(struct config *cfg, const struct config_key *k, const char *v,
    struct kl_error *err)
{
	char		*field = (char *)cfg + k->offset;
	long long	 n;

	switch (k->kind) {
	case K_REDIRECT_URIS:
	case K_APP_KEYS:
	case K_ORIGINS:
		if (strlen(v) >= k->size)
			return kl_fail(err, KL_BAD_CONFIG, "%s: value too long",
			    k->name);
		if (list_set(cfg, k, v, err) == -1)
			return -1;
		memcpy(field, v, strlen(v) + 1);
		return 0;
	case K_SITE:
		if (strlen(v) >= k->size)
			return kl_fail(err, KL_BAD_CONFIG, "%s: value too long",
			    k->name);
		if (check_site(k->name, v, strlen(v), &cfg->repl_self,
		    err) == -1)
			return -1;
		memcpy(field, v, strlen(v) + 1);
		return 0;
	case K_SITES:
		if (strlen(v) >= k->size)
			return kl_fail(err, KL_BAD_CONFIG, "%s: value too long",
			    k->name);
		if (sites_set(cfg, v, err) == -1)
			return -1;
		memcpy(field, v, strlen(v) + 1);
		return 0;
	case K_ACK:
		if (strcmp(v, "quorum") == 0)
			*(enum config_ack *)field = ACK_QUORUM;
		else if (strcmp(v, "all") == 0)
			*(enum config_ack *)field = ACK_ALL;
		else if (strcmp(v, "one") == 0)
			*(enum config_ack *)field = ACK_ONE;
		else
			return kl_fail(err, KL_BAD_CONFIG, "%s: expected quorum, "
			    "all or one", k->name);
		return 0;
	case K_APP_KEY:
		if (check_app_key(k->name, v, strlen(v), err) == -1)
			return -1;
		memcpy(field, v, strlen(v) + 1);
		return 0;
	case K_URL:
		if (check_url(k, v, err) == -1)
			return -1;
		/* FALLTHROUGH */
	case K_STRING:
		if (strlen(v) >= k->size)
			return kl_fail(err, KL_BAD_CONFIG, "%s: value too long",
			    k->name);
		memcpy(field, v, strlen(v) + 1);
		return 0;
	case K_LONG:
		if (parse_number(k, v, &n, err) == -1)
			return -1;
		*(long *)field = (long)n;
		return 0;
	case K_INT:
		if (parse_number(k, v, &n, err) == -1)
			return -1;
		*(int *)field = (int)n;
		return 0;
	case K_INT64:
		if (parse_number(k, v, &n, err) == -1)
			return -1;
		*(int64_t *)field = n;
		return 0;
	case K_BOOL:
		if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 ||
		    strcmp(v, "1") == 0)
			*(bool *)field = true;
		else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 ||
		    strcmp(v, "0") == 0)
			*(bool *)field = false;
		else
			return kl_fail(err, KL_BAD_CONFIG, "%s: expected yes "
			    "or no", k->name);
		return 0;
	case K_DURABILITY:
		if (strcmp(v, "sync") == 0)
			*(enum config_durability *)field = DURABILITY_SYNC;
		else if (strcmp(v, "write_nosync") == 0)
			*(enum config_durability *)field =
			    DURABILITY_WRITE_NOSYNC;
		else if (strcmp(v, "nosync") == 0)
			*(enum config_durability *)field = DURABILITY_NOSYNC;
		else
			return kl_fail(err, KL_BAD_CONFIG, "%s: expected sync, "
			    "write_nosync or nosync", k->name);
		return 0;
	}
	return kl_fail(err, KL_BAD_CONFIG, "%s: unhandled kind", k->name);
}

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

int
config_parse_line(struct config *cfg, const char *line, struct kl_error *err)
{
	const struct config_key	*k;
	const char		*p = line, *name, *eq, *vend;
	char			 value[MAX_CONFIG_LINE];
	size_t			 nlen, vlen;

	while (is_space(*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	name = p;
	if ((eq = strchr(p, '=')) == NULL)
		return kl_fail(err, KL_BAD_CONFIG, "expected key = value");
	nlen = (size_t)(eq - name);
	while (nlen > 0 && is_space(name[nlen - 1]))
		nlen--;
	if ((k = key_find(name, nlen)) == NULL)
		return kl_fail(err, KL_BAD_CONFIG, "unknown key \"%.*s\"",
		    (int)(nlen > 64 ? 64 : nlen), name);
	p = eq + 1;
	while (is_space(*p))
		p++;
	vend = p + strlen(p);
	while (vend > p && is_space(vend[-1]))
		vend--;
	vlen = (size_t)(vend - p);
	if (vlen == 0)
		return kl_fail(err, KL_BAD_CONFIG, "%s: empty value", k->name);
	if (vlen >= sizeof(value))
		return kl_fail(err, KL_BAD_CONFIG, "%s: value too long", k->name);
	memcpy(value, p, vlen);
	value[vlen] = '\0';
	return key_set(cfg, k, value, err);
}

int
config_check(const struct config *cfg, struct kl_error *err)
{
	int	i;

	if (cfg->upstream_connect_timeout_ms > cfg->upstream_timeout_ms)
		return kl_fail(err, KL_BAD_CONFIG, "upstream_connect_timeout_ms "
		    "exceeds upstream_timeout_ms");
	/* Without the app id check a token another Kakao app obtained logs
	 * its owner in here: only when the file says so. */
	if (cfg->kakao_app_id == 0 && !cfg->kakao_allow_other_apps)
		return kl_fail(err, KL_BAD_CONFIG, "kakao_app_id is required "
		    "(or kakao_allow_other_apps = yes to accept tokens issued "
		    "to other Kakao apps)");
	if (cfg->kakao_app_id != 0 && cfg->kakao_allow_other_apps)
		return kl_fail(err, KL_BAD_CONFIG, "kakao_app_id is set: "
		    "kakao_allow_other_apps = yes contradicts it");
	/* A secret is sent with the key it belongs to, never alone. */
	if (cfg->kakao_client_secret_file[0] != '\0' &&
	    cfg->kakao_rest_api_key[0] == '\0')
		return kl_fail(err, KL_BAD_CONFIG, "kakao_client_secret_file "
		    "is set but kakao_rest_api_key is not");
	/* A family idle longer than it may live would never be idle. */
	if (cfg->refresh_idle_ttl > cfg->refresh_ttl)
		return kl_fail(err, KL_BAD_CONFIG, "refresh_idle_ttl (%ld) "
		    "exceeds refresh_ttl (%ld)", cfg->refresh_idle_ttl,
		    cfg->refresh_ttl);
	/* The cookie is sent only where an allowed Origin vouches for the
	 * request: without one it could never be used (CSRF). */
	if (cfg->refresh_cookie && cfg->n_allowed_origins == 0)
		return kl_fail(err, KL_BAD_CONFIG, "refresh_cookie = yes needs "
		    "allowed_origins (the origins of the pages that log in)");
	if (!cfg->refresh_cookie_secure && !config_origins_loopback(cfg))
		return kl_fail(err, KL_BAD_CONFIG, "refresh_cookie_secure = no "
		    "only when every allowed origin is http:// to a loopback "
		    "host (make demo)");
	if (cfg->n_repl_peers > 0 && !config_replicated(cfg))
		return kl_fail(err, KL_BAD_CONFIG, "repl_peers is set but "
		    "repl_site (this site's own HOST:PORT) is not");
	for (i = 0; i < cfg->n_repl_peers; i++)
		if (site_equal(&cfg->repl_peer[i], &cfg->repl_self))
			return kl_fail(err, KL_BAD_CONFIG, "repl_peers names "
			    "repl_site itself");
	/* A cap above threads could never be reached. */
	if (cfg->kakao_max_calls > cfg->threads)
		return kl_fail(err, KL_BAD_CONFIG, "kakao_max_calls (%d) "
		    "exceeds threads (%d)", cfg->kakao_max_calls, cfg->threads);
	return 0;
}

bool
config_origins_loopback(const struct config *cfg)
{
	int	i;

	for (i = 0; i < cfg->n_allowed_origins; i++)
		if (strncmp(cfg->allowed_origin[i], "http://", 7) != 0)
			return false;	/* check_origin: https, any host */
	return true;
}

/* Allowed, but said at every start and by -t. Static strings. */
int
config_warnings(const struct config *cfg, const char **out, int max)
{
	int	n = 0;

	if (cfg->kakao_allow_other_apps && n < max)
		out[n++] = "kakao_allow_other_apps = yes: no app id check, a "
		    "token any other Kakao app obtained logs its owner in here";
	/* config_check allows http:// to loopback only: a local fake Kakao
	 * or gateway, never Kakao itself. */
	if (strncmp(cfg->kakao_api_url, "http://", 7) == 0 && n < max)
		out[n++] = "kakao_api_url is http://: access tokens and "
		    "profiles travel unencrypted; use https:// for Kakao";
	if (cfg->refresh_cookie && !cfg->refresh_cookie_secure && n < max)
		out[n++] = "refresh_cookie_secure = no: the refresh cookie "
		    "travels over http:// (loopback only, for make demo)";
	if (config_replicated(cfg) && cfg->repl_ack_policy == ACK_ONE &&
	    n < max)
		out[n++] = "repl_ack_policy = one: a login is acknowledged when "
		    "one other site holds it; losing two sites can lose it";
	if (strncmp(cfg->kakao_auth_url, "http://", 7) == 0 && n < max)
		out[n++] = "kakao_auth_url is http://: codes, the client secret "
		    "and the JWKS travel unencrypted; use https:// for Kakao";
	return n;
}

int
config_load(struct config *cfg, const char *path, struct kl_error *err)
{
	FILE		*fp;
	char		 line[MAX_CONFIG_LINE + 2];
	struct kl_error	 lerr;
	unsigned	 lineno = 0;
	size_t		 len;
	int		 rc = -1;

	if ((fp = fopen(path, "r")) == NULL)
		return kl_fail(err, KL_BAD_CONFIG, "%s: %s", path,
		    strerror(errno));
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		len = strlen(line);
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(fp)) {
			kl_fail(err, KL_BAD_CONFIG, "%s:%u: line too long",
			    path, lineno);
			goto done;
		}
		if (config_parse_line(cfg, line, &lerr) == -1) {
			kl_fail(err, KL_BAD_CONFIG, "%s:%u: %s", path, lineno,
			    lerr.detail);
			goto done;
		}
	}
	if (ferror(fp)) {
		kl_fail(err, KL_BAD_CONFIG, "%s: read error", path);
		goto done;
	}
	if (cfg->db_home[0] == '\0') {
		kl_fail(err, KL_BAD_CONFIG, "%s: db_home is required", path);
		goto done;
	}
	if (cfg->jwt_secret_file[0] == '\0') {
		kl_fail(err, KL_BAD_CONFIG, "%s: jwt_secret_file is required",
		    path);
		goto done;
	}
	if (config_check(cfg, &lerr) == -1) {
		kl_fail(err, KL_BAD_CONFIG, "%s: %s", path, lerr.detail);
		goto done;
	}
	rc = 0;
done:
	fclose(fp);
	return rc;
}

/* All bytes equal, or all whitespace: long enough, yet no secret. */
int
config_secret_trivial(const unsigned char *b, size_t len)
{
	size_t	i, same = 1, space = 1;

	for (i = 0; i < len; i++) {
		same &= b[i] == b[0];
		space &= isspace(b[i]) != 0;
	}
	return same || space;
}

int
config_read_secret_raw(const char *what, const char *path, unsigned char *buf,
    size_t size, size_t *len, struct kl_error *err)
{
	struct stat	st;
	ssize_t		n;
	size_t		got = 0;
	int		fd, rc = -1;

	*len = 0;
	/* O_NONBLOCK: a FIFO or device there must not hang the start. */
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return kl_fail(err, KL_BAD_CONFIG, "%s %s: %s", what, path,
		    strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		kl_fail(err, KL_BAD_CONFIG, "%s %s: not a regular file", what,
		    path);
		goto done;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		kl_fail(err, KL_BAD_CONFIG, "%s %s: mode %03o lets others "
		    "read it; chmod 600", what, path,
		    (unsigned)(st.st_mode & 0777));
		goto done;
	}
	while (got < size) {
		n = read(fd, buf + got, size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			kl_fail(err, KL_BAD_CONFIG, "%s %s: %s", what, path,
			    strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got == size) {
		kl_fail(err, KL_BAD_CONFIG, "%s %s: longer than %zu bytes",
		    what, path, size - 1);
		goto done;
	}
	*len = got;
	rc = 0;
done:
	close(fd);
	if (rc == -1)
		explicit_bzero(buf, size);
	return rc;
}

int
config_read_secret(const char *what, const char *path, unsigned char *buf,
    size_t size, size_t min, size_t *len, struct kl_error *err)
{
	size_t	got;

	*len = 0;
	if (config_read_secret_raw(what, path, buf, size, &got, err) == -1)
		return -1;
	if (got > 0 && buf[got - 1] == '\n')
		got--;
	if (got > 0 && buf[got - 1] == '\r')
		got--;
	if (got < min) {
		kl_fail(err, KL_BAD_CONFIG, "%s %s: shorter than %zu bytes",
		    what, path, min);
		goto fail;
	}
	if (config_secret_trivial(buf, got)) {
		kl_fail(err, KL_BAD_CONFIG, "%s %s: every byte the same or "
		    "whitespace: not a secret", what, path);
		goto fail;
	}
	*len = got;
	return 0;
fail:
	explicit_bzero(buf, size);
	return -1;
}
