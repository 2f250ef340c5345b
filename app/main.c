/*
 * main.c: kakao-login, a Kakao login backend as a threaded FastCGI
 * responder.
 *
 * Owns the process: options, configuration, the log, the signing key, the
 * store, the worker threads and the signals. Order at start: config, the
 * socket (-s, perhaps as root), the privilege drop (-u), the refusal to
 * go on as root, then, as the service's user: non-dumpable, the log file,
 * the key, the store. Start-up failures are fatal and say why;
 * after start, a failure inside one request only fails that request.
 * Never parses requests.
 *
 * Signals: SIGTERM, SIGINT and SIGUSR1 stop accepting, let requests in
 * flight finish, close the store cleanly and exit 0. SIGHUP reloads in
 * place: the new config and its files are checked first (a bad one is
 * logged and the running one stays), then the process stops the same way
 * and executes itself again, same pid, same listening socket, so the new
 * config and a reopened log file apply to everything at once and no
 * request is lost (connections wait in the socket's backlog; other
 * processes of the group go on accepting). They are blocked in every
 * thread and taken by the main thread with sigtimedwait(). SIGUSR2 is
 * only used inside the process, to wake workers blocked in accept().
 *
 * Threads: the workers (fcgi.c), one maintenance thread that keeps the
 * store healthy (store_maintain: opens it when it could not be opened at
 * start, expires lock waits, checkpoints), and this one, which also
 * watches: when the store says its handles are useless, the process stops
 * within PANIC_DRAIN_S and exits 1 so that multiwatch starts a fresh one;
 * when a store call has been in flight for STORE_STUCK_MS (a thread
 * waits on a lock or latch of a process that was killed), it exits 1 at
 * once, since nothing in the process can release that.
 */
#include <sys/prctl.h>
#include <sys/types.h>

#include <linux/close_range.h>

#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "kl_limits.h"
#include "fcgi.h"
#include "handlers.h"
#include "kakao.h"
#include "kakao_auth.h"
#include "kakao_gate.h"
#include "kakao_reject.h"
#include "log.h"
#include "metrics.h"
#include "route.h"
#include "store.h"
#include "store_repl.h"
#include "store_home.h"
#include "store_session.h"
#include "token.h"
#include "token_oidc.h"

#define WAKE_SIGNAL	SIGUSR2
#define MAINTAIN_US	250000	/* store maintenance period */
#define WATCH_TICK_NS	250000000L
#define DRAIN_LIMIT_S	30	/* longest wait for requests in flight */
/* After another process ran recovery, workers blocked on the old
 * environment's locks are never woken: give the others a moment only. */
#define PANIC_DRAIN_S	2

/* The GNUmakefile's VERSION, with `git describe` when built from a clone. */
#ifndef KL_VERSION
#define KL_VERSION	"unknown"
#endif

/* A re-executed process finds its -s socket here, not bound again: the
 * connections waiting in its backlog stay. */
#define LISTEN_FD_ENV	"KAKAO_LOGIN_LISTEN_FD"

/* What watch() saw. */
enum watch_event {
	WATCH_STOP,		/* a stop signal: exit 0 */
	WATCH_RESTART,		/* the store needs a fresh process: exit 1 */
	WATCH_RELOAD		/* SIGHUP */
};

#define USAGE	"usage: kakao-login [-htV] [-c config] [-s socket] [-u user]\n"

/* What the command line asked for; filled by options_parse(). */
struct options {
	const char	*conf;		/* -c, else $KAKAO_LOGIN_CONF */
	const char	*sock;		/* -s: bind it ourselves */
	const char	*user;		/* -u: drop to this user */
	int		 check;		/* -t */
};

/* A usage error: the usage line on stderr, exit 2. */
static void
usage(void)
{
	fputs(USAGE, stderr);
	exit(2);
}

