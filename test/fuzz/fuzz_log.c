/*
 * fuzz_log.c: the bytes go to log_escape() (app/log.c), which decodes them
 * as UTF-8, as every log field holding outside bytes does. The first byte
 * picks the flags (bit 0: LOG_ESCAPE_SPACE) and, when bit 1 is set, a small
 * output buffer (the next byte + 1), to reach the truncation paths.
 *
 * Beyond "does not crash" it asserts on the output: NUL-terminated, the
 * length returned; valid UTF-8 (no overlong forms, surrogates or values
 * above U+10FFFF); no byte below 0x20, no DEL, no '"'; none of U+0080 -
 * U+009F, U+061C, U+200E/F, U+2028 - U+202E, U+2066 - U+2069; no space
 * with LOG_ESCAPE_SPACE. With the full-size buffer, undoing the escapes
 * gives back the input byte for byte (nothing lost, nothing ambiguous).
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes one UTF-8 character; asserts it is valid. Returns its length. */
static size_t
utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
	size_t		len, i;
	uint32_t	c, min;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if ((p[0] & 0xe0) == 0xc0)
		len = 2, c = p[0] & 0x1f, min = 0x80;
	else if ((p[0] & 0xf0) == 0xe0)
		len = 3, c = p[0] & 0x0f, min = 0x800;
	else if ((p[0] & 0xf8) == 0xf0)
		len = 4, c = p[0] & 0x07, min = 0x10000;
	else
		abort();	/* not a lead byte */
	assert(n >= len);
	for (i = 1; i < len; i++) {
		assert((p[i] & 0xc0) == 0x80);
		c = c << 6 | (p[i] & 0x3f);
	}
	assert(c >= min && c <= 0x10ffff && !(c >= 0xd800 && c <= 0xdfff));
	*cp = c;
	return len;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	assert(c >= 'a' && c <= 'f');
	return c - 'a' + 10;
}

/* Undoes the escapes of out into back; returns the length. */
static size_t
unescape(const char *out, size_t olen, unsigned char *back)
{
	size_t		i = 0, n = 0;
	uint32_t	c;

	while (i < olen) {
		if (out[i] != '\\') {
			back[n++] = (unsigned char)out[i++];
			continue;
		}
		assert(i + 1 < olen);
		if (out[i + 1] == 'x') {
			assert(i + 3 < olen);
			back[n++] = (unsigned char)(hexval(out[i + 2]) << 4 |
			    hexval(out[i + 3]));
			i += 4;
			continue;
		}
		assert(out[i + 1] == 'u' && out[i + 2] == '{');
		for (c = 0, i += 3; out[i] != '}'; i++)
			c = c << 4 | (uint32_t)hexval(out[i]);
		i++;
		/* Only 2- and 3-byte code points are escaped this way. */
		if (c < 0x800) {
			back[n++] = (unsigned char)(0xc0 | c >> 6);
		} else {
			back[n++] = (unsigned char)(0xe0 | c >> 12);
			back[n++] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
		}
		back[n++] = (unsigned char)(0x80 | (c & 0x3f));
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char	*p;
	unsigned char		*back;
	char			*out;
	size_t			 outsize, olen, i, n;
	uint32_t		 cp;
	int			 flags = 0, small = 0;

	if (size > 0) {
		flags = (data[0] & 1) ? LOG_ESCAPE_SPACE : 0;
		small = (data[0] & 2) != 0;
		data++;
		size--;
	}
	outsize = 4 * size + 1;		/* the worst case: \xHH per byte */
	if (small && size > 0) {
		outsize = (size_t)data[0] + 1;
		data++;
		size--;
	}
	if ((out = malloc(outsize)) == NULL)
		abort();
	memset(out, 'Z', outsize);
	olen = log_escape(out, outsize, (const char *)data, size, flags);
	assert(olen < outsize && out[olen] == '\0' && strlen(out) == olen);

	p = (const unsigned char *)out;
	for (i = 0; i < olen; i += n) {
		n = utf8_next(p + i, olen - i, &cp);
		assert(cp >= 0x20 && cp != 0x7f && cp != '"');
		assert(!(flags & LOG_ESCAPE_SPACE) || cp != ' ');
		assert(!(cp >= 0x80 && cp <= 0x9f));
		assert(cp != 0x061c && cp != 0x200e && cp != 0x200f);
		assert(!(cp >= 0x2028 && cp <= 0x202e));
		assert(!(cp >= 0x2066 && cp <= 0x2069));
	}
	if (!small) {
		if ((back = malloc(olen + 1)) == NULL)
			abort();
		assert(unescape(out, olen, back) == size);
		assert(size == 0 || memcmp(back, data, size) == 0);
		free(back);
	}
	free(out);
	return 0;
}
