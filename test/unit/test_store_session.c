/*
 * test_store_session.c: sessions and refresh tokens (app/store_session.c).
 *
 * Each test opens a real environment in its own mkdtemp() directory under
 * /tmp and removes it afterwards, as test_store.c does. Covers open and
 * get; refresh rotation, repeat within the window, reuse after it, and
 * every INVALID case; clock steps; a second key's tag; logout and
 * logout-all; list; the bounded, resumed sweep (families with their
 * tokens, and orphan tokens); store_maintain's use of it; twenty threads,
 * and four processes of five threads, refreshing one token at once; and
 * the two record codecs.
 */
#include <sys/wait.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <db.h>

#include "store.h"
#include "store_session.h"

#include "unit_util.h"

#define NOW	((time_t)1700000000)
#define WINDOW	DEFAULT_REFRESH_REUSE_WINDOW

struct fixture {
	char		 home[64];
	struct store	*st;
};

static void
fx_open(struct fixture *fx, enum config_durability durability)
{
	struct kl_error	err;

	if (store_open(&fx->st, fx->home, durability, &err) != 0)
		fail_msg("store_open %s: %s", fx->home, err.detail);
	assert_non_null(fx->st);
}

static void
fx_close(struct fixture *fx)
{
	store_close(fx->st);
	fx->st = NULL;
}

