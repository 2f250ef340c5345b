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
 *     end, with the guard's request id, role RESPONDER, no FCGI_KEEP_CONN,
 *     the guard's number of params, and no more name and value bytes;
 *   - it reads the guard's number of body bytes, and reaches the body's
 *     end without an error exactly when the guard saw the request whole.
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

static void
libfcgi_read(struct seen *sn)
{
	FCGX_Request	 r;
	char		 buf[4096], **e;
	int		 n;

	assert(FCGX_InitRequest(&r, listen_fd, 0) == 0);
	memset(sn, 0, sizeof(*sn));
	sn->accepted = FCGX_Accept_r(&r) == 0;
	if (sn->accepted) {
		sn->request_id = r.requestId;
		sn->role = r.role;
		sn->keep = r.keepConnection;
		sn->role_first = r.envp[0] != NULL &&
		    strcmp(r.envp[0], "FCGI_ROLE=RESPONDER") == 0;
		for (e = r.envp + 1; *e != NULL; e++) {
			sn->params++;
			sn->bytes += strlen(*e) - 1;	/* the '=' */
		}
		while ((n = FCGX_GetStr(buf, sizeof(buf), r.in)) > 0)
			sn->body += (size_t)n;
		sn->body_error = FCGX_GetError(r.in);
		FCGX_FPrintF(r.out, "Status: 200\r\n\r\n");
	}
	FCGX_Finish_r(&r);	/* closes the connection: no FCGI_KEEP_CONN */
}

static void
compare(const struct fcgi_guard *g, const struct seen *sn)
{
	assert(sn->accepted == g->params_ended);
	if (!sn->accepted)
		return;
	assert(sn->request_id == (int)g->request_id);
	assert(sn->role == 1 && sn->role_first);
	assert(sn->keep == 0);
	assert(sn->params == g->params.count);
	assert(sn->bytes <= g->params.bytes);	/* a NUL cuts a C string */
	assert(sn->body == g->stdin_bytes);
	assert((sn->body_error == 0) == (g->phase == FCGI_GUARD_COMPLETE));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fcgi_guard	 g;
	struct seen		 sn;
	unsigned char		*copy;
	int			 peer, verdict;
	char			 drain[4096];

	if (listen_fd == -1)
		setup();
	/* One write must not block (libfcgi reads only after it): a Unix
	 * socket buffers far more than run.sh's -max_len of 64 KB. */
	if (size > 64 * 1024 || (copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	memset(&g, 0, sizeof(g));
	verdict = fcgi_guard_feed(&g, copy, size);
	free(copy);

	peer = socket(AF_UNIX, SOCK_STREAM, 0);
	assert(peer >= 0);
	assert(connect(peer, (struct sockaddr *)&addr, addr_len) == 0);
	if (size > 0)
		assert(write(peer, data, size) == (ssize_t)size);
	shutdown(peer, SHUT_WR);
	libfcgi_read(&sn);
	while (read(peer, drain, sizeof(drain)) > 0)
		;	/* libfcgi's answers, if any */
	close(peer);
	if (verdict == 0)
		compare(&g, &sn);
	return 0;
}
