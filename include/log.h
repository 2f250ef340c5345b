/*
 * log.h: one line per request, and the few lines of start, stop and
 * trouble. Lines go to stderr or to an append-only file; each is written
 * with a single write(2) so lines from threads and processes never mix.
 * Callers never pass tokens, keys or secrets: details come from
 * struct kl_error, which never holds them.
 */
#ifndef KL_LOG_H
#define KL_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "kl_error.h"

/* Opens path for appending ("" or NULL: stderr), creating it 0640. Call it
 * after the privilege drop: a symlink, anything but a regular file, or a
 * file another uid owns is refused (opened O_NOFOLLOW | O_NONBLOCK, so a
 * FIFO does not hang). Returns 0, or -1 with err naming the file. */
int	log_open(const char *path, struct kl_error *err);

/* What log_open would refuse, without creating the file (for -t): an
 * existing file is checked the same way; a missing one needs a directory
 * we may write. Returns 0 or -1 with err. */
int	log_check(const char *path, struct kl_error *err);
void	log_close(void);

/* A line about the process: "ts level pid message". */
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct log_request {
	const char	*request_id;	/* NULL: "-" */
	const char	*client;	/* the front's REMOTE_ADDR */
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

/* Copies len bytes of in to out (size bytes, always NUL-terminated when
 * size > 0) so that the result is printable UTF-8: valid characters are
 * kept; C0 controls, DEL, '"', '\\' and every byte not part of a valid
 * UTF-8 character become \xHH; C1 controls, bidi controls (U+061C,
 * U+200E/F, U+202A-U+202E, U+2066-U+2069) and U+2028/U+2029 become
 * \u{hex}. With LOG_ESCAPE_SPACE a space becomes \x20 (unquoted fields).
 * Cuts only between whole escapes or characters. Returns strlen(out). */
#define LOG_ESCAPE_SPACE	0x1
size_t	log_escape(char *out, size_t size, const char *in, size_t len,
	    int flags);

#endif