static int
setup(void **state)
{
	struct fixture	*fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	snprintf(fx->home, sizeof(fx->home), "/tmp/kl-test-session-XXXXXX");
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

/* A tag (kind 0x7a) or sid (0x51) that differs from every other n. */
static void
make_bytes(unsigned char *p, size_t len, unsigned char kind, uint32_t n)
{
	memset(p, kind, len);
	p[0] = (unsigned char)(n >> 24);
	p[1] = (unsigned char)(n >> 16);
	p[2] = (unsigned char)(n >> 8);
	p[3] = (unsigned char)n;
	p[len - 1] = (unsigned char)(n * 7);
}

static void
make_tag(unsigned char tag[STORE_TAG_LEN], uint32_t n)
{
	make_bytes(tag, STORE_TAG_LEN, 0x7a, n);
}

static void
make_sid(unsigned char sid[STORE_SID_LEN], uint32_t n)
{
	make_bytes(sid, STORE_SID_LEN, 0x51, n);
}

/* The user of Kakao id kakao_id (made by a login); its user id. */
static uint64_t
user(struct store *st, int64_t kakao_id)
{
	struct store_login	in = { .kakao_id = kakao_id };
	struct store_user	u;
	struct kl_error		err;

	if (store_user_login(st, &in, NOW, &u, &err) != 0)
		fail_msg("store_user_login: %s", err.detail);
	return u.user_id;
}

/* Opens family sid_n with first token tag_n for (user_id, kakao_id). */
static void
open_family(struct store *st, uint64_t user_id, int64_t kakao_id,
    uint32_t sid_n, uint32_t tag_n, time_t now)
{
	struct store_session_new	n;
	struct store_session		s;
	struct kl_error			err;

	make_sid(n.sid, sid_n);
	make_tag(n.tag, tag_n);
	if (store_session_open(st, &n, user_id, kakao_id, now, &s, &err) != 0)
		fail_msg("store_session_open: %s", err.detail);
	assert_int_equal(s.status, STORE_SESSION_ACTIVE);
}

/* Refreshes token tag_n with successor succ_n at now: the state. */
static enum store_refresh_state
refresh(struct store *st, uint32_t tag_n, uint32_t succ_n, time_t now,
    struct store_refresh_out *out)
{
	unsigned char			tags[1][STORE_TAG_LEN];
	struct store_refresh_in		in;
	struct store_refresh_out	o;
	struct kl_error			err;

	make_tag(tags[0], tag_n);
	memset(&in, 0, sizeof(in));
	in.tags = (const unsigned char (*)[STORE_TAG_LEN])tags;
	in.ntags = 1;
	make_tag(in.successor, succ_n);
	in.now = now;
	if (out == NULL)
		out = &o;
	memset(out, 0x5a, sizeof(*out));
	if (store_session_refresh(st, &in, out, &err) != 0)
		fail_msg("store_session_refresh: %s", err.detail);
	return out->state;
}

static struct store_session
get(struct store *st, uint32_t sid_n)
{
	unsigned char		sid[STORE_SID_LEN];
	struct store_session	s;
	struct kl_error		err;

	make_sid(sid, sid_n);
	if (store_session_get(st, sid, &s, &err) != 0)
		fail_msg("store_session_get: %s", err.detail);
	return s;
}

static bool
absent(struct store *st, uint32_t sid_n)
{
	unsigned char		sid[STORE_SID_LEN];
	struct store_session	s;
	struct kl_error		err;

	make_sid(sid, sid_n);
	if (store_session_get(st, sid, &s, &err) == 0)
		return false;
	assert_int_equal(err.status, KL_NOT_FOUND);
	return true;
}

static void
policy(struct store *st, long ttl, long idle_ttl, long window)
{
	struct store_session_policy	p = { ttl, idle_ttl, window };

	store_session_policy(st, &p);
}

/* ---- open, get ---- */

static void
test_open_get(void **state)
{
	struct fixture			*fx = *state;
	struct store_session_new	 n;
	struct store_session		 s;
	struct kl_error			 err;
	uint64_t			 uid;

	fx_open(fx, DURABILITY_SYNC);
	uid = user(fx->st, 1001);
	open_family(fx->st, uid, 1001, 1, 1, NOW);
	s = get(fx->st, 1);
	make_sid(n.sid, 1);
	assert_memory_equal(s.sid, n.sid, STORE_SID_LEN);
	assert_int_equal(s.status, STORE_SESSION_ACTIVE);
	assert_int_equal(s.reason, STORE_REVOKE_NONE);
	assert_int_equal(s.user_id, uid);
	assert_int_equal(s.kakao_id, 1001);
	assert_int_equal(s.created, NOW);
	assert_int_equal(s.last_used, NOW);
	assert_int_equal(s.expires, NOW + DEFAULT_REFRESH_TTL);
	assert_int_equal(s.revoked_at, 0);
	assert_int_equal(s.generation, 0);
	assert_true(absent(fx->st, 2));
	/* Kept across a reopen. */
	fx_close(fx);
	fx_open(fx, DURABILITY_SYNC);
	assert_int_equal(get(fx->st, 1).user_id, uid);

	/* The same sid, or the same first tag, again: nothing overwritten. */
	make_sid(n.sid, 1);
	make_tag(n.tag, 2);
	assert_int_equal(store_session_open(fx->st, &n, uid, 1001, NOW + 5, &s,
	    &err), -1);
	assert_int_equal(err.status, KL_STORE_FAILED);
	make_sid(n.sid, 2);
	make_tag(n.tag, 1);
	assert_int_equal(store_session_open(fx->st, &n, uid, 1001, NOW + 5, &s,
	    &err), -1);
	assert_int_equal(err.status, KL_STORE_FAILED);
	assert_true(absent(fx->st, 2));
	assert_int_equal(get(fx->st, 1).created, NOW);
	/* No such user, or another user's Kakao id. */
	make_tag(n.tag, 3);
	assert_int_equal(store_session_open(fx->st, &n, uid + 100, 1001, NOW,
	    &s, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
	assert_int_equal(store_session_open(fx->st, &n, uid, 1002, NOW, &s,
	    &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
	assert_int_equal(store_session_open(fx->st, &n, 0, 1001, NOW, &s,
	    &err), -1);
	assert_true(absent(fx->st, 2));
}

/* ---- refresh ---- */

static void
test_rotate_repeat_reuse(void **state)
{
	struct fixture			*fx = *state;
	struct store_refresh_out	 o;
	struct store_session		 s;
	unsigned char			 t2[STORE_TAG_LEN];
	uint64_t			 uid;
	time_t				 r = NOW + 100;

	fx_open(fx, DURABILITY_SYNC);
	uid = user(fx->st, 1001);
	open_family(fx->st, uid, 1001, 1, 1, NOW);
	make_tag(t2, 2);

	assert_int_equal(refresh(fx->st, 1, 2, r, &o), STORE_REFRESH_ROTATED);
	assert_int_equal(o.key, 0);
	assert_int_equal(o.session.generation, 1);
	assert_int_equal(o.session.last_used, r);
	assert_int_equal(o.session.user_id, uid);
	assert_memory_equal(o.successor, t2, STORE_TAG_LEN);
	s = get(fx->st, 1);
	assert_int_equal(s.generation, 1);
	assert_int_equal(s.last_used, r);

	/* Within the window: the recorded successor, even when the caller
	 * derived another one (a key rotated meanwhile); nothing written. */
	assert_int_equal(refresh(fx->st, 1, 2, r, &o), STORE_REFRESH_REPEAT);
	assert_memory_equal(o.successor, t2, STORE_TAG_LEN);
	assert_int_equal(o.session.generation, 1);
	assert_int_equal(refresh(fx->st, 1, 9, r + WINDOW, &o),
	    STORE_REFRESH_REPEAT);
	assert_memory_equal(o.successor, t2, STORE_TAG_LEN);
	assert_int_equal(o.key, 0);
	s = get(fx->st, 1);
	assert_int_equal(s.generation, 1);
	assert_int_equal(s.last_used, r);
	/* The repeat with tag 9 recorded nothing under 9. */
	assert_int_equal(refresh(fx->st, 9, 10, r + WINDOW, &o),
	    STORE_REFRESH_INVALID);
	assert_int_equal(o.key, -1);

	/* After the window: reuse, the whole family is revoked. */
	assert_int_equal(refresh(fx->st, 1, 2, r + WINDOW + 1, &o),
	    STORE_REFRESH_REUSED);
	assert_int_equal(o.session.status, STORE_SESSION_REVOKED);
	assert_int_equal(o.session.reason, STORE_REVOKE_REUSE);
	s = get(fx->st, 1);
	assert_int_equal(s.status, STORE_SESSION_REVOKED);
	assert_int_equal(s.reason, STORE_REVOKE_REUSE);
	assert_int_equal(s.revoked_at, r + WINDOW + 1);
	assert_int_equal(s.generation, 1);
	/* The successor, though current, refreshes nothing now. */
	assert_int_equal(refresh(fx->st, 2, 3, r + WINDOW + 2, &o),
	    STORE_REFRESH_INVALID);
	assert_int_equal(o.key, 0);
	assert_int_equal(refresh(fx->st, 1, 2, r + WINDOW + 2, &o),
	    STORE_REFRESH_INVALID);
	/* And the revocation was made once. */
	assert_int_equal(get(fx->st, 1).revoked_at, r + WINDOW + 1);
}

/* A chain of rotations: every ancestor coming back late is a reuse. */
static void
test_chain_old_ancestor_reused(void **state)
{
	struct fixture			*fx = *state;
	struct store_refresh_out	 o;
	uint64_t			 uid;
	uint32_t			 i;

	fx_open(fx, DURABILITY_SYNC);
	uid = user(fx->st, 1001);
	open_family(fx->st, uid, 1001, 1, 1, NOW);
	for (i = 1; i <= 5; i++)
		assert_int_equal(refresh(fx->st, i, i + 1, NOW + 100 * i, &o),
		    STORE_REFRESH_ROTATED);
	assert_int_equal(o.session.generation, 5);
	assert_int_equal(refresh(fx->st, 5, 6, NOW + 505, &o),
	    STORE_REFRESH_REPEAT);
	assert_int_equal(refresh(fx->st, 2, 3, NOW + 505, &o),
	    STORE_REFRESH_REUSED);
	assert_int_equal(refresh(fx->st, 6, 7, NOW + 506, &o),
	    STORE_REFRESH_INVALID);
}

static void
test_invalid_cases(void **state)
{
	struct fixture			*fx = *state;
	struct store_refresh_out	 o;
	unsigned char			 sid[STORE_SID_LEN];
	struct kl_error			 err;
	uint64_t			 uid;

	fx_open(fx, DURABILITY_SYNC);
	policy(fx->st, 1000, 300, WINDOW);
	uid = user(fx->st, 1001);
	/* Unknown. */
	assert_int_equal(refresh(fx->st, 77, 78, NOW, &o),
	    STORE_REFRESH_INVALID);
	assert_int_equal(o.key, -1);
	/* Revoked by a logout. */
	open_family(fx->st, uid, 1001, 1, 10, NOW);
	make_sid(sid, 1);
	assert_int_equal(store_session_revoke(fx->st, sid, uid,
	    STORE_REVOKE_LOGOUT, NOW + 1, &err), 0);
	assert_int_equal(refresh(fx->st, 10, 11, NOW + 2, &o),
	    STORE_REFRESH_INVALID);
	assert_int_equal(o.key, 0);
	/* Past ttl, though used within idle_ttl. */
	open_family(fx->st, uid, 1001, 2, 20, NOW);
	assert_int_equal(refresh(fx->st, 20, 21, NOW + 250, &o),
	    STORE_REFRESH_ROTATED);
	assert_int_equal(refresh(fx->st, 21, 22, NOW + 500, &o),
	    STORE_REFRESH_ROTATED);
	assert_int_equal(refresh(fx->st, 22, 23, NOW + 750, &o),
	    STORE_REFRESH_ROTATED);
	assert_int_equal(o.session.expires, NOW + 1000);
	assert_int_equal(refresh(fx->st, 23, 24, NOW + 999, &o),
	    STORE_REFRESH_ROTATED);
	assert_int_equal(refresh(fx->st, 24, 25, NOW + 1000, &o),
	    STORE_REFRESH_INVALID);
	/* The successor inherited the family's end, not a new ttl. */
	assert_int_equal(get(fx->st, 2).generation, 4);
	/* Idle: unused for idle_ttl. */
	open_family(fx->st, uid, 1001, 3, 30, NOW);
	assert_int_equal(refresh(fx->st, 30, 31, NOW + 299, &o),
	    STORE_REFRESH_ROTATED);
	assert_int_equal(refresh(fx->st, 31, 32, NOW + 299 + 300, &o),
	    STORE_REFRESH_INVALID);
	open_family(fx->st, uid, 1001, 4, 40, NOW);
	assert_int_equal(refresh(fx->st, 40, 41, NOW + 300, &o),
	    STORE_REFRESH_INVALID);
	/* Nothing was written by any of them. */
	assert_int_equal(get(fx->st, 3).generation, 1);
	assert_int_equal(get(fx->st, 4).generation, 0);
	assert_int_equal(get(fx->st, 4).status, STORE_SESSION_ACTIVE);
	/* A rotated token within the window of an expired family. */
	open_family(fx->st, uid, 1001, 5, 50, NOW);
	assert_int_equal(refresh(fx->st, 50, 51, NOW + 295, &o),
	    STORE_REFRESH_ROTATED);
	assert_int_equal(refresh(fx->st, 50, 51, NOW + 295 + WINDOW, &o),
	    STORE_REFRESH_REPEAT);
	open_family(fx->st, uid, 1001, 6, 60, NOW);
	assert_int_equal(refresh(fx->st, 60, 61, NOW + 290, &o),
	    STORE_REFRESH_ROTATED);
	assert_int_equal(refresh(fx->st, 61, 62, NOW + 580, &o),
	    STORE_REFRESH_ROTATED);
	assert_int_equal(refresh(fx->st, 62, 63, NOW + 870, &o),
	    STORE_REFRESH_ROTATED);
	assert_int_equal(refresh(fx->st, 63, 64, NOW + 995, &o),
	    STORE_REFRESH_ROTATED);
	assert_int_equal(refresh(fx->st, 63, 64, NOW + 999, &o),
	    STORE_REFRESH_REPEAT);
	assert_int_equal(refresh(fx->st, 63, 64, NOW + 1000, &o),
	    STORE_REFRESH_INVALID);
	assert_int_equal(get(fx->st, 6).status, STORE_SESSION_ACTIVE);
}

/* The window's edges, both ways: the clock stepped back. */
static void
test_window_edges_and_clock_back(void **state)
{
	struct fixture			*fx = *state;
	struct store_refresh_out	 o;
	uint64_t			 uid;
	time_t				 r = NOW + 1000;

	fx_open(fx, DURABILITY_SYNC);
	uid = user(fx->st, 1001);
	open_family(fx->st, uid, 1001, 1, 1, NOW);
	assert_int_equal(refresh(fx->st, 1, 2, r, &o), STORE_REFRESH_ROTATED);
	assert_int_equal(refresh(fx->st, 1, 2, r + WINDOW, &o),
	    STORE_REFRESH_REPEAT);
	assert_int_equal(refresh(fx->st, 1, 2, r - WINDOW, &o),
	    STORE_REFRESH_REPEAT);
	/* Rotated further ahead than the window: a reuse, not a repeat for
	 * as long as the step. */
	assert_int_equal(refresh(fx->st, 1, 2, r - WINDOW - 1, &o),
	    STORE_REFRESH_REUSED);

	/* A family used a little ahead counts as used now. */
	open_family(fx->st, uid, 1001, 2, 10, NOW + 60);
	assert_int_equal(refresh(fx->st, 10, 11, NOW, &o),
	    STORE_REFRESH_ROTATED);
	assert_int_equal(o.session.last_used, NOW);
	/* One dated idle_ttl or more ahead is expired, not immortal. */
	open_family(fx->st, uid, 1001, 3, 20, NOW + DEFAULT_REFRESH_IDLE_TTL);
	assert_int_equal(refresh(fx->st, 20, 21, NOW, &o),
	    STORE_REFRESH_INVALID);
	open_family(fx->st, uid, 1001, 4, 30,
	    NOW + DEFAULT_REFRESH_IDLE_TTL - 1);
	assert_int_equal(refresh(fx->st, 30, 31, NOW, &o),
	    STORE_REFRESH_ROTATED);
}

static void
test_second_key_tag(void **state)
{
	struct fixture			*fx = *state;
	unsigned char			 tags[3][STORE_TAG_LEN];
	struct store_refresh_in		 in;
	struct store_refresh_out	 o;
	struct kl_error			 err;
	uint64_t			 uid;

	fx_open(fx, DURABILITY_SYNC);
	uid = user(fx->st, 1001);
	open_family(fx->st, uid, 1001, 1, 1, NOW);
	make_tag(tags[0], 100);		/* under the new key: unknown */
	make_tag(tags[1], 1);		/* under the old key: recorded */
	make_tag(tags[2], 101);
	memset(&in, 0, sizeof(in));
	in.tags = (const unsigned char (*)[STORE_TAG_LEN])tags;
	in.ntags = 3;
	make_tag(in.successor, 2);
	in.now = NOW + 1;
	assert_int_equal(store_session_refresh(fx->st, &in, &o, &err), 0);
	assert_int_equal(o.state, STORE_REFRESH_ROTATED);
	assert_int_equal(o.key, 1);
	assert_int_equal(store_session_refresh(fx->st, &in, &o, &err), 0);
	assert_int_equal(o.state, STORE_REFRESH_REPEAT);
	assert_int_equal(o.key, 1);
	/* The successor is recorded under its own tag. */
	assert_int_equal(refresh(fx->st, 2, 3, NOW + 2, &o),
	    STORE_REFRESH_ROTATED);
	/* Bad input: no tags, too many, a zero successor. */
	in.ntags = 0;
	assert_int_equal(store_session_refresh(fx->st, &in, &o, &err), -1);
	assert_int_equal(err.status, KL_STORE_FAILED);
	in.ntags = MAX_REFRESH_CANDIDATES + 1;
	assert_int_equal(store_session_refresh(fx->st, &in, &o, &err), -1);
	in.ntags = 1;
	memset(in.successor, 0, sizeof(in.successor));
	assert_int_equal(store_session_refresh(fx->st, &in, &o, &err), -1);
	assert_int_equal(o.state, STORE_REFRESH_INVALID);
}

/* A successor tag already recorded (another family's token, or the
 * presented one itself) is never overwritten: the refresh fails with
 * nothing written, and the token stays current. */
static void
test_successor_already_recorded(void **state)
{
	struct fixture			*fx = *state;
	struct store_refresh_out	 o;
	unsigned char			 tags[1][STORE_TAG_LEN];
	struct store_refresh_in		 in;
	struct kl_error			 err;
	uint64_t			 uid;

	fx_open(fx, DURABILITY_SYNC);
	uid = user(fx->st, 1001);
	open_family(fx->st, uid, 1001, 1, 1, NOW);
	open_family(fx->st, uid, 1001, 2, 2, NOW);
	make_tag(tags[0], 1);
	memset(&in, 0, sizeof(in));
	in.tags = (const unsigned char (*)[STORE_TAG_LEN])tags;
	in.ntags = 1;
	in.now = NOW + 1;
	make_tag(in.successor, 2);
	assert_int_equal(store_session_refresh(fx->st, &in, &o, &err), -1);
	assert_int_equal(err.status, KL_STORE_FAILED);
	assert_int_equal(o.state, STORE_REFRESH_INVALID);
	make_tag(in.successor, 1);
	assert_int_equal(store_session_refresh(fx->st, &in, &o, &err), -1);
	assert_int_equal(err.status, KL_STORE_FAILED);
	assert_int_equal(get(fx->st, 1).generation, 0);
	assert_int_equal(get(fx->st, 1).last_used, NOW);
	/* Family 2's token is still its own and current. */
	assert_int_equal(refresh(fx->st, 2, 20, NOW + 2, &o),
	    STORE_REFRESH_ROTATED);
	assert_memory_equal(o.session.sid, get(fx->st, 2).sid, STORE_SID_LEN);
	/* Token 1 is still current: it rotates to a free successor. */
	assert_int_equal(refresh(fx->st, 1, 10, NOW + 2, &o),
	    STORE_REFRESH_ROTATED);
	assert_int_equal(o.session.generation, 1);
}

/* ---- revoke ---- */

static void
test_revoke(void **state)
{
	struct fixture			*fx = *state;
	struct store_refresh_out	 o;
	unsigned char			 sid[STORE_SID_LEN];
	struct kl_error			 err;
	struct store_session		 s;
	uint64_t			 a, b;

	fx_open(fx, DURABILITY_SYNC);
	a = user(fx->st, 1001);
	b = user(fx->st, 1002);
	open_family(fx->st, a, 1001, 1, 1, NOW);
	make_sid(sid, 1);
	/* Another user's family: not found, untouched. */
	assert_int_equal(store_session_revoke(fx->st, sid, b,
	    STORE_REVOKE_LOGOUT, NOW, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
	assert_int_equal(get(fx->st, 1).status, STORE_SESSION_ACTIVE);
	assert_int_equal(refresh(fx->st, 1, 2, NOW + 1, &o),
	    STORE_REFRESH_ROTATED);
	/* Its own. */
	assert_int_equal(store_session_revoke(fx->st, sid, a,
	    STORE_REVOKE_LOGOUT, NOW + 2, &err), 0);
	s = get(fx->st, 1);
	assert_int_equal(s.status, STORE_SESSION_REVOKED);
	assert_int_equal(s.reason, STORE_REVOKE_LOGOUT);
	assert_int_equal(s.revoked_at, NOW + 2);
	assert_int_equal(refresh(fx->st, 2, 3, NOW + 3, &o),
	    STORE_REFRESH_INVALID);
	/* Again: success, the first revocation stands. */
	assert_int_equal(store_session_revoke(fx->st, sid, a,
	    STORE_REVOKE_DELETED, NOW + 5, &err), 0);
	s = get(fx->st, 1);
	assert_int_equal(s.reason, STORE_REVOKE_LOGOUT);
	assert_int_equal(s.revoked_at, NOW + 2);
	/* Absent; a reason that is none. */
	make_sid(sid, 9);
	assert_int_equal(store_session_revoke(fx->st, sid, a,
	    STORE_REVOKE_LOGOUT, NOW, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
	make_sid(sid, 1);
	assert_int_equal(store_session_revoke(fx->st, sid, a,
	    STORE_REVOKE_NONE, NOW, &err), -1);
	assert_int_equal(err.status, KL_STORE_FAILED);
}

static void
test_revoke_user(void **state)
{
	struct fixture		*fx = *state;
	struct store_session	 l[8];
	struct kl_error		 err;
	uint64_t		 a, b;
	int			 count = -1, n, i;

	fx_open(fx, DURABILITY_SYNC);
	a = user(fx->st, 1001);
	b = user(fx->st, 1002);
	open_family(fx->st, a, 1001, 1, 10, NOW);
	open_family(fx->st, a, 1001, 2, 20, NOW + 1);
	open_family(fx->st, a, 1001, 3, 30, NOW + 2);
	open_family(fx->st, b, 1002, 4, 40, NOW);
	/* One of a's is revoked already: it is not counted again. */
	{
		unsigned char	sid[STORE_SID_LEN];

		make_sid(sid, 2);
		assert_int_equal(store_session_revoke(fx->st, sid, a,
		    STORE_REVOKE_LOGOUT, NOW + 3, &err), 0);
	}
	assert_int_equal(store_session_revoke_user(fx->st, a,
	    STORE_REVOKE_UNLINKED, NOW + 10, &count, &err), 0);
	assert_int_equal(count, 2);
	assert_int_equal(store_session_list(fx->st, a, l, 8, &n, &err), 0);
	assert_int_equal(n, 3);
	for (i = 0; i < n; i++)
		assert_int_equal(l[i].status, STORE_SESSION_REVOKED);
	assert_int_equal(l[0].reason, STORE_REVOKE_UNLINKED);
	assert_int_equal(l[1].reason, STORE_REVOKE_LOGOUT);
	assert_int_equal(l[2].reason, STORE_REVOKE_UNLINKED);
	assert_int_equal(l[2].revoked_at, NOW + 10);
	assert_int_equal(get(fx->st, 4).status, STORE_SESSION_ACTIVE);
	assert_int_equal(refresh(fx->st, 40, 41, NOW + 11, NULL),
	    STORE_REFRESH_ROTATED);
	assert_int_equal(refresh(fx->st, 30, 31, NOW + 11, NULL),
	    STORE_REFRESH_INVALID);
	/* Again: none left. */
	assert_int_equal(store_session_revoke_user(fx->st, a,
	    STORE_REVOKE_UNLINKED, NOW + 12, &count, &err), 0);
	assert_int_equal(count, 0);
	/* A user without sessions. */
	assert_int_equal(store_session_revoke_user(fx->st, a + b + 10,
	    STORE_REVOKE_LOGOUT, NOW, &count, &err), 0);
	assert_int_equal(count, 0);
	assert_int_equal(store_session_revoke_user(fx->st, a,
	    STORE_REVOKE_NONE, NOW, &count, &err), -1);
}

/* More families than one transaction revokes: repeated until none. */
static void
test_revoke_user_many(void **state)
{
	struct fixture		*fx = *state;
	struct store_session	 l[1];
	struct kl_error		 err;
	uint64_t		 a;
	uint32_t		 i, total = MAX_USER_SESSIONS + 5;
	int			 count, n;

	fx_open(fx, DURABILITY_NOSYNC);
	a = user(fx->st, 1001);
	for (i = 0; i < total; i++)
		open_family(fx->st, a, 1001, 1000 + i, 1000 + i, NOW);
	assert_int_equal(store_session_revoke_user(fx->st, a,
	    STORE_REVOKE_DELETED, NOW + 1, &count, &err), 0);
	assert_int_equal(count, (int)total);
	for (i = 0; i < total; i += 97)
		assert_int_equal(get(fx->st, 1000 + i).status,
		    STORE_SESSION_REVOKED);
	assert_int_equal(get(fx->st, 1000 + total - 1).status,
	    STORE_SESSION_REVOKED);
	assert_int_equal(store_session_list(fx->st, a, l, 1, &n, &err), 0);
	assert_int_equal(n, 1);
}

/* ---- list ---- */

static void
test_list(void **state)
{
	struct fixture		*fx = *state;
	struct store_session	 l[8];
	struct kl_error		 err;
	uint64_t		 a, b;
	int			 n = -1;

	fx_open(fx, DURABILITY_SYNC);
	a = user(fx->st, 1001);
	b = user(fx->st, 1002);
	/* Sids in another order than their times. */
	open_family(fx->st, a, 1001, 5, 50, NOW + 30);
	open_family(fx->st, a, 1001, 1, 10, NOW + 50);
	open_family(fx->st, a, 1001, 3, 30, NOW + 10);
	open_family(fx->st, a, 1001, 4, 40, NOW + 40);
	open_family(fx->st, a, 1001, 2, 20, NOW + 20);
	open_family(fx->st, b, 1002, 6, 60, NOW);
	assert_int_equal(store_session_list(fx->st, a, l, 8, &n, &err), 0);
	assert_int_equal(n, 5);
	assert_int_equal(l[0].created, NOW + 10);
	assert_int_equal(l[1].created, NOW + 20);
	assert_int_equal(l[2].created, NOW + 30);
	assert_int_equal(l[3].created, NOW + 40);
	assert_int_equal(l[4].created, NOW + 50);
	assert_int_equal(l[4].user_id, a);
	/* At most max: the oldest. */
	assert_int_equal(store_session_list(fx->st, a, l, 2, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(l[0].created, NOW + 10);
	assert_int_equal(l[1].created, NOW + 20);
	assert_int_equal(store_session_list(fx->st, b, l, 8, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(l[0].kakao_id, 1002);
	assert_int_equal(store_session_list(fx->st, a + b, l, 8, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_session_list(fx->st, a, l, 0, &n, &err), 0);
	assert_int_equal(n, 0);
}

static void
test_store_not_open(void **state)
{
	struct store			*st = NULL;
	struct store_session_new	 nw;
	struct store_session		 s;
	struct store_refresh_in		 in;
	struct store_refresh_out	 o;
	unsigned char			 tags[1][STORE_TAG_LEN];
	struct kl_error			 err;
	int				 n = 5;

	(void)state;
	memset(&nw, 1, sizeof(nw));
	memset(tags, 1, sizeof(tags));
	memset(&in, 0, sizeof(in));
	in.tags = (const unsigned char (*)[STORE_TAG_LEN])tags;
	in.ntags = 1;
	memset(in.successor, 2, sizeof(in.successor));
	assert_int_equal(store_new(&st, "/dev/null/db", DURABILITY_SYNC,
	    &err), 0);
	assert_false(store_ready(st));
#define REFUSED(call) do {						\
	err.status = KL_OK;						\
	assert_int_equal((call), -1);					\
	assert_int_equal(err.status, KL_STORE_FAILED);			\
} while (0)
	REFUSED(store_session_open(st, &nw, 1, 1, NOW, &s, &err));
	REFUSED(store_session_get(st, nw.sid, &s, &err));
	REFUSED(store_session_refresh(st, &in, &o, &err));
	assert_int_equal(o.state, STORE_REFRESH_INVALID);
	REFUSED(store_session_revoke(st, nw.sid, 1, STORE_REVOKE_LOGOUT, NOW,
	    &err));
	REFUSED(store_session_revoke_user(st, 1, STORE_REVOKE_LOGOUT, NOW, &n,
	    &err));
	assert_int_equal(n, 0);
	n = 5;
	REFUSED(store_session_list(st, 1, &s, 1, &n, &err));
	assert_int_equal(n, 0);
	n = 5;
	REFUSED(store_session_sweep(st, NOW, 10, &n, &err));
	assert_int_equal(n, 0);
#undef REFUSED
	store_close(st);
}

/* ---- sweep ---- */

static int
sweep(struct store *st, time_t now, int max)
{
	struct kl_error	err;
	int		removed = -1;

	if (store_session_sweep(st, now, max, &removed, &err) != 0)
		fail_msg("store_session_sweep: %s", err.detail);
	assert_true(removed >= 0 && removed <= max);
	return removed;
}

/* A token's record is gone: refresh finds no tag at all. */
static bool
token_gone(struct store *st, uint32_t tag_n, time_t now)
{
	struct store_refresh_out	o;

	return refresh(st, tag_n, 999999, now, &o) == STORE_REFRESH_INVALID &&
	    o.key == -1;
}

/*
 * At NOW + 2000 with ttl 1000, idle 300: families 1-3 expired (ttl), 4-6
 * idle (last used at NOW + 1650, ending at NOW + 2500), 7-8 revoked more
 * than a day ago; 9-10 revoked an hour ago (and past their ttl) and 11-13
 * live (last used at NOW + 1988) are kept. Each has tokens 100 * sid +
 * 0..3 (three rotations).
 */
static void
fill_for_sweep(struct store *st, uint64_t uid)
{
	unsigned char	sid[STORE_SID_LEN];
	struct kl_error	err;
	uint32_t	f, k;
	time_t		t0, step;

	policy(st, 1000, 300, WINDOW);
	for (f = 1; f <= 13; f++) {
		t0 = f <= 3 ? NOW : f <= 6 ? NOW + 1500 : NOW + 1700;
		if (f >= 7 && f <= 8)
			t0 = NOW - 2 * 86400;
		if (f >= 9 && f <= 10)
			t0 = NOW + 1000;
		step = f <= 3 ? 250 : f <= 6 ? 50 : 96;
		open_family(st, uid, 1001, f, 100 * f, t0);
		for (k = 0; k < 3; k++)
			assert_int_equal(refresh(st, 100 * f + k,
			    100 * f + k + 1, t0 + step * (k + 1), NULL),
			    STORE_REFRESH_ROTATED);
		if (f >= 7 && f <= 10) {
			make_sid(sid, f);
			assert_int_equal(store_session_revoke(st, sid, uid,
			    STORE_REVOKE_LOGOUT, f <= 8 ? NOW - 86400 - 1 :
			    NOW + 2000 - 3600, &err), 0);
		}
	}
}

static void
test_sweep_removes_families_and_tokens(void **state)
{
	struct fixture	*fx = *state;
	uint64_t	 uid;
	uint32_t	 f, k;
	time_t		 t = NOW + 2000;

	fx_open(fx, DURABILITY_SYNC);
	uid = user(fx->st, 1001);
	fill_for_sweep(fx->st, uid);
	assert_int_equal(sweep(fx->st, t, 1000), 8);
	assert_int_equal(sweep(fx->st, t, 1000), 0);
	for (f = 1; f <= 13; f++) {
		if (f <= 8) {
			assert_true(absent(fx->st, f));
			for (k = 0; k <= 3; k++)
				assert_true(token_gone(fx->st, 100 * f + k, t));
		} else
			assert_false(absent(fx->st, f));
	}
	/* The kept ones keep their tokens: revoked answer INVALID with the
	 * tag found, live ones rotate. */
	assert_false(token_gone(fx->st, 903, t));
	assert_false(token_gone(fx->st, 1003, t));
	for (f = 11; f <= 13; f++)
		assert_int_equal(refresh(fx->st, 100 * f + 3, 100 * f + 4, t,
		    NULL), STORE_REFRESH_ROTATED);
	/* Later the revoked ones go too, and the live ones expire. */
	assert_int_equal(sweep(fx->st, NOW + 2000 + 86400, 1000), 5);
	assert_true(token_gone(fx->st, 1304, NOW + 2000 + 86400));
	assert_true(token_gone(fx->st, 901, NOW + 2000 + 86400));
}

static void
test_sweep_bounded_and_resumes(void **state)
{
	struct fixture	*fx = *state;
	uint64_t	 uid;
	uint32_t	 f;
	int		 total, passes;

	fx_open(fx, DURABILITY_SYNC);
	uid = user(fx->st, 1001);
	fill_for_sweep(fx->st, uid);
	assert_int_equal(sweep(fx->st, NOW + 2000, 0), 0);
	assert_int_equal(sweep(fx->st, NOW + 2000, 3), 3);
	total = 3;
	for (passes = 0; passes < 10 && total < 8; passes++)
		total += sweep(fx->st, NOW + 2000, 3);
	assert_int_equal(total, 8);
	assert_int_equal(sweep(fx->st, NOW + 2000, 3), 0);
	for (f = 9; f <= 13; f++)
		assert_false(absent(fx->st, f));
}

/* A family with more tokens than one transaction deletes: finished by the
 * next passes, its family record last. */
static void
test_sweep_big_family(void **state)
{
	struct fixture	*fx = *state;
	uint64_t	 uid;
	uint32_t	 k, rotations = 3 * SESSION_SWEEP_BATCH;
	int		 total = 0, passes;

	fx_open(fx, DURABILITY_NOSYNC);
	uid = user(fx->st, 1001);
	policy(fx->st, 100000, 100000, WINDOW);
	open_family(fx->st, uid, 1001, 1, 10000, NOW);
	open_family(fx->st, uid, 1001, 2, 90000, NOW + 50000);
	for (k = 0; k < rotations; k++)
		assert_int_equal(refresh(fx->st, 10000 + k, 10001 + k,
		    NOW + k, NULL), STORE_REFRESH_ROTATED);
	for (passes = 0; passes < 10 && total < 1; passes++)
		total += sweep(fx->st, NOW + 100000, SESSION_SWEEP_BATCH);
	assert_int_equal(total, 1);
	assert_true(passes > 1);
	assert_true(absent(fx->st, 1));
	for (k = 0; k <= rotations; k += 37)
		assert_true(token_gone(fx->st, 10000 + k, NOW + 100000));
	assert_true(token_gone(fx->st, 10000 + rotations, NOW + 100000));
	assert_false(absent(fx->st, 2));
	assert_int_equal(refresh(fx->st, 90000, 90001, NOW + 100000, NULL),
	    STORE_REFRESH_ROTATED);
}

/* store_maintain sweeps (with the wall clock). */
static void
test_maintain_sweeps(void **state)
{
	struct fixture	*fx = *state;
	struct kl_error	 err;
	uint64_t	 uid;
	time_t		 now = time(NULL);

	fx_open(fx, DURABILITY_SYNC);
	uid = user(fx->st, 1001);
	policy(fx->st, 1000, 300, WINDOW);
	open_family(fx->st, uid, 1001, 1, 10, now - 2000);
	open_family(fx->st, uid, 1001, 2, 20, now);
	assert_int_equal(store_maintain(fx->st, &err), 0);
	assert_true(absent(fx->st, 1));
	assert_true(token_gone(fx->st, 10, now));
	assert_false(absent(fx->st, 2));
}

/* ---- orphans: token records whose family is gone ---- */

static int
raw_index_sid(DB *sec, const DBT *key, const DBT *data, DBT *result)
{
	(void)sec;
	(void)key;
	if (data->size < STORE_TOKEN_SID_OFF + STORE_SID_LEN)
		return DB_DONOTINDEX;
	memset(result, 0, sizeof(*result));
	result->data = (unsigned char *)data->data + STORE_TOKEN_SID_OFF;
	result->size = STORE_SID_LEN;
	return 0;
}

/* Writes straight into refresh.db (with its index), the store closed: a
 * token of no family, and a value that is no token record. */
static void
write_orphans(const char *home)
{
	struct store_token_record	 r;
	DB_ENV				*env;
	DB				*refresh, *by_sid;
	DBT				 key, data;
	unsigned char			 tag[STORE_TAG_LEN];
	unsigned char			 buf[STORE_TOKEN_RECORD_LEN];
	u_int32_t			 f = DB_CREATE | DB_AUTO_COMMIT;

	assert_int_equal(db_env_create(&env, 0), 0);
	assert_int_equal(env->open(env, home, DB_CREATE | DB_INIT_TXN |
	    DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL | DB_THREAD |
	    DB_REGISTER | DB_RECOVER, 0660), 0);
	assert_int_equal(db_create(&refresh, env, 0), 0);
	assert_int_equal(refresh->open(refresh, NULL, "refresh.db", NULL,
	    DB_BTREE, f, 0660), 0);
	assert_int_equal(db_create(&by_sid, env, 0), 0);
	assert_int_equal(by_sid->set_flags(by_sid, DB_DUP | DB_DUPSORT), 0);
	assert_int_equal(by_sid->open(by_sid, NULL, "refresh_by_sid.db", NULL,
	    DB_BTREE, f, 0660), 0);
	assert_int_equal(refresh->associate(refresh, NULL, by_sid,
	    raw_index_sid, 0), 0);
	memset(&r, 0, sizeof(r));
	r.state = STORE_TOKEN_CURRENT;
	make_sid(r.sid, 4242);
	r.issued = NOW;
	r.expires = NOW + 100;
	assert_int_equal(store_token_record_encode(&r, buf, sizeof(buf)),
	    STORE_TOKEN_RECORD_LEN);
	make_tag(tag, 500);
	memset(&key, 0, sizeof(key));
	key.data = tag;
	key.size = STORE_TAG_LEN;
	memset(&data, 0, sizeof(data));
	data.data = buf;
	data.size = sizeof(buf);
	assert_int_equal(refresh->put(refresh, NULL, &key, &data,
	    DB_AUTO_COMMIT), 0);
	make_tag(tag, 501);
	data.size = 5;
	assert_int_equal(refresh->put(refresh, NULL, &key, &data,
	    DB_AUTO_COMMIT), 0);
	by_sid->close(by_sid, 0);
	refresh->close(refresh, 0);
	env->close(env, 0);
}

static void
test_sweep_orphan_tokens(void **state)
{
	struct fixture			*fx = *state;
	struct store_refresh_out	 o;
	unsigned char			 tags[1][STORE_TAG_LEN];
	struct store_refresh_in		 in;
	struct kl_error			 err;
	uint64_t			 uid;

	fx_open(fx, DURABILITY_SYNC);
	uid = user(fx->st, 1001);
	open_family(fx->st, uid, 1001, 1, 10, NOW);
	fx_close(fx);
	write_orphans(fx->home);
	fx_open(fx, DURABILITY_SYNC);
	/* The orphan is found but has no family; the other does not decode. */
	assert_int_equal(refresh(fx->st, 500, 600, NOW, &o),
	    STORE_REFRESH_INVALID);
	assert_int_equal(o.key, 0);
	make_tag(tags[0], 501);
	memset(&in, 0, sizeof(in));
	in.tags = (const unsigned char (*)[STORE_TAG_LEN])tags;
	in.ntags = 1;
	make_tag(in.successor, 601);
	in.now = NOW;
	assert_int_equal(store_session_refresh(fx->st, &in, &o, &err), -1);
	assert_int_equal(err.status, KL_STORE_FAILED);
	/* No family is due; both token records go. */
	assert_int_equal(sweep(fx->st, NOW, 100), 0);
	assert_true(token_gone(fx->st, 500, NOW));
	assert_true(token_gone(fx->st, 501, NOW));
	assert_int_equal(refresh(fx->st, 10, 11, NOW, NULL),
	    STORE_REFRESH_ROTATED);
}

/* ---- twenty refreshes of one token at once ---- */

#define RACERS		20
#define PROCS		4
#define PER_PROC	(RACERS / PROCS)

struct racer {
	pthread_t			 thread;
	struct store			*st;
	pthread_barrier_t		*start;
	int				 failed;
	struct store_refresh_out	 out;
	char				 detail[MAX_ERROR_DETAIL];
};

static void *
racer_run(void *arg)
{
	struct racer			*r = arg;
	unsigned char			 tags[1][STORE_TAG_LEN];
	struct store_refresh_in		 in;
	struct kl_error			 err;

	make_tag(tags[0], 1);
	memset(&in, 0, sizeof(in));
	in.tags = (const unsigned char (*)[STORE_TAG_LEN])tags;
	in.ntags = 1;
	make_tag(in.successor, 2);
	in.now = NOW + 5;
	pthread_barrier_wait(r->start);
	if (store_session_refresh(r->st, &in, &r->out, &err) != 0) {
		r->failed = 1;
		snprintf(r->detail, sizeof(r->detail), "%s", err.detail);
	}
	return NULL;
}

/* Runs n racers on st; counts ROTATED and REPEAT answers with the
 * successor 2 and generation 1, and everything else as wrong. */
static void
race(struct store *st, int n, int *rotated, int *repeat, int *wrong)
{
	struct racer		r[RACERS];
	pthread_barrier_t	start;
	unsigned char		t2[STORE_TAG_LEN];
	int			i;

	make_tag(t2, 2);
	*rotated = *repeat = *wrong = 0;
	memset(r, 0, sizeof(r));
	pthread_barrier_init(&start, NULL, (unsigned)n);
	for (i = 0; i < n; i++) {
		r[i].st = st;
		r[i].start = &start;
		if (pthread_create(&r[i].thread, NULL, racer_run, &r[i]) != 0)
			abort();
	}
	for (i = 0; i < n; i++) {
		pthread_join(r[i].thread, NULL);
		if (r[i].failed || memcmp(r[i].out.successor, t2,
		    STORE_TAG_LEN) != 0 || r[i].out.session.generation != 1) {
			if (r[i].failed)
				fprintf(stderr, "racer: %s\n", r[i].detail);
			(*wrong)++;
		} else if (r[i].out.state == STORE_REFRESH_ROTATED)
			(*rotated)++;
		else if (r[i].out.state == STORE_REFRESH_REPEAT)
			(*repeat)++;
		else
			(*wrong)++;
	}
	pthread_barrier_destroy(&start);
}

static void
test_twenty_threads_one_rotation(void **state)
{
	struct fixture	*fx = *state;
	uint64_t	 uid;
	int		 rotated, repeat, wrong;

	fx_open(fx, DURABILITY_SYNC);
	uid = user(fx->st, 1001);
	open_family(fx->st, uid, 1001, 1, 1, NOW);
	race(fx->st, RACERS, &rotated, &repeat, &wrong);
	assert_int_equal(wrong, 0);
	assert_int_equal(rotated, 1);
	assert_int_equal(repeat, RACERS - 1);
	assert_int_equal(get(fx->st, 1).generation, 1);
	assert_int_equal(refresh(fx->st, 2, 3, NOW + 6, NULL),
	    STORE_REFRESH_ROTATED);
}

/* A child: its own store, PER_PROC racers after the parent's go; reports
 * how many rotated, repeated, went wrong. */
static void
race_child(const char *home, int go, int report)
{
	struct store	*st;
	struct kl_error	 err;
	unsigned char	 counts[3];
	int		 rotated, repeat, wrong;
	char		 c;

	if (store_open(&st, home, DURABILITY_SYNC, &err) != 0) {
		fprintf(stderr, "child open: %s\n", err.detail);
		_exit(1);
	}
	if (read(go, &c, 1) != 0)
		_exit(3);
	race(st, PER_PROC, &rotated, &repeat, &wrong);
	counts[0] = (unsigned char)rotated;
	counts[1] = (unsigned char)repeat;
	counts[2] = (unsigned char)wrong;
	if (write(report, counts, 3) != 3)
		_exit(2);
	store_close(st);
	_exit(0);
}

static void
test_four_processes_one_rotation(void **state)
{
	struct fixture	*fx = *state;
	unsigned char	 counts[3];
	pid_t		 pids[PROCS];
	uint64_t	 uid;
	int		 i, status, go[2], rep[2], failed = 0;
	int		 rotated = 0, repeat = 0, wrong = 0, reports = 0;

	fx_open(fx, DURABILITY_SYNC);
	uid = user(fx->st, 1001);
	open_family(fx->st, uid, 1001, 1, 1, NOW);
	fx_close(fx);
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(rep), 0);
	for (i = 0; i < PROCS; i++) {
		if ((pids[i] = fork()) == 0) {
			close(go[1]);
			close(rep[0]);
			race_child(fx->home, go[0], rep[1]);
		}
		assert_true(pids[i] > 0);
	}
	close(go[0]);
	close(rep[1]);
	/* Every child has opened its store before the start. */
	sleep(1);
	close(go[1]);
	while (read(rep[0], counts, 3) == 3) {
		rotated += counts[0];
		repeat += counts[1];
		wrong += counts[2];
		reports++;
	}
	close(rep[0]);
	for (i = 0; i < PROCS; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	assert_int_equal(failed, 0);
	assert_int_equal(reports, PROCS);
	assert_int_equal(wrong, 0);
	assert_int_equal(rotated, 1);
	assert_int_equal(repeat, RACERS - 1);
	fx_open(fx, DURABILITY_SYNC);
	assert_int_equal(get(fx->st, 1).generation, 1);
}

/* ---- records ---- */

static void
sample_session(struct store_session *s)
{
	memset(s, 0, sizeof(*s));
	make_sid(s->sid, 0x01020304);
	s->status = STORE_SESSION_REVOKED;
	s->reason = STORE_REVOKE_ADMIN;
	s->user_id = 0x0102030405060708ULL;
	s->kakao_id = INT64_MAX;
	s->created = NOW;
	s->last_used = NOW + 1;
	s->expires = NOW + 2;
	s->revoked_at = -3;
	s->generation = 0xa1b2c3d4;
}

static void
sample_token(struct store_token_record *r)
{
	memset(r, 0, sizeof(*r));
	r->state = STORE_TOKEN_ROTATED;
	r->generation = 7;
	make_sid(r->sid, 9);
	r->issued = NOW;
	r->rotated = NOW + 1;
	r->expires = NOW + 2;
	make_tag(r->successor, 3);
}

static void
test_records_round_trip(void **state)
{
	struct store_session		 s, s2;
	struct store_token_record	 t, t2;
	unsigned char			 buf[STORE_TOKEN_RECORD_LEN];

	(void)state;
	assert_int_equal(STORE_SESSION_RECORD_LEN, 72);
	assert_int_equal(STORE_TOKEN_RECORD_LEN, 80);
	sample_session(&s);
	assert_int_equal(store_session_record_encode(&s, buf, sizeof(buf)),
	    STORE_SESSION_RECORD_LEN);
	assert_int_equal(buf[0], 1);
	assert_int_equal(buf[1], STORE_SESSION_REVOKED);
	assert_int_equal(buf[2], STORE_REVOKE_ADMIN);
	assert_int_equal(buf[4], 0xa1);
	assert_int_equal(buf[7], 0xd4);
	assert_memory_equal(buf + 8, s.sid, STORE_SID_LEN);
	assert_int_equal(buf[STORE_SESSION_USER_OFF], 0x01);
	assert_int_equal(buf[STORE_SESSION_USER_OFF + 7], 0x08);
	assert_int_equal(store_session_record_decode(buf,
	    STORE_SESSION_RECORD_LEN, &s2), 0);
	assert_memory_equal(&s, &s2, sizeof(s));
	assert_int_equal(store_session_record_encode(&s, buf,
	    STORE_SESSION_RECORD_LEN - 1), -1);

	sample_token(&t);
	assert_int_equal(store_token_record_encode(&t, buf, sizeof(buf)),
	    STORE_TOKEN_RECORD_LEN);
	assert_int_equal(buf[0], 1);
	assert_int_equal(buf[1], STORE_TOKEN_ROTATED);
	assert_int_equal(buf[7], 7);
	assert_memory_equal(buf + STORE_TOKEN_SID_OFF, t.sid, STORE_SID_LEN);
	assert_memory_equal(buf + 48, t.successor, STORE_TAG_LEN);
	assert_int_equal(store_token_record_decode(buf, sizeof(buf), &t2), 0);
	assert_memory_equal(&t, &t2, sizeof(t));
	assert_int_equal(store_token_record_encode(&t, buf, sizeof(buf) - 1),
	    -1);
	/* A current one. */
	t.state = STORE_TOKEN_CURRENT;
	t.rotated = 0;
	memset(t.successor, 0, sizeof(t.successor));
	assert_int_equal(store_token_record_encode(&t, buf, sizeof(buf)),
	    STORE_TOKEN_RECORD_LEN);
	assert_int_equal(store_token_record_decode(buf, sizeof(buf), &t2), 0);
	assert_int_equal(t2.state, STORE_TOKEN_CURRENT);
}

static void
test_session_decode_refuses(void **state)
{
	struct store_session	s, out;
	unsigned char		buf[STORE_SESSION_RECORD_LEN + 1];
	unsigned char		bad[STORE_SESSION_RECORD_LEN + 1];
	size_t			n;

	(void)state;
	sample_session(&s);
	assert_int_equal(store_session_record_encode(&s, buf,
	    STORE_SESSION_RECORD_LEN), STORE_SESSION_RECORD_LEN);
	buf[STORE_SESSION_RECORD_LEN] = 0;
	for (n = 0; n <= STORE_SESSION_RECORD_LEN + 1; n++)
		if (n != STORE_SESSION_RECORD_LEN &&
		    store_session_record_decode(buf, n, &out) != -1)
			fail_msg("length %zu accepted", n);
#define BAD_AT(i, v) do {						\
	memcpy(bad, buf, sizeof(bad));					\
	bad[(i)] = (v);							\
	assert_int_equal(store_session_record_decode(bad,		\
	    STORE_SESSION_RECORD_LEN, &out), -1);			\
} while (0)
	BAD_AT(0, 0);			/* no version 0 */
	BAD_AT(0, 2);			/* a later version */
	BAD_AT(0, 0xff);
	BAD_AT(1, 0);			/* status */
	BAD_AT(1, 3);
	BAD_AT(2, 0);			/* revoked without a reason */
	BAD_AT(2, 6);			/* unknown reason */
	BAD_AT(3, 1);			/* pad */
	BAD_AT(1, STORE_SESSION_ACTIVE);	/* active with a reason */
#undef BAD_AT
	/* Active with a revocation time; user id 0. */
	s.status = STORE_SESSION_ACTIVE;
	s.reason = STORE_REVOKE_NONE;
	s.revoked_at = 0;
	assert_int_equal(store_session_record_encode(&s, buf, sizeof(buf)),
	    STORE_SESSION_RECORD_LEN);
	assert_int_equal(store_session_record_decode(buf,
	    STORE_SESSION_RECORD_LEN, &out), 0);
	buf[STORE_SESSION_RECORD_LEN - 1] = 1;
	assert_int_equal(store_session_record_decode(buf,
	    STORE_SESSION_RECORD_LEN, &out), -1);
	s.revoked_at = 1;
	assert_int_equal(store_session_record_encode(&s, buf, sizeof(buf)), -1);
	s.revoked_at = 0;
	s.user_id = 0;
	assert_int_equal(store_session_record_encode(&s, buf, sizeof(buf)), -1);
	s.user_id = 1;
	s.reason = STORE_REVOKE_LOGOUT;
	assert_int_equal(store_session_record_encode(&s, buf, sizeof(buf)), -1);
	s.status = 7;
	assert_int_equal(store_session_record_encode(&s, buf, sizeof(buf)), -1);
}

static void
test_token_decode_refuses(void **state)
{
	struct store_token_record	t, out;
	unsigned char			buf[STORE_TOKEN_RECORD_LEN + 1];
	unsigned char			bad[STORE_TOKEN_RECORD_LEN + 1];
	size_t				n;

	(void)state;
	sample_token(&t);
	assert_int_equal(store_token_record_encode(&t, buf,
	    STORE_TOKEN_RECORD_LEN), STORE_TOKEN_RECORD_LEN);
	buf[STORE_TOKEN_RECORD_LEN] = 0;
	for (n = 0; n <= STORE_TOKEN_RECORD_LEN + 1; n++)
		if (n != STORE_TOKEN_RECORD_LEN &&
		    store_token_record_decode(buf, n, &out) != -1)
			fail_msg("length %zu accepted", n);
#define BAD_AT(i, v) do {						\
	memcpy(bad, buf, sizeof(bad));					\
	bad[(i)] = (v);							\
	assert_int_equal(store_token_record_decode(bad,			\
	    STORE_TOKEN_RECORD_LEN, &out), -1);				\
} while (0)
	BAD_AT(0, 0);			/* no version 0 */
	BAD_AT(0, 2);			/* a later version */
	BAD_AT(1, 0);			/* state */
	BAD_AT(1, 3);
	BAD_AT(2, 1);			/* pad */
	BAD_AT(3, 1);
	/* Current, with a rotation time and a successor. */
	BAD_AT(1, STORE_TOKEN_CURRENT);
#undef BAD_AT
	/* Current with only a rotation time, or only a successor. */
	t.state = STORE_TOKEN_CURRENT;
	memset(t.successor, 0, sizeof(t.successor));
	assert_int_equal(store_token_record_encode(&t, buf, sizeof(buf)), -1);
	t.rotated = 0;
	assert_int_equal(store_token_record_encode(&t, buf, sizeof(buf)),
	    STORE_TOKEN_RECORD_LEN);
	memcpy(bad, buf, sizeof(bad));
	bad[40 - 1] = 1;	/* rotated's last byte */
	assert_int_equal(store_token_record_decode(bad,
	    STORE_TOKEN_RECORD_LEN, &out), -1);
	memcpy(bad, buf, sizeof(bad));
	bad[STORE_TOKEN_RECORD_LEN - 1] = 1;	/* a successor byte */
	assert_int_equal(store_token_record_decode(bad,
	    STORE_TOKEN_RECORD_LEN, &out), -1);
	/* Rotated with a zero successor. */
	memcpy(bad, buf, sizeof(bad));
	bad[1] = STORE_TOKEN_ROTATED;
	assert_int_equal(store_token_record_decode(bad,
	    STORE_TOKEN_RECORD_LEN, &out), -1);
	t.state = STORE_TOKEN_ROTATED;
	assert_int_equal(store_token_record_encode(&t, buf, sizeof(buf)), -1);
	t.state = 9;
	assert_int_equal(store_token_record_encode(&t, buf, sizeof(buf)), -1);
}

int
main(void)
{
#define FX(t)	cmocka_unit_test_setup_teardown(t, setup, teardown)
	const struct CMUnitTest tests[] = {
		FX(test_open_get),
		FX(test_rotate_repeat_reuse),
		FX(test_chain_old_ancestor_reused),
		FX(test_invalid_cases),
		FX(test_window_edges_and_clock_back),
		FX(test_second_key_tag),
		FX(test_successor_already_recorded),
		FX(test_revoke),
		FX(test_revoke_user),
		FX(test_revoke_user_many),
		FX(test_list),
		cmocka_unit_test(test_store_not_open),
		FX(test_sweep_removes_families_and_tokens),
		FX(test_sweep_bounded_and_resumes),
		FX(test_sweep_big_family),
		FX(test_maintain_sweeps),
		FX(test_sweep_orphan_tokens),
		FX(test_twenty_threads_one_rotation),
		FX(test_four_processes_one_rotation),
		cmocka_unit_test(test_records_round_trip),
		cmocka_unit_test(test_session_decode_refuses),
		cmocka_unit_test(test_token_decode_refuses),
	};
#undef FX

	return cmocka_run_group_tests_name("store_session", tests, NULL,
	    NULL);
}
