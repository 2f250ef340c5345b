/*
 * fuzz_forward.c: the bytes are a forwarded write as the master's
 * dispatch receives it from a replica over repmgr, and a reply as a
 * replica reads it from the master (app/store_forward.c). Berkeley DB
 * 5.3's repmgr authenticates nobody: whoever reaches a replication port
 * can send these.
 *
 * Beyond "does not crash" (ASan: no read past the bytes, no write past a
 * field) it asserts: a request that decodes whole decodes the same way
 * again (the decoder keeps no state), and at most every op's reply
 * decodes.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store_forward.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool		ok, ok2;
	unsigned	n, n2;

	assert(store_forward_decode_check(data, size, &ok, &n) == 0);
	assert(store_forward_decode_check(data, size, &ok2, &n2) == 0);
	assert(ok == ok2 && n == n2);
	assert(n <= 15);
	return 0;
}
