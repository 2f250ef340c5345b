/*
 * test_fcgi_conn.c: the connections between requests (app/fcgi_conn.c)
 * with the service's blocking listener, shared by several processes.
 *
 * The build wraps accept4() for this suite (GNUmakefile): steal_next
 * makes the wrapper take the pending connection first, as another
 * process of the group does when both saw the listener ready.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fcgi_conn.h"

int	__real_accept4(int, struct sockaddr *, socklen_t *, int);
int	__wrap_accept4(int, struct sockaddr *, socklen_t *, int);

static bool	steal_next;
static int	stolen = -1;

int
__wrap_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	if (steal_next) {
		steal_next = false;
		stolen = __real_accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	}
	return __real_accept4(fd, addr, len, flags);
}

/* A blocking listener on an abstract address, as spawn-fcgi's. */
static int
listener(struct sockaddr_un *sun, socklen_t *len)
{
	int	lfd;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1,
	    "kl-test-fcgi-conn-%d", (int)getpid());
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    strlen(sun->sun_path + 1));
	assert_true((lfd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)sun, *len), 0);
	assert_int_equal(listen(lfd, 4), 0);
	return lfd;
}

static int
connect_to(const struct sockaddr_un *sun, socklen_t len)
{
	int	peer;

	assert_true((peer = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(connect(peer, (const struct sockaddr *)sun, len), 0);
	return peer;
}

struct next_call {
	int	lfd, fd;
	bool	kept, done;
	pthread_mutex_t	lock;
	pthread_cond_t	cond;
};

static void *
next_run(void *arg)
{
	struct next_call	*c = arg;
	int			 fd;
	bool			 kept;

	fd = fcgi_conn_next(c->lfd, NULL, NULL, &kept);
	pthread_mutex_lock(&c->lock);
	c->fd = fd;
	c->kept = kept;
	c->done = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* fcgi_conn_next() in a thread, given ms to return. */
static bool
next_within(struct next_call *c, int ms)
{
	struct timespec	until;
	pthread_t	t;
	bool		done;

	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->done = false;
	assert_int_equal(pthread_create(&t, NULL, next_run, c), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->lock);
	while (!c->done &&
	    pthread_cond_timedwait(&c->cond, &c->lock, &until) == 0)
		;
	done = c->done;
	pthread_mutex_unlock(&c->lock);
	if (!done)
		shutdown(c->lfd, SHUT_RDWR);	/* ends a blocked accept */
	pthread_join(t, NULL);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	return done;
}

/*
 * Found in CI (hostile, slowloris): every process's epoll set holds the
 * shared listener, so a new connection wakes a thread in each, and the
 * loser's accept() blocked until the next connection came. While it did,
 * that thread served none of its process's kept connections: with the
 * others held by slow clients, nginx's next request on one went
 * unanswered for the clients' whole deadline. The loser must go back to
 * waiting, and serve the kept connection whose request is there.
 */
static void
test_lost_accept_race_serves_kept(void **state)
{
	struct sockaddr_un	sun;
	struct next_call	c;
	socklen_t		len;
	int			lfd, kept_peer, kept_fd, newcomer;
	char			byte = 'x';

	(void)state;
	lfd = listener(&sun, &len);
	assert_int_equal(fcgi_conn_init(lfd, -1), 0);
	/* A connection kept after its answer, idle. */
	kept_peer = connect_to(&sun, len);
	assert_true((kept_fd = accept(lfd, NULL, NULL)) >= 0);
	assert_int_equal(fcgi_conn_park(kept_fd), 0);

	/* A new connection, which another process takes first ... */
	newcomer = connect_to(&sun, len);
	steal_next = true;
	/* ... and then the next request on the kept one. */
	assert_int_equal(write(kept_peer, &byte, 1), 1);

	c.lfd = lfd;
	assert_true(next_within(&c, 2000));
	assert_true(stolen >= 0);
	assert_int_equal(c.fd, kept_fd);
	assert_true(c.kept);
	assert_int_equal(fcgi_conn_kept(), 0);

	/* The listener still works for this process. */
	close(newcomer);
	newcomer = connect_to(&sun, len);
	assert_true(next_within(&c, 2000));
	assert_true(c.fd >= 0);
	assert_false(c.kept);

	close(c.fd);
	close(kept_fd);
	close(stolen);
	close(newcomer);
	close(kept_peer);
	fcgi_conn_close_all();
	close(lfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lost_accept_race_serves_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
