/*
 * fcgi_conn.h: the connections of the FastCGI socket between requests: a
 * new one from the listening socket, or one kept open after its answer
 * (FCGI_KEEP_CONN, nginx's fastcgi_keep_conn) that has the next request.
 * An idle kept connection holds a descriptor, never a thread.
 *
 * Part of the fcgi layer, under fcgi_guard.c (which decides which
 * connection may be kept) and fcgi.c (which drains at stop). Knows
 * nothing of FastCGI.
 */
#ifndef KL_FCGI_CONN_H
#define KL_FCGI_CONN_H

#include <sys/socket.h>

#include <stdbool.h>

/* Once, before the worker threads start: one epoll instance for
 * listen_fd and the kept connections, and listen_fd made non-blocking.
 * wait_ms: how long next() waits when nothing is ready: -1 until
 * something is (the service), 0 not at all (the harnesses). Returns 0,
 * or -1 with errno set (the process cannot serve). Without it next() is a
 * plain accept() and park() keeps nothing. */
int	fcgi_conn_init(int listen_fd, int wait_ms);

/*
 * Waits for the next connection with a request to read: a new one (accepted
 * on listen_fd, addr and *addrlen filled as accept() does) or a kept one
 * (*kept set; addr says AF_UNIX). Returns its descriptor, which the caller
 * owns until it parks or closes it, or -1 with errno: EINTR for a signal
 * (the stop), or once a drain has closed the kept connections left;
 * EAGAIN when nothing was ready (wait_ms 0); otherwise accept()'s. A
 * connection another process accepted first, and a kept one the peer
 * closed meanwhile, are waited past, never returned.
 */
int	fcgi_conn_next(int listen_fd, struct sockaddr *addr, socklen_t *addrlen,
	    bool *kept);

/* Takes fd, whose request was answered and read whole, to wait for the
 * next one. Returns 0 (fd is no longer the caller's), or -1 when it is
 * not kept (FCGI_KEPT_MAX kept already, or draining): the caller closes
 * it as any other, so the peer sees the end right after the answer. */
int	fcgi_conn_park(int fd);

/* The stop begins: accepts no more connections (they wait in the
 * backlog for the other processes, or for this one re-executed) and keeps
 * none; kept ones are still served, each closed after its answer, until
 * none has had a request for FCGI_DRAIN_QUIET_MS, and for at most
 * serve_ms (capped at FCGI_DRAIN_MAX_MS); then next() closes those left
 * and returns -1 (EINTR). serve_ms 0, for a process whose store needs a
 * fresh one: its answers would all be 500, so its kept connections close
 * at once and nginx opens new ones to the other processes. Called by the
 * main thread. */
void	fcgi_conn_drain(long serve_ms);

/* After the workers have left: closes what is still kept and the epoll
 * instance. */
void	fcgi_conn_close_all(void);

/* How many connections are kept (parked) now. */
int	fcgi_conn_kept(void);

#endif
