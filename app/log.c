/*
 * log.c: the log sink. Owns one file descriptor (stderr by default) opened
 * before the threads start and never changed afterwards, so writers need no
 * lock. Knows nothing of requests beyond struct log_request; never sees a
 * token or secret, and escapes anything a client chose (the path) so that a
 * line stays one line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kl_limits.h"
#include "log.h"

static int log_fd = STDERR_FILENO;

int
log_open(const char *path)
{
	int	fd;

	if (path == NULL || path[0] == '\0')
		return 0;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1)
		return -1;
	log_fd = fd;
	return 0;
}

void
log_close(void)
{
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = STDERR_FILENO;
}

static size_t
log_stamp(char *buf, size_t size)
{
	struct timespec	ts;
	struct tm	tm;
	size_t		n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, size - n, ".%03ldZ",
	    ts.tv_nsec / 1000000);
	return n;
}

static void
log_write(char *buf, size_t len, size_t size)
{
	ssize_t	w;

	if (len >= size - 1)
		len = size - 2;		/* truncated: keep the newline */
	buf[len++] = '\n';
	do
		w = write(log_fd, buf, len);
	while (w == -1 && errno == EINTR);
}

static void log_vline(const char *, const char *, va_list)
    __attribute__((format(printf, 2, 0)));

static void
log_vline(const char *level, const char *fmt, va_list ap)
{
	char	buf[MAX_LOG_LINE];
	size_t	n;
	int	m;

	n = log_stamp(buf, sizeof(buf));
	m = snprintf(buf + n, sizeof(buf) - n, " %s pid=%ld ", level,
	    (long)getpid());
	n += (size_t)m;
	m = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	if (m > 0)
		n += (size_t)m;
	log_write(buf, n, sizeof(buf));
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vline("info", fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vline("warn", fmt, ap);
	va_end(ap);
}

/* Copies s into out, replacing bytes outside printable ASCII, spaces and
 * quotes by '?', so a client cannot forge or split log lines. */
static void
log_clean(char *out, size_t size, const char *s)
{
	size_t	i;

	if (s == NULL)
		s = "-";
	for (i = 0; i + 1 < size && s[i] != '\0'; i++)
		out[i] = (s[i] > ' ' && s[i] < 0x7f && s[i] != '"') ?
		    s[i] : '?';
	out[i] = '\0';
}

void
log_request(const struct log_request *r)
{
	char	buf[MAX_LOG_LINE], method[16], path[256], detail[MAX_ERROR_DETAIL];
	size_t	n;
	int	m;

	log_clean(method, sizeof(method), r->method);
	log_clean(path, sizeof(path), r->path);
	snprintf(detail, sizeof(detail), "%s", r->detail ? r->detail : "");
	for (n = 0; detail[n] != '\0'; n++)
		if (detail[n] == '\n' || detail[n] == '\r' || detail[n] == '"')
			detail[n] = ' ';
	n = log_stamp(buf, sizeof(buf));
	m = snprintf(buf + n, sizeof(buf) - n,
	    " req pid=%ld method=%s path=%s status=%d message=%s user=%llu "
	    "ms=%.3f upstream_ms=%.3f detail=\"%s\"", (long)getpid(), method,
	    path, r->status, r->message, (unsigned long long)r->user_id,
	    r->duration_us / 1000.0, r->upstream_us / 1000.0, detail);
	if (m > 0)
		n += (size_t)m;
	log_write(buf, n, sizeof(buf));
}
