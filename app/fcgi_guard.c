/*
 * fcgi_guard.c: keeps bytes that crash libfcgi away from it.
 *
 * libfcgi reads its connections itself, inside FCGX_Accept_r and the
 * stream calls, so nothing of ours runs between the kernel and its parser.
 * The build gives libfcgi, and only libfcgi, this file's accept, read and
 * close: it links a copy of Debian's static libfcgi.a whose references to
 * those three are renamed to fcgi_guard_* (GNUmakefile, FCGI_GUARD_LIB).
 * The rest of the process (Berkeley DB, curl, the log, key files) calls
 * libc's. On connections accepted on the FastCGI socket every byte read
 * goes through fcgi_guard_feed() first, and the whole request must arrive
 * before one deadline; other descriptors pass straight to libc. The copy's
 * FCGX_Accept_r is renamed too, and wrapped here: libfcgi takes a read
 * error or EOF at a pair boundary for the end of the params, and would
 * hand a request cut there to the app.
 *
 * The wrapper also decides, after each answer, whether the connection may
 * wait for another request (fcgi_conn.c keeps it).
 *
 * Each connection's state belongs to the thread serving it, as does the
 * connection in libfcgi. Never touches anything else.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "fcgi_conn.h"
#include "fcgi_guard.h"
#include "kl_clock.h"
#include "kl_limits.h"

#define FCGI_VERSION_1		1
#define FCGI_BEGIN_REQUEST	1
#define FCGI_ABORT_REQUEST	2
#define FCGI_PARAMS		4
#define FCGI_STDIN		5
#define FCGI_GET_VALUES		9
#define FCGI_RESPONDER		1
#define FCGI_KEEP_CONN		1
#define FCGI_BEGIN_BODY_LEN	8

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

static bool
pairs_at_boundary(const struct fcgi_pairs *pp)
{
	return pp->len_have == 0 && !pp->value_next && pp->skip == 0;
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
		return 0;
	}
	pp->skip = pp->name_len + len;
	pp->value_next = false;
	pp->bytes += pp->skip;
	if (++pp->count > MAX_FCGI_PARAMS)
		return refuse(g);
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

/* Before BEGIN_REQUEST: one GET_VALUES (id 0), or the BEGIN_REQUEST. */
static int
start_record(struct fcgi_guard *g, unsigned id, unsigned len)
{
	if (g->type == FCGI_GET_VALUES && id == 0 && g->get_values++ == 0 &&
	    len <= FCGI_GET_VALUES_MAX) {
		memset(&g->values, 0, sizeof(g->values));
		return 0;
	}
	if (g->type != FCGI_BEGIN_REQUEST || id == 0 ||
	    len != FCGI_BEGIN_BODY_LEN)
		return refuse(g);
	g->request_id = id;
	g->phase = FCGI_GUARD_PARAMS;
	return 0;
}

/* After BEGIN_REQUEST: the request's own PARAMS, then STDIN, each ended by
 * an empty record; then only an ABORT_REQUEST (empty). libfcgi would take
 * an abort before that as the end of the params or of the body, and serve
 * the request cut there. */
static int
request_record(struct fcgi_guard *g, unsigned id, unsigned len)
{
	if (id != g->request_id)
		return refuse(g);
	if (g->phase == FCGI_GUARD_COMPLETE &&
	    g->type == FCGI_ABORT_REQUEST && len == 0) {
		g->phase = FCGI_GUARD_DONE;
		g->aborted = true;
		return 0;
	}
	if (g->phase == FCGI_GUARD_PARAMS && g->type == FCGI_PARAMS) {
		if (len > 0) {
			g->params_content += len;
			return g->params_content > MAX_FCGI_PARAMS_BYTES ?
			    refuse(g) : 0;
		}
		if (!pairs_at_boundary(&g->params))
			return refuse(g);	/* a pair cut short */
		g->params_ended = true;
		g->phase = FCGI_GUARD_STDIN;
		return 0;
	}
	if (g->phase == FCGI_GUARD_STDIN && g->type == FCGI_STDIN) {
		if (len == 0)
			g->phase = FCGI_GUARD_COMPLETE;
		return 0;
	}
	return refuse(g);
}

/* A header's version and type are checked as they arrive, so that a byte
 * after the whole request is refused at once. */