/* --help: usage and options on stdout, exit 0. */
static void
help(void)
{
	fputs(USAGE
	    "  -c config  the configuration file (else $KAKAO_LOGIN_CONF)\n"
	    "  -s socket  bind this Unix socket (development; spawn-fcgi hands\n"
	    "             the socket over as fd 0 otherwise)\n"
	    "  -u user    drop to this user after binding (required as root)\n"
	    "  -t         check the configuration, keys, log_file and db_home\n"
	    "             as the service's user, then exit\n"
	    "  -h, --help     this text\n"
	    "  -V, --version  the version\n"
	    "See kakao-login(8) and kakao-login.conf(5).\n", stdout);
	exit(0);
}

static void
options_parse(int argc, char *argv[], struct options *o)
{
	static const struct option longopts[] = {
		{ "help",	no_argument,	NULL,	'h' },
		{ "version",	no_argument,	NULL,	'V' },
		{ NULL,		0,		NULL,	0 }
	};
	int	ch;

	memset(o, 0, sizeof(*o));
	o->conf = getenv("KAKAO_LOGIN_CONF");
	while ((ch = getopt_long(argc, argv, "c:hs:tu:V", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c': o->conf = optarg; break;
		case 'h': help(); break;
		case 's': o->sock = optarg; break;
		case 't': o->check = 1; break;
		case 'u': o->user = optarg; break;
		case 'V': printf("kakao-login %s\n", KL_VERSION); exit(0);
		default: usage();
		}
	}
	if (optind != argc || o->conf == NULL || o->conf[0] == '\0')
		usage();
}

static void
wake_handler(int signo)
{
	(void)signo;	/* only interrupts accept() */
}

static void
drop_privileges(const char *user)
{
	struct passwd	*pw;

	if ((pw = getpwnam(user)) == NULL)
		errx(1, "no user %s", user);
	/* Re-executed on SIGHUP: the drop happened before. */
	if (getuid() != 0 && getuid() == pw->pw_uid &&
	    geteuid() == pw->pw_uid && getgid() == pw->pw_gid)
		return;
	if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1)
		err(1, "cannot become %s", user);
}

/* Requests are never served as root, whatever started us: a flaw in a
 * parser would then own the host. There is no option to allow it. */
static void
refuse_root(const char *what)
{
	if (getuid() == 0 || geteuid() == 0)
		errx(1, "%s as root: refused; give -u USER, or start it under "
		    "spawn-fcgi -u USER (FCGI_USER in spawn-fcgi.conf)", what);
}

/* What the config allows but must be said: on stderr for -t (conf names
 * the file), else in the log. */
static void
warnings_say(const struct config *cfg, const char *conf)
{
	const char	*warn[CONFIG_MAX_WARNINGS];
	int		 i, n;

	n = config_warnings(cfg, warn, CONFIG_MAX_WARNINGS);
	for (i = 0; i < n; i++) {
		if (conf != NULL)
			fprintf(stderr, "%s: warning: %s\n", conf, warn[i]);
		else
			log_warn("%s", warn[i]);
	}
}

struct maintainer {
	pthread_t	 thread;
	struct store	*store;
	atomic_bool	 stop;
};

/* The sender of queued unlinks (handlers_unlink.c), on a thread of its
 * own: its Kakao calls may take seconds, which the maintenance thread
 * (lock expiry, checkpoints, sweeps) must not wait for. A handler context
 * with a Kakao client of its own (clients are never shared). */
struct unlinker {
	pthread_t		 thread;
	struct handler_ctx	 ctx;
	atomic_bool		 stop;
};

/* A pass once a second; the stop flag is looked at every 100 ms. */
static void *
unlinker_run(void *arg)
{
	struct unlinker	*u = arg;
	struct kl_error	 kerr;
	int		 tick;

	while (!atomic_load(&u->stop)) {
		if (handler_unlink_retry(&u->ctx, time(NULL), &kerr) == -1)
			log_warn("unlink queue: %s", kerr.detail);
		for (tick = 0; tick < 10 && !atomic_load(&u->stop); tick++)
			usleep(100000);
	}
	return NULL;
}

