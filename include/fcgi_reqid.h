/*
 * fcgi_reqid.h: the id that ties a request's log line to its answer.
 */
#ifndef FCGI_REQID_H
#define FCGI_REQID_H

#include <stdint.h>

#include "kl_limits.h"

/* A made id: 16 hex digits of the thread's random prefix, 16 of its
 * counter. */
#define FCGI_REQID_MADE_LEN	32
#define FCGI_REQID_SIZE		(MAX_REQUEST_ID + 1)

/* One per worker thread; never shared. */
struct fcgi_reqid {
	uint64_t	prefix;		/* random, drawn at init */
	uint64_t	next;		/* requests made an id so far */
};

/* Draws the thread's prefix (getrandom; falls back to the time, the pid
 * and the thread's address, which are unique enough for logs). */
void	fcgi_reqid_init(struct fcgi_reqid *g);

/* True when the front's value can be logged and answered as it is: 1 to
 * MAX_REQUEST_ID bytes of letters, digits and "-_.:+/=@". */
int	fcgi_reqid_valid(const char *sent);

/* The request's id into out (FCGI_REQID_SIZE bytes): the front's sent
 * value when it was sent once (count == 1) and is valid, else a new one.
 * Returns out. */
char	*fcgi_reqid_pick(struct fcgi_reqid *g, const char *sent, int count,
	    char *out);

#endif