static int
header_byte(struct fcgi_guard *g, unsigned char b)
{
	static const unsigned char allowed[][2] = {
		[FCGI_GUARD_START] =	{ FCGI_GET_VALUES, FCGI_BEGIN_REQUEST },
		[FCGI_GUARD_PARAMS] =	{ FCGI_PARAMS, FCGI_PARAMS },
		[FCGI_GUARD_STDIN] =	{ FCGI_STDIN, FCGI_STDIN },
		[FCGI_GUARD_COMPLETE] =	{ FCGI_ABORT_REQUEST, FCGI_ABORT_REQUEST },
		[FCGI_GUARD_DONE] =	{ 0, 0 },	/* nothing */
	};

	if (g->phase == FCGI_GUARD_DONE ||
	    (g->hdr_have == 0 && b != FCGI_VERSION_1) ||
	    (g->hdr_have == 1 && b != allowed[g->phase][0] &&
	    b != allowed[g->phase][1]))
		return refuse(g);
	return 0;
}

/* A record header is complete: it must be the next step of the grammar. */
static int
record_start(struct fcgi_guard *g)
{
	unsigned	id = ((unsigned)g->hdr[2] << 8) | g->hdr[3];
	unsigned	len = ((unsigned)g->hdr[4] << 8) | g->hdr[5];

	if (g->hdr[0] != FCGI_VERSION_1)
		return refuse(g);
	/* libfcgi forgets the padding of a BEGIN_REQUEST and of the record
	 * that ends the params (SetReaderType), and parses it as records:
	 * neither front pads a record without content, nor BEGIN_REQUEST. */
	if (g->hdr[6] != 0 && (len == 0 || g->hdr[1] == FCGI_BEGIN_REQUEST))
		return refuse(g);
	g->type = g->hdr[1];
	g->content_left = len;
	g->content_at = 0;
	g->padding_left = g->hdr[6];
	if (g->phase == FCGI_GUARD_START)
		return start_record(g, id, len);
	return request_record(g, id, len);
}

/* One content byte of the current record. */
static int
content_byte(struct fcgi_guard *g, unsigned char b)
{
	unsigned	at = g->content_at++;

	g->content_left--;
	switch (g->type) {
	case FCGI_BEGIN_REQUEST:
		/* FCGI_BeginRequestBody: role (2 bytes), flags, reserved. */
		if ((at == 0 && b != 0) || (at == 1 && b != FCGI_RESPONDER) ||
		    (at == 2 && (b & ~FCGI_KEEP_CONN) != 0))
			return refuse(g);
		if (at == 2)
			g->keep_conn = (b & FCGI_KEEP_CONN) != 0;
		return 0;
	case FCGI_PARAMS:
		return pairs_byte(g, &g->params, b);
	case FCGI_STDIN:
		g->stdin_bytes++;
		return 0;
	case FCGI_GET_VALUES:
		if (pairs_byte(g, &g->values, b) == -1)
			return -1;
		/* libfcgi reads one record's pairs: none may straddle. */
		if (g->content_left == 0 && !pairs_at_boundary(&g->values))
			return refuse(g);
		return 0;
	}
	return refuse(g);	/* ABORT_REQUEST is empty */
}

int
fcgi_guard_feed(struct fcgi_guard *g, const unsigned char *p, size_t n)
{
	size_t	i;

	if (g->refused)
		return -1;
	for (i = 0; i < n; i++) {
		if (g->hdr_have < sizeof(g->hdr)) {
			if (header_byte(g, p[i]) == -1)
				return -1;
			g->hdr[g->hdr_have++] = p[i];
			if (g->hdr_have < sizeof(g->hdr))
				continue;
			if (record_start(g) == -1)
				return -1;
			/* An empty GET_VALUES has no byte to check it on. */
		} else if (g->content_left > 0) {
			if (content_byte(g, p[i]) == -1)
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

/* A connection with a request to read: a new one, or a kept one whose
 * peer sent the next request (fcgi_conn.c). Either starts a fresh stream
 * with its own deadline. */
int
fcgi_guard_accept(int sock, struct sockaddr *addr, socklen_t *addrlen)
{
	struct timeval	tv = { FCGI_IO_TIMEOUT_S, 0 };
	bool		kept;
	int		fd;

	if (sock != atomic_load(&guarded_listen_fd))
		return accept(sock, addr, addrlen);
	if ((fd = fcgi_conn_next(sock, addr, addrlen, &kept)) < 0)
		return fd;
	if (fd >= FCGI_GUARD_FDS) {
		close(fd);
		errno = ECONNABORTED;	/* libfcgi accepts again */
		return -1;
	}
	/* A peer that stops reading our answer does not hold a thread. */
	if (!kept)
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&conns[fd].g, 0, sizeof(conns[fd].g));
	conns[fd].g.deadline_ms = kl_mono_ms() + FCGI_REQUEST_DEADLINE_MS;
	atomic_store(&conns[fd].on, true);
	return fd;
}

/* Waits until fd is readable or the request's deadline passes: one
 * deadline for the whole request, so a peer dripping bytes cannot hold a
 * thread longer than a silent one. The stop signal (EINTR) does not cut a
 * request that is being read. */
static int
wait_readable(int fd, struct fcgi_guard *g)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLIN };
	long long	left;
	int		r;

	do {
		if ((left = g->deadline_ms - kl_mono_ms()) <= 0)
			r = 0;
		else
			r = poll(&pfd, 1, (int)left);
	} while (r == -1 && errno == EINTR);
	if (r == 0) {
		g->refused = true;
		errno = ETIMEDOUT;
		return -1;
	}
	return r == -1 ? -1 : 0;
}

