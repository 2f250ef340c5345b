/*
 * json_writer.h: JSON answers written straight into a struct kl_buf.
 *
 * Building answers as a Jansson tree and dumping it cost more than a sixth
 * of a login's instructions (callgrind), so answers are written as text.
 * Every string given here must be valid UTF-8 (it came through Jansson's
 * parser, the body parser, or our own store): the writer escapes quotes,
 * backslashes, control characters, DEL and U+2028/U+2029 (line ends in
 * JavaScript before ES2019, so an answer pasted into a script stays whole).
 * Errors are the buffer's sticky flags: write, then check kl_buf_bad().
 */
#ifndef KL_JSON_WRITER_H
#define KL_JSON_WRITER_H

#include <stdint.h>
#include <time.h>

#include "kl_buf.h"

/* Text as is: punctuation and names the caller spells. */
void	jw_raw(struct kl_buf *b, const char *s);
/* A JSON string; jw_string_or_null writes null for "". */
void	jw_string(struct kl_buf *b, const char *s);
void	jw_string_or_null(struct kl_buf *b, const char *s);
void	jw_u64(struct kl_buf *b, uint64_t n);
void	jw_i64(struct kl_buf *b, int64_t n);
void	jw_bool(struct kl_buf *b, int v);
/* "2026-11-27T09:51:50Z" (UTC), or null when t cannot be converted. */
void	jw_time(struct kl_buf *b, time_t t);

#endif
