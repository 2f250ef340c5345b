/*
 * fcgi.h: the FastCGI side: the accept loop of one worker thread, reading
 * params and body within limits, routing, and writing answers.
 */
#ifndef KL_FCGI_H
#define KL_FCGI_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "kl_error.h"

struct handler_ctx;

enum fcgi_worker_state {
	WORKER_IDLE,		/* waiting in accept: may be woken by a signal */
	WORKER_BUSY,		/* serving a request: let it finish */
	WORKER_DONE		/* left its loop */
};

/* One per worker thread; owned by main, which makes ctx (handlers.h) before
 * the thread starts and frees it after the thread is joined. */
struct fcgi_worker {
	pthread_t		 thread;
	int			 listen_fd;
	const atomic_bool	*stop;		/* set by main to drain */
	enum fcgi_worker_state	 state;		/* under state_lock */
	pthread_mutex_t		 state_lock;	/* orders state and wake-ups */
	struct handler_ctx	*ctx;		/* the worker's, not shared */
};

/* Call once, before the threads start, with the socket they accept on. */
int	fcgi_init(int listen_fd);

/* The stop begins (main, before it sets the workers' stop flag): no new
 * connection is accepted; requests on kept connections are still served
 * until they go quiet, for at most serve_kept_ms (0: none served, for a
 * process whose store needs restarting; fcgi_conn.h). */
void	fcgi_drain(long serve_kept_ms);

/* After the workers are joined: closes the kept connections left. */
void	fcgi_close_kept(void);

/* Binds a Unix socket at path, mode 0660 (development; spawn-fcgi does
 * this in production). Returns the descriptor or -1. */
int	fcgi_listen(const char *path, int backlog);

/* The worker thread: accepts and serves until *stop is set. */
void	*fcgi_worker_run(void *arg);

/* Wakes a worker blocked in accept so it sees *stop; does nothing when it
 * is serving a request. Returns true once the worker has left its loop. */
bool	fcgi_worker_wake(struct fcgi_worker *w, int signo);

/*
 * Reads a request body of at most max (<= MAX_BODY) bytes from in into buf
 * (which holds MAX_BODY + 1), as CONTENT_LENGTH (cl, NULL when absent)
 * announces. On success buf holds exactly the body, NUL-terminated, and
 * *len its length. Exposed for the unit tests.
 */
struct FCGX_Stream;
int	fcgi_read_body(struct FCGX_Stream *in, const char *cl, size_t max,
	    char *buf, size_t *len, struct kl_error *err);

#endif