ssize_t
fcgi_guard_read(int fd, void *buf, size_t n)
{
	struct fcgi_guard	*g;
	ssize_t			 r;

	if (fd < 0 || fd >= FCGI_GUARD_FDS ||
	    !atomic_load_explicit(&conns[fd].on, memory_order_relaxed))
		return read(fd, buf, n);
	g = &conns[fd].g;
	/* Refused, or aborted: nothing more may come, so do not wait for it. */
	if (g->refused || g->phase == FCGI_GUARD_DONE) {
		errno = g->refused ? EPROTO : ECONNABORTED;
		return -1;
	}
	if (g->deadline_ms != 0 && wait_readable(fd, g) == -1)
		return -1;
	do
		r = read(fd, buf, n);
	while (r == -1 && errno == EINTR);
	if (r > 0 && fcgi_guard_feed(g, buf, (size_t)r) == -1) {
		errno = EPROTO;
		return -1;
	}
	return r;
}

int
fcgi_guard_close(int fd)
{
	if (fd >= 0 && fd < FCGI_GUARD_FDS)
		atomic_store(&conns[fd].on, false);
	return close(fd);
}

/* libfcgi's own, renamed in the build's copy of libfcgi.a. */
int	fcgi_lib_FCGX_Accept_r(FCGX_Request *r);

/* The params libfcgi read were the whole params stream: it saw no read
 * error or EOF in them (ReadParams takes either, between two pairs, for
 * their end), and the guard saw their empty record. */
static bool
params_whole(FCGX_Request *r)
{
	const struct fcgi_guard	*g;

	if (FCGX_GetError(r->in) != 0)
		return false;
	if (r->ipcFd < 0 || r->ipcFd >= FCGI_GUARD_FDS ||
	    !atomic_load_explicit(&conns[r->ipcFd].on, memory_order_relaxed))
		return true;		/* not a guarded socket */
	g = &conns[r->ipcFd].g;
	return g->params_ended && !g->refused;
}

/* The answer was written whole (libfcgi kept the connection: FCGI_KEEP_CONN
 * and no error) and the guard saw the request end and nothing after it,
 * so libfcgi holds no byte of the next request: the connection may wait
 * for it. Any other goes through libfcgi's own close (shutdown, then
 * read to the peer's end), so that the peer reads the whole answer. */
static void
keep_or_close(FCGX_Request *r)
{
	int	fd = r->ipcFd;

	if (fd < FCGI_GUARD_FDS &&
	    atomic_load_explicit(&conns[fd].on, memory_order_relaxed) &&
	    conns[fd].g.keep_conn && !conns[fd].g.refused &&
	    conns[fd].g.phase == FCGI_GUARD_COMPLETE) {
		atomic_store(&conns[fd].on, false);
		if (fcgi_conn_park(fd) == 0) {
			r->ipcFd = -1;
			return;
		}
		atomic_store(&conns[fd].on, true);
	}
	FCGX_Free(r, 1);
}

int
FCGX_Accept_r(FCGX_Request *r)
{
	int	rc;

	FCGX_Finish_r(r);	/* libfcgi's would: once is enough */
	if (r->ipcFd >= 0)
		keep_or_close(r);
	while ((rc = fcgi_lib_FCGX_Accept_r(r)) == 0 && !params_whole(r))
		FCGX_Free(r, 1);	/* drop it unanswered; accept the next */
	return rc;
}
