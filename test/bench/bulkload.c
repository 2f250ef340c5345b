/*
 * bulkload.c: opens sessions in a kakao-login store for the benchmark.
 *
 *   bulkload -s JWT_SECRET_FILE OUT DB_HOME FIRST COUNT
 *	one fresh session for each of the users with Kakao ids FIRST ..
 *	FIRST + COUNT - 1 (which must exist), its first refresh token written
 *	to OUT (created mode 0600, one token a line), for the refresh row:
 *	each token can rotate once.
 *
 * The users themselves are loaded with kakao-login-admin users import
 * (test/bench/bench.py), the operator's path; sessions need the token
 * layer, which the admin tool does not link. Goes through
 * store_session_open(), the path a login's session takes, so the records
 * and the secondary indexes are exactly what the service writes; the
 * refresh tokens are made and tagged by the token layer under the
 * service's own key file, so the service finds them. Only durability is
 * relaxed (nosync, one checkpoint at the end). Single-threaded; a test
 * tool: the tokens it writes are secrets of a throw-away store, and OUT is
 * the only copy it keeps.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "handlers.h"
#include "store.h"
#include "store_session.h"
#include "token.h"

/* One session for kakao_id, its first token appended to out. */
static int
open_session(struct store *st, const struct token_ctx *tok, int64_t kakao_id,
    FILE *out, struct kl_error *err)
{
	struct store_user	 u;
	struct store_session_new n;
	struct store_session	 s;
	char			 hex[SID_HEX_LEN + 1];
	char			 rt[REFRESH_TOKEN_LEN + 1];
	int			 rc = -1;

	if (store_user_get(st, kakao_id, &u, err) == -1 ||
	    token_sid_new(n.sid, hex, err) == -1 ||
	    token_refresh_new(rt, err) == -1)
		goto done;
	if (token_tag(tok, HANDLER_REFRESH_PURPOSE, rt, REFRESH_TOKEN_LEN,
	    n.tag, err) == -1 ||
	    store_session_open(st, &n, u.user_id, u.kakao_id, time(NULL), &s,
	    err) == -1)
		goto done;
	if (fprintf(out, "%s\n", rt) < 0) {
		kl_fail(err, KL_INTERNAL, "writing a token failed");
		goto done;
	}
	rc = 0;
done:
	explicit_bzero(rt, sizeof(rt));
	explicit_bzero(&n, sizeof(n));
	return rc;
}

static int
load_sessions(struct store *st, const char *secret, const char *path,
    long long first, long long count)
{
	struct token_ctx	*tok;
	struct kl_error		 err;
	FILE			*out = NULL;
	long long		 i;
	int			 fd, rc = -1;

	/* A token_ctx holds MAX_JWT_KEYS keys: too large for the stack. */
	if ((tok = calloc(1, sizeof(*tok))) == NULL) {
		fprintf(stderr, "bulkload: out of memory\n");
		return -1;
	}
	if (token_init(tok, secret, "bulkload", DEFAULT_JWT_TTL, &err) == -1) {
		fprintf(stderr, "bulkload: %s\n", err.detail);
		goto done;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    (out = fdopen(fd, "w")) == NULL) {
		perror(path);
		if (fd != -1)
			close(fd);
		goto done;
	}
	for (i = 0; i < count; i++)
		if (open_session(st, tok, first + i, out, &err) == -1) {
			fprintf(stderr, "bulkload: session for kakao id %lld: "
			    "%s\n", first + i, err.detail);
			goto done;
		}
	rc = 0;
done:
	if (out != NULL && fclose(out) != 0 && rc == 0) {
		perror(path);
		rc = -1;
	}
	token_wipe(tok);
	free(tok);
	return rc;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bulkload -s JWT_SECRET_FILE OUT DB_HOME FIRST "
	    "COUNT\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct store		*st;
	struct kl_error		 err;
	long long		 first, count;
	int			 rc;

	if (argc != 7 || strcmp(argv[1], "-s") != 0 ||
	    (first = atoll(argv[5])) <= 0 || (count = atoll(argv[6])) <= 0)
		usage();
	if (store_open(&st, argv[4], DURABILITY_NOSYNC, &err) == -1) {
		fprintf(stderr, "bulkload: %s\n", err.detail);
		return 1;
	}
	rc = load_sessions(st, argv[2], argv[3], first, count);
	if (store_maintain(st, &err) == -1)
		fprintf(stderr, "bulkload: checkpoint: %s\n", err.detail);
	store_close(st);
	return rc == 0 ? 0 : 1;
}
