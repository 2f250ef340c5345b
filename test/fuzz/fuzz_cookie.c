/*
 * fuzz_cookie.c: the bytes are a browser's Cookie header value (up to its
 * first NUL), searched for the refresh cookie by http_cookie_find() with
 * out buffers of several sizes.
 *
 * Beyond "does not crash" it asserts: out is always terminated within its
 * size; a find (1) gives a non-empty value of cookie-octets only, shorter
 * than the buffer, that occurs in the header; absent (0) and refused
 * (-1) leave out empty; the answer does not depend on the buffer size but
 * for values too long for the smaller one.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_cookie.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
octets_only(const char *v)
{
	for (; *v != '\0'; v++) {
		unsigned char c = (unsigned char)*v;

		if (c <= 0x20 || c >= 0x7f || c == '"' || c == ',' ||
		    c == ';' || c == '\\')
			return 0;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t	 sizes[] = { 1, 8, 44, 4097 };
	char			*hdr, out[4097 + 8];
	int			 rc[4];
	size_t			 i;

	if ((hdr = malloc(size + 1)) == NULL)
		return 0;
	memcpy(hdr, data, size);
	hdr[size] = '\0';
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		memset(out, 'X', sizeof(out));
		rc[i] = http_cookie_find(hdr, HTTP_COOKIE_REFRESH_SECURE, out,
		    sizes[i]);
		assert(rc[i] >= -1 && rc[i] <= 1);
		assert(memchr(out, '\0', sizes[i]) != NULL);
		assert(out[sizes[i]] == 'X');
		if (rc[i] == 1) {
			assert(out[0] != '\0' && strlen(out) < sizes[i]);
			assert(octets_only(out));
			assert(strstr(hdr, out) != NULL);
		} else
			assert(out[0] == '\0');
	}
	/* The largest buffer holds any value: it only finds more. */
	for (i = 0; i < 3; i++)
		if (rc[i] != -1)
			assert(rc[i] == rc[3]);
	free(hdr);
	return 0;
}