/* Logs a maintenance failure when it changes, or every 30 s while it lasts,
 * so a long outage does not flood the log. */
static void *
maintain_run(void *arg)
{
	struct maintainer	*m = arg;
	struct kl_error		 kerr;
	char			 last[MAX_ERROR_DETAIL] = "";
	time_t			 last_at = 0;

	while (!atomic_load(&m->stop)) {
		if (store_maintain(m->store, &kerr) == -1 &&
		    (strcmp(kerr.detail, last) != 0 ||
		    time(NULL) - last_at >= 30)) {
			log_warn("store: %s", kerr.detail);
			snprintf(last, sizeof(last), "%s", kerr.detail);
			last_at = time(NULL);
		}
		/* A store not open yet is tried again soon (its databases may
		 * be there any moment); an open one is kept every tick. */
		usleep(store_ready(m->store) ? MAINTAIN_US :
		    STORE_DBS_RETRY_MS * 1000);
	}
	return NULL;
}

/* Waits for a signal or for the store to need a restart. Does not
 * return when the store is stuck: then the process exits at once. */
static enum watch_event
watch(const sigset_t *stopset, struct store *store)
{
	struct timespec	tick = { 0, WATCH_TICK_NS };
	int		sig;

	for (;;) {
		if ((sig = sigtimedwait(stopset, NULL, &tick)) == SIGHUP)
			return WATCH_RELOAD;
		if (sig > 0) {
			log_info("signal %d: finishing requests in flight", sig);
			return WATCH_STOP;
		}
		if (store_needs_restart(store)) {
			log_warn("store handles unusable: restarting");
			return WATCH_RESTART;
		}
		if (store_stuck(store, store_stuck_limit_ms())) {
			log_warn("a store call in flight for %ld ms (a killed "
			    "process held a lock?): restarting now",
			    store_stuck_limit_ms());
			_exit(1);
		}
	}
}

/* Stops the workers: those in accept() are woken, those serving finish
 * their request. Returns the number still busy after limit_s seconds. */
static int
drain(struct fcgi_worker *workers, int n, int limit_s)
{
	time_t	deadline = time(NULL) + limit_s;
	int	i, done;

	do {
		for (done = 0, i = 0; i < n; i++)
			done += fcgi_worker_wake(&workers[i], WAKE_SIGNAL);
		if (done < n)
			usleep(20000);
	} while (done < n && time(NULL) < deadline);
	return n - done;
}

/* What the process holds from start to exit; one, static in main(). */
struct process {
	struct config		 cfg;
	struct token_ctx	 token;
	unsigned char		 client_secret[MAX_CLIENT_SECRET];
	size_t			 client_secret_len;
	unsigned char		 admin_key[MAX_ADMIN_KEY];
	size_t			 admin_key_len;
	struct kakao_options	 kopt;
	struct kakao_jwks_fetcher *jwks_fetcher;
	struct token_jwks_cache	*jwks;
	struct store		*store;
	struct fcgi_worker	*workers;
	struct maintainer	 maint;
	struct unlinker		 unlinker;
	atomic_bool		 stop;
	int			 kakao_cap;
};

/* A start-up failure once the log is open: in the log too, since under
 * spawn-fcgi standard error may be nobody's. */
static void __attribute__((format(printf, 2, 3), noreturn))
fatal(const struct process *p, const char *fmt, ...)
{
	char	msg[MAX_ERROR_DETAIL * 2];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->cfg.log_file[0] != '\0')
		log_warn("cannot start: %s", msg);
	errx(1, "%s", msg);
}

/* The secrets the config names: the JWT key, and Kakao's client secret
 * when the code flow uses one (the bytes stay in p until secrets_wipe). */
