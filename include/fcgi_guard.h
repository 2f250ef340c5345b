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
	unsigned		padding_left;
	unsigned char		type;
	struct fcgi_pairs	params;		/* the request's PARAMS stream */
	struct fcgi_pairs	values;		/* one GET_VALUES record */
	bool			refused;
};

/* Feeds the next n bytes the peer sent. Returns 0, or -1 once the stream
 * holds something libfcgi must not see (and from then on). Pure. */
int	fcgi_guard_feed(struct fcgi_guard *g, const unsigned char *p,
	    size_t n);

/* Guards every connection accepted on listen_fd from now on. Call before
 * the worker threads start. */
void	fcgi_guard_listen(int listen_fd);

#endif
