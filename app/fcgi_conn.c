/*
 * fcgi_conn.c: the connections of the FastCGI socket, between requests.
 *
 * Owns one epoll instance per process, holding the listening socket and
 * the connections kept open after an answer (FCGI_KEEP_CONN). A worker
 * thread in fcgi_conn_next() waits there for whichever is ready first: a
 * connection to accept, or a kept one whose peer sent the next request.
 * So nginx's keep-alive pool costs descriptors, not threads, and a request
 * on a kept connection skips accept(), libfcgi's wait for a first byte,
 * shutdown() and close(). Which connection may be kept is decided by
 * fcgi_guard.c (its request read whole, nothing read past it); this file
 * reads no byte and touches no other descriptor.
 *
 * Closing an idle kept connection races with the peer sending on it (nginx
 * would answer that request 502), so it is done only when nobody would
 * miss it: when the peer closed first, or at the end of a drain, after
 * FCGI_DRAIN_QUIET_MS without a request on any of them. A connection that
 * cannot be kept (its request refused, or a body over FCGI_UNREAD_MAX)
 * is closed right after its answer (by libfcgi: shutdown, then reading to
 * the peer's end). nginx may have sent the next request on it by then,
 * so fcgi.c reads the rest of a body the answer did not need, and only a
 * hostile or oversized request closes a connection.
 *
 * Thread-safety: every worker waits in the same epoll instance. Each
 * descriptor is armed EPOLLONESHOT, so one event wakes one thread, and a
 * connection belongs to the thread that got it until that thread parks
 * or closes it; the listening socket is armed again after each accept(),
 * so one thread of the process accepts at a time, as before. The
 * listener is non-blocking: every process of the group has it in its
 * set, a new connection wakes a thread in each, and the losers go back to
 * waiting (found in CI: a loser blocked in accept() served none of its
 * process's kept connections until the next connection came). A kept
 * connection is taken out of kept[] by exchange, by the thread it was
 * given to or by the drain closing it, never both. arm_lock orders what
 * the drain changes against what it must see whole: a park (its check of
 * draining, its count, flag and arm), the listener's re-arm, the drain's
 * start (main thread) and close_kept() (the worker that finds the drain
 * over, or fcgi_conn_close_all() after the workers left). Found in
 * review: without it, a park could add a descriptor the drain had just
 * closed, and the listener come back after the drain removed it.
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "fcgi_conn.h"
#include "kl_clock.h"
#include "kl_limits.h"

static int		epfd = -1;
static int		listen_wait_ms = -1;	/* -1: until ready; 0: a harness */
static int		conn_listen_fd = -1;
static atomic_int	nkept;
static atomic_bool	draining;
static atomic_llong	quiet_until_ms;		/* while draining */
static long long	drain_end_ms;		/* the drain's cap; arm_lock */
static atomic_bool	listen_armed;		/* false: arm it again */
static atomic_bool	kept[FCGI_GUARD_FDS];	/* parked now */
static pthread_mutex_t	arm_lock = PTHREAD_MUTEX_INITIALIZER;

/* Arms fd for one event: MOD for one in the set, ADD the first time. */
static int
arm(int fd, unsigned events)
{
	struct epoll_event	ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events | EPOLLONESHOT;
	ev.data.fd = fd;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int
fcgi_conn_init(int listen_fd, int wait_ms)
{
	int	fl;

	/* The group shares the listener's file description (spawn-fcgi):
	 * each process sets the same flag on it. An accepted connection
	 * does not inherit it: libfcgi's reads block as before. */
	if ((fl = fcntl(listen_fd, F_GETFL)) == -1 ||
	    fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	listen_wait_ms = wait_ms < 0 ? -1 : wait_ms;
	conn_listen_fd = listen_fd;
	atomic_store(&draining, false);
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return -1;
	if (arm(listen_fd, EPOLLIN) == -1) {
		close(epfd);
		epfd = -1;
		return -1;
	}
	atomic_store(&listen_armed, true);
	return 0;
}

/* The listener for its next event, unless the drain removed it. A
 * failure leaves listen_armed false, and the next wait tries again. */
static void
arm_listener(void)
{
	pthread_mutex_lock(&arm_lock);
	if (!atomic_load(&draining))
		atomic_store(&listen_armed, arm(conn_listen_fd, EPOLLIN) == 0);
	pthread_mutex_unlock(&arm_lock);
}

/* The listener was ready: one accept(), then it is armed again, whatever
 * came of it. EAGAIN: another process took the connection. */
static int
accept_one(int listen_fd, struct sockaddr *addr, socklen_t *addrlen)
{
	int	fd, saved;

	atomic_store(&listen_armed, false);
	fd = accept4(listen_fd, addr, addrlen, SOCK_CLOEXEC);
	saved = errno;
	arm_listener();
	errno = saved;
	return fd;
}

/* A kept connection is ready: the next request, or the peer gone. Returns
 * fd, or -1 when there is nothing to serve on it. */
static int
take_kept(int fd, unsigned events, struct sockaddr *addr, socklen_t *addrlen)
{
	char	byte;

	if (fd < 0 || fd >= FCGI_GUARD_FDS || !atomic_exchange(&kept[fd], false))
		return -1;	/* the drain closed it meanwhile */
	atomic_fetch_sub(&nkept, 1);
	/* The peer's end: nginx's keepalive_timeout, or nginx gone. Unless a
	 * request came before it (a peer that sends, then shuts down). */
	if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) &&
	    recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) {
		close(fd);
		return -1;
	}
	if (atomic_load(&draining))
		atomic_store(&quiet_until_ms, kl_mono_ms() + FCGI_DRAIN_QUIET_MS);
	if (addr != NULL && addrlen != NULL &&
	    *addrlen >= sizeof(sa_family_t)) {
		addr->sa_family = AF_UNIX;
		*addrlen = sizeof(sa_family_t);
	}
	return fd;
}