static int
secrets_read(struct process *p, struct kl_error *err)
{
	if (token_init(&p->token, p->cfg.jwt_secret_file, p->cfg.jwt_issuer,
	    p->cfg.jwt_ttl, err) == -1)
		return -1;
	if (p->cfg.kakao_client_secret_file[0] != '\0' &&
	    config_read_secret("kakao_client_secret_file",
	    p->cfg.kakao_client_secret_file, p->client_secret,
	    sizeof(p->client_secret), MIN_CLIENT_SECRET,
	    &p->client_secret_len, err) == -1)
		return -1;
	if (p->cfg.kakao_admin_key_file[0] != '\0' &&
	    config_read_secret("kakao_admin_key_file",
	    p->cfg.kakao_admin_key_file, p->admin_key, sizeof(p->admin_key),
	    MIN_ADMIN_KEY, &p->admin_key_len, err) == -1)
		return -1;
	return 0;
}

static void
secrets_wipe(struct process *p)
{
	token_wipe(&p->token);
	explicit_bzero(p->client_secret, sizeof(p->client_secret));
	p->client_secret_len = 0;
	explicit_bzero(p->admin_key, sizeof(p->admin_key));
	p->admin_key_len = 0;
}

/* -t: what start-up would refuse, without starting: root, the config,
 * the secrets, the log file and db_home, as the user the service runs as
 * (-u, or the user who runs -t). The environment itself is not joined:
 * that would run recovery under the live workers. */
static int
check_only(struct process *p, const char *conf, const char *user)
{
	struct kl_error	kerr;

	if (user != NULL)
		drop_privileges(user);
	refuse_root("the service would serve requests");
	if (secrets_read(p, &kerr) == -1)
		errx(1, "%s", kerr.detail);
	secrets_wipe(p);
	if (log_check(p->cfg.log_file, &kerr) == -1 ||
	    store_check_home(p->cfg.db_home, &kerr) == -1)
		errx(1, "%s", kerr.detail);
	warnings_say(&p->cfg, conf);
	printf("%s: configuration ok\n", conf);
	return 0;
}

/* Stop signals go to sigtimedwait() in watch(), this thread only. */
static void
signals_setup(sigset_t *stopset)
{
	struct sigaction	sa;

	sigemptyset(stopset);
	sigaddset(stopset, SIGTERM);
	sigaddset(stopset, SIGINT);
	sigaddset(stopset, SIGUSR1);
	sigaddset(stopset, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, stopset, NULL) != 0)
		errx(1, "pthread_sigmask failed");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = wake_handler;	/* no SA_RESTART: accept() returns */
	sigaction(WAKE_SIGNAL, &sa, NULL);
}

/* What the threads' Kakao clients share: the options, the reject cache,
 * the gate, and the JWKS cache with its fetcher. */
static void
kakao_setup(struct process *p)
{
	struct kakao_options	*o = &p->kopt;
	struct kl_error		 kerr;

	memset(o, 0, sizeof(*o));
	o->api_url = p->cfg.kakao_api_url;
	o->auth_url = p->cfg.kakao_auth_url;
	o->app_id = p->cfg.kakao_app_id;
	o->rest_api_key = p->cfg.kakao_rest_api_key;
	o->client_secret = p->client_secret_len > 0 ?
	    (const char *)p->client_secret : NULL;
	o->client_secret_len = p->client_secret_len;
	o->admin_key = p->admin_key_len > 0 ? (const char *)p->admin_key :
	    NULL;
	o->admin_key_len = p->admin_key_len;
	o->timeout_ms = p->cfg.upstream_timeout_ms;
	o->connect_timeout_ms = p->cfg.upstream_connect_timeout_ms;
	o->ca_file = p->cfg.ca_file;
	p->kakao_cap = kakao_gate_cap(p->cfg.kakao_max_calls, p->cfg.threads);
	if ((o->reject = kakao_reject_new(KAKAO_REJECT_SLOTS,
	    KAKAO_REJECT_TTL_S, NULL, &kerr)) == NULL ||
	    (o->gate = kakao_gate_new(p->kakao_cap,
	    kakao_gate_waiters(p->kakao_cap, p->cfg.threads),
	    KAKAO_BUSY_WAIT_MS, &kerr)) == NULL ||
	    (p->jwks_fetcher = kakao_jwks_fetcher_new(o, &kerr)) == NULL ||
	    (p->jwks = token_jwks_cache_new(kakao_jwks_fetch, p->jwks_fetcher,
	    &kerr)) == NULL)
		fatal(p, "%s", kerr.detail);
}

