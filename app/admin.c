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
 * Exit codes: 0 done; 1 failed (store, config, I/O); 2 usage; 3 not found;
 * 4 the service has the environment open (restore, init).
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
#include "kl_limits.h"
#include "log.h"
#include "store.h"
#include "store_admin.h"


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
	    "  stats\n"
	    "  checkpoint\n"
	    "  backup DIR\n"
	    "  restore DIR | init    (the service stopped)\n"
	    "exit: 0 done, 1 failed, 2 usage, 3 not found, 4 service running\n");
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

static const char *
status_name(enum store_user_status s)
{
	return s == STORE_USER_UNLINKED ? "unlinked" : "active";
}

/* t as UTC ISO 8601 into buf (at least 21 bytes); "" for 0. */
static const char *
iso_time(time_t t, char *buf, size_t size)
{
	struct tm	tm;

	if (t == 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		buf[0] = '\0';
	return buf;
}

/* A JSON string, or null for "" (no such field). New reference. */
static json_t *
json_field(const char *s)
{
	json_t	*v;

	if (*s == '\0' || (v = json_string(s)) == NULL)
		return json_null();
	return v;
}

/* The user as a JSON object; the caller json_decref()s it. */
static json_t *
user_json(const struct store_user *u)
{
	char	c[32], up[32], l[32];

	return json_pack("{s:I,s:I,s:s,s:o,s:o,s:b,s:o,s:s,s:s,s:s,s:I}",
	    "user_id", (json_int_t)u->user_id,
	    "kakao_id", (json_int_t)u->kakao_id,
	    "status", status_name(u->status),
	    "nickname", json_field(u->nickname),
	    "email", json_field(u->email),
	    "email_verified", u->email_verified,
	    "profile_image", json_field(u->profile_image),
	    "created", iso_time(u->created, c, sizeof(c)),
	    "updated", iso_time(u->updated, up, sizeof(up)),
	    "last_login", iso_time(u->last_login, l, sizeof(l)),
	    "login_count", (json_int_t)u->login_count);
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
		return print_json(user_json(u));
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
	    u->user_id, u->kakao_id, status_name(u->status),
	    safe(u->nickname, n, sizeof(n)), safe(u->email, e, sizeof(e)),
	    *u->email == '\0' ? "" : u->email_verified ? " (verified)" :
	    " (not verified)", safe(u->profile_image, im, sizeof(im)),
	    iso_time(u->created, c, sizeof(c)),
	    iso_time(u->updated, up, sizeof(up)),
	    iso_time(u->last_login, l, sizeof(l)), u->login_count) < 0 ?
	    -1 : 0;
}

/* One line of users list. */
static int
print_user_line(const struct admin *a, const struct store_user *u)
{
	char	n[4 * MAX_NICKNAME + 1], l[32];

	if (a->json)
		return print_json(user_json(u));
	return printf("%" PRIu64 "\t%" PRId64 "\t%s\t%" PRIu64 "\t%s\t%s\n",
	    u->user_id, u->kakao_id, status_name(u->status), u->login_count,
	    *iso_time(u->last_login, l, sizeof(l)) ? l : "-",
	    safe(u->nickname, n, sizeof(n))) < 0 ? -1 : 0;
}

/* A failure of the store: the message, exit 1. */
static int
failed(const struct kl_error *err)
{
	fprintf(stderr, "kakao-login-admin: %s\n", err->detail);
	return 1;
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
	if (ret == -1 && kerr.status == KL_NOT_FOUND) {
		fprintf(stderr, "kakao-login-admin: %s\n", kerr.detail);
		return EXIT_NOT_FOUND;
	}
	if (ret == -1)
		return failed(&kerr);
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
		for (i = 0; i < n; i++)
			if (fn(a, &batch[i], arg) == -1)
				return 1;
		limit -= n;
	}
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
	uint64_t	total, active, unlinked, max_id;
};

static int
count_one(struct admin *a, const struct store_user *u, void *arg)
{
	struct counts	*c = arg;

	(void)a;
	c->total++;
	if (u->status == STORE_USER_UNLINKED)
		c->unlinked++;
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
		return print_json(json_pack("{s:{s:I,s:I,s:I},s:I,"
		    "s:{s:I,s:i},s:{s:I,s:i}}",
		    "users", "total", (json_int_t)c.total,
		    "active", (json_int_t)c.active,
		    "unlinked", (json_int_t)c.unlinked,
		    "highest_user_id", (json_int_t)c.max_id,
		    "databases", "bytes", (json_int_t)d.db_bytes,
		    "files", (int)d.db_files,
		    "logs", "bytes", (json_int_t)d.log_bytes,
		    "files", (int)d.log_files)) == -1 ? 1 : 0;
	return printf("users.total      %" PRIu64 "\n"
	    "users.active     %" PRIu64 "\n"
	    "users.unlinked   %" PRIu64 "\n"
	    "highest_user_id  %" PRIu64 "\n"
	    "databases.bytes  %" PRIu64 "\n"
	    "databases.files  %u\n"
	    "logs.bytes       %" PRIu64 "\n"
	    "logs.files       %u\n",
	    c.total, c.active, c.unlinked, c.max_id, d.db_bytes, d.db_files,
	    d.log_bytes, d.log_files) < 0 ? 1 : 0;
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

static const struct command commands[] = {
	{ "users", "show", "ID | --kakao KAKAO_ID", cmd_users_show },
	{ "users", "list", "[--after ID] [--limit N]", cmd_users_list },
	{ "users", "count", "", cmd_users_count },
	{ "stats", NULL, "", cmd_stats },
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
