/*
 * main.c: kakao-login, a Kakao login backend as a threaded FastCGI
 * responder.
 *
 * Owns the process: options, configuration, the log, the signing key, the
 * store, the worker threads and the signals. Order at start: config, the
 * socket (-s, perhaps as root), the privilege drop (-u), then, as the
 * service's user: non-dumpable, the log file, the key, the store. Start-up
 * failures are fatal and say why; after start, a failure inside one request
 * only fails that request. Never parses requests.
 *
 * Signals: SIGTERM, SIGINT and SIGUSR1 stop accepting, let requests in
 * flight finish, close the store cleanly and exit 0. They are blocked in
 * every thread and taken by the main thread with sigtimedwait(). SIGUSR2 is
 * only used inside the process, to wake workers blocked in accept().
 *
 * Threads: the workers (fcgi.c), one maintenance thread that keeps the
 * store healthy (store_maintain: opens it when it could not be opened at
 * start, expires lock waits, checkpoints), and this one, which also
 * watches: when the store says its handles are useless, the process stops
 * within PANIC_DRAIN_S and exits 1 so that multiwatch starts a fresh one;
 * when store calls have stopped ending for STORE_STUCK_S seconds (a thread
 * waits on a lock or latch of a process that was killed), it exits 1 at
 * once, since nothing in the process can release that.
 */
#include <sys/prctl.h>
#include <sys/types.h>

#include <err.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
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
#include "kakao_gate.h"
#include "kakao_reject.h"
#include "log.h"
#include "store.h"
#include "token.h"

#define WAKE_SIGNAL	SIGUSR2
#define MAINTAIN_US	250000	/* store maintenance period */
#define WATCH_TICK_NS	250000000L
#define DRAIN_LIMIT_S	30	/* longest wait for requests in flight */
/* After another process ran recovery, workers blocked on the old
 * environment's locks are never woken: give the others a moment only. */
#define PANIC_DRAIN_S	2

#define OTHER_APPS_WARNING "kakao_allow_other_apps = yes: no app id check, " \
	"a token any other Kakao app obtained logs its owner in here"

static void
usage(void)
{
	fprintf(stderr, "usage: kakao-login [-t] [-c config] [-s socket] "
	    "[-u user]\n");
	exit(2);
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
	if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1)
		err(1, "cannot become %s", user);
}

struct maintainer {
	pthread_t	 thread;
	struct store	*store;
	atomic_bool	 stop;
};

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
		usleep(MAINTAIN_US);
	}
	return NULL;
}

/* Waits for a stop signal or for the store to need a restart. Returns the
 * exit code: 0 after a signal, 1 when the process must be replaced. Does
 * not return when the store is stuck: then the process exits at once. */
