/*
 * test_store_admin.c: what the admin tool does in the store
 * (app/store_admin.c): deactivation and its effect on logins and Kakao's
 * unlink notice, import (ids kept, idempotent, every refusal, the
 * sequence moved past imported ids), and verify. A real environment in a
 * mkdtemp() directory, made by store_open() and joined as the tool joins.
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
#include "store_admin.h"
#include "store_session.h"

#include "unit_util.h"

#define NOW	((time_t)1700000000)

struct fixture {
	char		 home[64];
	struct store	*st;		/* joined, as the tool */
};

static int
setup(void **state)
{
	struct fixture	*fx = calloc(1, sizeof(*fx));
	struct store	*made;
	struct kl_error	 err;

	if (fx == NULL)
		return -1;
	snprintf(fx->home, sizeof(fx->home), "/tmp/kl-test-admin-XXXXXX");
	if (mkdtemp(fx->home) == NULL ||
	    store_open(&made, fx->home, DURABILITY_NOSYNC, &err) != 0) {
		free(fx);
		return -1;
	}
	store_close(made);
	if (store_join(&fx->st, fx->home, DURABILITY_NOSYNC, &err) != 0) {
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

static int
login(struct store *st, int64_t kakao_id, struct store_user *u,
    struct kl_error *err)
{
	struct store_login	in;

	memset(&in, 0, sizeof(in));
	in.kakao_id = kakao_id;
	in.nickname = "Ryan";
	return store_user_login(st, &in, NOW, u, err);
}

static void
open_session(struct store *st, const struct store_user *u, unsigned char b)
{
	struct store_session_new	n;
	struct store_session		s;
	struct kl_error			err;

	memset(&n, b, sizeof(n));
	if (store_session_open(st, &n, u->user_id, u->kakao_id, NOW, &s,
	    &err) != 0)
		fail_msg("session: %s", err.detail);
}

static void
test_deactivate(void **state)
{
	struct fixture		*fx = *state;
	struct store_user	 u, got;
	struct store_session	 s;
	struct kl_error		 err;
	unsigned char		 sid[STORE_SID_LEN];
	bool			 known, more;
	uint64_t		 uid;
	int			 revoked;

	assert_int_equal(login(fx->st, 501, &u, &err), 0);
	open_session(fx->st, &u, 0x41);
	open_session(fx->st, &u, 0x42);
	assert_int_equal(store_user_deactivate(fx->st, u.user_id, true, NOW + 1,
	    &got, &revoked, &err), 0);
	assert_int_equal(revoked, 2);
	assert_int_equal(got.status, STORE_USER_DEACTIVATED);
	memset(sid, 0x41, sizeof(sid));
	assert_int_equal(store_session_get(fx->st, sid, &s, &err), 0);
	assert_int_equal(s.status, STORE_SESSION_REVOKED);
	assert_int_equal(s.reason, STORE_REVOKE_ADMIN);
	/* Logins refused, nothing written; no session can be opened. */
	assert_int_equal(login(fx->st, 501, &got, &err), -1);
	assert_int_equal(err.status, KL_USER_DEACTIVATED);
	assert_int_equal(store_user_get(fx->st, 501, &got, &err), 0);
	assert_int_equal(got.login_count, 1);
	assert_int_equal(got.status, STORE_USER_DEACTIVATED);
	/* Kakao's unlink notice clears the data and keeps it deactivated. */
	assert_int_equal(store_user_unlink(fx->st, 501, NOW + 2, &known, &uid,
	    &more, &err), 0);
	assert_true(known);
	assert_int_equal(store_user_get(fx->st, 501, &got, &err), 0);
	assert_int_equal(got.status, STORE_USER_DEACTIVATED);
	assert_string_equal(got.nickname, "");
	assert_int_equal(login(fx->st, 501, &got, &err), -1);
	/* Again: nothing to revoke. Activated: logs in, same id. */
	assert_int_equal(store_user_deactivate(fx->st, u.user_id, true, NOW + 3,
	    &got, &revoked, &err), 0);
	assert_int_equal(revoked, 0);
	assert_int_equal(store_user_deactivate(fx->st, u.user_id, false,
	    NOW + 4, &got, &revoked, &err), 0);
	assert_int_equal(got.status, STORE_USER_ACTIVE);
	assert_int_equal(login(fx->st, 501, &got, &err), 0);
	assert_int_equal(got.user_id, u.user_id);
	assert_int_equal(store_user_deactivate(fx->st, 999999, true, NOW,
	    &got, &revoked, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
}

static void
user_of(struct store_user *u, uint64_t id, int64_t kakao)
{
	memset(u, 0, sizeof(*u));
	u->user_id = id;
	u->kakao_id = kakao;
	snprintf(u->nickname, sizeof(u->nickname), "n%llu",
	    (unsigned long long)id);
	u->created = u->updated = u->last_login = NOW;
	u->login_count = 3;
}

static void
test_import(void **state)
{
	struct fixture			*fx = *state;
	struct store_import		*imp;
	struct store_user		 in[4], got, was;
	enum store_import_result	 res[4];
	struct kl_error			 err;
	uint64_t			 reserved;
	bool				 more;

	/* Fresh: nobody was handed an id yet. */
	user_of(&in[0], 10, 7010);
	user_of(&in[1], 5, 7005);
	user_of(&in[2], 40, 7040);
	assert_int_equal(store_import_begin(fx->st, &imp, &err), 0);
	assert_int_equal(store_user_import(fx->st, imp, in, 3, res, &err), 0);
	assert_int_equal(res[0], STORE_IMPORT_ADDED);
	assert_int_equal(res[1], STORE_IMPORT_ADDED);
	assert_int_equal(res[2], STORE_IMPORT_ADDED);
	/* A later batch of the same import may use ids it reserved. */
	user_of(&in[0], 20, 7020);
	assert_int_equal(store_user_import(fx->st, imp, in, 1, res, &err), 0);
	assert_int_equal(res[0], STORE_IMPORT_ADDED);
	store_import_end(imp);
	assert_int_equal(store_user_get_by_id(fx->st, 40, &got, &err), 0);
	assert_int_equal(got.kakao_id, 7040);
	assert_string_equal(got.nickname, "n40");
	assert_int_equal(got.login_count, 3);
	/* The sequence is past every imported id. */
	assert_int_equal(store_user_ids_reserved(fx->st, &reserved, &err), 0);
	assert_true(reserved >= 40);
	assert_int_equal(login(fx->st, 9999, &got, &err), 0);
	assert_true(got.user_id > 40);

	/* Again, and the refusals. */
	assert_int_equal(store_user_delete(fx->st, 5, NOW, 0, &was, &more,
	    &err), 0);
	user_of(&in[0], 10, 7010);		/* unchanged */
	user_of(&in[1], 5, 7005);		/* retired */
	user_of(&in[2], 41, 7010);		/* Kakao id taken */
	user_of(&in[3], 10, 7777);		/* user id taken */
	assert_int_equal(store_import_begin(fx->st, &imp, &err), 0);
	assert_int_equal(store_user_import(fx->st, imp, in, 4, res, &err), 0);
	assert_int_equal(res[0], STORE_IMPORT_UNCHANGED);
	assert_int_equal(res[1], STORE_IMPORT_RETIRED);
	assert_int_equal(res[2], STORE_IMPORT_KAKAO_TAKEN);
	assert_int_equal(res[3], STORE_IMPORT_ID_TAKEN);
	/* Changed since (the login above counted): kept as stored. */
	user_of(&in[0], 20, 7020);
	in[0].login_count = 99;
	/* Below what the sequence handed out, and not this import's. */
	user_of(&in[1], 30, 7030);
	assert_int_equal(store_user_import(fx->st, imp, in, 2, res, &err), 0);
	assert_int_equal(res[0], STORE_IMPORT_KEPT);
	assert_int_equal(res[1], STORE_IMPORT_ID_HANDED_OUT);
	store_import_end(imp);
	assert_int_equal(store_user_get_by_id(fx->st, 20, &got, &err), 0);
	assert_int_equal(got.login_count, 3);
	assert_int_equal(store_user_get_by_id(fx->st, 30, &got, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
}

static void
test_verify(void **state)
{
	struct fixture		*fx = *state;
	struct store_verify	*v = calloc(1, sizeof(*v));
	struct store_user	 u, was;
	struct kl_error		 err;
	bool			 more;

	assert_non_null(v);
	assert_int_equal(login(fx->st, 601, &u, &err), 0);
	open_session(fx->st, &u, 0x51);
	assert_int_equal(login(fx->st, 602, &u, &err), 0);
	open_session(fx->st, &u, 0x52);
	assert_int_equal(store_user_delete(fx->st, u.user_id, NOW, 0, &was,
	    &more, &err), 0);
	assert_int_equal(store_verify(fx->st, v, NULL, &err), 0);
	assert_int_equal(v->problems, 0);
	assert_int_equal(v->users, 1);
	assert_int_equal(v->index, 1);
	assert_int_equal(v->sessions, 2);
	assert_int_equal(v->active_sessions, 1);
	assert_int_equal(v->tokens, 2);
	assert_int_equal(v->retired, 1);
	assert_int_equal(v->unlinks, 1);
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deactivate, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_import, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
