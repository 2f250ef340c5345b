/*
 * admin.c: kakao-login-admin, the operator's tool on the live environment.
 *
 * Owns the command table, the options, the output (text for people, JSON
 * for scripts) and the exit codes. Reads the service's config file for
 * db_home and db_durability, and joins the environment with store_join():
 * no recovery, nothing created, so the running workers notice nothing.
 * Run as root, it first becomes the owner of db_home, so that no file it
 * makes there (a log file at a checkpoint) is one the service cannot
 * write. Links no FastCGI or handler object. Single-threaded.
 *
 * Writes go through the store's own functions (a deletion is exactly
 * DELETE /users/me's transaction; the service's maintenance thread sends
 * the unlink it queues: the tool never calls Kakao), each a short
 * transaction that the deadlock detector sacrifices before a login's.
 *
 * Exit codes (admin.h): 0 done; 1 failed (store, config, I/O); 2 usage;
 * 3 not found; 4 users import refused lines (the others were imported);
 * 5 the service has the environment open (restore, init). verify exits 1
 * when it finds problems, with the report on stdout.
 */
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "admin.h"
#include "config.h"
#include "kl_buf.h"
#include "kl_limits.h"
#include "log.h"
#include "store.h"
#include "store_repl.h"
#include "admin_user.h"
#include "store_admin.h"
#include "store_session.h"


/* Set by SIGINT, SIGTERM, SIGHUP: the command stops between batches and
 * the store is closed cleanly. */
static volatile sig_atomic_t	stop;

/* The joined store, closed at every exit (a usage error in a command's
 * arguments included): a tool that leaves without closing stays in the
 * environment's registry as a dead process, and the next worker to start
 * would run recovery. */
static struct store		*joined;

static void
close_joined(void)
{
	store_close(joined);
	joined = NULL;
}

struct command {
	const char	*noun;
	const char	*verb;		/* NULL: the noun alone */
	const char	*args;		/* for the usage text */
	int		(*fn)(struct admin *, int, char **);
};

static void
usage_text(FILE *f)
{
	fprintf(f,
	    "usage: kakao-login-admin [-c config] [--json] command [args]\n"
	    "  users show ID | users show --kakao KAKAO_ID\n"
	    "  users list [--after ID] [--limit N]\n"
	    "  users count\n"
	    "  users deactivate ID | users activate ID\n"
	    "  users delete ID\n"
	    "  users export\n"
	    "  users import [FILE | -]\n"
	    "  sessions list USER_ID\n"
	    "  sessions revoke SID | sessions revoke --user USER_ID\n"
	    "  stats\n"
	    "  group | group remove HOST:PORT    (a stopped site)\n"
	    "  verify\n"
	    "  checkpoint\n"
	    "  backup DIR\n"
	    "  restore DIR | init    (the service stopped)\n"
	    "exit: 0 done, 1 failed, 2 usage, 3 not found, 4 import lines "
	    "refused,\n      5 service running (verify: 1 and the report when "
	    "it finds problems)\n");
}

static void __attribute__((noreturn))
usage(const char *why)
{
	if (why != NULL)
		fprintf(stderr, "kakao-login-admin: %s\n", why);
	usage_text(stderr);
	exit(EXIT_USAGE);
}

/* A decimal number in min .. max, or usage. */
static uint64_t
parse_num(const char *s, uint64_t min, uint64_t max, const char *what)
{
	char			*end;
	unsigned long long	 v;

	if (s == NULL || *s < '0' || *s > '9')
		usage(what);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		usage(what);
	return v;
}

/* A user or Kakao id: 1 .. max. */
static uint64_t
parse_id(const char *s, uint64_t max, const char *what)
{
	return parse_num(s, 1, max, what);
}

/* One JSON value on one line of stdout; takes the reference. */
static int
print_json(json_t *v)
{
	int	ret = -1;

	if (v != NULL && json_dumpf(v, stdout, JSON_COMPACT) == 0 &&
	    putchar('\n') != EOF)
		ret = 0;
	json_decref(v);
	return ret;
}

/* A stored text field, escaped so that no control or bidi character of a
 * nickname reaches the terminal (the log's escaping). */
static const char *
safe(const char *s, char *buf, size_t size)
{
	if (*s == '\0')
		return "-";
	log_escape(buf, size, s, strlen(s), 0);
	return buf;
}

