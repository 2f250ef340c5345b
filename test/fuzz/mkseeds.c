/*
 * mkseeds.c: writes the seeds that only the service's own code can make:
 * tokens issued by token_issue() under the harness key (fuzz_key.h), and
 * user records encoded by store_record_encode(). Run by "make fuzz-seeds",
 * which writes into test/fuzz/corpus/; the files are committed, so this is
 * needed only when the key, the token format or the record format changes.
 *
 *   mkseeds <corpus dir>
 */
#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_key.h"
#include "store.h"
#include "token.h"

static void
write_file(const char *dir, const char *name, const void *p, size_t len)
{
	char	path[4096];
	FILE	*fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "wb")) == NULL)
		err(1, "%s", path);
	if (fwrite(p, 1, len, fp) != len || fclose(fp) != 0)
		err(1, "%s", path);
}

static void
write_record(const char *dir, const char *name, const struct store_user *u)
{
	unsigned char	buf[STORE_RECORD_MAX];
	int		n;

	if ((n = store_record_encode(u, buf, sizeof(buf))) == -1)
		errx(1, "%s: does not encode", name);
	write_file(dir, name, buf, (size_t)n);
}

static void
write_jwt(const char *dir, const char *name, const struct token_ctx *ctx,
    const struct token_subject *s, time_t now)
{
	struct kl_error	 e;
	char		*jwt;

	if (token_issue(ctx, s, now, &jwt, &e) == -1)
		errx(1, "token_issue: %s", e.detail);
	write_file(dir, name, jwt, strlen(jwt));
	free(jwt);
}

int
main(int argc, char *argv[])
{
	struct token_ctx	ctx;
	struct token_subject	s;
	struct store_user	u;
	char			dir[4096];
	size_t			i;

	if (argc != 2)
		errx(2, "usage: mkseeds corpus-dir");

	fuzz_token_ctx(&ctx);
	snprintf(dir, sizeof(dir), "%s/fuzz_jwt", argv[1]);
	memset(&s, 0, sizeof(s));
	s.user_id = 42;
	write_jwt(dir, "issued.jwt", &ctx, &s, FUZZ_JWT_NOW - 10);
	s.user_id = (uint64_t)INT64_MAX;
	write_jwt(dir, "issued-max-id.jwt", &ctx, &s, FUZZ_JWT_NOW);
	s.user_id = 7;
	s.kakao_id = 1855599935;
	snprintf(s.sid, sizeof(s.sid), "0123456789abcdef0123456789abcdef");
	write_jwt(dir, "issued-session.jwt", &ctx, &s, FUZZ_JWT_NOW - 10);

	snprintf(dir, sizeof(dir), "%s/fuzz_record", argv[1]);
	memset(&u, 0, sizeof(u));
	u.user_id = 1;
	u.kakao_id = 1855599935;
	u.created = u.updated = u.last_login = FUZZ_JWT_NOW;
	u.login_count = 1;
	write_record(dir, "bare.rec", &u);

	snprintf(u.nickname, sizeof(u.nickname), "\xed\x99\x8d\xea\xb8\xb8"
	    "\xeb\x8f\x99");	/* a Korean name, 3 x 3 bytes */
	snprintf(u.email, sizeof(u.email), "someone@example.com");
	u.email_verified = true;
	snprintf(u.profile_image, sizeof(u.profile_image),
	    "http://k.kakaocdn.net/dn/abc/img_640x640.jpg");
	u.updated = u.last_login = FUZZ_JWT_NOW + 86400;
	u.login_count = 17;
	write_record(dir, "full.rec", &u);

	u.status = STORE_USER_UNLINKED;
	u.email_verified = false;
	for (i = 0; i < MAX_NICKNAME; i++)
		u.nickname[i] = 'n';
	u.nickname[MAX_NICKNAME] = '\0';
	write_record(dir, "unlinked-long-nickname.rec", &u);
	return 0;
}