static void
kakao_teardown(struct process *p)
{
	token_jwks_cache_free(p->jwks);
	kakao_jwks_fetcher_free(p->jwks_fetcher);
	kakao_gate_free(p->kopt.gate);
	kakao_reject_free(p->kopt.reject);
}

/* A thread's handler context: the process's shares, a Kakao client of
 * its own (freed by the thread's owner with kakao_client_free). */
static void
handler_ctx_fill(struct process *p, struct handler_ctx *ctx)
{
	struct kl_error	kerr;

	ctx->cfg = &p->cfg;
	ctx->token = &p->token;
	ctx->store = p->store;
	ctx->jwks = p->jwks;
	ctx->admin_key = p->admin_key_len > 0 ? p->admin_key : NULL;
	ctx->admin_key_len = p->admin_key_len;
	if ((ctx->kakao = kakao_client_new(&p->kopt, &kerr)) == NULL)
		fatal(p, "kakao client: %s", kerr.detail);
}

/* The refresh families' lifetimes, from the config, before any thread. */
static void
store_setup(struct process *p)
{
	struct store_session_policy	pol;

	pol.ttl = p->cfg.refresh_ttl;
	pol.idle_ttl = p->cfg.refresh_idle_ttl;
	pol.reuse_window = p->cfg.refresh_reuse_window;
	store_session_policy(p->store, &pol);
}

/* The shared counters in db_home, slots named by the route table. A
 * region that cannot be made does not stop the start: /metrics answers
 * 503 and the counts stay in this process. */
static void
metrics_setup(struct process *p)
{
	const struct route	*rt;
	const char		*names[METRICS_MAX_ROUTES];
	struct kl_error		 kerr;
	size_t			 i, n;
	bool			 replaced;

	rt = route_table(&n);
	for (i = 0; i < n && i < METRICS_MAX_ROUTES; i++)
		names[i] = rt[i].path;
	if (metrics_open(p->cfg.db_home, names, n, &replaced, &kerr) == -1)
		log_warn("%s; /metrics answers 503", kerr.detail);
	else if (replaced)
		log_info("metrics: a region of another layout was replaced; "
		    "counts start from zero");
}

static void
workers_start(struct process *p, int listen_fd)
{
	struct fcgi_worker	*w;
	int			 i;

	if ((p->workers = calloc((size_t)p->cfg.threads,
	    sizeof(*p->workers))) == NULL)
		err(1, "calloc");
	for (i = 0; i < p->cfg.threads; i++) {
		w = &p->workers[i];
		w->listen_fd = listen_fd;
		w->stop = &p->stop;
		w->state = WORKER_BUSY;
		pthread_mutex_init(&w->state_lock, NULL);
		if ((w->ctx = calloc(1, sizeof(*w->ctx))) == NULL)
			err(1, "calloc");
		handler_ctx_fill(p, w->ctx);
		if (pthread_create(&w->thread, NULL, fcgi_worker_run, w) != 0)
			fatal(p, "pthread_create failed");
	}
}

/* Joins the workers (drained already) and frees what each held. */
static void
workers_join(struct process *p)
{
	int	i;

	for (i = 0; i < p->cfg.threads; i++) {
		pthread_join(p->workers[i].thread, NULL);
		kakao_client_free(p->workers[i].ctx->kakao);
		free(p->workers[i].ctx);
		pthread_mutex_destroy(&p->workers[i].state_lock);
	}
	free(p->workers);
	p->workers = NULL;
}