static int
print_user(const struct admin *a, const struct store_user *u)
{
	char	n[4 * MAX_NICKNAME + 1], e[4 * MAX_EMAIL + 1];
	char	im[4 * MAX_PROFILE_IMAGE + 1], c[32], up[32], l[32];

	if (a->json)
		return print_json(admin_user_json(u));
	return printf("user_id:        %" PRIu64 "\n"
	    "kakao_id:       %" PRId64 "\n"
	    "status:         %s\n"
	    "nickname:       %s\n"
	    "email:          %s%s\n"
	    "profile_image:  %s\n"
	    "created:        %s\n"
	    "updated:        %s\n"
	    "last_login:     %s\n"
	    "login_count:    %" PRIu64 "\n",
	    u->user_id, u->kakao_id, admin_user_status_name(u->status),
	    safe(u->nickname, n, sizeof(n)), safe(u->email, e, sizeof(e)),
	    *u->email == '\0' ? "" : u->email_verified ? " (verified)" :
	    " (not verified)", safe(u->profile_image, im, sizeof(im)),
	    admin_iso_time(u->created, c, sizeof(c)),
	    admin_iso_time(u->updated, up, sizeof(up)),
	    admin_iso_time(u->last_login, l, sizeof(l)), u->login_count) < 0 ?
	    -1 : 0;
}

/* One line of users list. */
static int
print_user_line(const struct admin *a, const struct store_user *u)
{
	char	n[4 * MAX_NICKNAME + 1], l[32];

	if (a->json)
		return print_json(admin_user_json(u));
	return printf("%" PRIu64 "\t%" PRId64 "\t%s\t%" PRIu64 "\t%s\t%s\n",
	    u->user_id, u->kakao_id, admin_user_status_name(u->status), u->login_count,
	    *admin_iso_time(u->last_login, l, sizeof(l)) ? l : "-",
	    safe(u->nickname, n, sizeof(n))) < 0 ? -1 : 0;
}

/* A failure of the store: the message, exit 1. */
static int
failed(const struct kl_error *err)
{
	fprintf(stderr, "kakao-login-admin: %s\n", err->detail);
	return 1;
}

/* Exit 3 with the message for KL_NOT_FOUND, else 1. */
static int
failed_or_missing(const struct kl_error *err)
{
	if (err->status == KL_NOT_FOUND) {
		fprintf(stderr, "kakao-login-admin: %s\n", err->detail);
		return EXIT_NOT_FOUND;
	}
	return failed(err);
}

static int
cmd_users_show(struct admin *a, int argc, char **argv)
{
	struct store_user	u;
	struct kl_error		kerr;
	int			ret;

	if (argc == 1)
		ret = store_user_get_by_id(a->st, parse_id(argv[0],
		    INT64_MAX, "users show: ID must be a user id"), &u, &kerr);
	else if (argc == 2 && strcmp(argv[0], "--kakao") == 0)
		ret = store_user_get(a->st, (int64_t)parse_id(argv[1],
		    INT64_MAX, "users show --kakao: not a Kakao id"), &u,
		    &kerr);
	else
		usage("users show: one ID, or --kakao KAKAO_ID");
	if (ret == -1)
		return failed_or_missing(&kerr);
	return print_user(a, &u) == -1 ? 1 : 0;
}

/* Calls fn for each user above after, at most limit, a batch at a time;
 * stops early on a signal. 0, or an exit code. */
static int
each_user(struct admin *a, uint64_t after, uint64_t limit,
    int (*fn)(struct admin *, const struct store_user *, void *), void *arg)
{
	static struct store_user	 batch[ADMIN_BATCH];
	struct kl_error			 kerr;
	size_t				 n, i, want;
	bool				 end = false;

	while (limit > 0 && !end && !stop) {
		want = limit < ADMIN_BATCH ? (size_t)limit : ADMIN_BATCH;
		if (store_user_batch(a->st, &after, batch, want, &n, &end,
		    &kerr) == -1)
			return failed(&kerr);
		for (i = 0; i < n && !stop; i++)
			if (fn(a, &batch[i], arg) == -1 && !stop)
				return 1;
		limit -= n;
	}
	/* The signal may land in a write to a full pipe, which then fails
	 * (EINTR): still an interruption, said as one (found in make test). */
	if (stop) {
		fprintf(stderr, "kakao-login-admin: interrupted\n");
		return 1;
	}
	return 0;
}

static int
list_one(struct admin *a, const struct store_user *u, void *arg)
{
	(void)arg;
	return print_user_line(a, u);
}

