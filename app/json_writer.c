/*
 * json_writer.c: JSON text into a kl_buf (see json_writer.h).
 *
 * Pure: no state, no I/O; each buffer has one owner. The only escaping of
 * answer strings in the service.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "json_writer.h"

void
jw_raw(struct kl_buf *b, const char *s)
{
	kl_buf_puts(b, s);
}

/* U+2028 LINE SEPARATOR or U+2029 PARAGRAPH SEPARATOR at s. */
static bool
is_line_separator(const char *s)
{
	return (unsigned char)s[0] == 0xe2 && (unsigned char)s[1] == 0x80 &&
	    ((unsigned char)s[2] == 0xa8 || (unsigned char)s[2] == 0xa9);
}

void
jw_string(struct kl_buf *b, const char *s)
{
	const char	*run;
	char		 esc[7];
	unsigned char	 c;

	kl_buf_put(b, "\"", 1);
	for (run = s; (c = (unsigned char)*s) != '\0'; s++) {
		if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f &&
		    !is_line_separator(s))
			continue;
		kl_buf_put(b, run, (size_t)(s - run));
		if (c == 0xe2) {
			/* U+2028 / U+2029, bytes e2 80 a8 / e2 80 a9. */
			kl_buf_put(b, (unsigned char)s[2] == 0xa8 ?
			    "\\u2028" : "\\u2029", 6);
			s += 2;
		} else if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			kl_buf_put(b, esc, 2);
		} else {
			memcpy(esc, "\\u00", 4);
			esc[4] = kl_hex[c >> 4];
			esc[5] = kl_hex[c & 0xf];
			kl_buf_put(b, esc, 6);
		}
		run = s + 1;
	}
	kl_buf_put(b, run, (size_t)(s - run));
	kl_buf_put(b, "\"", 1);
}

void
jw_string_or_null(struct kl_buf *b, const char *s)
{
	if (*s == '\0')
		kl_buf_put(b, "null", 4);
	else
		jw_string(b, s);
}

void
jw_u64(struct kl_buf *b, uint64_t n)
{
	char	buf[24];

	kl_buf_put(b, buf, (size_t)snprintf(buf, sizeof(buf), "%" PRIu64, n));
}

void
jw_i64(struct kl_buf *b, int64_t n)
{
	char	buf[24];

	kl_buf_put(b, buf, (size_t)snprintf(buf, sizeof(buf), "%" PRId64, n));
}

void
jw_bool(struct kl_buf *b, int v)
{
	kl_buf_puts(b, v ? "true" : "false");
}

void
jw_time(struct kl_buf *b, time_t t)
{
	struct tm	tm;
	char		buf[32];

	if (gmtime_r(&t, &tm) == NULL) {
		kl_buf_put(b, "null", 4);
		return;
	}
	kl_buf_put(b, buf, strftime(buf, sizeof(buf),
	    "\"%Y-%m-%dT%H:%M:%SZ\"", &tm));
}