/* SIGHUP: would the file at conf start this process as it runs? The same
 * checks as -t (config, keys, log_file, db_home), into a scratch process
 * that is wiped and freed here; db_home may not change, since the other
 * processes of the group keep theirs until they reload. */
static int
reload_check(const struct process *p, const char *conf, struct kl_error *err)
{
	struct process	*n;
	int		 rc = -1;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return kl_fail(err, KL_INTERNAL, "out of memory");
	config_defaults(&n->cfg);
	if (config_load(&n->cfg, conf, err) == 0 &&
	    secrets_read(n, err) == 0 &&
	    log_check(n->cfg.log_file, err) == 0 &&
	    store_check_home(n->cfg.db_home, err) == 0) {
		if (strcmp(n->cfg.db_home, p->cfg.db_home) != 0)
			kl_fail(err, KL_BAD_CONFIG, "db_home changed: that "
			    "needs a restart of the whole group");
		else
			rc = 0;
	}
	secrets_wipe(n);
	free(n);
	return rc;
}

/* Waits for a stop, or for a SIGHUP with a config that passes
 * reload_check(). Returns what ends the process's run. */
static enum watch_event
watch_reloads(const struct process *p, const sigset_t *stopset,
    const char *conf)
{
	struct kl_error		kerr;
	enum watch_event	ev;

	while ((ev = watch(stopset, p->store)) == WATCH_RELOAD) {
		if (reload_check(p, conf, &kerr) == 0) {
			log_info("SIGHUP: %s checked; finishing requests in "
			    "flight, then starting again in place", conf);
			break;
		}
		log_warn("SIGHUP: %s refused, the running config stays: %s",
		    conf, kerr.detail);
	}
	return ev;
}

/* After a clean stop on SIGHUP: the same program, arguments and pid,
 * keeping the listening socket (fd 0 from spawn-fcgi, or the -s one,
 * named in LISTEN_FD_ENV) and nothing else. Returns only on failure. */
static void
reexec(char *argv[], int listen_fd)
{
	char	fd[16];

	if (listen_fd > 2) {
		snprintf(fd, sizeof(fd), "%d", listen_fd);
		setenv(LISTEN_FD_ENV, fd, 1);
		close_range(3, (unsigned)listen_fd - 1, 0);
		close_range((unsigned)listen_fd + 1, ~0U, 0);
	} else
		close_range(3, ~0U, 0);
	execv("/proc/self/exe", argv);
	warn("SIGHUP: cannot execute myself again");
}

/* -s: the socket bound by the process this one replaced, or a new one. */
static int
listen_setup(const char *sock)
{
	const char	*inherited = getenv(LISTEN_FD_ENV);
	int		 fd;

	if (inherited != NULL) {
		fd = atoi(inherited);
		unsetenv(LISTEN_FD_ENV);
		if (fd > 2)
			return fd;
	}
	if ((fd = fcgi_listen(sock, 128)) < 0)
		err(1, "cannot listen on %s", sock);
	return fd;
}