static int
cmd_users_list(struct admin *a, int argc, char **argv)
{
	uint64_t	after = 0, limit = ADMIN_LIST_DEFAULT;
	int		i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--after") == 0 && i + 1 < argc)
			after = parse_num(argv[++i], 0, INT64_MAX,
			    "users list --after: not a user id");
		else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc)
			limit = parse_id(argv[++i], ADMIN_LIST_MAX,
			    "users list --limit: 1 to 1000000");
		else
			usage("users list: [--after ID] [--limit N]");
	}
	return each_user(a, after, limit, list_one, NULL);
}

struct counts {
	uint64_t	total, active, unlinked, deactivated, max_id;
};

static int
count_one(struct admin *a, const struct store_user *u, void *arg)
{
	struct counts	*c = arg;

	(void)a;
	c->total++;
	if (u->status == STORE_USER_UNLINKED)
		c->unlinked++;
	else if (u->status == STORE_USER_DEACTIVATED)
		c->deactivated++;
	else
		c->active++;
	c->max_id = u->user_id;
	return 0;
}

static int
count_all(struct admin *a, struct counts *c)
{
	memset(c, 0, sizeof(*c));
	return each_user(a, 0, UINT64_MAX, count_one, c);
}

static int
cmd_users_count(struct admin *a, int argc, char **argv)
{
	struct counts	c;
	int		ret;

	(void)argv;
	if (argc != 0)
		usage("users count takes no arguments");
	if ((ret = count_all(a, &c)) != 0)
		return ret;
	if (a->json)
		return print_json(json_pack("{s:I}", "users",
		    (json_int_t)c.total)) == -1 ? 1 : 0;
	return printf("%" PRIu64 "\n", c.total) < 0 ? 1 : 0;
}

static int
cmd_stats(struct admin *a, int argc, char **argv)
{
	struct counts		c;
	struct store_disk	d;
	struct kl_error		kerr;
	int			ret;

	(void)argv;
	if (argc != 0)
		usage("stats takes no arguments");
	if ((ret = count_all(a, &c)) != 0)
		return ret;
	if (store_disk_usage(a->st, &d, &kerr) == -1)
		return failed(&kerr);
	if (a->json)
		return print_json(json_pack("{s:{s:I,s:I,s:I,s:I},s:I,"
		    "s:{s:I,s:i},s:{s:I,s:i}}",
		    "users", "total", (json_int_t)c.total,
		    "active", (json_int_t)c.active,
		    "unlinked", (json_int_t)c.unlinked,
		    "deactivated", (json_int_t)c.deactivated,
		    "highest_user_id", (json_int_t)c.max_id,
		    "databases", "bytes", (json_int_t)d.db_bytes,
		    "files", (int)d.db_files,
		    "logs", "bytes", (json_int_t)d.log_bytes,
		    "files", (int)d.log_files)) == -1 ? 1 : 0;
	return printf("users.total      %" PRIu64 "\n"
	    "users.active     %" PRIu64 "\n"
	    "users.unlinked   %" PRIu64 "\n"
	    "users.deactivated %" PRIu64 "\n"
	    "highest_user_id  %" PRIu64 "\n"
	    "databases.bytes  %" PRIu64 "\n"
	    "databases.files  %u\n"
	    "logs.bytes       %" PRIu64 "\n"
	    "logs.files       %u\n",
	    c.total, c.active, c.unlinked, c.deactivated, c.max_id,
	    d.db_bytes, d.db_files,
	    d.log_bytes, d.log_files) < 0 ? 1 : 0;
}

/* Bytes of log site is behind master, when both are known and in the same
 * log file; -1 otherwise (a site further back is at least a file behind). */
static long long
site_behind(const struct store_repl_site *master,
    const struct store_repl_site *site)
{
	if (master == NULL || !master->known || !site->known)
		return -1;
	if (master->log_file != site->log_file)
		return -1;
	return master->log_offset >= site->log_offset ?
	    (long long)(master->log_offset - site->log_offset) : 0;
}

static const char *
site_role(const struct store_repl_site *s)
{
	if (s->master)
		return "master";
	return s->connected ? "replica" : "unreachable";
}

