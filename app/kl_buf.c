/*
 * kl_buf.c: the growable buffer and the hex table (see kl_buf.h).
 *
 * Owns nothing beyond the buffers its callers hand it. Used by the JSON
 * writer (answers) and the Kakao client (upstream bodies). Pure memory:
 * no I/O, no locks; each buffer has one owner.
 */
#include <stdlib.h>
#include <string.h>

#include "kl_buf.h"

const char kl_hex[16] = "0123456789abcdef";

int
kl_buf_put(struct kl_buf *b, const void *s, size_t n)
{
	char	*p;
	size_t	 cap;

	if (b->failed || b->overflow)
		return -1;
	if (b->limit != 0 && (n > b->limit || b->len + n > b->limit)) {
		b->overflow = true;
		return -1;
	}
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = realloc(b->data, cap)) == NULL) {
			b->failed = true;
			return -1;
		}
		b->data = p;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
kl_buf_puts(struct kl_buf *b, const char *s)
{
	return kl_buf_put(b, s, strlen(s));
}

void
kl_buf_reset(struct kl_buf *b)
{
	b->len = 0;
	b->failed = false;
	b->overflow = false;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
kl_buf_shrink(struct kl_buf *b, size_t keep)
{
	if (b->cap > keep) {
		free(b->data);
		b->data = NULL;
		b->cap = 0;
	}
	kl_buf_reset(b);
}

bool
kl_buf_bad(const struct kl_buf *b)
{
	return b->failed || b->overflow;
}

char *
kl_buf_take(struct kl_buf *b)
{
	char	*p;

	if (b->data == NULL && kl_buf_put(b, "", 0) == -1)
		return NULL;
	p = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = b->overflow = false;
	return p;
}

void
kl_buf_free(struct kl_buf *b, bool wipe)
{
	if (b->data != NULL && wipe)
		explicit_bzero(b->data, b->cap);
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = b->overflow = false;
}

void
kl_hex_encode(char *dst, const unsigned char *src, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		dst[2 * i] = kl_hex[src[i] >> 4];
		dst[2 * i + 1] = kl_hex[src[i] & 0xf];
	}
	dst[2 * n] = '\0';
}

int
kl_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}
