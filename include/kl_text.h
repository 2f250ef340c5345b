/*
 * kl_text.h: the two rules for profile text that comes from Kakao, shared
 * by the profile parser (kakao layer) and the id_token claims (token
 * layer), so both apply them the same way. Pure functions; thread-safe.
 */
#ifndef KL_TEXT_H
#define KL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Copies the UTF-8 string src into dst (size bytes), cut at a character
 * boundary to fit; dst is always NUL-terminated (size > 0). */
void	kl_copy_utf8(char *dst, size_t size, const char *src);

/* An absolute http or https URL with a host and no blank or control byte:
 * what an <img src> may safely get. javascript:, data: and the like would
 * run or render in a front end that trusts the field. */
bool	kl_is_web_url(const char *s);

#endif