int
main(int argc, char *argv[])
{
	static struct process	 proc;
	struct process		*p = &proc;
	struct options		 opt;
	struct kl_error		 kerr;
	sigset_t		 stopset;
	enum watch_event	 ev;
	int			 listen_fd = 0, exit_code, busy;

	options_parse(argc, argv, &opt);
	config_defaults(&p->cfg);
	if (config_load(&p->cfg, opt.conf, &kerr) == -1)
		errx(1, "%s", kerr.detail);
	if (opt.check)
		return check_only(p, opt.conf, opt.user);
	if (opt.sock != NULL)
		listen_fd = listen_setup(opt.sock);
	if (opt.user != NULL)
		drop_privileges(opt.user);
	refuse_root("serving requests");
	/* After the drop, which resets it: a core dump would hold the signing
	 * key and users' Kakao tokens. */
	if (prctl(PR_SET_DUMPABLE, 0) == -1 || prctl(PR_GET_DUMPABLE) != 0)
		err(1, "prctl(PR_SET_DUMPABLE)");
	/* Also after the drop: a file root created or a link root followed
	 * would be the service's log. */
	if (log_open(p->cfg.log_file, &kerr) == -1)
		errx(1, "%s", kerr.detail);
	if (secrets_read(p, &kerr) == -1)
		fatal(p, "%s", kerr.detail);
	signals_setup(&stopset);

	if (kakao_global_init(&kerr) == -1)
		fatal(p, "%s", kerr.detail);
	/* A store that cannot open yet (disk full, recovery pending) does not
	 * stop the start: logins answer 500 until it opens. */
	store_repl_configure(&p->cfg);
	if (store_new(&p->store, p->cfg.db_home, p->cfg.db_durability,
	    &kerr) == -1)
		fatal(p, "store: %s", kerr.detail);
	if (!store_ready(p->store))
		log_warn("store not open yet, retrying: %s", kerr.detail);
	store_setup(p);
	metrics_setup(p);
	if (fcgi_init(listen_fd) == -1)
		fatal(p, "FastCGI setup failed: %s", strerror(errno));
	kakao_setup(p);
	atomic_init(&p->stop, false);
	workers_start(p, listen_fd);
	p->maint.store = p->store;
	if (pthread_create(&p->maint.thread, NULL, maintain_run,
	    &p->maint) != 0)
		fatal(p, "pthread_create failed");
	handler_ctx_fill(p, &p->unlinker.ctx);
	if (pthread_create(&p->unlinker.thread, NULL, unlinker_run,
	    &p->unlinker) != 0)
		fatal(p, "pthread_create failed");
	log_info("started: %d threads, kakao %s, app id check %s, at most %d "
	    "Kakao calls at once, code flow %s", p->cfg.threads,
	    p->cfg.kakao_api_url, p->cfg.kakao_app_id ? "on" : "off",
	    p->kakao_cap, p->cfg.kakao_rest_api_key[0] &&
	    p->cfg.n_redirect_uris ? "on" : "off");
	warnings_say(&p->cfg, NULL);

	ev = watch_reloads(p, &stopset, opt.conf);
	exit_code = ev == WATCH_RESTART ? 1 : 0;

	/* A store that needs a fresh process answers every request 500:
	 * its kept connections are closed at once, not served for seconds
	 * while the other processes could answer (seen in CI after a full
	 * disk came back). */
	fcgi_drain(ev == WATCH_RESTART ? 0 : FCGI_DRAIN_MAX_MS);
	atomic_store(&p->stop, true);
	busy = drain(p->workers, p->cfg.threads,
	    exit_code ? PANIC_DRAIN_S : DRAIN_LIMIT_S);
	if (busy > 0) {
		log_warn("%d workers still busy; exiting without closing the "
		    "store", busy);
		_exit(1);
	}
	/* A store that needs a fresh process may be panicked: its handles
	 * block (the maintenance thread's checkpoint never returned, found
	 * by the admin suite), and closing them cannot help. The next
	 * process's open runs recovery. */
	if (ev == WATCH_RESTART) {
		log_info("stopped, for a fresh process");
		_exit(1);
	}
	atomic_store(&p->maint.stop, true);
	pthread_join(p->maint.thread, NULL);
	atomic_store(&p->unlinker.stop, true);
	pthread_join(p->unlinker.thread, NULL);
	kakao_client_free(p->unlinker.ctx.kakao);
	workers_join(p);
	fcgi_close_kept();
	kakao_teardown(p);
	store_close(p->store);
	kakao_global_cleanup();
	secrets_wipe(p);
	log_info(ev == WATCH_RELOAD ? "stopped, to start again in place" :
	    "stopped");
	log_close();
	if (ev == WATCH_RELOAD) {
		reexec(argv, listen_fd);
		exit_code = 1;	/* multiwatch starts a fresh one */
	}
	return exit_code;
}