static int
cmd_group(struct admin *a, int argc, char **argv)
{
	struct store_repl_site	 sites[MAX_REPL_PEERS + 8];
	const struct store_repl_site *m = NULL;
	struct kl_error		 kerr;
	json_t			*arr, *o;
	size_t			 n, i;
	long long		 behind;

	(void)argv;
	if (argc != 0)
		usage("group takes no arguments");
	if (store_repl_group(a->st, sites, sizeof(sites) / sizeof(sites[0]),
	    &n, &kerr) == -1)
		return failed(&kerr);
	for (i = 0; i < n; i++)
		if (sites[i].master)
			m = &sites[i];
	if (a->json) {
		if ((arr = json_array()) == NULL)
			return 1;
		for (i = 0; i < n; i++) {
			behind = site_behind(m, &sites[i]);
			o = json_pack("{s:s,s:i,s:s,s:b,s:b}", "host",
			    sites[i].host, "port", (int)sites[i].port, "role",
			    site_role(&sites[i]), "this", sites[i].self,
			    "connected", sites[i].connected);
			if (o != NULL && sites[i].known)
				json_object_set_new(o, "log", json_pack(
				    "{s:I,s:I}", "file",
				    (json_int_t)sites[i].log_file, "offset",
				    (json_int_t)sites[i].log_offset));
			if (o != NULL && behind >= 0)
				json_object_set_new(o, "behind_bytes",
				    json_integer(behind));
			if (o == NULL || json_array_append_new(arr, o) == -1) {
				json_decref(arr);
				return 1;
			}
		}
		return print_json(json_pack("{s:o,s:b}", "sites", arr,
		    "master_known", m != NULL)) == -1 ? 1 : 0;
	}
	for (i = 0; i < n; i++) {
		behind = site_behind(m, &sites[i]);
		if (printf("%s:%u %s%s", sites[i].host, sites[i].port,
		    site_role(&sites[i]), sites[i].self ? " (this site)" :
		    "") < 0)
			return 1;
		if (sites[i].known && printf(" log %u/%u", sites[i].log_file,
		    sites[i].log_offset) < 0)
			return 1;
		if (behind >= 0 && !sites[i].master &&
		    printf(" behind %lld bytes", behind) < 0)
			return 1;
		if (putchar('\n') == EOF)
			return 1;
	}
	if (m == NULL && puts("no master known (an election?)") == EOF)
		return 1;
	return 0;
}

/* The exits are those of the other commands: 3 for a site the group does
 * not have, 1 for a refusal (this site, the master, a running site). */
static int
cmd_group_remove(struct admin *a, int argc, char **argv)
{
	struct config_site	site;
	struct kl_error		kerr;

	if (argc != 1)
		usage("group remove: one HOST:PORT");
	if (config_site_parse("group remove", argv[0], &site, &kerr) == -1)
		usage(kerr.detail);
	if (store_repl_site_remove(a->st, site.host, site.port, &kerr) == -1)
		return failed_or_missing(&kerr);
	if (a->json)
		return print_json(json_pack("{s:s,s:i,s:b}", "host", site.host,
		    "port", (int)site.port, "removed", 1)) == -1 ? 1 : 0;
	return printf("%s:%u removed from the group\n", site.host,
	    site.port) < 0 ? 1 : 0;
}

static int
cmd_checkpoint(struct admin *a, int argc, char **argv)
{
	struct kl_error	kerr;

	(void)argv;
	if (argc != 0)
		usage("checkpoint takes no arguments");
	if (store_checkpoint(a->st, &kerr) == -1)
		return failed(&kerr);
	if (a->json)
		return print_json(json_pack("{s:s}", "checkpoint", "done")) ==
		    -1 ? 1 : 0;
	return puts("checkpoint done") == EOF ? 1 : 0;
}

/* The one ID argument of a command, or usage. */
static uint64_t
one_id(int argc, char **argv, const char *what)
{
	if (argc != 1)
		usage(what);
	return parse_id(argv[0], INT64_MAX, what);
}

static int
set_deactivated(struct admin *a, int argc, char **argv, bool on)
{
	struct store_user	u;
	struct kl_error		kerr;
	uint64_t		id;
	int			revoked;

	id = one_id(argc, argv, on ? "users deactivate: one user ID" :
	    "users activate: one user ID");
	if (store_user_deactivate(a->st, id, on, time(NULL), &u, &revoked,
	    &kerr) == -1)
		return failed_or_missing(&kerr);
	if (a->json)
		return print_json(json_pack("{s:I,s:s,s:i}", "user_id",
		    (json_int_t)id, "status", admin_user_status_name(u.status),
		    "sessions_revoked", revoked)) == -1 ? 1 : 0;
	return printf("user %" PRIu64 ": %s, %d sessions revoked\n", id,
	    admin_user_status_name(u.status), revoked) < 0 ? 1 : 0;
}

static int
cmd_users_deactivate(struct admin *a, int argc, char **argv)
{
	return set_deactivated(a, argc, argv, true);
}

