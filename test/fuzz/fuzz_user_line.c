/*
 * fuzz_user_line.c: the bytes, as one line of a users export, go to
 * admin_user_parse() (kakao-login-admin users import); a line that parses
 * is printed again with admin_user_json() and parsed once more.
 *
 * Asserts that what parses is a record the store can encode (ids in range,
 * fields within their limits, no NUL), and the round trip: the printed
 * line parses to the same user, and prints the same bytes again.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin_user.h"
#include "kl_limits.h"
#include "store.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The user printed as users export prints it; the caller frees. */
static char *
print(const struct store_user *u)
{
	json_t	*v = admin_user_json(u);
	char	*s;

	assert(v != NULL);
	s = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	assert(s != NULL);
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_user	u, again;
	unsigned char		rec[STORE_RECORD_MAX];
	char			why[200], *line, *line2;

	if (admin_user_parse((const char *)data, size, &u, why,
	    sizeof(why)) == -1) {
		assert(memchr(why, '\0', sizeof(why)) != NULL);
		return 0;
	}
	assert(u.user_id >= 1 && u.user_id <= ADMIN_IMPORT_MAX_ID);
	assert(u.kakao_id > 0);
	assert(store_record_encode(&u, rec, sizeof(rec)) > 0);
	line = print(&u);
	assert(admin_user_parse(line, strlen(line), &again, why,
	    sizeof(why)) == 0);
	line2 = print(&again);
	assert(strcmp(line, line2) == 0);
	free(line);
	free(line2);
	return 0;
}
