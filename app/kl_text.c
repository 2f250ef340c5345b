/*
 * kl_text.c: profile text rules (see kl_text.h). No state, no I/O.
 */
#include <string.h>
#include <strings.h>

#include "kl_text.h"

void
kl_copy_utf8(char *dst, size_t size, const char *src)
{
	size_t	len = strlen(src);

	if (len >= size) {
		len = size - 1;
		while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
}

bool
kl_is_web_url(const char *s)
{
	const char	*host, *p;

	if (strncasecmp(s, "https://", 8) == 0)
		host = s + 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		host = s + 7;
	else
		return false;
	if (*host == '\0' || *host == '/')
		return false;
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return false;
	return true;
}
