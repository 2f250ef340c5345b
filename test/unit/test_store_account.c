/*
 * test_store_account.c: the end of an account (app/store_account.c):
 * deletion, Kakao's unlink notice, the unlink queue, retired ids, the
 * queue's record format. A real environment in a mkdtemp() directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"
#include "store_session.h"

#include "unit_util.h"

#define NOW	((time_t)1700000000)

struct fixture {
	char		 home[64];
	struct store	*st;
};

static int
setup(void **state)
{
	struct fixture	*fx = calloc(1, sizeof(*fx));
	struct kl_error	 err;

	if (fx == NULL)
		return -1;
	snprintf(fx->home, sizeof(fx->home), "/tmp/kl-test-account-XXXXXX");
	if (mkdtemp(fx->home) == NULL ||
	    store_open(&fx->st, fx->home, DURABILITY_NOSYNC, &err) != 0) {
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
login(struct store *st, int64_t kakao_id, struct store_user *u)
{
	struct store_login	in;
	struct kl_error		err;

	memset(&in, 0, sizeof(in));
	in.kakao_id = kakao_id;
	in.nickname = "Ryan";
	in.email = "ryan@example.com";
	in.email_verified = true;
	in.profile_image = "https://k.kakaocdn.net/a.jpg";
	if (store_user_login(st, &in, NOW, u, &err) != 0)
		fail_msg("login: %s", err.detail);
}

/* A session of user u, its sid and tag filled with b. */
static void
session(struct store *st, const struct store_user *u, unsigned char b)
{
	struct store_session_new	n;
	struct store_session		s;
	struct kl_error			err;

	memset(n.sid, b, sizeof(n.sid));
	memset(n.tag, b, sizeof(n.tag));
	if (store_session_open(st, &n, u->user_id, u->kakao_id, NOW, &s,
	    &err) != 0)
		fail_msg("session open: %s", err.detail);
}

static enum store_session_status
session_status(struct store *st, unsigned char b)
{
	struct store_session	s;
	struct kl_error		err;
	unsigned char		sid[STORE_SID_LEN];

	memset(sid, b, sizeof(sid));
	if (store_session_get(st, sid, &s, &err) != 0)
		fail_msg("session get: %s", err.detail);
	return s.status;
}

