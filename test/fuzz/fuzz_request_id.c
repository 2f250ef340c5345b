/*
 * fuzz_request_id.c: the bytes are a front's X-Request-Id value (up to its
 * first NUL), given to fcgi_reqid_pick() as the one sent, and again as
 * sent twice.
 *
 * Beyond "does not crash" it asserts: the id answered is always valid
 * (fcgi_reqid_valid) and at most MAX_REQUEST_ID bytes, so it can go into a
 * header and a log line as it is; it is the sent value exactly when that
 * was valid and sent once; else it is a made id of FCGI_REQID_MADE_LEN
 * lower-case hex digits; a duplicated header is never believed.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi_reqid.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_made(const char *id)
{
	assert(strlen(id) == FCGI_REQID_MADE_LEN);
	assert(strspn(id, "0123456789abcdef") == FCGI_REQID_MADE_LEN);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fcgi_reqid	 g;
	static int			 ready;
	char				 out[FCGI_REQID_SIZE], *sent;
	const char			*id;

	if (!ready) {
		fcgi_reqid_init(&g);
		ready = 1;
	}
	if ((sent = malloc(size + 1)) == NULL)
		return 0;
	memcpy(sent, data, size);
	sent[size] = '\0';
	id = fcgi_reqid_pick(&g, sent, 1, out);
	assert(id == out && fcgi_reqid_valid(id));
	assert(strlen(id) <= MAX_REQUEST_ID);
	if (fcgi_reqid_valid(sent))
		assert(strcmp(id, sent) == 0);
	else
		check_made(id);
	check_made(fcgi_reqid_pick(&g, sent, 2, out));
	free(sent);
	return 0;
}