static int
cmd_users_activate(struct admin *a, int argc, char **argv)
{
	return set_deactivated(a, argc, argv, false);
}

/* DELETE /users/me's transaction; the unlink it queues is due at once, and
 * the service's maintenance thread sends it. */
static int
cmd_users_delete(struct admin *a, int argc, char **argv)
{
	struct store_user	was;
	struct kl_error		kerr;
	uint64_t		id;
	bool			more = false;
	int			n = 0;

	id = one_id(argc, argv, "users delete: one user ID");
	/* As the route: deleted here but still linked at Kakao is no
	 * deletion, and only a service with the admin key sends unlinks. */
	if (a->cfg.kakao_admin_key_file[0] == '\0') {
		fprintf(stderr, "kakao-login-admin: users delete needs "
		    "kakao_admin_key_file in the config: the service sends "
		    "the unlink to Kakao with it\n");
		return 1;
	}
	if (store_user_delete(a->st, id, time(NULL), 0, &was, &more,
	    &kerr) == -1)
		return failed_or_missing(&kerr);
	if (more && store_session_revoke_user(a->st, id, STORE_REVOKE_DELETED,
	    time(NULL), &n, &kerr) == -1)
		return failed(&kerr);
	if (a->json)
		return print_json(json_pack("{s:I,s:I,s:s,s:s}", "user_id",
		    (json_int_t)id, "kakao_id", (json_int_t)was.kakao_id,
		    "status", "deleted", "unlink", "queued")) == -1 ? 1 : 0;
	return printf("user %" PRIu64 " (Kakao id %" PRId64 "): deleted, id "
	    "retired, sessions revoked; the unlink is queued for the service "
	    "to send\n", id, was.kakao_id) < 0 ? 1 : 0;
}

static const char *
reason_name(enum store_session_reason r)
{
	switch (r) {
	case STORE_REVOKE_NONE:		return "";
	case STORE_REVOKE_LOGOUT:	return "logout";
	case STORE_REVOKE_REUSE:	return "reuse";
	case STORE_REVOKE_DELETED:	return "deleted";
	case STORE_REVOKE_UNLINKED:	return "unlinked";
	case STORE_REVOKE_ADMIN:	return "admin";
	}
	return "other";
}

static void
sid_hex(const unsigned char *sid, char *out)
{
	static const char	hex[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < STORE_SID_LEN; i++) {
		out[2 * i] = hex[sid[i] >> 4];
		out[2 * i + 1] = hex[sid[i] & 15];
	}
	out[2 * STORE_SID_LEN] = '\0';
}

/* A sid as the JWT's sid claim spells it: 32 hex digits, or usage. */
static void
sid_parse(const char *s, unsigned char *sid)
{
	size_t	i;
	int	hi, lo;

	if (strlen(s) != 2 * STORE_SID_LEN)
		usage("sessions revoke: SID is 32 hex digits");
	for (i = 0; i < STORE_SID_LEN; i++) {
		if ((hi = kl_hex_value(s[2 * i])) < 0 ||
		    (lo = kl_hex_value(s[2 * i + 1])) < 0)
			usage("sessions revoke: SID is 32 hex digits");
		sid[i] = (unsigned char)(hi << 4 | lo);
	}
}

/* What a session shows: never a token or its hash. */
static int
print_session(const struct admin *a, const struct store_session *s)
{
	char	sid[2 * STORE_SID_LEN + 1], c[32], u[32], e[32], r[32];

	sid_hex(s->sid, sid);
	if (a->json)
		return print_json(json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:s,"
		    "s:s,s:i}", "sid", sid, "user_id", (json_int_t)s->user_id,
		    "status", s->status == STORE_SESSION_ACTIVE ? "active" :
		    "revoked", "reason", reason_name(s->reason),
		    "created", admin_iso_time(s->created, c, sizeof(c)),
		    "last_used", admin_iso_time(s->last_used, u, sizeof(u)),
		    "expires", admin_iso_time(s->expires, e, sizeof(e)),
		    "revoked_at", admin_iso_time(s->revoked_at, r, sizeof(r)),
		    "rotations", (int)s->generation));
	return printf("%s\t%s%s%s\t%s\t%s\t%s\n", sid,
	    s->status == STORE_SESSION_ACTIVE ? "active" : "revoked",
	    s->reason != STORE_REVOKE_NONE ? ":" : "", reason_name(s->reason),
	    admin_iso_time(s->created, c, sizeof(c)),
	    admin_iso_time(s->last_used, u, sizeof(u)),
	    admin_iso_time(s->expires, e, sizeof(e))) < 0 ? -1 : 0;
}

