/*
 * kl_buf.h: the one growable byte buffer, and the one hex table.
 *
 * A struct kl_buf starts zeroed ({ 0 }: empty, nothing allocated). Appends
 * grow it by doubling and keep it NUL-terminated; an allocation failure or
 * an append past the buffer's limit sets a sticky flag instead of failing
 * each call, so a writer appends freely and checks once at the end. The
 * buffer owns data; kl_buf_free() releases it, kl_buf_take() hands it to
 * the caller (who frees it with free()). Not thread-safe: one owner.
 */
#ifndef KL_BUF_H
#define KL_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct kl_buf {
	char	*data;		/* NULL until the first append */
	size_t	 len, cap;
	size_t	 limit;		/* 0: none; appends past it set overflow */
	bool	 failed;	/* out of memory */
	bool	 overflow;	/* an append would have passed limit */
};

/* Lowercase hex digits: the one table for every hex writer. */
extern const char kl_hex[16];

/* Appends n bytes of s. Returns 0, or -1 (and sets the flag) when out of
 * memory or past the limit; later appends then do nothing. */
int	kl_buf_put(struct kl_buf *b, const void *s, size_t n);
int	kl_buf_puts(struct kl_buf *b, const char *s);

/* Empties the buffer and clears the flags, keeping its memory. */
void	kl_buf_reset(struct kl_buf *b);

/* Frees the memory when more than keep bytes are held, so one large use
 * does not pin its buffer for a thread's life; then resets. */
void	kl_buf_shrink(struct kl_buf *b, size_t keep);

/* True when an append failed: the contents are unusable. */
bool	kl_buf_bad(const struct kl_buf *b);

/* Returns the data (NUL-terminated, never NULL unless out of memory) and
 * leaves the buffer empty; the caller frees the result with free(). */
char	*kl_buf_take(struct kl_buf *b);

/* Frees the data (wiped first when wipe is true: it held a secret). */
void	kl_buf_free(struct kl_buf *b, bool wipe);

/* Writes n bytes of src as 2n lowercase hex digits and a NUL into dst. */
void	kl_hex_encode(char *dst, const unsigned char *src, size_t n);
/* The value of a lowercase hex digit (what kl_hex_encode writes), or -1. */
int	kl_hex_value(char c);

#endif
