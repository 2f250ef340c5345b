/*
 * fcgi_reqid.c: request ids, for the log line and the X-Request-Id answer.
 *
 * Owns only the per-thread generator state it is given. A front server's
 * X-Request-Id is kept when it is plain (so nginx's $request_id or a load
 * balancer's id joins the two logs); anything else, a duplicate included,
 * is replaced by an id made here, never echoed. Not a secret and not a
 * nonce: a random per-thread prefix and a counter, no system call per
 * request. Thread-safe as long as each thread has its own struct.
 */
#include <sys/random.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fcgi_reqid.h"

void
fcgi_reqid_init(struct fcgi_reqid *g)
{
	struct timespec	ts;

	g->next = 0;
	if (getrandom(&g->prefix, sizeof(g->prefix), GRND_NONBLOCK) ==
	    (ssize_t)sizeof(g->prefix))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	g->prefix = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
	    ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)g;
}

int
fcgi_reqid_valid(const char *sent)
{
	static const char	ok[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:+/=@";
	size_t			n;

	if (sent == NULL)
		return 0;
	n = strspn(sent, ok);
	return n > 0 && n <= MAX_REQUEST_ID && sent[n] == '\0';
}

char *
fcgi_reqid_pick(struct fcgi_reqid *g, const char *sent, int count, char *out)
{
	if (count == 1 && fcgi_reqid_valid(sent)) {
		memcpy(out, sent, strlen(sent) + 1);
		return out;
	}
	snprintf(out, FCGI_REQID_SIZE, "%016llx%016llx",
	    (unsigned long long)g->prefix, (unsigned long long)g->next++);
	return out;
}