static int
cmd_sessions_list(struct admin *a, int argc, char **argv)
{
	struct store_session	*s;
	struct kl_error		 kerr;
	uint64_t		 id;
	int			 n = 0, i, ret = 0;

	id = one_id(argc, argv, "sessions list: one USER_ID");
	if ((s = calloc(ADMIN_SESSIONS_MAX, sizeof(*s))) == NULL)
		errx(1, "out of memory");
	if (store_session_list(a->st, id, s, ADMIN_SESSIONS_MAX, &n,
	    &kerr) == -1)
		ret = failed(&kerr);
	for (i = 0; ret == 0 && i < n; i++)
		if (print_session(a, &s[i]) == -1)
			ret = 1;
	free(s);
	return ret;
}

static int
cmd_sessions_revoke(struct admin *a, int argc, char **argv)
{
	struct store_session	s;
	struct kl_error		kerr;
	unsigned char		sid[STORE_SID_LEN];
	uint64_t		id;
	int			n = 0;

	if (argc == 2 && strcmp(argv[0], "--user") == 0) {
		id = parse_id(argv[1], INT64_MAX,
		    "sessions revoke --user: not a user id");
		if (store_session_revoke_user(a->st, id, STORE_REVOKE_ADMIN,
		    time(NULL), &n, &kerr) == -1)
			return failed(&kerr);
	} else if (argc == 1) {
		sid_parse(argv[0], sid);
		if (store_session_get(a->st, sid, &s, &kerr) == -1 ||
		    store_session_revoke(a->st, sid, s.user_id,
		    STORE_REVOKE_ADMIN, time(NULL), &kerr) == -1)
			return failed_or_missing(&kerr);
		id = s.user_id;
		n = s.status == STORE_SESSION_ACTIVE ? 1 : 0;
	} else
		usage("sessions revoke: SID, or --user USER_ID");
	if (a->json)
		return print_json(json_pack("{s:I,s:i}", "user_id",
		    (json_int_t)id, "sessions_revoked", n)) == -1 ? 1 : 0;
	return printf("user %" PRIu64 ": %d sessions revoked\n", id, n) < 0 ?
	    1 : 0;
}

static int
export_one(struct admin *a, const struct store_user *u, void *arg)
{
	(void)a;
	(void)arg;
	return print_json(admin_user_json(u));
}

/* Every user as users list --json prints it: the record's every field. */
static int
cmd_users_export(struct admin *a, int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		usage("users export takes no arguments (it writes to stdout)");
	return each_user(a, 0, UINT64_MAX, export_one, NULL);
}

struct import_run {
	struct store_import	*imp;
	struct store_user	 batch[ADMIN_BATCH];
	unsigned long		 line[ADMIN_BATCH];
	size_t			 n;
	uint64_t		 lines, added, unchanged, kept, refused;
};

static const char *
refusal(enum store_import_result r)
{
	switch (r) {
	case STORE_IMPORT_KAKAO_TAKEN:
		return "its Kakao id is another user id here";
	case STORE_IMPORT_RETIRED:
		return "its user id was deleted here (retired)";
	case STORE_IMPORT_ID_TAKEN:
		return "its user id is another Kakao id's here";
	case STORE_IMPORT_ID_HANDED_OUT:
		return "its user id is one the sequence handed out here "
		    "before (only ids above the highest handed out can be "
		    "imported)";
	default:
		return "";
	}
}

static int
import_flush(struct admin *a, struct import_run *r)
{
	enum store_import_result	res[ADMIN_BATCH];
	struct kl_error			kerr;
	size_t				i;

	if (r->n == 0)
		return 0;
	if (store_user_import(a->st, r->imp, r->batch, r->n, res, &kerr) == -1)
		return failed(&kerr);
	for (i = 0; i < r->n; i++)
		switch (res[i]) {
		case STORE_IMPORT_ADDED:
			r->added++;
			break;
		case STORE_IMPORT_UNCHANGED:
			r->unchanged++;
			break;
		case STORE_IMPORT_KEPT:
			r->kept++;
			break;
		default:
			r->refused++;
			fprintf(stderr, "kakao-login-admin: line %lu: user "
			    "%" PRIu64 " (Kakao id %" PRId64 ") refused: %s\n",
			    r->line[i], r->batch[i].user_id,
			    r->batch[i].kakao_id, refusal(res[i]));
		}
	r->n = 0;
	return 0;
}