/* The drain is over: nobody sent on the kept connections left. */
static void
close_kept(void)
{
	int	fd;

	pthread_mutex_lock(&arm_lock);
	for (fd = 0; fd < FCGI_GUARD_FDS; fd++)
		if (atomic_exchange(&kept[fd], false)) {
			atomic_fetch_sub(&nkept, 1);
			close(fd);
		}
	pthread_mutex_unlock(&arm_lock);
}

/* How long to wait: for ever, or while draining until the quiet time,
 * and never past the drain's cap (a peer sending now and then on one kept
 * connection after another would otherwise stretch it past DRAIN_LIMIT_S,
 * found in review). */
static int
wait_ms(bool *over)
{
	long long	end, left;

	*over = false;
	if (!atomic_load(&draining))
		return listen_wait_ms;
	pthread_mutex_lock(&arm_lock);
	end = drain_end_ms;
	pthread_mutex_unlock(&arm_lock);
	if (atomic_load(&quiet_until_ms) < end)
		end = atomic_load(&quiet_until_ms);
	left = end - kl_mono_ms();
	if (left <= 0)
		*over = true;
	return left > 0 ? (int)left : 0;
}

int
fcgi_conn_next(int listen_fd, struct sockaddr *addr, socklen_t *addrlen,
    bool *is_kept)
{
	struct epoll_event	ev;
	bool			over;
	int			n, fd, ms;

	*is_kept = false;
	if (epfd == -1)
		return accept4(listen_fd, addr, addrlen, SOCK_CLOEXEC);
	for (;;) {
		if (!atomic_load(&listen_armed))
			arm_listener();
		ms = wait_ms(&over);
		if (over || (atomic_load(&draining) && atomic_load(&nkept) == 0)) {
			close_kept();
			errno = EINTR;
			return -1;
		}
		n = epoll_wait(epfd, &ev, 1, ms);
		if (n == -1 && errno == EINTR && atomic_load(&draining))
			continue;	/* main's wake-ups: serve the kept */
		if (n == -1)
			return -1;	/* EINTR: the stop signal */
		if (n == 0) {
			if (atomic_load(&draining))
				continue;
			errno = EAGAIN;
			return -1;
		}
		if (ev.data.fd == listen_fd) {
			fd = accept_one(listen_fd, addr, addrlen);
			if (fd >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK) ||
			    listen_wait_ms == 0)
				return fd;
			continue;	/* lost to another process: wait again */
		}
		if ((fd = take_kept(ev.data.fd, ev.events, addr, addrlen)) >= 0) {
			*is_kept = true;
			return fd;
		}
	}
}

int
fcgi_conn_park(int fd)
{
	int	rc = -1;

	if (epfd == -1 || fd < 0 || fd >= FCGI_GUARD_FDS)
		return -1;
	pthread_mutex_lock(&arm_lock);
	if (atomic_load(&draining) || atomic_load(&nkept) >= FCGI_KEPT_MAX)
		goto done;
	atomic_fetch_add(&nkept, 1);
	atomic_store(&kept[fd], true);
	if ((rc = arm(fd, EPOLLIN | EPOLLRDHUP)) == -1) {
		atomic_store(&kept[fd], false);
		atomic_fetch_sub(&nkept, 1);
	}
done:
	pthread_mutex_unlock(&arm_lock);
	return rc;
}

void
fcgi_conn_drain(long serve_ms)
{
	long long	now = kl_mono_ms();

	if (epfd == -1)
		return;
	pthread_mutex_lock(&arm_lock);
	atomic_store(&quiet_until_ms, now + FCGI_DRAIN_QUIET_MS);
	drain_end_ms = now + (serve_ms < FCGI_DRAIN_MAX_MS ? serve_ms :
	    FCGI_DRAIN_MAX_MS);
	atomic_store(&draining, true);
	epoll_ctl(epfd, EPOLL_CTL_DEL, conn_listen_fd, NULL);
	pthread_mutex_unlock(&arm_lock);
}

void
fcgi_conn_close_all(void)
{
	if (epfd == -1)
		return;
	close_kept();
	close(epfd);
	epfd = -1;
}

int
fcgi_conn_kept(void)
{
	return atomic_load(&nkept);
}
