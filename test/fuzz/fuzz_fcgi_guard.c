/*
 * fuzz_fcgi_guard.c: the bytes, as what a peer of the FastCGI socket sends,
 * go to fcgi_guard_feed(), once whole and once in pieces whose sizes the
 * first byte chooses.
 *
 * Beyond "does not crash" it asserts that the verdict, and what the guard
 * saw of the request (what fuzz_fcgi_diff compares with libfcgi), do not
 * depend on how the kernel splits reads, and that a refused stream stays
 * refused.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi_guard.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fcgi_guard	 whole, pieces;
	unsigned char		*a_buf, *b_buf, one[1] = { 1 };
	size_t			 off = 0, step;
	int			 a, b = 0;

	if (size < 1)
		return 0;
	step = (size_t)(data[0] % 13) + 1;
	data++;
	size--;
	/* The guard may clear a flag in place: feed copies. */
	if ((a_buf = malloc(size + 1)) == NULL ||
	    (b_buf = malloc(size + 1)) == NULL) {
		free(a_buf);
		return 0;
	}
	memcpy(a_buf, data, size);
	memcpy(b_buf, data, size);
	memset(&whole, 0, sizeof(whole));
	a = fcgi_guard_feed(&whole, a_buf, size);
	memset(&pieces, 0, sizeof(pieces));
	while (off < size && b == 0) {
		if (step > size - off)
			step = size - off;
		b = fcgi_guard_feed(&pieces, b_buf + off, step);
		off += step;
		step = step * 7 % 13 + 1;
	}
	assert(a == b);
	if (a == 0) {
		assert(memcmp(a_buf, b_buf, size) == 0);
		assert(whole.phase == pieces.phase);
		assert(whole.request_id == pieces.request_id);
		assert(whole.params_ended == pieces.params_ended);
		assert(whole.params.count == pieces.params.count);
		assert(whole.params.bytes == pieces.params.bytes);
		assert(whole.stdin_bytes == pieces.stdin_bytes);
	}
	if (a == -1)
		assert(fcgi_guard_feed(&whole, one, 1) == -1);
	free(a_buf);
	free(b_buf);
	return 0;
}
