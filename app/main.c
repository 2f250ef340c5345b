/*
 * main.c: kakao-login, a Kakao login backend as a threaded FastCGI
 * responder.
 *
 * Owns the process: options, configuration, the log, the signing key, the
 * store, the worker threads and the signals. Start-up failures are fatal and
 * say why; after start, a failure inside one request only fails that
 * request. Never parses requests.
 *
 * Signals: SIGTERM, SIGINT and SIGUSR1 stop accepting, let requests in
 * flight finish, close the store cleanly and exit 0. They are blocked in
 * every thread and taken by the main thread with sigtimedwait(), which also
 * runs store maintenance about once a second. SIGUSR2 is only used inside
 * the process, to wake workers blocked in accept().
 */
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
#include "fcgi.h"
#include "kakao.h"
#include "log.h"
#include "store.h"
#include "token.h"

#define WAKE_SIGNAL	SIGUSR2
#define DRAIN_LIMIT_S	30	/* longest wait for requests in flight */
/* After another process ran recovery, workers blocked on the old
 * environment's locks are never woken: give the others a moment only. */
#define PANIC_DRAIN_S	2

static void
usage(void)
{
	fprintf(stderr, "usage: kakao-login [-c config] [-s socket] "
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

int
main(int argc, char *argv[])
{
	static struct config	 cfg;
	static struct token_ctx	 token;
	struct fcgi_worker	*workers;
	struct kakao_options	 kopt;
	struct store		*store;
	struct kl_error		 kerr;
	struct sigaction	 sa;
	struct timespec		 tick = { 1, 0 };
	sigset_t		 stopset;
	atomic_bool		 stop = false;
	const char		*conf = getenv("KAKAO_LOGIN_CONF");
	const char		*sock = NULL, *user = NULL;
	time_t			 deadline;
	int			 ch, i, listen_fd = 0, exit_code = 0, done, sig;

	while ((ch = getopt(argc, argv, "c:s:u:")) != -1) {
		switch (ch) {
		case 'c': conf = optarg; break;
		case 's': sock = optarg; break;
		case 'u': user = optarg; break;
		default: usage();
		}
	}
	if (optind != argc || conf == NULL)
		usage();

	config_defaults(&cfg);
	if (config_load(&cfg, conf, &kerr) == -1)
		errx(1, "%s", kerr.detail);
	if (log_open(cfg.log_file) == -1)
		err(1, "log_file %s", cfg.log_file);

	if (sock != NULL && (listen_fd = fcgi_listen(sock, 128)) < 0)
		err(1, "cannot listen on %s", sock);
	if (user != NULL)
		drop_privileges(user);
	if (geteuid() == 0)
		log_warn("running as root: use spawn-fcgi -u or -u user");

	if (token_init(&token, cfg.jwt_secret_file, cfg.jwt_issuer,
	    cfg.jwt_ttl, &kerr) == -1)
		errx(1, "%s", kerr.detail);

	/* Stop signals go to sigtimedwait() below, in this thread only. */
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
	if (store_open(&store, cfg.db_home, cfg.db_durability, &kerr) == -1)
		errx(1, "store: %s", kerr.detail);
	if (fcgi_init() == -1)
		errx(1, "FCGX_Init failed");

	memset(&kopt, 0, sizeof(kopt));
	kopt.api_url = cfg.kakao_api_url;
	kopt.app_id = cfg.kakao_app_id;
	kopt.timeout_ms = cfg.upstream_timeout_ms;
	kopt.connect_timeout_ms = cfg.upstream_connect_timeout_ms;
	kopt.ca_file = cfg.ca_file;
	if ((workers = calloc((size_t)cfg.threads, sizeof(*workers))) == NULL)
		err(1, "calloc");
	for (i = 0; i < cfg.threads; i++) {
		workers[i].listen_fd = listen_fd;
		workers[i].stop = &stop;
		atomic_init(&workers[i].state, WORKER_BUSY);
		pthread_mutex_init(&workers[i].state_lock, NULL);
		workers[i].ctx.cfg = &cfg;
		workers[i].ctx.token = &token;
		workers[i].ctx.store = store;
		if ((workers[i].ctx.kakao = kakao_client_new(&kopt,
		    &kerr)) == NULL)
			errx(1, "kakao client: %s", kerr.detail);
		if (pthread_create(&workers[i].thread, NULL, fcgi_worker_run,
		    &workers[i]) != 0)
			errx(1, "pthread_create failed");
	}
	log_info("started: %d threads, kakao %s, app id check %s", cfg.threads,
	    cfg.kakao_api_url, cfg.kakao_app_id ? "on" : "off");

	for (;;) {
		sig = sigtimedwait(&stopset, NULL, &tick);
		if (sig > 0) {
			log_info("signal %d: finishing requests in flight", sig);
			break;
		}
		if (store_maintain(store, &kerr) == -1)
			log_warn("store: %s", kerr.detail);
		if (store_needs_restart(store)) {
			log_warn("store needs recovery: restarting");
			exit_code = 1;
			break;
		}
	}

	atomic_store(&stop, true);
	deadline = time(NULL) + (exit_code ? PANIC_DRAIN_S : DRAIN_LIMIT_S);
	do {
		for (done = 0, i = 0; i < cfg.threads; i++)
			done += fcgi_worker_wake(&workers[i], WAKE_SIGNAL);
		if (done < cfg.threads)
			usleep(20000);
	} while (done < cfg.threads && time(NULL) < deadline);
	if (done < cfg.threads) {
		log_warn("%d workers still busy; exiting without closing the "
		    "store", cfg.threads - done);
		_exit(1);
	}
	for (i = 0; i < cfg.threads; i++) {
		pthread_join(workers[i].thread, NULL);
		kakao_client_free(workers[i].ctx.kakao);
		pthread_mutex_destroy(&workers[i].state_lock);
	}
	free(workers);
	store_close(store);
	kakao_global_cleanup();
	token_wipe(&token);
	log_info("stopped");
	log_close();
	return exit_code;
}