static void
test_delete(void **state)
{
	struct fixture		*fx = *state;
	struct store_user	 u, v, was, again;
	struct store_unlink_job	 job;
	struct kl_error		 err;
	time_t			 deleted;
	bool			 more = true;

	login(fx->st, 1001, &u);
	login(fx->st, 1002, &v);
	session(fx->st, &u, 0x11);
	session(fx->st, &u, 0x12);
	session(fx->st, &v, 0x21);
	assert_int_equal(store_user_delete(fx->st, u.user_id, NOW + 5, 30, &was,
	    &more, &err), 0);
	assert_false(more);
	assert_int_equal(was.user_id, u.user_id);
	assert_int_equal(was.kakao_id, 1001);
	assert_string_equal(was.nickname, "Ryan");
	/* Gone by either key; the id retired; sessions revoked, not v's. */
	assert_int_equal(store_user_get(fx->st, 1001, &again, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
	assert_int_equal(store_user_get_by_id(fx->st, u.user_id, &again, &err),
	    -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
	assert_int_equal(store_retired_get(fx->st, u.user_id, &deleted, &err),
	    0);
	assert_int_equal(deleted, NOW + 5);
	assert_int_equal(session_status(fx->st, 0x11), STORE_SESSION_REVOKED);
	assert_int_equal(session_status(fx->st, 0x12), STORE_SESSION_REVOKED);
	assert_int_equal(session_status(fx->st, 0x21), STORE_SESSION_ACTIVE);
	/* The unlink queued, first due 30 s on. */
	assert_int_equal(store_unlink_get(fx->st, 1001, &job, &err), 0);
	assert_int_equal(job.user_id, u.user_id);
	assert_int_equal(job.queued, NOW + 5);
	assert_int_equal(job.next_try, NOW + 35);
	assert_int_equal(job.attempts, 0);
	/* Deleting again: no such user. */
	assert_int_equal(store_user_delete(fx->st, u.user_id, NOW + 6, 30,
	    &was, &more, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
	/* The Kakao user logs in again: a new user, a new id. */
	login(fx->st, 1001, &again);
	assert_true(again.user_id > v.user_id);
	assert_int_equal(again.login_count, 1);
}

static void
test_unlink(void **state)
{
	struct fixture		*fx = *state;
	struct store_user	 u, got;
	struct kl_error		 err;
	uint64_t		 uid;
	bool			 known = false, more = true;

	login(fx->st, 2001, &u);
	session(fx->st, &u, 0x31);
	assert_int_equal(store_user_unlink(fx->st, 2001, NOW + 1, &known, &uid,
	    &more, &err), 0);
	assert_true(known);
	assert_false(more);
	assert_int_equal(uid, u.user_id);
	assert_int_equal(store_user_get(fx->st, 2001, &got, &err), 0);
	assert_int_equal(got.status, STORE_USER_UNLINKED);
	assert_string_equal(got.nickname, "");
	assert_string_equal(got.email, "");
	assert_string_equal(got.profile_image, "");
	assert_false(got.email_verified);
	assert_int_equal(got.user_id, u.user_id);
	assert_int_equal(session_status(fx->st, 0x31), STORE_SESSION_REVOKED);
	/* A repeat; an unknown user: success, nothing known. */
	assert_int_equal(store_user_unlink(fx->st, 2001, NOW + 2, &known, &uid,
	    &more, &err), 0);
	assert_true(known);
	assert_int_equal(store_user_unlink(fx->st, 2999, NOW + 2, &known, &uid,
	    &more, &err), 0);
	assert_false(known);
	assert_int_equal(uid, 0);
	assert_int_equal(store_user_unlink(fx->st, 0, NOW, &known, &uid, &more,
	    &err), -1);
	/* Logging in again: active, the same id. */
	login(fx->st, 2001, &got);
	assert_int_equal(got.status, STORE_USER_ACTIVE);
	assert_int_equal(got.user_id, u.user_id);
	assert_string_equal(got.nickname, "Ryan");
}

static void
test_queue(void **state)
{
	struct fixture		*fx = *state;
	struct store_user	 a, b, was;
	struct store_unlink_job	 job;
	struct kl_error		 err;
	bool			 more;

	login(fx->st, 3001, &a);
	login(fx->st, 3002, &b);
	assert_int_equal(store_user_delete(fx->st, a.user_id, NOW, 10, &was,
	    &more, &err), 0);
	assert_int_equal(store_user_delete(fx->st, b.user_id, NOW, 20, &was,
	    &more, &err), 0);
	/* Nothing due before the first retry. */
	assert_int_equal(store_unlink_next(fx->st, NOW + 9, 10, &job, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
	/* a's is due: taken once, pushed back by 10 s doubled (20 s). */
	assert_int_equal(store_unlink_next(fx->st, NOW + 10, 10, &job, &err), 0);
	assert_int_equal(job.kakao_id, 3001);
	assert_int_equal(job.attempts, 1);
	assert_int_equal(job.next_try, NOW + 30);
	assert_int_equal(store_unlink_next(fx->st, NOW + 10, 10, &job, &err), -1);
	/* Both due later; b's first. */
	assert_int_equal(store_unlink_next(fx->st, NOW + 20, 10, &job, &err), 0);
	assert_int_equal(job.kakao_id, 3002);
	assert_int_equal(store_unlink_done(fx->st, 3002, &err), 0);
	assert_int_equal(store_unlink_get(fx->st, 3002, &job, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
	/* done twice is fine. */
	assert_int_equal(store_unlink_done(fx->st, 3002, &err), 0);
	/* The backoff stops at UNLINK_MAX_RETRY_S. */
	assert_int_equal(store_unlink_next(fx->st, NOW + 30, 1000, &job, &err),
	    0);
	assert_int_equal(job.attempts, 2);
	assert_int_equal(job.next_try, NOW + 30 + UNLINK_MAX_RETRY_S);
	/* A clock stepped back a day: a job dated far ahead is due. */
	assert_int_equal(store_unlink_next(fx->st, NOW - 86400, 10, &job, &err),
	    0);
	assert_int_equal(job.kakao_id, 3001);
}

/* A deleted account's Kakao user logging in again drops the queued
 * unlink, which would cut the new account off at Kakao. */
static void
test_login_drops_queued_unlink(void **state)
{
	struct fixture		*fx = *state;
	struct store_user	 u, was, again;
	struct store_unlink_job	 job;
	struct kl_error		 err;
	bool			 more;

	login(fx->st, 4001, &u);
	assert_int_equal(store_user_delete(fx->st, u.user_id, NOW, 30, &was,
	    &more, &err), 0);
	assert_int_equal(store_unlink_get(fx->st, 4001, &job, &err), 0);
	login(fx->st, 4001, &again);
	assert_int_equal(store_unlink_get(fx->st, 4001, &job, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
}

/* More sessions than one deletion revokes: those left active refresh
 * nothing, and no session opens for a deleted or unlinked user. */
static void
test_deleted_user_sessions_refresh_nothing(void **state)
{
	struct fixture			*fx = *state;
	struct store_user		 u, was, v;
	struct store_session_new	 n;
	struct store_session		 s, *list;
	struct store_refresh_in		 in;
	struct store_refresh_out	 out;
	struct kl_error			 err;
	unsigned char			 tags[1][STORE_TAG_LEN];
	bool				 more = false;
	int				 i, cnt = 0, active = -1;

	login(fx->st, 5001, &u);
	for (i = 0; i < MAX_USER_SESSIONS + 3; i++) {
		memset(&n, 0, sizeof(n));
		memcpy(n.sid, &i, sizeof(i));
		memcpy(n.tag, &i, sizeof(i));
		n.tag[31] = 0x77;
		assert_int_equal(store_session_open(fx->st, &n, u.user_id,
		    u.kakao_id, NOW, &s, &err), 0);
	}
	assert_int_equal(store_user_delete(fx->st, u.user_id, NOW, 30, &was,
	    &more, &err), 0);
	assert_true(more);
	list = calloc(MAX_USER_SESSIONS + 3, sizeof(*list));
	assert_non_null(list);
	assert_int_equal(store_session_list(fx->st, u.user_id, list,
	    MAX_USER_SESSIONS + 3, &cnt, &err), 0);
	for (i = 0; i < cnt && active == -1; i++)
		if (list[i].status == STORE_SESSION_ACTIVE)
			active = i;
	assert_true(active >= 0);
	memset(tags, 0, sizeof(tags));
	memcpy(tags[0], list[active].sid, sizeof(int));
	tags[0][31] = 0x77;
	free(list);
	memset(&in, 0, sizeof(in));
	in.tags = (const unsigned char (*)[STORE_TAG_LEN])tags;
	in.ntags = 1;
	memset(in.successor, 0x55, sizeof(in.successor));
	in.now = NOW + 1;
	assert_int_equal(store_session_refresh(fx->st, &in, &out, &err), 0);
	assert_int_equal(out.state, STORE_REFRESH_INVALID);
	/* No session for a deleted user, nor an unlinked one. */
	memset(&n, 0x61, sizeof(n));
	assert_int_equal(store_session_open(fx->st, &n, u.user_id, u.kakao_id,
	    NOW, &s, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
	login(fx->st, 5002, &v);
	assert_int_equal(store_user_unlink(fx->st, 5002, NOW, &more, &v.user_id,
	    &more, &err), 0);
	assert_int_equal(store_session_open(fx->st, &n, v.user_id, v.kakao_id,
	    NOW, &s, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
}

static void
test_record(void **state)
{
	struct store_unlink_job	j, k;
	unsigned char		buf[64];
	int			len;

	(void)state;
	memset(&j, 0, sizeof(j));
	j.kakao_id = 77;
	j.user_id = 9;
	j.queued = NOW;
	j.next_try = NOW + 30;
	j.attempts = 0x01020304;
	len = store_unlink_record_encode(&j, buf, sizeof(buf));
	assert_int_equal(len, 32);
	assert_int_equal(buf[0], 1);
	assert_int_equal(store_unlink_record_decode(77, buf, (size_t)len, &k),
	    0);
	assert_memory_equal(&j, &k, sizeof(j));
	assert_int_equal(store_unlink_record_encode(&j, buf, 31), -1);
	assert_int_equal(store_unlink_record_decode(77, buf, 31, &k), -1);
	assert_int_equal(store_unlink_record_decode(0, buf, 32, &k), -1);
	buf[0] = 2;	/* a later version: refused */
	assert_int_equal(store_unlink_record_decode(77, buf, 32, &k), -1);
	buf[0] = 0;
	assert_int_equal(store_unlink_record_decode(77, buf, 32, &k), -1);
	buf[0] = 1;
	buf[2] = 1;	/* pad */
	assert_int_equal(store_unlink_record_decode(77, buf, 32, &k), -1);
	j.kakao_id = 0;
	assert_int_equal(store_unlink_record_encode(&j, buf, sizeof(buf)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_drops_queued_unlink,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_deleted_user_sessions_refresh_nothing, setup, teardown),
		cmocka_unit_test(test_record),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
