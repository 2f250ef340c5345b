/*
 * plumbing.c: the smallest threaded libfcgi responder, the baseline for
 * benchmarks and the testbed for the front-server and spawn-fcgi configs.
 *
 * It does what kakao-login does around a request and nothing else: FCGX_Init
 * once, N threads each blocked in FCGX_Accept_r on the socket spawn-fcgi
 * hands over as fd 0 (or on -s PATH, bound here), read and drop the body,
 * answer 200 {"message":"SUCCESS"}.  With -e, a request whose path ends in
 * "/__echo" is answered with the FastCGI params the front server passed,
 * so a config can be checked without the real service.
 *
 *   plumbing [-e] [-c CONFIG] [-s SOCKET] [-t THREADS]
 *
 * -c reads only the "threads" line of a kakao-login config, so the program
 * stands in for kakao-login under etc/kakao-login-spawn
 * (FCGI_PROGRAM=build/plumbing) with as many threads.
 *
 * Build: gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -pthread \
 *            -o build/plumbing test/bench/plumbing.c -lfcgi
 */
#include <err.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#define MAX_THREADS 256

static int listen_fd;		/* 0 unless -s */
static int echo;		/* -e */

static const char *const echo_params[] = {
	"REQUEST_METHOD", "SCRIPT_NAME", "REQUEST_URI", "DOCUMENT_URI",
	"PATH_INFO", "QUERY_STRING", "CONTENT_LENGTH", "CONTENT_TYPE",
	"SERVER_PROTOCOL", "REMOTE_ADDR", "HTTP_HOST", "HTTP_AUTHORIZATION",
	"HTTP_X_PROBE", NULL
};

/*
 * libfcgi's own SIGUSR1/SIGTERM handling wakes no thread blocked in accept,
 * and multiwatch stops its children with SIGUSR1: leave at once.
 */
static void
on_stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void
reply_echo(FCGX_Request *rq)
{
	const char *const *p;
	const char *v;

	FCGX_FPrintF(rq->out, "Status: 200 OK\r\n"
	    "Content-Type: text/plain\r\n\r\n");
	for (p = echo_params; *p != NULL; p++) {
		v = FCGX_GetParam(*p, rq->envp);
		FCGX_FPrintF(rq->out, "%s=%s\n", *p, v == NULL ? "(unset)" : v);
	}
}

static void *
worker(void *arg)
{
	FCGX_Request rq;
	char buf[4096];
	const char *uri;
	size_t n;

	(void)arg;
	if (FCGX_InitRequest(&rq, listen_fd, 0) != 0)
		errx(1, "FCGX_InitRequest");
	while (FCGX_Accept_r(&rq) == 0) {
		while (FCGX_GetStr(buf, sizeof(buf), rq.in) > 0)
			;	/* drop the body */
		uri = FCGX_GetParam("REQUEST_URI", rq.envp);
		n = uri == NULL ? 0 : strcspn(uri, "?");
		if (echo && n >= 7 && strncmp(uri + n - 7, "/__echo", 7) == 0)
			reply_echo(&rq);
		else
			FCGX_PutS("Status: 200 OK\r\n"
			    "Content-Type: application/json\r\n\r\n"
			    "{\"message\":\"SUCCESS\"}", rq.out);
		FCGX_Finish_r(&rq);
	}
	return NULL;
}

/* The "threads = N" line of a kakao-login config, so the baseline runs as
 * many threads as the service it is compared with; 0 when absent. */
static int
config_threads(const char *path)
{
	FILE	*fp;
	char	 line[512];
	int	 n = 0;

	if ((fp = fopen(path, "r")) == NULL)
		err(1, "%s", path);
	/* The last one wins, as in the service. */
	while (fgets(line, sizeof(line), fp) != NULL)
		(void)sscanf(line, " threads = %d", &n);
	fclose(fp);
	return n;
}

int
main(int argc, char *argv[])
{
	pthread_t tids[MAX_THREADS];
	const char *sock = NULL;
	int ch, i, nthreads = 16;	/* the service's default */

	while ((ch = getopt(argc, argv, "c:es:t:")) != -1) {
		switch (ch) {
		case 'c':
			if ((ch = config_threads(optarg)) > 0)
				nthreads = ch;
			break;
		case 'e':
			echo = 1;
			break;
		case 's':
			sock = optarg;
			break;
		case 't':
			nthreads = atoi(optarg);
			if (nthreads < 1 || nthreads > MAX_THREADS)
				errx(1, "-t: 1..%d", MAX_THREADS);
			break;
		default:
			fprintf(stderr, "usage: plumbing [-e] [-c config] "
			    "[-s socket] [-t threads]\n");
			return 1;
		}
	}
	if (FCGX_Init() != 0)
		errx(1, "FCGX_Init");
	signal(SIGTERM, on_stop);	/* after FCGX_Init, which sets its own */
	signal(SIGUSR1, on_stop);
	signal(SIGINT, on_stop);
	if (sock != NULL) {
		unlink(sock);
		if ((listen_fd = FCGX_OpenSocket(sock, 1024)) < 0)
			errx(1, "FCGX_OpenSocket(%s)", sock);
	}
	for (i = 0; i < nthreads; i++)
		if ((errno = pthread_create(&tids[i], NULL, worker, NULL)) != 0)
			err(1, "pthread_create");
	for (i = 0; i < nthreads; i++)
		pthread_join(tids[i], NULL);
	return 0;
}
