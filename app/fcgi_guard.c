/*
 * fcgi_guard.c: keeps bytes that crash libfcgi away from it.
 *
 * libfcgi reads its connections itself, inside FCGX_Accept_r and the
 * stream calls, so nothing of ours runs between the kernel and its parser.
 * This file defines accept(), read() and close() in the executable, which
 * the dynamic linker prefers to libc's for libfcgi's (and every other
 * library's) calls. They are libc's system calls plus one table lookup,
 * except on connections accepted on the FastCGI socket: those get read and
 * write time-outs, and every byte read from them goes through
 * fcgi_guard_feed() first; a refused stream reads as an error (EPROTO), so
 * libfcgi drops that connection and goes on serving the others.
 *
 * Each connection's state belongs to the thread that accepted it, as does
 * the connection in libfcgi. Never touches anything else.
 */
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fcgi_guard.h"
#include "kl_clock.h"
#include "kl_limits.h"

#define FCGI_VERSION_1		1
#define FCGI_BEGIN_REQUEST	1
#define FCGI_PARAMS		4
#define FCGI_KEEP_CONN		1
#define FCGI_GET_VALUES		9
/* The three names libfcgi answers, with 1-byte lengths: 2 + 14 (MAX_CONNS),
 * 2 + 13 (MAX_REQS), 2 + 15 (MPXS_CONNS). */
#define FCGI_GET_VALUES_MAX	48

static struct {
	atomic_bool		on;
	struct fcgi_guard	g;
} conns[FCGI_GUARD_FDS];

static atomic_int guarded_listen_fd = -1;

static int
refuse(struct fcgi_guard *g)
{
	g->refused = true;
	return -1;
}

/* A name or value length. Each is bounded, so that libfcgi's int sum of
 * the two (ReadParams) cannot overflow. */
static int
pairs_length(struct fcgi_guard *g, struct fcgi_pairs *pp, uint32_t len)
{
	if (len > MAX_FCGI_PARAM)
		return refuse(g);
	if (!pp->value_next) {
		pp->name_len = len;
		pp->value_next = true;
	} else {
		pp->skip = pp->name_len + len;
		pp->value_next = false;
	}
	return 0;
}

static int
pairs_byte(struct fcgi_guard *g, struct fcgi_pairs *pp, unsigned char b)
{
	if (pp->skip > 0) {
		pp->skip--;
		return 0;
	}
	if (pp->len_have == 0 && (b & 0x80) == 0)
		return pairs_length(g, pp, b);
	pp->len_buf[pp->len_have++] = b;
	if (pp->len_have < 4)
		return 0;
	pp->len_have = 0;
	return pairs_length(g, pp, ((uint32_t)(pp->len_buf[0] & 0x7f) << 24) |
	    ((uint32_t)pp->len_buf[1] << 16) | ((uint32_t)pp->len_buf[2] << 8) |
	    pp->len_buf[3]);
}

/* A record header is complete: refuse what libfcgi cannot take, and
 * anything that would let its idea of the stream drift from ours. */
static int
record_start(struct fcgi_guard *g)
{
	unsigned	id = ((unsigned)g->hdr[2] << 8) | g->hdr[3];

	if (g->hdr[0] != FCGI_VERSION_1)
		return refuse(g);
	g->type = g->hdr[1];
	g->content_left = ((unsigned)g->hdr[4] << 8) | g->hdr[5];
	g->content_at = 0;
	g->padding_left = g->hdr[6];
	if (g->type == FCGI_BEGIN_REQUEST) {
		if (g->request_id != 0 || id == 0)
			return refuse(g);	/* multiplexing, or id 0 */
		g->request_id = id;
	} else if (id != 0 && id != g->request_id)
		return refuse(g);	/* before BEGIN, or another request */
	if (g->type == FCGI_PARAMS && g->content_left == 0)
		memset(&g->params, 0, sizeof(g->params));	/* stream ends */
	if (g->type == FCGI_GET_VALUES) {
		/* Three known names fill the 64-byte reply; a fourth needs at
		 * least 15 more bytes of content than three take. */
		if (g->content_left > FCGI_GET_VALUES_MAX)
			return refuse(g);
		memset(&g->values, 0, sizeof(g->values));
	}
	return 0;
}

int
fcgi_guard_feed(struct fcgi_guard *g, unsigned char *p, size_t n)
{
	size_t	i;

	if (g->refused)
		return -1;
	for (i = 0; i < n; i++) {
		if (g->hdr_have < sizeof(g->hdr)) {
			g->hdr[g->hdr_have++] = p[i];
			if (g->hdr_have < sizeof(g->hdr))
				continue;
			if (record_start(g) == -1)
				return -1;
		} else if (g->content_left > 0) {
			g->content_left--;
			/* FCGI_BeginRequestBody: role (2 bytes), flags. */
			if (g->type == FCGI_BEGIN_REQUEST && g->content_at == 2)
				p[i] &= (unsigned char)~FCGI_KEEP_CONN;
			g->content_at++;
			if (g->type == FCGI_PARAMS &&
			    pairs_byte(g, &g->params, p[i]) == -1)
				return -1;
			if (g->type == FCGI_GET_VALUES &&
			    pairs_byte(g, &g->values, p[i]) == -1)
				return -1;
		} else
			g->padding_left--;
		if (g->content_left == 0 && g->padding_left == 0)
			g->hdr_have = 0;	/* the next record starts */
	}
	return 0;
}

void
fcgi_guard_listen(int listen_fd)
{
	atomic_store(&guarded_listen_fd, listen_fd);
}

int
accept(int sock, struct sockaddr *addr, socklen_t *addrlen)
{
	struct timeval	tv = { FCGI_IO_TIMEOUT_S, 0 };
	int		fd;

	fd = (int)syscall(SYS_accept, sock, addr, addrlen);
	if (fd < 0 || sock != atomic_load(&guarded_listen_fd))
		return fd;
	if (fd >= FCGI_GUARD_FDS) {
		syscall(SYS_close, fd);
		errno = ECONNABORTED;	/* libfcgi accepts again */
		return -1;
	}
	/* A peer that stops sending or reading does not hold a thread. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&conns[fd].g, 0, sizeof(conns[fd].g));
	conns[fd].g.deadline = kl_mono_seconds() + FCGI_REQUEST_DEADLINE_S;
	atomic_store(&conns[fd].on, true);
	return fd;
}

ssize_t
read(int fd, void *buf, size_t n)
{
	struct fcgi_guard	*g;
	ssize_t			 r;

	if (fd < 0 || fd >= FCGI_GUARD_FDS ||
	    !atomic_load_explicit(&conns[fd].on, memory_order_relaxed))
		return syscall(SYS_read, fd, buf, n);
	g = &conns[fd].g;
	/* A peer that drips bytes does not hold a thread past the deadline;
	 * the stop signal does not cut a request that is being read. */
	do {
		if (kl_mono_seconds() > g->deadline) {
			g->refused = true;
			errno = ETIMEDOUT;
			return -1;
		}
		r = syscall(SYS_read, fd, buf, n);
	} while (r == -1 && errno == EINTR);
	if (r > 0 && fcgi_guard_feed(g, buf, (size_t)r) == -1) {
		errno = EPROTO;
		return -1;
	}
	return r;
}

int
close(int fd)
{
	if (fd >= 0 && fd < FCGI_GUARD_FDS)
		atomic_store(&conns[fd].on, false);
	return (int)syscall(SYS_close, fd);
}
