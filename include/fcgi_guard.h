/*
 * fcgi_guard.h: a default-deny validator of the FastCGI byte stream,
 * between the kernel and libfcgi 2.4.2 (Debian 2.4.2-2+deb12u1), which has
 * crashes any peer of the socket can reach (a GET_VALUES reply overflowing
 * a 64-byte stack buffer, param lengths whose int sum overflows, management
 * records whose content libfcgi feeds into the params it is reading).
 *
 * The guard lets through exactly the record grammar nginx and lighttpd
 * send (both recorded by test/fuzz/capture_fcgi.py: the seeds of
 * fuzz_fcgi_diff), and refuses everything else before libfcgi reads a
 * byte of it (it closes the connection, unanswered):
 *
 *   request    := [get-values] begin params* params-end stdin* stdin-end
 *                 [abort]
 *   get-values := GET_VALUES, id 0, at most FCGI_GET_VALUES_MAX bytes of
 *                 whole name-value pairs (neither front sends one)
 *   begin      := BEGIN_REQUEST, id R != 0, 8 bytes, role RESPONDER, no
 *                 flag but FCGI_KEEP_CONN
 *   params     := PARAMS, id R, content > 0: name-value pairs, each name
 *                 and value at most MAX_FCGI_PARAM bytes, in all at most
 *                 MAX_FCGI_PARAMS pairs and MAX_FCGI_PARAMS_BYTES bytes
 *   params-end := PARAMS, id R, empty, at a pair boundary
 *   stdin      := STDIN, id R, content > 0 (the body: not parsed)
 *   stdin-end  := STDIN, id R, empty: the request is complete
 *   abort      := ABORT_REQUEST, id R, empty (libfcgi would take one
 *                 before stdin-end as the end of the params or the body,
 *                 and serve a request cut there); nothing may follow
 *
 * Every record has version 1; BEGIN_REQUEST and records without content
 * have no padding (libfcgi forgets it after BEGIN and after the params,
 * and parses it as records: found by fuzz_fcgi_diff). Refused, so: other
 * types (DATA, the answer types, unknown ones), other ids (multiplexing,
 * id 0 after BEGIN), records out of order, any byte after the request is
 * complete and before its answer (pipelining: libfcgi would read it ahead
 * and throw it away), other roles. The whole request must arrive within
 * FCGI_REQUEST_DEADLINE_MS of the accept (fcgi_guard.c).
 *
 * A connection carries one request, or, when its BEGIN_REQUEST asks for
 * FCGI_KEEP_CONN (nginx's fastcgi_keep_conn), one request after another:
 * once a request was read whole and answered, the connection waits for
 * the next one in fcgi_conn.c, holding no thread, and its stream starts
 * afresh with the next byte, where libfcgi's reader starts too.
 *
 * Part of the fcgi layer; see fcgi_guard.c for how it sits in front of
 * libfcgi's own reads and nobody else's.
 */
#ifndef KL_FCGI_GUARD_H
#define KL_FCGI_GUARD_H

#include <sys/socket.h>
#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Name-value pairs (PARAMS, GET_VALUES): lengths of 1 byte, or 4 with the
 * top bit set; pairs and lengths may straddle records. */
struct fcgi_pairs {
	unsigned char	len_buf[4];	/* a 4-byte length being read */
	unsigned	len_have;
	bool		value_next;	/* the next length is a value's */
	uint32_t	name_len;
	uint32_t	skip;		/* name and value bytes still to pass */
	unsigned	count;		/* whole pairs (both lengths) seen */
	size_t		bytes;		/* their names and values */
};

enum fcgi_guard_phase {
	FCGI_GUARD_START,	/* before BEGIN_REQUEST: GET_VALUES or BEGIN */
	FCGI_GUARD_PARAMS,	/* after BEGIN: the params stream */
	FCGI_GUARD_STDIN,	/* params ended: the body */
	FCGI_GUARD_COMPLETE,	/* stdin ended: only an ABORT_REQUEST */
	FCGI_GUARD_DONE		/* aborted after that: nothing more */
};

/* The stream state of one connection. Zeroed = a fresh connection. What
 * it holds is what libfcgi will see of the request (fuzz_fcgi_diff checks
 * that): request_id, params.count / params.bytes, stdin_bytes, and whether
 * params_ended / phase == FCGI_GUARD_COMPLETE. */
struct fcgi_guard {
	unsigned char		hdr[8];		/* the record header being read */
	unsigned		hdr_have;
	unsigned		content_left;	/* of the current record */
	unsigned		content_at;	/* bytes of it seen */
	unsigned		padding_left;
	unsigned char		type;
	enum fcgi_guard_phase	phase;
	unsigned		request_id;	/* of the BEGIN_REQUEST; 0: none */
	unsigned		get_values;	/* GET_VALUES records seen */
	struct fcgi_pairs	params;		/* the request's PARAMS stream */
	struct fcgi_pairs	values;		/* one GET_VALUES record */
	size_t			params_content;	/* PARAMS content bytes, declared */
	size_t			stdin_bytes;	/* STDIN content bytes seen */
	bool			params_ended;	/* the empty PARAMS record seen */
	bool			aborted;
	bool			keep_conn;	/* BEGIN_REQUEST's FCGI_KEEP_CONN */
	long long		deadline_ms;	/* monotonic; 0: none (tests) */
	bool			refused;
};

/*
 * Feeds the next n bytes the peer sent, as libfcgi is about to read them.
 * Returns 0, or -1 once the stream leaves the grammar above (and from then
 * on). Pure: reads p, writes only g. Allocates nothing.
 */
int	fcgi_guard_feed(struct fcgi_guard *g, const unsigned char *p,
	    size_t n);

/* Guards every connection accepted on listen_fd from now on. Call before
 * the worker threads start. */
void	fcgi_guard_listen(int listen_fd);

/*
 * libfcgi's accept(), read() and close(), and only libfcgi's: the build
 * renames its references on a copy of Debian's libfcgi.a (GNUmakefile,
 * FCGI_GUARD_LIB). They are libc's calls plus one table lookup, but for
 * connections accepted on the guarded socket: their bytes go through
 * fcgi_guard_feed() first and must all arrive before the deadline; a
 * refused or late stream reads as an error (EPROTO, ETIMEDOUT), so libfcgi
 * drops that connection and goes on serving the others. accept() returns
 * the next connection with a request to read, new or kept (fcgi_conn.c).
 * A connection's state belongs to the thread serving it, as the connection
 * does in libfcgi. FCGX_Accept_r() itself is wrapped the same way
 * (fcgi_guard.c): the previous request's connection is kept when it may
 * be, and a request whose params libfcgi ended at a read error or EOF
 * (which it takes for their end) is dropped unanswered, and the next one
 * accepted.
 */
int	fcgi_guard_accept(int sock, struct sockaddr *addr, socklen_t *addrlen);
ssize_t	fcgi_guard_read(int fd, void *buf, size_t n);
int	fcgi_guard_close(int fd);

#endif