/* Reads f line by line into batches. 0, or an exit code. */
static int
import_lines(struct admin *a, struct import_run *r, FILE *f)
{
	static char	line[ADMIN_IMPORT_LINE + 2];
	char		why[200];
	size_t		len;
	unsigned long	no = 0;
	int		ch, ret;

	while (!stop && fgets(line, sizeof(line), f) != NULL) {
		no++;
		len = strlen(line);
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f)) {
			while ((ch = getc(f)) != EOF && ch != '\n')
				;
			r->lines++;
			r->refused++;
			fprintf(stderr, "kakao-login-admin: line %lu: refused: "
			    "longer than %d bytes\n", no, ADMIN_IMPORT_LINE);
			continue;
		}
		if (strspn(line, " \t\r") == len)
			continue;
		r->lines++;
		if (admin_user_parse(line, len, &r->batch[r->n], why,
		    sizeof(why)) == -1) {
			r->refused++;
			fprintf(stderr, "kakao-login-admin: line %lu: refused: "
			    "%s\n", no, why);
			continue;
		}
		r->line[r->n++] = no;
		if (r->n == ADMIN_BATCH && (ret = import_flush(a, r)) != 0)
			return ret;
	}
	if (ferror(f)) {
		warn("reading the import");
		return 1;
	}
	if (stop) {
		fprintf(stderr, "kakao-login-admin: interrupted (what was "
		    "imported stays; import the file again to finish)\n");
		return 1;
	}
	return import_flush(a, r);
}

static int
cmd_users_import(struct admin *a, int argc, char **argv)
{
	static struct import_run	 r;
	struct kl_error			 kerr;
	FILE				*f = stdin;
	int				 ret;

	if (argc > 1)
		usage("users import: one FILE, or - (standard input)");
	if (argc == 1 && strcmp(argv[0], "-") != 0 &&
	    (f = fopen(argv[0], "r")) == NULL) {
		warn("%s", argv[0]);
		return 1;
	}
	if (store_import_begin(a->st, &r.imp, &kerr) == -1)
		ret = failed(&kerr);
	else
		ret = import_lines(a, &r, f);
	store_import_end(r.imp);
	if (f != stdin)
		fclose(f);
	if (ret != 0)
		return ret;
	if (a->json)
		ret = print_json(json_pack("{s:I,s:I,s:I,s:I,s:I}", "lines",
		    (json_int_t)r.lines, "imported", (json_int_t)r.added,
		    "unchanged", (json_int_t)r.unchanged, "kept",
		    (json_int_t)r.kept, "refused", (json_int_t)r.refused));
	else
		ret = printf("%" PRIu64 " lines: %" PRIu64 " imported, %"
		    PRIu64 " unchanged, %" PRIu64 " kept (changed since), %"
		    PRIu64 " refused\n", r.lines, r.added, r.unchanged, r.kept,
		    r.refused) < 0 ? -1 : 0;
	if (ret == -1)
		return 1;
	return r.refused > 0 ? EXIT_REFUSED : 0;
}

static int
cmd_verify(struct admin *a, int argc, char **argv)
{
	static struct store_verify	v;
	struct kl_error			kerr;
	json_t				*probs;
	uint64_t			i;
	int				ret;

	(void)argv;
	if (argc != 0)
		usage("verify takes no arguments");
	if (store_verify(a->st, &v, &stop, &kerr) == -1)
		return failed(&kerr);
	if (a->json) {
		if ((probs = json_array()) == NULL)
			return 1;
		for (i = 0; i < v.problems && i < STORE_VERIFY_KEEP; i++)
			json_array_append_new(probs, json_string(v.problem[i]));
		ret = print_json(json_pack("{s:b,s:I,s:o,s:{s:I,s:I,s:I,s:I,"
		    "s:I,s:I,s:I,s:I,s:I,s:I}}", "ok", v.problems == 0,
		    "problems", (json_int_t)v.problems, "first_problems",
		    probs, "checked", "users", (json_int_t)v.users,
		    "unlinked", (json_int_t)v.unlinked,
		    "deactivated", (json_int_t)v.deactivated,
		    "users_by_id", (json_int_t)v.index,
		    "sessions", (json_int_t)v.sessions,
		    "active_sessions", (json_int_t)v.active_sessions,
		    "refresh_tokens", (json_int_t)v.tokens,
		    "orphan_tokens", (json_int_t)v.orphan_tokens,
		    "unlinks_queued", (json_int_t)v.unlinks,
		    "retired", (json_int_t)v.retired));
	} else {
		for (i = 0; i < v.problems && i < STORE_VERIFY_KEEP; i++)
			printf("problem: %s\n", v.problem[i]);
		ret = printf("%" PRIu64 " users (%" PRIu64 " index entries), %"
		    PRIu64 " sessions (%" PRIu64 " active), %" PRIu64
		    " refresh tokens (%" PRIu64 " orphans, swept later), %"
		    PRIu64 " unlinks queued, %" PRIu64 " ids retired: %s\n",
		    v.users, v.index, v.sessions, v.active_sessions, v.tokens,
		    v.orphan_tokens, v.unlinks, v.retired, v.problems == 0 ?
		    "ok" : "PROBLEMS") < 0 ? -1 : 0;
	}
	if (ret == -1)
		return 1;
	return v.problems == 0 ? 0 : EXIT_PROBLEMS;
}

