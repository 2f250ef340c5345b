/*
 * bulkload.c: fills a kakao-login store with COUNT users, Kakao ids FIRST ..
 * FIRST + COUNT - 1, for the benchmark's growth check.
 *
 *   bulkload DB_HOME FIRST COUNT
 *
 * Goes through store_user_login(), the path a login takes, so the records,
 * the secondary index and the id sequence are exactly what the service
 * writes; only durability is relaxed (nosync, one checkpoint at the end).
 * It may run while the service runs: both join the same environment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "store.h"

int
main(int argc, char *argv[])
{
	struct store		*st;
	struct store_login	 in = { 0 };
	struct store_user	 u;
	struct kl_error		 err;
	char			 nick[32], email[64];
	long long		 first, count, i;
	time_t			 now = time(NULL);

	if (argc != 4 || (first = atoll(argv[2])) <= 0 ||
	    (count = atoll(argv[3])) <= 0) {
		fprintf(stderr, "usage: bulkload DB_HOME FIRST COUNT\n");
		return 2;
	}
	if (store_open(&st, argv[1], DURABILITY_NOSYNC, &err) == -1) {
		fprintf(stderr, "bulkload: %s\n", err.detail);
		return 1;
	}
	in.nickname = nick;
	in.email = email;
	in.email_verified = true;
	for (i = 0; i < count; i++) {
		in.kakao_id = first + i;
		snprintf(nick, sizeof(nick), "user%lld", first + i);
		snprintf(email, sizeof(email), "user%lld@example.com", first + i);
		if (store_user_login(st, &in, now, &u, &err) == -1) {
			fprintf(stderr, "bulkload: kakao id %lld: %s\n",
			    first + i, err.detail);
			store_close(st);
			return 1;
		}
	}
	if (store_maintain(st, &err) == -1)
		fprintf(stderr, "bulkload: checkpoint: %s\n", err.detail);
	store_close(st);
	return 0;
}
