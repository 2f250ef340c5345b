/*
 * log.c: the log sink. Owns one file descriptor (stderr by default) opened
 * before the threads start and never changed afterwards, so writers need no
 * lock. Knows nothing of requests beyond struct log_request; never sees a
 * token or secret. Every field that can hold outside bytes (method, path,
 * detail, and the whole text of log_info / log_warn) goes through
 * log_escape(), so a line stays one line, in UTF-8, and reads as written:
 * no control bytes, no invalid UTF-8, no bidi or line-separator code
 * points. Thread-safe: no state but the fd.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kl_error.h"
#include "kl_limits.h"
#include "kl_path.h"
#include "log.h"

static int log_fd = STDERR_FILENO;

/* Opens path for appending without following a symlink or blocking on a
 * FIFO, and keeps it only when it is a regular file of our own user: the
 * log is opened after the privilege drop, so nothing root made is reused. */
static int
log_open_fd(const char *path, int create, struct kl_error *err)
{
	struct stat	st;
	int		fd;

	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK | (create ? O_CREAT : 0), 0640);
	if (fd == -1)
		return kl_fail(err, KL_BAD_CONFIG, "log_file %s: %s", path,
		    errno == ELOOP ? "a symbolic link" : strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return kl_fail(err, KL_BAD_CONFIG, "log_file %s: not a regular "
		    "file", path);
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		return kl_fail(err, KL_BAD_CONFIG, "log_file %s: owned by uid "
		    "%ld, not by uid %ld that runs this (run -t as the "
		    "service's user, or with -u)", path, (long)st.st_uid,
		    (long)geteuid());
	}
	/* Appends to a regular file never block; keep write() simple. */
	if (fcntl(fd, F_SETFL, O_APPEND) == -1) {
		close(fd);
		return kl_fail(err, KL_BAD_CONFIG, "log_file %s: %s", path,
		    strerror(errno));
	}
	return fd;
}

int
log_open(const char *path, struct kl_error *err)
{
	int	fd;

	if (path == NULL || path[0] == '\0')
		return 0;
	if ((fd = log_open_fd(path, 1, err)) == -1)
		return -1;
	log_fd = fd;
	return 0;
}

int
log_check(const char *path, struct kl_error *err)
{
	char		 dir[MAX_CONFIG_PATH];
	struct stat	 st;
	int		 fd;

	if (path == NULL || path[0] == '\0')
		return 0;
	if (lstat(path, &st) == 0 || errno != ENOENT) {
		if ((fd = log_open_fd(path, 0, err)) == -1)
			return -1;
		close(fd);
		return 0;
	}
	/* Not there yet: its directory must let us create it. */
	if (kl_path_parent(dir, sizeof(dir), path) == -1)
		return kl_fail(err, KL_BAD_CONFIG, "log_file: path too long");
	if (stat(dir, &st) == -1)
		return kl_fail(err, KL_BAD_CONFIG, "log_file %s: directory %s: "
		    "%s", path, dir, strerror(errno));
	if (!S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) == -1)
		return kl_fail(err, KL_BAD_CONFIG, "log_file %s: cannot create "
		    "it in %s", path, dir);
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
	char	buf[MAX_LOG_LINE], msg[MAX_LOG_LINE];
	size_t	n;
	int	m;

	n = log_stamp(buf, sizeof(buf));
	m = snprintf(buf + n, sizeof(buf) - n, " %s pid=%ld ", level,
	    (long)getpid());
	n += (size_t)m;
	/* The arguments may carry outside text: escape the whole message. */
	m = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (m > 0)
		n += log_escape(buf + n, sizeof(buf) - n, msg,
		    (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1, 0);
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

/* Length of the UTF-8 character at p (n bytes left) and its code point,
 * or 0 when the bytes there are not one: overlong, surrogate, above
 * U+10FFFF, cut short, or a stray continuation byte. */
static size_t
utf8_char(const unsigned char *p, size_t n, uint32_t *cp)
{
	size_t		len, i;
	uint32_t	c, min;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, c = p[0] & 0x1f, min = 0x80;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, c = p[0] & 0x0f, min = 0x800;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, c = p[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* Code points that reorder or split what a reader sees: C1 controls
 * (U+0085 NEL among them), bidi embeddings, overrides, isolates and marks,
 * and the line and paragraph separators. */
static int
log_unsafe_cp(uint32_t c)
{
	return (c >= 0x80 && c <= 0x9f) || c == 0x061c || c == 0x200e ||
	    c == 0x200f || (c >= 0x2028 && c <= 0x202e) ||
	    (c >= 0x2066 && c <= 0x2069);
}

size_t
log_escape(char *out, size_t size, const char *in, size_t len, int flags)
{
	const unsigned char	*p = (const unsigned char *)in;
	char			 esc[16];
	size_t			 i = 0, o = 0, n, elen;
	uint32_t		 cp;

	if (size == 0)
		return 0;
	while (i < len) {
		n = utf8_char(p + i, len - i, &cp);
		if (n == 0 || cp < 0x20 || cp == 0x7f || cp == '"' ||
		    cp == '\\' || (cp == ' ' && (flags & LOG_ESCAPE_SPACE))) {
			elen = (size_t)snprintf(esc, sizeof(esc), "\\x%02x",
			    p[i]);
			n = 1;
		} else if (log_unsafe_cp(cp))
			elen = (size_t)snprintf(esc, sizeof(esc), "\\u{%x}",
			    (unsigned)cp);
		else {
			memcpy(esc, p + i, n);
			elen = n;
		}
		if (o + elen >= size)
			break;		/* whole escapes or characters only */
		memcpy(out + o, esc, elen);
		o += elen;
		i += n;
	}
	out[o] = '\0';
	return o;
}

/* A field the client or Kakao chose, escaped; "-" when absent. */
static void
log_field(char *out, size_t size, const char *s, int flags)
{
	if (s == NULL)
		s = "-";
	log_escape(out, size, s, strlen(s), flags);
}

void
log_request(const struct log_request *r)
{
	char	buf[MAX_LOG_LINE], method[LOG_METHOD_FIELD];
	char	path[LOG_PATH_FIELD], rid[LOG_ID_FIELD], client[LOG_ID_FIELD];
	char	detail[MAX_ERROR_DETAIL * 4];
	size_t	n;
	int	m;

	log_field(rid, sizeof(rid), r->request_id, LOG_ESCAPE_SPACE);
	log_field(client, sizeof(client), r->client, LOG_ESCAPE_SPACE);
	log_field(method, sizeof(method), r->method, LOG_ESCAPE_SPACE);
	log_field(path, sizeof(path), r->path, LOG_ESCAPE_SPACE);
	log_field(detail, sizeof(detail), r->detail ? r->detail : "", 0);
	n = log_stamp(buf, sizeof(buf));
	m = snprintf(buf + n, sizeof(buf) - n,
	    " req pid=%ld id=%s client=%s method=%s path=%s status=%d "
	    "message=%s user=%llu ms=%.3f upstream_ms=%.3f detail=\"%s\"",
	    (long)getpid(), rid, client, method, path, r->status, r->message, (unsigned long long)r->user_id,
	    r->duration_us / 1000.0, r->upstream_us / 1000.0, detail);
	if (m > 0)
		n += (size_t)m;
	log_write(buf, n, sizeof(buf));
}