static const struct command commands[] = {
	{ "users", "show", "ID | --kakao KAKAO_ID", cmd_users_show },
	{ "users", "list", "[--after ID] [--limit N]", cmd_users_list },
	{ "users", "count", "", cmd_users_count },
	{ "users", "deactivate", "ID", cmd_users_deactivate },
	{ "users", "activate", "ID", cmd_users_activate },
	{ "users", "delete", "ID", cmd_users_delete },
	{ "users", "export", "", cmd_users_export },
	{ "users", "import", "[FILE | -]", cmd_users_import },
	{ "sessions", "list", "USER_ID", cmd_sessions_list },
	{ "sessions", "revoke", "SID | --user USER_ID", cmd_sessions_revoke },
	{ "stats", NULL, "", cmd_stats },
	{ "group", "remove", "HOST:PORT", cmd_group_remove },
	{ "group", NULL, "", cmd_group },
	{ "verify", NULL, "", cmd_verify },
	{ "checkpoint", NULL, "", cmd_checkpoint },
	{ "backup", NULL, "DIR", admin_cmd_backup },
	{ "restore", NULL, "DIR", admin_cmd_restore },
	{ "init", NULL, "", admin_cmd_init },
};

/* The command argv names, and how many words it took (*used). */
static const struct command *
command_find(int argc, char **argv, int *used)
{
	size_t	i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command	*c = &commands[i];

		if (strcmp(argv[0], c->noun) != 0)
			continue;
		if (c->verb == NULL) {
			*used = 1;
			return c;
		}
		if (argc > 1 && strcmp(argv[1], c->verb) == 0) {
			*used = 2;
			return c;
		}
	}
	return NULL;
}

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
signals_setup(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* A closed pipe (| head) is a write error, not a death mid-batch. */
	signal(SIGPIPE, SIG_IGN);
}

/* Run as root: become db_home's owner, so nothing made there is root's. */
static void
become_owner(const char *home)
{
	struct stat	sb;

	if (geteuid() != 0)
		return;
	if (stat(home, &sb) == -1)
		err(1, "%s", home);
	if (sb.st_uid == 0)
		return;
	if (setgroups(0, NULL) == -1 || setgid(sb.st_gid) == -1 ||
	    setuid(sb.st_uid) == -1)
		err(1, "cannot become the owner of %s", home);
}

int
main(int argc, char *argv[])
{
	static struct admin	 adm;
	struct admin		*a = &adm;
	const struct command	*cmd;
	struct kl_error		 kerr;
	const char		*conf = getenv("KAKAO_LOGIN_CONF");
	int			 i, used, code;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			conf = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			a->json = true;
		else if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage_text(stdout);
			return 0;
		} else
			usage(NULL);
	}
	if (i == argc)
		usage("no command");
	if ((cmd = command_find(argc - i, argv + i, &used)) == NULL)
		usage("unknown command");
	if (conf == NULL)
		usage("no config: -c FILE or KAKAO_LOGIN_CONF");
	config_defaults(&a->cfg);
	if (config_load(&a->cfg, conf, &kerr) == -1)
		errx(1, "%s", kerr.detail);
	signals_setup();
	become_owner(a->cfg.db_home);
	store_repl_configure(&a->cfg);
	if (admin_cmd_joins(cmd->fn) && store_join(&a->st, a->cfg.db_home,
	    a->cfg.db_durability, &kerr) == -1)
		errx(1, "%s", kerr.detail);
	joined = a->st;
	atexit(close_joined);
	code = cmd->fn(a, argc - i - used, argv + i + used);
	if (fflush(stdout) == EOF && code == 0) {
		warn("stdout");
		code = 1;
	}
	return code;	/* close_joined() runs at exit */
}
