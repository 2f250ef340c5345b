/*
 * log.h: one line per request, and the few lines of start, stop and
 * trouble. Lines go to stderr or to an append-only file; each is written
 * with a single write(2) so lines from threads and processes never mix.
 * Callers never pass tokens, keys or secrets: details come from
 * struct kl_error, which never holds them.
 */
#ifndef KL_LOG_H
#define KL_LOG_H

#include <stdint.h>

/* Opens path for appending ("" or NULL: stderr). Returns 0 or -1 (errno). */
int	log_open(const char *path);
void	log_close(void);

/* A line about the process: "ts level pid message". */
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct log_request {
	const char	*method;
	const char	*path;
	int		 status;
	const char	*message;	/* the answer's message */
	const char	*detail;	/* why, for failures; may be "" */
	uint64_t	 user_id;	/* 0: none */
	long		 duration_us;
	long		 upstream_us;
};

void	log_request(const struct log_request *r);

#endif
