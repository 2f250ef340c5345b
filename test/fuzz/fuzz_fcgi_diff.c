/*
 * fuzz_fcgi_diff.c: the bytes, as what a peer of the FastCGI socket sends,
 * go through fcgi_guard_feed() on their own, and through the real libfcgi
 * as the service runs it: the build's copy of Debian's libfcgi.a with the
 * guard in front of its reads (fcgi_guard_accept/_read/_close and the
 * FCGX_Accept_r wrapper), reading a Unix socket in this process.
 *
 * Beyond "libfcgi does not crash or hang behind the guard" (any stream,
 * refused or not), it asserts that libfcgi sees no request the guard did
 * not describe. When the guard accepts the whole stream:
 *   - libfcgi hands over a request exactly when the guard saw the params
 *     end, with the guard's request id, role RESPONDER, the guard's
 *     FCGI_KEEP_CONN, the guard's number of params, and no more name and
 *     value bytes;
 *   - it reads the guard's number of body bytes, and reaches the body's
 *     end without an error exactly when the guard saw the request whole.
 * The stream is sent as nginx sends kept requests: up to where the guard
 * saw a request end, then, after the answer, the rest, which is the next
 * request on the same connection when the first asked to keep it (kept
 * between the two in fcgi_conn.c, as the service does); the same holds
 * of each, and no connection is left kept.
 * Seeds: real nginx and lighttpd streams (test/fuzz/capture_fcgi.py).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <assert.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "fcgi_conn.h"
#include "fcgi_guard.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sockaddr_un	addr;
static socklen_t		addr_len;
static int			listen_fd = -1;

/* Once: a guarded, non-blocking listener (libfcgi's accept after the one
 * connection fails at once instead of waiting). */
static void
setup(void)
{
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1,
	    "kl-fuzz-fcgi-diff-%d", (int)getpid());
	addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    strlen(addr.sun_path + 1));
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert(listen_fd >= 0);
	assert(bind(listen_fd, (struct sockaddr *)&addr, addr_len) == 0);
	assert(listen(listen_fd, 4) == 0);
	signal(SIGPIPE, SIG_IGN);
	assert(FCGX_Init() == 0);
	fcgi_guard_listen(listen_fd);
	assert(fcgi_conn_init(listen_fd, 0) == 0);
}

/* What libfcgi saw of the request. */
struct seen {
	int	accepted;	/* FCGX_Accept_r returned 0 */
	int	request_id, role, keep;
	bool	role_first;	/* envp[0] is FCGI_ROLE=RESPONDER */
	size_t	params, bytes;	/* besides FCGI_ROLE; bytes as C strings */
	size_t	body;
	int	body_error;	/* FCGX_GetError at the body's end */
};

/* The next request on r, as the service's worker takes it. */
static void
libfcgi_read(FCGX_Request *r, struct seen *sn)
{
	char		 buf[4096], **e;
	int		 n;

	memset(sn, 0, sizeof(*sn));
	sn->accepted = FCGX_Accept_r(r) == 0;
	if (sn->accepted) {
		sn->request_id = r->requestId;
		sn->role = r->role;
		sn->keep = r->keepConnection;
		sn->role_first = r->envp[0] != NULL &&
		    strcmp(r->envp[0], "FCGI_ROLE=RESPONDER") == 0;
		for (e = r->envp + 1; *e != NULL; e++) {
			sn->params++;
			sn->bytes += strlen(*e) - 1;	/* the '=' */
		}
		while ((n = FCGX_GetStr(buf, sizeof(buf), r->in)) > 0)
			sn->body += (size_t)n;
		sn->body_error = FCGX_GetError(r->in);
		FCGX_FPrintF(r->out, "Status: 200\r\n\r\n");
	}
	FCGX_Finish_r(r);	/* a kept connection stays in r */
}

static void
compare(const struct fcgi_guard *g, const struct seen *sn)
{
	assert(sn->accepted == g->params_ended);
	if (!sn->accepted)
		return;
	assert(sn->request_id == (int)g->request_id);
	assert(sn->role == 1 && sn->role_first);
	assert(sn->keep == g->keep_conn);
	assert(sn->params == g->params.count);
	assert(sn->bytes <= g->params.bytes);	/* a NUL cuts a C string */
	assert(sn->body == g->stdin_bytes);
	assert((sn->body_error == 0) == (g->phase == FCGI_GUARD_COMPLETE));
}

/* The guard's view of the next request: fed byte by byte up to where it
 * is complete (a kept connection's next request starts after that), or
 * to the end. Returns the bytes it took; *verdict as fcgi_guard_feed. */
static size_t
guard_part(struct fcgi_guard *g, const uint8_t *data, size_t size, int *verdict)
{
	size_t	i;

	memset(g, 0, sizeof(*g));
	*verdict = 0;
	for (i = 0; i < size; i++) {
		if (fcgi_guard_feed(g, &data[i], 1) == -1) {
			*verdict = -1;
			return size;
		}
		if (g->phase == FCGI_GUARD_COMPLETE && g->hdr_have == 0)
			return i + 1;
	}
	return size;
}

/* The answer to one request: up to its END_REQUEST, or the end. */
static void
read_answer(int peer)
{
	unsigned char	h[8], buf[4096];
	size_t		len, got;
	ssize_t		r;

	for (;;) {
		for (got = 0; got < sizeof(h); got += (size_t)r)
			if ((r = read(peer, h + got, sizeof(h) - got)) <= 0)
				return;
		len = ((size_t)h[4] << 8 | h[5]) + h[6];
		for (; len > 0; len -= (size_t)r)
			if ((r = read(peer, buf, len < sizeof(buf) ? len :
			    sizeof(buf))) <= 0)
				return;
		if (h[1] == 3)		/* FCGI_END_REQUEST */
			return;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fcgi_guard	 g;
	struct seen		 sn;
	FCGX_Request		 r;
	size_t			 off = 0, n;
	int			 peer, verdict, round;
	char			 drain[4096];

	if (listen_fd == -1)
		setup();
	/* One write must not block (libfcgi reads only after it): a Unix
	 * socket buffers far more than run.sh's -max_len of 64 KB. */
	if (size > 64 * 1024)
		return 0;
	peer = socket(AF_UNIX, SOCK_STREAM, 0);
	assert(peer >= 0);
	assert(connect(peer, (struct sockaddr *)&addr, addr_len) == 0);
	assert(FCGX_InitRequest(&r, listen_fd, 0) == 0);
	for (round = 0; round < 8; round++) {
		n = guard_part(&g, data + off, size - off, &verdict);
		if (n > 0)
			assert(write(peer, data + off, n) == (ssize_t)n);
		off += n;
		if (off == size)
			shutdown(peer, SHUT_WR);
		libfcgi_read(&r, &sn);
		if (verdict == 0)
			compare(&g, &sn);
		if (off == size || verdict != 0 || !sn.accepted || !sn.keep ||
		    r.ipcFd < 0)
			break;
		read_answer(peer);	/* then the next request */
	}
	FCGX_Free(&r, 1);
	while (read(peer, drain, sizeof(drain)) > 0)
		;	/* libfcgi's answers, if any */
	close(peer);
	assert(fcgi_conn_kept() == 0);
	return 0;
}
