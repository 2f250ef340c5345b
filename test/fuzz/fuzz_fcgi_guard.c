/*
 * fuzz_fcgi_guard.c: the bytes, as what a peer of the FastCGI socket sends,
 * go to fcgi_guard_feed(), once whole and once in pieces whose sizes the
 * first byte chooses.
 *
 * Beyond "does not crash" it asserts that the verdict does not depend on
 * how the kernel splits reads, and that a refused stream stays refused.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fcgi_guard.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fcgi_guard	whole, pieces;
	size_t			off = 0, step;
	int			a, b = 0;

	if (size < 1)
		return 0;
	step = (size_t)(data[0] % 13) + 1;
	data++;
	size--;
	memset(&whole, 0, sizeof(whole));
	a = fcgi_guard_feed(&whole, data, size);
	memset(&pieces, 0, sizeof(pieces));
	while (off < size && b == 0) {
		if (step > size - off)
			step = size - off;
		b = fcgi_guard_feed(&pieces, data + off, step);
		off += step;
		step = step * 7 % 13 + 1;
	}
	assert(a == b);
	if (a == -1)
		assert(fcgi_guard_feed(&whole, (const uint8_t *)"\1", 1) == -1);
	return 0;
}
