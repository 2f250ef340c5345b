/*
 * test_store.c: the Berkeley DB user store (app/store.c).
 *
 * Each test opens a fresh environment in its own mkdtemp() directory under
 * /tmp and removes it afterwards. Covers first and repeated logins, user id
 * allocation (never reused across a reopen), lookups, the record codec and
 * concurrent logins from several threads.
 */
#include <sys/wait.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <db.h>

#include "store.h"
#include "store_internal.h"

#include "unit_util.h"

#define NOW	((time_t)1700000000)

struct fixture {
	char		 home[64];
	struct store	*st;
};

/* ---- fixture: a temp dir with an open store ---- */

static void
fx_open(struct fixture *fx, enum config_durability durability)
{
	struct kl_error	err;

	if (store_open(&fx->st, fx->home, durability, &err) != 0)
		fail_msg("store_open %s: %s", fx->home, err.detail);
	assert_non_null(fx->st);
}

static int
setup(void **state)
{
	struct fixture	*fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	snprintf(fx->home, sizeof(fx->home), "/tmp/kl-test-store-XXXXXX");
	if (mkdtemp(fx->home) == NULL) {
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	store_close(fx->st);
	remove_tree(fx->home);
	free(fx);
	return 0;
}

static void
login(struct store *st, int64_t kakao_id, const char *nickname,
    const char *email, bool verified, time_t now, struct store_user *u)
{
	struct store_login	in;
	struct kl_error		err;

	memset(&in, 0, sizeof(in));
	in.kakao_id = kakao_id;
	in.nickname = nickname;
	in.email = email;
	in.email_verified = verified;
	memset(u, 0x5a, sizeof(*u));
	if (store_user_login(st, &in, now, u, &err) != 0)
		fail_msg("store_user_login %lld: %s", (long long)kakao_id,
		    err.detail);
}

/* ---- logins ---- */

static void
test_open_fresh_dir(void **state)
{
	struct fixture	*fx = *state;
	struct store_user u;
	struct kl_error	 err;

	fx_open(fx, DURABILITY_SYNC);
	assert_false(store_needs_restart(fx->st));
	assert_int_equal(store_user_get(fx->st, 1, &u, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
	assert_int_equal(store_maintain(fx->st, &err), 0);
}

static void
test_open_creates_missing_home(void **state)
{
	struct fixture	*fx = *state;
	char		 sub[96];
	struct store	*st;
	struct kl_error	 err;
	struct store_user u;

	snprintf(sub, sizeof(sub), "%s/sub", fx->home);
	if (store_open(&st, sub, DURABILITY_NOSYNC, &err) != 0)
		fail_msg("store_open %s: %s", sub, err.detail);
	login(st, 42, "a", NULL, false, NOW, &u);
	assert_int_equal(u.user_id, 1);
	store_close(st);
}

static void
test_first_login_creates_user_1(void **state)
{
	struct fixture		*fx = *state;
	struct store_user	 u;

	fx_open(fx, DURABILITY_SYNC);
	login(fx->st, 1855599935, "철수", "chulsoo@example.com", true, NOW, &u);
	assert_int_equal(u.user_id, 1);
	assert_int_equal(u.kakao_id, 1855599935);
	assert_string_equal(u.nickname, "철수");
	assert_string_equal(u.email, "chulsoo@example.com");
	assert_true(u.email_verified);
	assert_string_equal(u.profile_image, "");
	assert_int_equal(u.status, STORE_USER_ACTIVE);
	assert_int_equal(u.login_count, 1);
	assert_int_equal(u.created, NOW);
	assert_int_equal(u.updated, NOW);
	assert_int_equal(u.last_login, NOW);
}

static void
test_same_kakao_id_same_user(void **state)
{
	struct fixture		*fx = *state;
	struct store_user	 a, b;

	fx_open(fx, DURABILITY_SYNC);
	login(fx->st, 1000, "first", NULL, false, NOW, &a);
	login(fx->st, 1000, "second", NULL, false, NOW + 60, &b);
	assert_int_equal(b.user_id, a.user_id);
	assert_int_equal(b.login_count, 2);
	assert_string_equal(b.nickname, "second");
	assert_int_equal(b.created, NOW);	/* kept */
	assert_int_equal(b.last_login, NOW + 60);
	assert_int_equal(b.updated, NOW + 60);
}

static void
test_second_kakao_id_new_larger_user(void **state)
{
	struct fixture		*fx = *state;
	struct store_user	 a, b, c;

	fx_open(fx, DURABILITY_SYNC);
	login(fx->st, 1000, "a", NULL, false, NOW, &a);
	login(fx->st, 2000, "b", NULL, false, NOW, &b);
	assert_true(b.user_id != a.user_id);
	assert_true(b.user_id > a.user_id);
	assert_int_equal(b.login_count, 1);
	/* A smaller Kakao id still gets a larger user id. */
	login(fx->st, 5, "c", NULL, false, NOW, &c);
	assert_true(c.user_id > b.user_id);
}

/* By our user id (the users_by_id index): the same record as by Kakao
 * id; an id never given is KL_NOT_FOUND. */
static void
test_get_by_user_id(void **state)
{
	struct fixture		*fx = *state;
	struct store_user	 a, b, got;
	struct kl_error		 err;

	fx_open(fx, DURABILITY_SYNC);
	login(fx->st, 501, "a", NULL, false, NOW, &a);
	login(fx->st, 502, "b", NULL, false, NOW, &b);
	memset(&got, 0x5a, sizeof(got));
	assert_int_equal(store_user_get_by_id(fx->st, b.user_id, &got, &err),
	    0);
	assert_int_equal(got.kakao_id, 502);
	assert_string_equal(got.nickname, "b");
	assert_int_equal(store_user_get_by_id(fx->st, a.user_id, &got, &err),
	    0);
	assert_int_equal(got.kakao_id, 501);
	assert_int_equal(store_user_get_by_id(fx->st, b.user_id + 1000, &got,
	    &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
}

/* Consent withdrawn: a field Kakao no longer returns is cleared, in the
 * answer and in the record, and an e-mail that is gone is not verified. */
static void
test_withdrawn_consent_clears_fields(void **state)
{
	struct fixture		*fx = *state;
	struct store_login	 in;
	struct store_user	 u;
	struct kl_error		 err;

	fx_open(fx, DURABILITY_SYNC);
	memset(&in, 0, sizeof(in));
	in.kakao_id = 77;
	in.nickname = "영희";
	in.email = "y@example.com";
	in.email_verified = true;
	in.profile_image = "https://k.kakaocdn.net/img.jpg";
	assert_int_equal(store_user_login(fx->st, &in, NOW, &u, &err), 0);
	assert_string_equal(u.profile_image, "https://k.kakaocdn.net/img.jpg");
	login(fx->st, 77, NULL, NULL, false, NOW + 1, &u);
	assert_int_equal(u.login_count, 2);
	assert_string_equal(u.nickname, "");
	assert_string_equal(u.email, "");
	assert_false(u.email_verified);
	assert_string_equal(u.profile_image, "");
	memset(&u, 0x5a, sizeof(u));
	assert_int_equal(store_user_get(fx->st, 77, &u, &err), 0);
	assert_string_equal(u.nickname, "");
	assert_string_equal(u.email, "");
	assert_false(u.email_verified);
	assert_string_equal(u.profile_image, "");
	/* Consent given again: the fields come back. */
	login(fx->st, 77, "영희", "y@example.com", true, NOW + 2, &u);
	assert_string_equal(u.nickname, "영희");
	assert_true(u.email_verified);
}

static void
test_email_verified_follows_input(void **state)
{
	struct fixture		*fx = *state;
	struct store_user	 u;
	struct kl_error		 err;

	fx_open(fx, DURABILITY_SYNC);
	login(fx->st, 88, "n", "n@example.com", false, NOW, &u);
	assert_false(u.email_verified);
	login(fx->st, 88, "n", "n@example.com", true, NOW, &u);
	assert_true(u.email_verified);
	assert_int_equal(store_user_get(fx->st, 88, &u, &err), 0);
	assert_true(u.email_verified);
	login(fx->st, 88, "n", "other@example.com", false, NOW, &u);
	assert_false(u.email_verified);
	assert_string_equal(u.email, "other@example.com");
	assert_int_equal(store_user_get(fx->st, 88, &u, &err), 0);
	assert_false(u.email_verified);
	assert_string_equal(u.email, "other@example.com");
	assert_int_equal(u.login_count, 3);
}

static void
test_user_get_finds_and_misses(void **state)
{
	struct fixture		*fx = *state;
	struct store_user	 in, out;
	struct store_login	 l;
	struct kl_error		 err;

	fx_open(fx, DURABILITY_SYNC);
	memset(&l, 0, sizeof(l));
	l.kakao_id = 31337;
	l.nickname = "nick";
	l.email = "e@example.com";
	l.email_verified = true;
	l.profile_image = "https://k.kakaocdn.net/img.jpg";
	assert_int_equal(store_user_login(fx->st, &l, NOW, &in, &err), 0);
	memset(&out, 0, sizeof(out));
	assert_int_equal(store_user_get(fx->st, 31337, &out, &err), 0);
	assert_int_equal(out.user_id, in.user_id);
	assert_int_equal(out.kakao_id, 31337);
	assert_string_equal(out.nickname, "nick");
	assert_string_equal(out.email, "e@example.com");
	assert_true(out.email_verified);
	assert_string_equal(out.profile_image, "https://k.kakaocdn.net/img.jpg");
	assert_int_equal(out.login_count, 1);
	assert_int_equal(out.created, NOW);

	kl_error_clear(&err);
	assert_int_equal(store_user_get(fx->st, 31338, &out, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
	kl_error_clear(&err);
	assert_int_equal(store_user_get(fx->st, 0, &out, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
}

static void
test_login_refuses_bad_kakao_id(void **state)
{
	struct fixture		*fx = *state;
	struct store_user	 u;
	struct store_login	 l;
	struct kl_error		 err;

	fx_open(fx, DURABILITY_SYNC);
	memset(&l, 0, sizeof(l));
	l.kakao_id = 0;
	assert_int_equal(store_user_login(fx->st, &l, NOW, &u, &err), -1);
	l.kakao_id = -1;
	assert_int_equal(store_user_login(fx->st, &l, NOW, &u, &err), -1);
	/* Nothing was created, and the first real user is still user 1. */
	login(fx->st, 9, NULL, NULL, false, NOW, &u);
	assert_int_equal(u.user_id, 1);
}

static void
test_reopen_persists_and_keeps_ids(void **state)
{
	struct fixture		*fx = *state;
	struct store_user	 u, got;
	struct kl_error		 err;
	uint64_t		 max_id = 0;
	int64_t			 k;

	fx_open(fx, DURABILITY_SYNC);
	for (k = 1; k <= 5; k++) {
		login(fx->st, 500 + k, "before", NULL, false, NOW, &u);
		if (u.user_id > max_id)
			max_id = u.user_id;
	}
	login(fx->st, 501, "again", NULL, false, NOW + 5, &u);
	store_close(fx->st);
	fx->st = NULL;

	fx_open(fx, DURABILITY_SYNC);
	assert_int_equal(store_user_get(fx->st, 501, &got, &err), 0);
	assert_string_equal(got.nickname, "again");
	assert_int_equal(got.login_count, 2);
	assert_int_equal(got.user_id, u.user_id);
	for (k = 2; k <= 5; k++) {
		assert_int_equal(store_user_get(fx->st, 500 + k, &got, &err), 0);
		assert_string_equal(got.nickname, "before");
	}
	login(fx->st, 9999, "new", NULL, false, NOW + 10, &u);
	assert_true(u.user_id > max_id);
	/* An old user logging in again keeps its id after the reopen. */
	login(fx->st, 503, NULL, NULL, false, NOW + 10, &got);
	assert_true(got.user_id <= max_id);
	assert_int_equal(got.login_count, 2);
	max_id = u.user_id;

	/* And once more. */
	store_close(fx->st);
	fx->st = NULL;
	fx_open(fx, DURABILITY_SYNC);
	login(fx->st, 10000, "newer", NULL, false, NOW + 20, &u);
	assert_true(u.user_id > max_id);
	assert_int_equal(store_user_get(fx->st, 9999, &got, &err), 0);
	assert_string_equal(got.nickname, "new");
}

/*
 * A process that dies without closing the store (kill -9, a crash) loses
 * what was not flushed; with nosync that is every recent commit. The user
 * ids it handed out must still never be handed out again: a token may
 * already carry one. The child logs in three users and reports the largest
 * id, then exits without closing anything; the parent's open runs recovery.
 * Fails when next_user_id() does not flush a new block of the sequence.
 */
static void
test_crash_never_reuses_ids(void **state)
{
	struct fixture		*fx = *state;
	struct store_user	 u;
	uint64_t		 max_id = 0;
	int64_t			 k;
	int			 fds[2], status;
	pid_t			 pid;

	assert_int_equal(pipe(fds), 0);
	if ((pid = fork()) == 0) {
		close(fds[0]);
		fx_open(fx, DURABILITY_NOSYNC);
		for (k = 1; k <= 3; k++) {
			login(fx->st, 600 + k, "lost", NULL, false, NOW, &u);
			if (u.user_id > max_id)
				max_id = u.user_id;
		}
		if (write(fds[1], &max_id, sizeof(max_id)) != sizeof(max_id))
			_exit(2);
		_exit(0);	/* no store_close(): as if killed */
	}
	assert_true(pid > 0);
	close(fds[1]);
	assert_int_equal(read(fds[0], &max_id, sizeof(max_id)),
	    sizeof(max_id));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(max_id >= 1);

	fx_open(fx, DURABILITY_NOSYNC);
	login(fx->st, 9999, "after the crash", NULL, false, NOW + 1, &u);
	assert_true(u.user_id > max_id);
}

/*
 * A real EINVAL from Berkeley DB (here: the user id sequence exhausted, on
 * an environment made with a range of 40 ids) is reported as what it is,
 * not as a record that does not decode.
 */
static void
test_bdb_einval_is_not_a_codec_error(void **state)
{
	struct fixture		*fx = *state;
	struct store_user	 u;
	struct store_login	 in;
	struct kl_error		 err;
	DB_ENV			*env;
	DB			*db;
	DB_SEQUENCE		*seq;
	DBT			 key;
	int64_t			 k;
	int			 rc = 0;

	assert_int_equal(db_env_create(&env, 0), 0);
	assert_int_equal(env->open(env, fx->home, DB_CREATE | DB_INIT_TXN |
	    DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL, 0600), 0);
	assert_int_equal(db_create(&db, env, 0), 0);
	assert_int_equal(db->open(db, NULL, "seq.db", NULL, DB_BTREE,
	    DB_CREATE | DB_AUTO_COMMIT, 0600), 0);
	assert_int_equal(db_sequence_create(&seq, db, 0), 0);
	assert_int_equal(seq->set_range(seq, 1, 40), 0);
	assert_int_equal(seq->initial_value(seq, 1), 0);
	memset(&key, 0, sizeof(key));
	key.data = "user_id";
	key.size = 7;
	assert_int_equal(seq->open(seq, NULL, &key, DB_CREATE), 0);
	seq->close(seq, 0);
	db->close(db, 0);
	env->close(env, 0);

	fx_open(fx, DURABILITY_SYNC);
	memset(&in, 0, sizeof(in));
	for (k = 1; k <= 60 && rc == 0; k++) {
		in.kakao_id = 800 + k;
		rc = store_user_login(fx->st, &in, NOW, &u, &err);
	}
	assert_int_equal(rc, -1);
	assert_int_equal(err.status, KL_STORE_FAILED);
	if (strstr(err.detail, "decode") != NULL)
		fail_msg("reported as a codec error: %s", err.detail);
}

/*
 * Processes of a fresh service start at once and each opens (creating)
 * the environment, the databases and the user id sequence. Found under
 * load: the second creator of the sequence got DB_KEYEXIST, and its
 * process answered 500 "store not open" for a second. Every opener must
 * succeed, in every round.
 */
static void
test_concurrent_first_opens(void **state)
{
	struct fixture	*fx = *state;
	char		 home[96];
	int		 round, i, status, go[2], failed = 0;
	pid_t		 pids[8];

	for (round = 0; round < 25; round++) {
		snprintf(home, sizeof(home), "%s/r%d", fx->home, round);
		assert_int_equal(pipe(go), 0);
		for (i = 0; i < 8; i++) {
			if ((pids[i] = fork()) == 0) {
				struct store	*st;
				struct kl_error	 err;
				char		 c;

				close(go[1]);
				if (read(go[0], &c, 1) != 0)
					_exit(3);
				if (store_open(&st, home, DURABILITY_WRITE_NOSYNC,
				    &err) != 0) {
					fprintf(stderr, "round %d: %s\n", round,
					    err.detail);
					_exit(1);
				}
				store_close(st);
				_exit(0);
			}
			assert_true(pids[i] > 0);
		}
		close(go[0]);
		close(go[1]);	/* all children start now */
		for (i = 0; i < 8; i++) {
			assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				failed++;
		}
		remove_tree(home);
	}
	assert_int_equal(failed, 0);
}

/* ---- record codec ---- */

static void
sample_user(struct store_user *u)
{
	memset(u, 0, sizeof(*u));
	u->user_id = 0x0102030405060708ULL;
	u->kakao_id = 1855599935;
	snprintf(u->nickname, sizeof(u->nickname), "닉네임");
	snprintf(u->email, sizeof(u->email), "someone@example.com");
	u->email_verified = true;
	snprintf(u->profile_image, sizeof(u->profile_image),
	    "https://k.kakaocdn.net/dn/x/img_640x640.jpg");
	u->status = STORE_USER_UNLINKED;
	u->created = NOW - 100;
	u->updated = NOW - 50;
	u->last_login = NOW;
	u->login_count = 12345678901ULL;
}

static void
assert_users_equal(const struct store_user *a, const struct store_user *b)
{
	assert_int_equal(a->user_id, b->user_id);
	assert_int_equal(a->kakao_id, b->kakao_id);
	assert_string_equal(a->nickname, b->nickname);
	assert_string_equal(a->email, b->email);
	assert_int_equal(a->email_verified, b->email_verified);
	assert_string_equal(a->profile_image, b->profile_image);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->created, b->created);
	assert_int_equal(a->updated, b->updated);
	assert_int_equal(a->last_login, b->last_login);
	assert_int_equal(a->login_count, b->login_count);
}

static void
test_record_round_trip(void **state)
{
	struct store_user	in, out;
	unsigned char		buf[STORE_RECORD_MAX];
	int			len;

	(void)state;
	sample_user(&in);
	len = store_record_encode(&in, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(store_record_decode(buf, (size_t)len, &out), 0);
	assert_users_equal(&in, &out);

	/* Empty strings and zero fields. */
	memset(&in, 0, sizeof(in));
	in.user_id = 1;
	in.kakao_id = 2;
	len = store_record_encode(&in, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(store_record_decode(buf, (size_t)len, &out), 0);
	assert_users_equal(&in, &out);

	/* Every string at its limit fits STORE_RECORD_MAX exactly. */
	sample_user(&in);
	memset(in.nickname, 'n', MAX_NICKNAME);
	in.nickname[MAX_NICKNAME] = '\0';
	memset(in.email, 'e', MAX_EMAIL);
	in.email[MAX_EMAIL] = '\0';
	memset(in.profile_image, 'p', MAX_PROFILE_IMAGE);
	in.profile_image[MAX_PROFILE_IMAGE] = '\0';
	len = store_record_encode(&in, buf, sizeof(buf));
	assert_int_equal(len, STORE_RECORD_MAX);
	assert_int_equal(store_record_decode(buf, (size_t)len, &out), 0);
	assert_users_equal(&in, &out);
	/* One byte short of room: refused, not cut. */
	assert_int_equal(store_record_encode(&in, buf, sizeof(buf) - 1), -1);
}

static void
test_record_negative_times(void **state)
{
	struct store_user	in, out;
	unsigned char		buf[STORE_RECORD_MAX];
	int			len;

	(void)state;
	sample_user(&in);
	in.created = -1;
	in.kakao_id = INT64_MAX;
	len = store_record_encode(&in, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(store_record_decode(buf, (size_t)len, &out), 0);
	assert_users_equal(&in, &out);
}

static void
test_record_decode_rejects_truncated(void **state)
{
	struct store_user	in, out;
	unsigned char		buf[STORE_RECORD_MAX], *copy;
	int			len;
	size_t			n;

	(void)state;
	sample_user(&in);
	len = store_record_encode(&in, buf, sizeof(buf));
	assert_true(len > 0);
	/* Every proper prefix, in a buffer of exactly that size. */
	for (n = 0; n < (size_t)len; n++) {
		copy = malloc(n ? n : 1);
		assert_non_null(copy);
		memcpy(copy, buf, n);
		if (store_record_decode(copy, n, &out) != -1)
			fail_msg("accepted %zu of %d bytes", n, len);
		free(copy);
	}
}

/* A store that cannot open (here: db_home under a regular file) still
 * exists: calls fail with KL_STORE_FAILED, store_maintain keeps trying
 * (STORE_OPEN_RETRY_MS apart), store_open refuses. */
static void
test_store_not_open_yet(void **state)
{
	struct store		*st = NULL;
	struct store_login	 in = { .kakao_id = 5 };
	struct store_user	 u;
	struct kl_error		 err;

	(void)state;
	assert_int_equal(store_new(&st, "/dev/null/db", DURABILITY_SYNC,
	    &err), 0);
	assert_non_null(st);
	assert_false(store_ready(st));
	assert_int_not_equal(err.detail[0], '\0');
	assert_int_equal(store_user_login(st, &in, time(NULL), &u, &err), -1);
	assert_int_equal(err.status, KL_STORE_FAILED);
	assert_int_equal(store_user_get(st, 5, &u, &err), -1);
	assert_int_equal(err.status, KL_STORE_FAILED);
	/* Between tries nothing fails; the next try fails as the first. */
	assert_int_equal(store_maintain(st, &err), 0);
	usleep((STORE_OPEN_RETRY_MS + 50) * 1000);
	kl_error_clear(&err);
	assert_int_equal(store_maintain(st, &err), -1);
	assert_int_not_equal(err.detail[0], '\0');
	assert_false(store_ready(st));
	assert_false(store_stuck(st, 0));
	assert_false(store_needs_restart(st));
	store_close(st);
	assert_int_equal(store_open(&st, "/dev/null/db", DURABILITY_SYNC,
	    &err), -1);
	assert_null(st);
}

/* A thread standing in for a login stuck inside Berkeley DB on a mutex a
 * killed process held: in until released. */
struct stuck_call {
	struct store	*st;
	atomic_bool	 entered, release;
};

static void *
stuck_call_run(void *arg)
{
	struct stuck_call	*c = arg;

	store_busy_enter(c->st);
	atomic_store(&c->entered, true);
	while (!atomic_load(&c->release))
		usleep(10000);
	store_busy_leave(c->st);
	return NULL;
}

/* The watchdog goes by the oldest call in flight: calls of other threads
 * that begin and end meanwhile (the maintenance thread's checkpoint, a
 * probe) must not hide one that never returns. Found by the admin suite:
 * after a tool was killed mid-import, logins hung on its log mutex for
 * good while the checkpoint's calls kept the watchdog content. */
static void
test_stuck_call_not_hidden_by_others(void **state)
{
	struct fixture		*fx = *state;
	struct stuck_call	 c;
	struct kl_error		 err;
	pthread_t		 t;
	int			 i;

	assert_int_equal(store_open(&fx->st, fx->home, DURABILITY_SYNC,
	    &err), 0);
	memset(&c, 0, sizeof(c));
	c.st = fx->st;
	assert_int_equal(pthread_create(&t, NULL, stuck_call_run, &c), 0);
	while (!atomic_load(&c.entered))
		usleep(1000);
	for (i = 0; i < 25; i++) {
		store_busy_enter(fx->st);
		store_busy_leave(fx->st);
		usleep(100000);
	}
	assert_true(store_stuck(fx->st, 1000));
	atomic_store(&c.release, true);
	pthread_join(t, NULL);
	assert_false(store_stuck(fx->st, 1000));
	/* Calls that end are never stuck, however long ago they began. */
	store_busy_enter(fx->st);
	store_busy_leave(fx->st);
	assert_false(store_stuck(fx->st, 0));
}

/* The pad byte is always written 0; anything else is not our record
 * (found by fuzz_record: two stored values decoded to one user). */
static void
test_record_decode_rejects_nonzero_pad(void **state)
{
	struct store_user	in, out;
	unsigned char		buf[STORE_RECORD_MAX];
	int			len;

	(void)state;
	sample_user(&in);
	len = store_record_encode(&in, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(buf[3], 0);
	buf[3] = 0xfb;
	assert_int_equal(store_record_decode(buf, (size_t)len, &out), -1);
}

static void
test_record_decode_rejects_wrong_version(void **state)
{
	struct store_user	in, out;
	unsigned char		buf[STORE_RECORD_MAX];
	int			len;

	(void)state;
	sample_user(&in);
	len = store_record_encode(&in, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(buf[0], 1);
	buf[0] = 0;
	assert_int_equal(store_record_decode(buf, (size_t)len, &out), -1);
	buf[0] = 2;
	assert_int_equal(store_record_decode(buf, (size_t)len, &out), -1);
	buf[0] = 0xff;
	assert_int_equal(store_record_decode(buf, (size_t)len, &out), -1);
	buf[0] = 1;
	assert_int_equal(store_record_decode(buf, (size_t)len, &out), 0);
	/* Status and verified flag outside their range. */
	buf[1] = 7;
	assert_int_equal(store_record_decode(buf, (size_t)len, &out), -1);
	buf[1] = 0;
	buf[2] = 2;
	assert_int_equal(store_record_decode(buf, (size_t)len, &out), -1);
}

/* The three strings follow the 52-byte header, each a 2-byte big-endian
 * length and its bytes. */
static void
test_record_decode_rejects_lengths_past_end(void **state)
{
	struct store_user	in, out;
	unsigned char		buf[STORE_RECORD_MAX], bad[STORE_RECORD_MAX];
	int			len;
	size_t			off, i;

	(void)state;
	sample_user(&in);
	len = store_record_encode(&in, buf, sizeof(buf));
	assert_true(len > 0);
	off = 52;
	for (i = 0; i < 3; i++) {
		size_t n = (size_t)buf[off] << 8 | buf[off + 1];

		memcpy(bad, buf, (size_t)len);
		/* One byte longer than what is left. */
		bad[off] = (unsigned char)(((size_t)len - off - 2 + 1) >> 8);
		bad[off + 1] = (unsigned char)(((size_t)len - off - 2 + 1) &
		    0xff);
		if (store_record_decode(bad, (size_t)len, &out) != -1)
			fail_msg("string %zu: length past the end accepted", i);
		/* The largest length. */
		bad[off] = 0xff;
		bad[off + 1] = 0xff;
		assert_int_equal(store_record_decode(bad, (size_t)len, &out),
		    -1);
		off += 2 + n;
	}
	assert_int_equal(off, (size_t)len);

	/* A string longer than its field, even when the bytes are there. */
	memset(&in, 0, sizeof(in));
	in.user_id = 1;
	len = store_record_encode(&in, buf, sizeof(buf));
	assert_true(len > 0);
	memcpy(bad, buf, 52);
	bad[52] = (MAX_NICKNAME + 1) >> 8;
	bad[53] = (MAX_NICKNAME + 1) & 0xff;
	memset(bad + 54, 'x', MAX_NICKNAME + 1);
	off = 54 + MAX_NICKNAME + 1;
	memset(bad + off, 0, 4);
	assert_int_equal(store_record_decode(bad, off + 4, &out), -1);
	/* A NUL inside a string. */
	memcpy(bad, buf, (size_t)len);
	bad[53] = 1;
	memmove(bad + 55, bad + 54, (size_t)len - 54);
	bad[54] = '\0';
	assert_int_equal(store_record_decode(bad, (size_t)len + 1, &out), -1);
}

static void
test_record_decode_rejects_trailing_bytes(void **state)
{
	struct store_user	in, out;
	unsigned char		buf[STORE_RECORD_MAX + 8];
	int			len;

	(void)state;
	sample_user(&in);
	len = store_record_encode(&in, buf, STORE_RECORD_MAX);
	assert_true(len > 0);
	buf[len] = 0;
	assert_int_equal(store_record_decode(buf, (size_t)len + 1, &out), -1);
	buf[len + 1] = 'x';
	assert_int_equal(store_record_decode(buf, (size_t)len + 2, &out), -1);
	assert_int_equal(store_record_decode(buf, (size_t)len, &out), 0);
}

static void
test_record_encode_refuses_small_buffer(void **state)
{
	struct store_user	in;
	unsigned char		buf[STORE_RECORD_MAX];
	int			len;

	(void)state;
	sample_user(&in);
	len = store_record_encode(&in, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(store_record_encode(&in, buf, (size_t)len - 1), -1);
	assert_int_equal(store_record_encode(&in, buf, 10), -1);
	assert_int_equal(store_record_encode(&in, buf, (size_t)len), len);
}

/* ---- threads ---- */

#define THREADS		8
#define PER_THREAD	50
#define KAKAO_IDS	20
#define KAKAO_BASE	7000000000LL

struct worker {
	pthread_t	 thread;
	struct store	*st;
	int		 index;
	int		 failures;
	char		 detail[MAX_ERROR_DETAIL];
	uint64_t	 seen[KAKAO_IDS];	/* user id per Kakao id */
	int		 conflicts;		/* same Kakao id, other user id */
};

static void *
worker_run(void *arg)
{
	struct worker		*w = arg;
	struct store_login	 in;
	struct store_user	 u;
	struct kl_error		 err;
	int			 i, k;

	for (i = 0; i < PER_THREAD; i++) {
		k = (w->index * 7 + i) % KAKAO_IDS;
		memset(&in, 0, sizeof(in));
		in.kakao_id = KAKAO_BASE + k;
		in.nickname = "thread";
		if (store_user_login(w->st, &in, NOW + i, &u, &err) != 0) {
			w->failures++;
			snprintf(w->detail, sizeof(w->detail), "%s", err.detail);
			continue;
		}
		if (u.kakao_id != in.kakao_id)
			w->conflicts++;
		if (w->seen[k] == 0)
			w->seen[k] = u.user_id;
		else if (w->seen[k] != u.user_id)
			w->conflicts++;
	}
	return NULL;
}

static void
test_concurrent_logins(void **state)
{
	struct fixture		*fx = *state;
	struct worker		*w;
	struct store_user	 u;
	struct kl_error		 err;
	uint64_t		 ids[KAKAO_IDS], total = 0;
	int			 expected[KAKAO_IDS] = { 0 };
	int			 t, k, j, i;

	fx_open(fx, DURABILITY_WRITE_NOSYNC);
	w = calloc(THREADS, sizeof(*w));
	assert_non_null(w);
	for (t = 0; t < THREADS; t++) {
		w[t].st = fx->st;
		w[t].index = t;
		for (i = 0; i < PER_THREAD; i++)
			expected[(t * 7 + i) % KAKAO_IDS]++;
	}
	for (t = 0; t < THREADS; t++)
		assert_int_equal(pthread_create(&w[t].thread, NULL, worker_run,
		    &w[t]), 0);
	for (t = 0; t < THREADS; t++)
		assert_int_equal(pthread_join(w[t].thread, NULL), 0);

	for (t = 0; t < THREADS; t++) {
		if (w[t].failures != 0)
			fail_msg("thread %d: %d logins failed, last: %s", t,
			    w[t].failures, w[t].detail);
		assert_int_equal(w[t].conflicts, 0);
	}
	for (k = 0; k < KAKAO_IDS; k++) {
		if (store_user_get(fx->st, KAKAO_BASE + k, &u, &err) != 0)
			fail_msg("kakao id %d: %s", k, err.detail);
		ids[k] = u.user_id;
		assert_true(ids[k] > 0);
		/* Every thread saw this one user id for this Kakao id. */
		for (t = 0; t < THREADS; t++)
			if (w[t].seen[k] != 0)
				assert_int_equal(w[t].seen[k], ids[k]);
		assert_int_equal(u.login_count, expected[k]);
		total += u.login_count;
		/* No two Kakao ids share a user id. */
		for (j = 0; j < k; j++)
			assert_true(ids[j] != ids[k]);
	}
	assert_int_equal(total, THREADS * PER_THREAD);
	free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_fresh_dir, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_creates_missing_home,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_login_creates_user_1,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_kakao_id_same_user,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_second_kakao_id_new_larger_user, setup, teardown),
		cmocka_unit_test_setup_teardown(test_withdrawn_consent_clears_fields,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_by_user_id, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_email_verified_follows_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_get_finds_and_misses,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_refuses_bad_kakao_id,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_reopen_persists_and_keeps_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_never_reuses_ids,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bdb_einval_is_not_a_codec_error,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_first_opens,
		    setup, teardown),
		cmocka_unit_test(test_record_round_trip),
		cmocka_unit_test(test_record_negative_times),
		cmocka_unit_test(test_record_decode_rejects_truncated),
		cmocka_unit_test(test_record_decode_rejects_wrong_version),
		cmocka_unit_test(test_record_decode_rejects_nonzero_pad),
		cmocka_unit_test(test_store_not_open_yet),
		cmocka_unit_test(test_record_decode_rejects_lengths_past_end),
		cmocka_unit_test(test_record_decode_rejects_trailing_bytes),
		cmocka_unit_test(test_record_encode_refuses_small_buffer),
		cmocka_unit_test_setup_teardown(test_concurrent_logins, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_stuck_call_not_hidden_by_others, setup, teardown),
	};

	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