static int
watch(const sigset_t *stopset, struct store *store)
{
	struct timespec	tick = { 0, WATCH_TICK_NS };
	int		sig;

	for (;;) {
		if ((sig = sigtimedwait(stopset, NULL, &tick)) > 0) {
			log_info("signal %d: finishing requests in flight", sig);
			return 0;
		}
		if (store_needs_restart(store)) {
			log_warn("store handles unusable: restarting");
			return 1;
		}
		if (store_stuck(store, STORE_STUCK_S)) {
			log_warn("no store call ended for %d s (a killed "
			    "process held a lock?): restarting now",
			    STORE_STUCK_S);
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

int
main(int argc, char *argv[])
{
	static struct config	 cfg;
	static struct token_ctx	 token;
	static struct maintainer maint;
	struct fcgi_worker	*workers;
	struct kakao_options	 kopt;
	struct store		*store;
	struct kl_error		 kerr;
	struct sigaction	 sa;
	sigset_t		 stopset;
	atomic_bool		 stop = false;
	const char		*conf = getenv("KAKAO_LOGIN_CONF");
	const char		*sock = NULL, *user = NULL;
	int			 ch, i, listen_fd = 0, exit_code, busy;
	int			 kakao_cap;
	int			 check_only = 0;

	while ((ch = getopt(argc, argv, "c:s:tu:")) != -1) {
		switch (ch) {
		case 'c': conf = optarg; break;
		case 's': sock = optarg; break;
		case 't': check_only = 1; break;
		case 'u': user = optarg; break;
		default: usage();
		}
	}
	if (optind != argc || conf == NULL)
		usage();

	config_defaults(&cfg);
	if (config_load(&cfg, conf, &kerr) == -1)
		errx(1, "%s", kerr.detail);
	if (check_only) {
		/* What start-up would refuse, without starting: the config,
		 * the signing key and the log file, as the user the service
		 * runs as (-u, or the user who runs -t). */
		if (user != NULL)
			drop_privileges(user);
		if (token_init(&token, cfg.jwt_secret_file, cfg.jwt_issuer,
		    cfg.jwt_ttl, &kerr) == -1)
			errx(1, "%s", kerr.detail);
		token_wipe(&token);
		if (log_check(cfg.log_file, &kerr) == -1)
			errx(1, "%s", kerr.detail);
		if (cfg.kakao_allow_other_apps)
			fprintf(stderr, "%s: warning: %s\n", conf,
			    OTHER_APPS_WARNING);
		printf("%s: configuration ok\n", conf);
		return 0;
	}
	if (sock != NULL && (listen_fd = fcgi_listen(sock, 128)) < 0)
		err(1, "cannot listen on %s", sock);
	if (user != NULL)
		drop_privileges(user);
	/* After the drop, which resets it: a core dump would hold the signing
	 * key and users' Kakao tokens. */
	if (prctl(PR_SET_DUMPABLE, 0) == -1 || prctl(PR_GET_DUMPABLE) != 0)
		err(1, "prctl(PR_SET_DUMPABLE)");
	/* Also after the drop: a file root created or a link root followed
	 * would be the service's log. */
	if (log_open(cfg.log_file, &kerr) == -1)
		errx(1, "%s", kerr.detail);
	if (geteuid() == 0)
		log_warn("running as root: use spawn-fcgi -u or -u user");

	if (token_init(&token, cfg.jwt_secret_file, cfg.jwt_issuer,
	    cfg.jwt_ttl, &kerr) == -1)
		errx(1, "%s", kerr.detail);

	/* Stop signals go to sigtimedwait() in watch(), this thread only. */
	sigemptyset(&stopset);
	sigaddset(&stopset, SIGTERM);
	sigaddset(&stopset, SIGINT);
	sigaddset(&stopset, SIGUSR1);
	sigaddset(&stopset, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &stopset, NULL) != 0)
		errx(1, "pthread_sigmask failed");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = wake_handler;	/* no SA_RESTART: accept() returns */
	sigaction(WAKE_SIGNAL, &sa, NULL);

	if (kakao_global_init(&kerr) == -1)
		errx(1, "%s", kerr.detail);
	/* A store that cannot open yet (disk full, recovery pending) does not
	 * stop the start: logins answer 500 until it opens. */
	if (store_new(&store, cfg.db_home, cfg.db_durability, &kerr) == -1)
		errx(1, "store: %s", kerr.detail);
	if (!store_ready(store))
		log_warn("store not open yet, retrying: %s", kerr.detail);
	if (fcgi_init(listen_fd) == -1)
		errx(1, "FCGX_Init failed");

	memset(&kopt, 0, sizeof(kopt));
	kopt.api_url = cfg.kakao_api_url;
	kopt.app_id = cfg.kakao_app_id;
	kopt.timeout_ms = cfg.upstream_timeout_ms;
	kopt.connect_timeout_ms = cfg.upstream_connect_timeout_ms;
	kopt.ca_file = cfg.ca_file;
	kakao_cap = kakao_gate_cap(cfg.kakao_max_calls, cfg.threads);
	if ((kopt.reject = kakao_reject_new(KAKAO_REJECT_SLOTS,
	    KAKAO_REJECT_TTL_S, NULL, &kerr)) == NULL ||
	    (kopt.gate = kakao_gate_new(kakao_cap,
	    kakao_gate_waiters(kakao_cap, cfg.threads), KAKAO_BUSY_WAIT_MS,
	    &kerr)) == NULL)
		errx(1, "%s", kerr.detail);
	if ((workers = calloc((size_t)cfg.threads, sizeof(*workers))) == NULL)
		err(1, "calloc");
	for (i = 0; i < cfg.threads; i++) {
		workers[i].listen_fd = listen_fd;
		workers[i].stop = &stop;
		workers[i].state = WORKER_BUSY;
		pthread_mutex_init(&workers[i].state_lock, NULL);
		if ((workers[i].ctx = calloc(1, sizeof(*workers[i].ctx))) ==
		    NULL)
			err(1, "calloc");
		workers[i].ctx->cfg = &cfg;
		workers[i].ctx->token = &token;
		workers[i].ctx->store = store;
		if ((workers[i].ctx->kakao = kakao_client_new(&kopt,
		    &kerr)) == NULL)
			errx(1, "kakao client: %s", kerr.detail);
		if (pthread_create(&workers[i].thread, NULL, fcgi_worker_run,
		    &workers[i]) != 0)
			errx(1, "pthread_create failed");
	}
	maint.store = store;
	if (pthread_create(&maint.thread, NULL, maintain_run, &maint) != 0)
		errx(1, "pthread_create failed");
	log_info("started: %d threads, kakao %s, app id check %s, at most %d "
	    "Kakao calls at once", cfg.threads, cfg.kakao_api_url,
	    cfg.kakao_app_id ? "on" : "off", kakao_cap);
	if (cfg.kakao_allow_other_apps)
		log_warn("%s", OTHER_APPS_WARNING);

	exit_code = watch(&stopset, store);

	atomic_store(&stop, true);
	busy = drain(workers, cfg.threads,
	    exit_code ? PANIC_DRAIN_S : DRAIN_LIMIT_S);
	if (busy > 0) {
		log_warn("%d workers still busy; exiting without closing the "
		    "store", busy);
		_exit(1);
	}
	atomic_store(&maint.stop, true);
	pthread_join(maint.thread, NULL);
	for (i = 0; i < cfg.threads; i++) {
		pthread_join(workers[i].thread, NULL);
		kakao_client_free(workers[i].ctx->kakao);
		free(workers[i].ctx);
		pthread_mutex_destroy(&workers[i].state_lock);
	}
	free(workers);
	kakao_gate_free(kopt.gate);
	kakao_reject_free(kopt.reject);
	store_close(store);
	kakao_global_cleanup();
	token_wipe(&token);
	log_info("stopped");
	log_close();
	return exit_code;
}
