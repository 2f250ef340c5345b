/*
 * fcgi_guard.h: a validator of the FastCGI byte stream, between the kernel
 * and libfcgi, for the two ways a peer of the socket crashes libfcgi 2.4.2
 * (Debian 2.4.2-2+deb12u1):
 *   - an FCGI_GET_VALUES record naming the known variables more than three
 *     times in all overflows the 64-byte reply buffer of
 *     ProcessManagementRecord (stack smash);
 *   - a PARAMS pair whose name and value lengths add up past INT_MAX makes
 *     ReadParams assert in its Malloc (abort).
 * Part of the fcgi layer. See fcgi_guard.c for how it sits in front of
 * libfcgi's own reads.
 */
#ifndef KL_FCGI_GUARD_H
#define KL_FCGI_GUARD_H

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
};

/* The stream state of one connection. Zeroed = at a record boundary. */
struct fcgi_guard {
	unsigned char		hdr[8];		/* the record header being read */
	unsigned		hdr_have;
	unsigned		content_left;	/* of the current record */
	unsigned		content_at;	/* bytes of it seen */
	unsigned		padding_left;
	unsigned char		type;
	unsigned		request_id;	/* of the BEGIN_REQUEST; 0: none */
	struct fcgi_pairs	params;		/* the request's PARAMS stream */
	struct fcgi_pairs	values;		/* one GET_VALUES record */
	long long		deadline;	/* monotonic s; 0: none (tests) */
	bool			refused;
};

/*
 * Feeds the next n bytes the peer sent, as libfcgi is about to read them.
 * Returns 0, or -1 once the stream holds something libfcgi must not see
 * (and from then on). One request per connection: a second BEGIN_REQUEST
 * or a record of another request id is refused, and the FCGI_KEEP_CONN
 * flag is cleared in place, so libfcgi closes the connection after the
 * answer and never starts a new request on bytes it threw away. Pure but
 * for that one byte of p.
 */
int	fcgi_guard_feed(struct fcgi_guard *g, unsigned char *p, size_t n);

/* Guards every connection accepted on listen_fd from now on. Call before
 * the worker threads start. */
void	fcgi_guard_listen(int listen_fd);

#endif
