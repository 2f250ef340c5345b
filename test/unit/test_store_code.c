/*
 * test_store_code.c: code-exchange records (app/store_code.c).
 *
 * Each test opens a real environment in its own mkdtemp() directory under
 * /tmp and removes it afterwards, as test_store.c does. Covers the claim
 * states and their time limits, finish and abandon, the bounded sweep and
 * store_maintain's use of it, an environment made without codes.db, two
 * processes claiming one code at once, threads, and the record codec.
 */
#include <sys/stat.h>
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
#include "store_code.h"

#include "unit_util.h"

#define NOW	((time_t)1700000000)

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

static int
setup(void **state)
{
	struct fixture	*fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	snprintf(fx->home, sizeof(fx->home), "/tmp/kl-test-code-XXXXXX");
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

/* A tag that differs from every other (n) in its first and last bytes. */
static void
make_tag(unsigned char tag[STORE_TAG_LEN], unsigned char kind, uint32_t n)
{
	memset(tag, kind, STORE_TAG_LEN);
	tag[0] = (unsigned char)(n >> 24);
	tag[1] = (unsigned char)(n >> 16);
	tag[2] = (unsigned char)(n >> 8);
	tag[3] = (unsigned char)n;
	tag[STORE_TAG_LEN - 1] = (unsigned char)(n * 7);
}

static enum store_code_state
claim(struct store *st, uint32_t code, const unsigned char *verifier,
    time_t now, struct store_code_outcome *out)
{
	unsigned char			tag[STORE_TAG_LEN];
	struct store_code_outcome	o;
	struct kl_error			err;

	make_tag(tag, 0xc0, code);
	if (out == NULL)
		out = &o;
	memset(out, 0x5a, sizeof(*out));
	if (store_code_claim(st, tag, verifier, now, out, &err) != 0)
		fail_msg("store_code_claim %u: %s", code, err.detail);
	return out->state;
}

static void
finish(struct store *st, uint32_t code, int64_t kakao_id, uint64_t user_id,
    time_t now)
{
	unsigned char	tag[STORE_TAG_LEN];
	struct kl_error	err;

	make_tag(tag, 0xc0, code);
	if (store_code_finish(st, tag, NULL, kakao_id, user_id, now, &err) != 0)
		fail_msg("store_code_finish %u: %s", code, err.detail);
}

static int
sweep(struct store *st, time_t now, int max)
{
	struct kl_error	err;
	int		removed = -1;

	if (store_code_sweep(st, now, max, &removed, &err) != 0)
		fail_msg("store_code_sweep: %s", err.detail);
	assert_true(removed >= 0 && removed <= max);
	return removed;
}

/* Two verifier tags that differ only in their last byte. */
static unsigned char	V1[STORE_TAG_LEN], V2[STORE_TAG_LEN];

static int
group_setup(void **state)
{
	(void)state;
	memset(V1, 0x11, sizeof(V1));
	memcpy(V2, V1, sizeof(V2));
	V2[STORE_TAG_LEN - 1] ^= 1;
	return 0;
}

/* ---- claims ---- */

static void
test_claim_then_repeats(void **state)
{
	struct fixture	*fx = *state;

	fx_open(fx, DURABILITY_SYNC);
	assert_int_equal(claim(fx->st, 1, V1, NOW, NULL), STORE_CODE_CLAIMED);
	assert_int_equal(claim(fx->st, 1, V1, NOW, NULL), STORE_CODE_PENDING);
	assert_int_equal(claim(fx->st, 1, V1, NOW + 1, NULL),
	    STORE_CODE_PENDING);
	assert_int_equal(claim(fx->st, 1, V2, NOW, NULL), STORE_CODE_REFUSED);
	assert_int_equal(claim(fx->st, 1, NULL, NOW, NULL), STORE_CODE_REFUSED);
	/* A refused repeat changed nothing: the first verifier still waits. */
	assert_int_equal(claim(fx->st, 1, V1, NOW, NULL), STORE_CODE_PENDING);
	/* Another code is its own. */
	assert_int_equal(claim(fx->st, 2, V2, NOW, NULL), STORE_CODE_CLAIMED);
}

static void
test_no_pkce_matches_nothing(void **state)
{
	struct fixture	*fx = *state;

	fx_open(fx, DURABILITY_SYNC);
	assert_int_equal(claim(fx->st, 3, NULL, NOW, NULL), STORE_CODE_CLAIMED);
	assert_int_equal(claim(fx->st, 3, NULL, NOW, NULL), STORE_CODE_REFUSED);
	assert_int_equal(claim(fx->st, 3, V1, NOW, NULL), STORE_CODE_REFUSED);
	/* Exchanged without PKCE: a repeat still matches nothing. */
	finish(fx->st, 3, 77, 5, NOW);
	assert_int_equal(claim(fx->st, 3, NULL, NOW + 1, NULL),
	    STORE_CODE_REFUSED);
	assert_int_equal(claim(fx->st, 3, V1, NOW + 1, NULL),
	    STORE_CODE_REFUSED);
}

static void
test_finish_then_done(void **state)
{
	struct fixture			*fx = *state;
	struct store_code_outcome	 o;

	fx_open(fx, DURABILITY_SYNC);
	assert_int_equal(claim(fx->st, 4, V1, NOW, NULL), STORE_CODE_CLAIMED);
	finish(fx->st, 4, 1855599935, 42, NOW + 1);
	assert_int_equal(claim(fx->st, 4, V1, NOW + 2, &o), STORE_CODE_DONE);
	assert_int_equal(o.kakao_id, 1855599935);
	assert_int_equal(o.user_id, 42);
	assert_int_equal(claim(fx->st, 4, V2, NOW + 2, &o), STORE_CODE_REFUSED);
	assert_int_equal(o.kakao_id, 0);
	assert_int_equal(o.user_id, 0);
	assert_int_equal(claim(fx->st, 4, NULL, NOW + 2, NULL),
	    STORE_CODE_REFUSED);
	/* Kept across a reopen: the record is durable. */
	store_close(fx->st);
	fx->st = NULL;
	fx_open(fx, DURABILITY_SYNC);
	assert_int_equal(claim(fx->st, 4, V1, NOW + 3, &o), STORE_CODE_DONE);
	assert_int_equal(o.user_id, 42);
}

/* DONE lives CODE_REPLAY_WINDOW_S seconds from the finish. */
static void
test_done_expires_after_window(void **state)
{
	struct fixture	*fx = *state;
	time_t		 done = NOW + 5;

	fx_open(fx, DURABILITY_SYNC);
	assert_int_equal(claim(fx->st, 5, V1, NOW, NULL), STORE_CODE_CLAIMED);
	finish(fx->st, 5, 9, 9, done);
	assert_int_equal(claim(fx->st, 5, V1, done + CODE_REPLAY_WINDOW_S - 1,
	    NULL), STORE_CODE_DONE);
	assert_int_equal(claim(fx->st, 5, V2, done + CODE_REPLAY_WINDOW_S - 1,
	    NULL), STORE_CODE_REFUSED);
	assert_int_equal(claim(fx->st, 5, V1, done + CODE_REPLAY_WINDOW_S,
	    NULL), STORE_CODE_CLAIMED);
	assert_int_equal(claim(fx->st, 5, V1, done + CODE_REPLAY_WINDOW_S,
	    NULL), STORE_CODE_PENDING);
}

/* A claim older than CODE_PENDING_MAX_S was abandoned (its process died):
 * the next claim takes it over, with its own verifier. */
static void
test_pending_abandoned_after_max(void **state)
{
	struct fixture	*fx = *state;
	time_t		 t = NOW + CODE_PENDING_MAX_S;

	fx_open(fx, DURABILITY_SYNC);
	assert_int_equal(claim(fx->st, 6, V1, NOW, NULL), STORE_CODE_CLAIMED);
	assert_int_equal(claim(fx->st, 6, V1, t - 1, NULL), STORE_CODE_PENDING);
	assert_int_equal(claim(fx->st, 6, V2, t - 1, NULL), STORE_CODE_REFUSED);
	assert_int_equal(claim(fx->st, 6, V2, t, NULL), STORE_CODE_CLAIMED);
	assert_int_equal(claim(fx->st, 6, V2, t, NULL), STORE_CODE_PENDING);
	assert_int_equal(claim(fx->st, 6, V1, t, NULL), STORE_CODE_REFUSED);
}

/* The clock stepped back: a record from further ahead than its life does
 * not hold the code for as long as the step. */
static void
test_record_from_the_future_expires(void **state)
{
	struct fixture	*fx = *state;

	fx_open(fx, DURABILITY_SYNC);
	assert_int_equal(claim(fx->st, 7, V1, NOW, NULL), STORE_CODE_CLAIMED);
	assert_int_equal(claim(fx->st, 7, V1, NOW - CODE_PENDING_MAX_S + 1,
	    NULL), STORE_CODE_PENDING);
	assert_int_equal(claim(fx->st, 7, V1, NOW - CODE_PENDING_MAX_S, NULL),
	    STORE_CODE_CLAIMED);
}

static void
test_abandon(void **state)
{
	struct fixture			*fx = *state;
	struct store_code_outcome	 o;
	unsigned char			 tag[STORE_TAG_LEN];
	struct kl_error			 err;

	fx_open(fx, DURABILITY_SYNC);
	make_tag(tag, 0xc0, 8);
	assert_int_equal(claim(fx->st, 8, V1, NOW, NULL), STORE_CODE_CLAIMED);
	assert_int_equal(store_code_abandon(fx->st, tag, NULL, &err), 0);
	/* Any verifier may claim it again, at once. */
	assert_int_equal(claim(fx->st, 8, V2, NOW, NULL), STORE_CODE_CLAIMED);
	assert_int_equal(store_code_abandon(fx->st, tag, NULL, &err), 0);
	/* Missing: not an error. */
	assert_int_equal(store_code_abandon(fx->st, tag, NULL, &err), 0);
	/* A DONE record stays. */
	assert_int_equal(claim(fx->st, 8, V1, NOW, NULL), STORE_CODE_CLAIMED);
	finish(fx->st, 8, 10, 11, NOW);
	assert_int_equal(store_code_abandon(fx->st, tag, NULL, &err), 0);
	assert_int_equal(claim(fx->st, 8, V1, NOW, &o), STORE_CODE_DONE);
	assert_int_equal(o.user_id, 11);
}

/* The review's interleaving: the victim's exchange is slower than
 * CODE_PENDING_MAX_S, an attacker with the stolen code and another
 * verifier takes the claim over; the victim's finish must not make the
 * record DONE under the attacker's verifier, and the attacker's abandon
 * (Kakao: used) must not free the victim's repeat either. */
static void
test_takeover_gets_nothing(void **state)
{
	struct fixture			*fx = *state;
	struct store_code_outcome	 victim, attacker, o;
	unsigned char			 tag[STORE_TAG_LEN];
	struct kl_error			 err;

	fx_open(fx, DURABILITY_SYNC);
	make_tag(tag, 0xc0, 77);
	assert_int_equal(store_code_claim(fx->st, tag, V1, NOW, &victim, &err),
	    0);
	assert_int_equal(victim.state, STORE_CODE_CLAIMED);
	assert_int_equal(store_code_claim(fx->st, tag, V2,
	    NOW + CODE_PENDING_MAX_S, &attacker, &err), 0);
	assert_int_equal(attacker.state, STORE_CODE_CLAIMED);
	/* The victim's slow exchange ends: its finish writes nothing. */
	assert_int_equal(store_code_finish(fx->st, tag, &victim, 4242, 42,
	    NOW + CODE_PENDING_MAX_S + 1, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
	/* The attacker's repeat is never served the victim's user. */
	assert_int_equal(claim(fx->st, 77, V2, NOW + CODE_PENDING_MAX_S + 2,
	    &o), STORE_CODE_PENDING);
	/* The victim's abandon leaves the attacker's claim alone too. */
	assert_int_equal(store_code_abandon(fx->st, tag, &victim, &err), 0);
	assert_int_equal(claim(fx->st, 77, V1, NOW + CODE_PENDING_MAX_S + 2,
	    &o), STORE_CODE_REFUSED);
	/* The attacker's own abandon (Kakao said: used) removes its claim. */
	assert_int_equal(store_code_abandon(fx->st, tag, &attacker, &err), 0);
	assert_int_equal(claim(fx->st, 77, V2, NOW + CODE_PENDING_MAX_S + 3,
	    &o), STORE_CODE_CLAIMED);
}

static void
test_finish_without_claim(void **state)
{
	struct fixture	*fx = *state;
	unsigned char	 tag[STORE_TAG_LEN];
	struct kl_error	 err;

	fx_open(fx, DURABILITY_SYNC);
	make_tag(tag, 0xc0, 9);
	assert_int_equal(store_code_finish(fx->st, tag, NULL, 1, 1, NOW, &err), -1);
	assert_int_equal(err.status, KL_NOT_FOUND);
	/* Nothing was written: the code is still free. */
	assert_int_equal(claim(fx->st, 9, V1, NOW, NULL), STORE_CODE_CLAIMED);
	/* Ids a login never makes. */
	assert_int_equal(store_code_finish(fx->st, tag, NULL, 0, 1, NOW, &err), -1);
	assert_int_equal(store_code_finish(fx->st, tag, NULL, 1, 0, NOW, &err), -1);
	assert_int_equal(claim(fx->st, 9, V1, NOW, NULL), STORE_CODE_PENDING);
}

static void
test_store_not_open(void **state)
{
	struct store			*st = NULL;
	struct store_code_outcome	 o;
	unsigned char			 tag[STORE_TAG_LEN];
	struct kl_error			 err;
	int				 removed = 5;

	(void)state;
	make_tag(tag, 0xc0, 1);
	assert_int_equal(store_new(&st, "/dev/null/db", DURABILITY_SYNC,
	    &err), 0);
	assert_int_equal(store_code_claim(st, tag, V1, NOW, &o, &err), -1);
	assert_int_equal(err.status, KL_STORE_FAILED);
	assert_int_equal(store_code_finish(st, tag, NULL, 1, 1, NOW, &err), -1);
	assert_int_equal(store_code_abandon(st, tag, NULL, &err), -1);
	assert_int_equal(store_code_sweep(st, NOW, 10, &removed, &err), -1);
	assert_int_equal(removed, 0);
	store_close(st);
}

/* ---- sweep ---- */

#define OLD_PENDING	5
#define OLD_DONE	5
#define LIVE_PENDING	3
#define LIVE_DONE	3

/* Codes 100.. expired, 200.. live, at NOW. */
static void
fill_for_sweep(struct store *st)
{
	uint32_t	i;

	for (i = 0; i < OLD_PENDING; i++)
		assert_int_equal(claim(st, 100 + i, V1, NOW - CODE_PENDING_MAX_S,
		    NULL), STORE_CODE_CLAIMED);
	for (i = 0; i < OLD_DONE; i++) {
		assert_int_equal(claim(st, 110 + i, V1, NOW - 100, NULL),
		    STORE_CODE_CLAIMED);
		finish(st, 110 + i, 1, 1, NOW - CODE_REPLAY_WINDOW_S);
	}
	/* Live: a PENDING older than a DONE may be, and a DONE older than
	 * CODE_PENDING_MAX_S, so the two limits are not mixed up. */
	for (i = 0; i < LIVE_PENDING; i++)
		assert_int_equal(claim(st, 200 + i, V1,
		    NOW - CODE_PENDING_MAX_S + 1, NULL), STORE_CODE_CLAIMED);
	for (i = 0; i < LIVE_DONE; i++) {
		assert_int_equal(claim(st, 210 + i, V1, NOW - 100, NULL),
		    STORE_CODE_CLAIMED);
		finish(st, 210 + i, 2, 2, NOW - CODE_REPLAY_WINDOW_S + 1);
	}
}

static void
test_sweep_removes_only_expired(void **state)
{
	struct fixture			*fx = *state;
	struct store_code_outcome	 o;
	uint32_t			 i;

	fx_open(fx, DURABILITY_SYNC);
	fill_for_sweep(fx->st);
	assert_int_equal(sweep(fx->st, NOW, 1000), OLD_PENDING + OLD_DONE);
	assert_int_equal(sweep(fx->st, NOW, 1000), 0);
	for (i = 0; i < LIVE_PENDING; i++)
		assert_int_equal(claim(fx->st, 200 + i, V1, NOW, NULL),
		    STORE_CODE_PENDING);
	for (i = 0; i < LIVE_DONE; i++) {
		assert_int_equal(claim(fx->st, 210 + i, V1, NOW, &o),
		    STORE_CODE_DONE);
		assert_int_equal(o.user_id, 2);
	}
	/* Later, the rest expires too: exactly the live ones were left. */
	assert_int_equal(sweep(fx->st, NOW + 1000, 1000),
	    LIVE_PENDING + LIVE_DONE);
	assert_int_equal(sweep(fx->st, NOW + 1000, 1000), 0);
}

static void
test_sweep_at_most_max(void **state)
{
	struct fixture	*fx = *state;
	int		 n, total = 0, passes = 0;

	fx_open(fx, DURABILITY_SYNC);
	fill_for_sweep(fx->st);
	assert_int_equal(sweep(fx->st, NOW, 0), 0);
	assert_int_equal(sweep(fx->st, NOW, 3), 3);
	total = 3;
	/* Resumed passes find the rest, three at a time at most. */
	while (passes++ < 10 && total < OLD_PENDING + OLD_DONE) {
		n = sweep(fx->st, NOW, 3);
		total += n;
	}
	assert_int_equal(total, OLD_PENDING + OLD_DONE);
	assert_int_equal(sweep(fx->st, NOW, 3), 0);
	assert_int_equal(sweep(fx->st, NOW, 3), 0);
	assert_int_equal(sweep(fx->st, NOW + 1000, 1000),
	    LIVE_PENDING + LIVE_DONE);
}

/* A record claimed again after it expired is live again: sweeps keep it. */
static void
test_sweep_spares_renewed(void **state)
{
	struct fixture	*fx = *state;

	fx_open(fx, DURABILITY_SYNC);
	assert_int_equal(claim(fx->st, 300, V1, NOW - 100, NULL),
	    STORE_CODE_CLAIMED);
	assert_int_equal(claim(fx->st, 300, V2, NOW, NULL), STORE_CODE_CLAIMED);
	assert_int_equal(sweep(fx->st, NOW, 10), 0);
	assert_int_equal(claim(fx->st, 300, V2, NOW, NULL), STORE_CODE_PENDING);
}

/* store_maintain sweeps (with the wall clock): afterwards a sweep of its
 * own finds nothing expired, and the live record is still there. */
static void
test_maintain_sweeps(void **state)
{
	struct fixture	*fx = *state;
	struct kl_error	 err;
	time_t		 now = time(NULL);
	uint32_t	 i;

	fx_open(fx, DURABILITY_SYNC);
	for (i = 0; i < 5; i++)
		assert_int_equal(claim(fx->st, 400 + i, V1, now - 1000, NULL),
		    STORE_CODE_CLAIMED);
	assert_int_equal(claim(fx->st, 410, V1, now, NULL), STORE_CODE_CLAIMED);
	assert_int_equal(store_maintain(fx->st, &err), 0);
	assert_int_equal(sweep(fx->st, now, 1000), 0);
	assert_int_equal(sweep(fx->st, now + 1000, 1000), 1);
}

/* ---- an environment of the current release, without codes.db ---- */

static int
old_index(DB *sec, const DBT *key, const DBT *data, DBT *result)
{
	(void)sec;
	(void)key;
	memset(result, 0, sizeof(*result));
	result->data = (unsigned char *)data->data + 4;
	result->size = 8;
	return 0;
}

/* What today's store_open makes: users, users_by_id, seq, one user. */
static void
make_old_environment(const char *home)
{
	DB_ENV			*env;
	DB			*users, *by_id, *seqdb;
	DB_SEQUENCE		*seq;
	DBT			 key, data;
	struct store_user	 u;
	unsigned char		 kbuf[8] = { 0, 0, 0, 0, 0, 0, 0x30, 0x39 };
	unsigned char		 buf[STORE_RECORD_MAX];
	db_seq_t		 id;
	int			 len;
	u_int32_t		 dbflags = DB_CREATE | DB_AUTO_COMMIT;

	assert_int_equal(db_env_create(&env, 0), 0);
	assert_int_equal(env->open(env, home, DB_CREATE | DB_INIT_TXN |
	    DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL | DB_THREAD |
	    DB_REGISTER | DB_RECOVER, 0660), 0);
	assert_int_equal(db_create(&users, env, 0), 0);
	assert_int_equal(users->open(users, NULL, "users.db", NULL, DB_BTREE,
	    dbflags, 0660), 0);
	assert_int_equal(db_create(&by_id, env, 0), 0);
	assert_int_equal(by_id->open(by_id, NULL, "users_by_id.db", NULL,
	    DB_BTREE, dbflags, 0660), 0);
	assert_int_equal(users->associate(users, NULL, by_id, old_index, 0), 0);
	assert_int_equal(db_create(&seqdb, env, 0), 0);
	assert_int_equal(seqdb->open(seqdb, NULL, "seq.db", NULL, DB_BTREE,
	    dbflags, 0660), 0);
	assert_int_equal(db_sequence_create(&seq, seqdb, 0), 0);
	assert_int_equal(seq->initial_value(seq, 1), 0);
	memset(&key, 0, sizeof(key));
	key.data = "user_id";
	key.size = 7;
	assert_int_equal(seq->open(seq, NULL, &key, DB_CREATE), 0);

	memset(&u, 0, sizeof(u));
	assert_int_equal(seq->get(seq, NULL, 1, &id, 0), 0);
	u.user_id = (uint64_t)id;
	u.kakao_id = 12345;
	snprintf(u.nickname, sizeof(u.nickname), "old");
	u.login_count = 1;
	len = store_record_encode(&u, buf, sizeof(buf));
	assert_true(len > 0);
	memset(&key, 0, sizeof(key));
	key.data = kbuf;
	key.size = 8;
	memset(&data, 0, sizeof(data));
	data.data = buf;
	data.size = (u_int32_t)len;
	assert_int_equal(users->put(users, NULL, &key, &data, DB_AUTO_COMMIT),
	    0);
	seq->close(seq, 0);
	by_id->close(by_id, 0);
	users->close(users, 0);
	seqdb->close(seqdb, 0);
	env->close(env, 0);
}

static void
test_old_environment_gains_codes(void **state)
{
	struct fixture			*fx = *state;
	struct store_user		 u;
	struct store_code_outcome	 o;
	struct kl_error			 err;
	struct stat			 sb;
	char				 path[128];

	make_old_environment(fx->home);
	snprintf(path, sizeof(path), "%s/codes.db", fx->home);
	assert_int_equal(stat(path, &sb), -1);
	fx_open(fx, DURABILITY_SYNC);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(store_user_get(fx->st, 12345, &u, &err), 0);
	assert_string_equal(u.nickname, "old");
	assert_int_equal(claim(fx->st, 500, V1, NOW, NULL), STORE_CODE_CLAIMED);
	finish(fx->st, 500, 12345, u.user_id, NOW);
	/* The old users keep working, and the next id is a new one. */
	{
		struct store_login	in = { .kakao_id = 777 };

		assert_int_equal(store_user_login(fx->st, &in, NOW, &u, &err),
		    0);
		assert_true(u.user_id > 1);
	}
	store_close(fx->st);
	fx->st = NULL;
	fx_open(fx, DURABILITY_SYNC);
	assert_int_equal(claim(fx->st, 500, V1, NOW + 1, &o), STORE_CODE_DONE);
	assert_int_equal(o.kakao_id, 12345);
}

/* ---- two processes ---- */

#define FORK_ROUNDS	50

/* A child: opens its own store, waits for the start, claims, reports. */
static void
fork_claimer(const char *home, int go, int report, uint32_t code)
{
	struct store			*st;
	struct store_code_outcome	 o;
	unsigned char			 tag[STORE_TAG_LEN], state;
	struct kl_error			 err;
	char				 c;

	if (store_open(&st, home, DURABILITY_SYNC, &err) != 0) {
		fprintf(stderr, "child open: %s\n", err.detail);
		_exit(1);
	}
	if (read(go, &c, 1) != 0)
		_exit(3);
	make_tag(tag, 0xc0, code);
	if (store_code_claim(st, tag, V1, NOW, &o, &err) != 0) {
		fprintf(stderr, "child claim: %s\n", err.detail);
		_exit(1);
	}
	state = (unsigned char)o.state;
	if (write(report, &state, 1) != 1)
		_exit(2);
	store_close(st);
	_exit(0);
}

static void
test_two_processes_one_claim(void **state)
{
	struct fixture	*fx = *state;
	int		 round, i, status, go[2], rep[2];
	int		 claimed, pending, failed = 0;
	unsigned char	 s;
	pid_t		 pids[2];

	/* Created first, so the children do not race to create it. */
	fx_open(fx, DURABILITY_SYNC);
	store_close(fx->st);
	fx->st = NULL;
	for (round = 0; round < FORK_ROUNDS; round++) {
		assert_int_equal(pipe(go), 0);
		assert_int_equal(pipe(rep), 0);
		for (i = 0; i < 2; i++) {
			if ((pids[i] = fork()) == 0) {
				close(go[1]);
				close(rep[0]);
				fork_claimer(fx->home, go[0], rep[1],
				    600 + (uint32_t)round);
			}
			assert_true(pids[i] > 0);
		}
		close(go[0]);
		close(rep[1]);
		close(go[1]);	/* both claim now */
		claimed = pending = 0;
		while (read(rep[0], &s, 1) == 1) {
			claimed += s == STORE_CODE_CLAIMED;
			pending += s == STORE_CODE_PENDING;
		}
		close(rep[0]);
		for (i = 0; i < 2; i++) {
			assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				failed++;
		}
		assert_int_equal(failed, 0);
		if (claimed != 1 || pending != 1)
			fail_msg("round %d: %d claimed, %d pending", round,
			    claimed, pending);
	}
	/* The parent sees each round's one claim. */
	fx_open(fx, DURABILITY_SYNC);
	for (round = 0; round < FORK_ROUNDS; round++)
		assert_int_equal(claim(fx->st, 600 + (uint32_t)round, V1, NOW,
		    NULL), STORE_CODE_PENDING);
}

/* ---- threads ---- */

#define THREADS		8
#define PER_THREAD	1000

struct worker {
	pthread_t	 thread;
	struct store	*st;
	int		 index;
	int		 failures;
	int		 wrong;		/* a state other than expected */
	char		 detail[MAX_ERROR_DETAIL];
};

static void *
worker_run(void *arg)
{
	struct worker			*w = arg;
	struct store_code_outcome	 o;
	unsigned char			 tag[STORE_TAG_LEN];
	struct kl_error			 err;
	uint32_t			 code;
	int				 i;

	for (i = 0; i < PER_THREAD; i++) {
		code = (uint32_t)(w->index * PER_THREAD + i) + 100000;
		make_tag(tag, 0xd0, code);
		if (store_code_claim(w->st, tag, V1, NOW, &o, &err) != 0 ||
		    (o.state == STORE_CODE_CLAIMED &&
		    store_code_finish(w->st, tag, &o, (int64_t)code, code, NOW,
		    &err) != 0)) {
			w->failures++;
			snprintf(w->detail, sizeof(w->detail), "%s",
			    err.detail);
			continue;
		}
		if (o.state != STORE_CODE_CLAIMED)
			w->wrong++;
	}
	return NULL;
}

static void
test_threads_claim_and_finish(void **state)
{
	struct fixture			*fx = *state;
	struct worker			 w[THREADS];
	struct store_code_outcome	 o;
	unsigned char			 tag[STORE_TAG_LEN];
	struct kl_error			 err;
	uint32_t			 code;
	int				 t, i;

	fx_open(fx, DURABILITY_WRITE_NOSYNC);
	memset(w, 0, sizeof(w));
	for (t = 0; t < THREADS; t++) {
		w[t].st = fx->st;
		w[t].index = t;
		assert_int_equal(pthread_create(&w[t].thread, NULL, worker_run,
		    &w[t]), 0);
	}
	for (t = 0; t < THREADS; t++)
		assert_int_equal(pthread_join(w[t].thread, NULL), 0);
	for (t = 0; t < THREADS; t++) {
		if (w[t].failures != 0)
			fail_msg("thread %d: %d failed, last: %s", t,
			    w[t].failures, w[t].detail);
		assert_int_equal(w[t].wrong, 0);
	}
	/* Every one is DONE with its own ids. */
	for (i = 0; i < THREADS * PER_THREAD; i += 7) {
		code = (uint32_t)i + 100000;
		make_tag(tag, 0xd0, code);
		assert_int_equal(store_code_claim(fx->st, tag, V1, NOW + 1, &o,
		    &err), 0);
		assert_int_equal(o.state, STORE_CODE_DONE);
		assert_int_equal(o.user_id, code);
		assert_int_equal(o.kakao_id, (int64_t)code);
	}
	/* Each sweep reads a bounded part; resumed, they remove them all. */
	for (t = 0, i = 0; t < 20 && i < THREADS * PER_THREAD; t++)
		i += sweep(fx->st, NOW + CODE_REPLAY_WINDOW_S,
		    THREADS * PER_THREAD);
	assert_int_equal(i, THREADS * PER_THREAD);
	assert_int_equal(sweep(fx->st, NOW + CODE_REPLAY_WINDOW_S,
	    THREADS * PER_THREAD), 0);
}

/* ---- record codec ---- */

static void
sample_done(struct store_code_record *r)
{
	memset(r, 0, sizeof(*r));
	r->state = STORE_CODE_R_DONE;
	r->has_verifier = true;
	memcpy(r->verifier, V2, STORE_TAG_LEN);
	r->at = NOW;
	r->kakao_id = INT64_MAX;
	r->user_id = 0x0102030405060708ULL;
}

static void
test_record_round_trip(void **state)
{
	struct store_code_record	in, out;
	unsigned char			buf[STORE_CODE_RECORD_LEN];

	(void)state;
	sample_done(&in);
	assert_int_equal(store_code_record_encode(&in, buf, sizeof(buf)),
	    STORE_CODE_RECORD_LEN);
	assert_int_equal(STORE_CODE_RECORD_LEN, 60);
	/* Big-endian, at fixed places. */
	assert_int_equal(buf[0], STORE_CODE_RECORD_VERSION);
	assert_int_equal(buf[1], STORE_CODE_R_DONE);
	assert_int_equal(buf[2], 1);
	assert_int_equal(buf[3], 0);
	assert_int_equal(buf[20], 0x01);
	assert_int_equal(buf[27], 0x08);
	assert_memory_equal(buf + 28, V2, STORE_TAG_LEN);
	assert_int_equal(store_code_record_decode(buf, sizeof(buf), &out), 0);
	assert_int_equal(out.state, in.state);
	assert_true(out.has_verifier);
	assert_memory_equal(out.verifier, in.verifier, STORE_TAG_LEN);
	assert_int_equal(out.at, NOW);
	assert_int_equal(out.kakao_id, INT64_MAX);
	assert_int_equal(out.user_id, in.user_id);

	/* PENDING, no verifier, a time before 1970. */
	memset(&in, 0, sizeof(in));
	in.state = STORE_CODE_R_PENDING;
	in.at = -5;
	assert_int_equal(store_code_record_encode(&in, buf, sizeof(buf)),
	    STORE_CODE_RECORD_LEN);
	assert_int_equal(store_code_record_decode(buf, sizeof(buf), &out), 0);
	assert_int_equal(out.state, STORE_CODE_R_PENDING);
	assert_false(out.has_verifier);
	assert_int_equal(out.at, -5);
	assert_int_equal(store_code_record_encode(&in, buf, sizeof(buf) - 1),
	    -1);
}

static void
test_record_decode_refuses(void **state)
{
	struct store_code_record	in, out;
	unsigned char			buf[STORE_CODE_RECORD_LEN + 1], bad[
					    STORE_CODE_RECORD_LEN + 1];
	size_t				n;

	(void)state;
	sample_done(&in);
	assert_int_equal(store_code_record_encode(&in, buf,
	    STORE_CODE_RECORD_LEN), STORE_CODE_RECORD_LEN);
	/* Every other length. */
	buf[STORE_CODE_RECORD_LEN] = 0;
	for (n = 0; n <= STORE_CODE_RECORD_LEN + 1; n++)
		if (n != STORE_CODE_RECORD_LEN &&
		    store_code_record_decode(buf, n, &out) != -1)
			fail_msg("length %zu accepted", n);
#define BAD_AT(i, v) do {						\
	memcpy(bad, buf, sizeof(bad));					\
	bad[(i)] = (v);							\
	assert_int_equal(store_code_record_decode(bad,			\
	    STORE_CODE_RECORD_LEN, &out), -1);				\
} while (0)
	BAD_AT(0, 0);			/* version */
	BAD_AT(0, 2);
	BAD_AT(1, 0);			/* state */
	BAD_AT(1, 3);
	BAD_AT(2, 2);			/* verifier flag */
	BAD_AT(3, 1);			/* pad */
	/* Verifier bytes without the flag. */
	BAD_AT(2, 0);
	/* Ids on a PENDING record. */
	BAD_AT(1, STORE_CODE_R_PENDING);
#undef BAD_AT
	assert_int_equal(store_code_record_decode(buf, STORE_CODE_RECORD_LEN,
	    &out), 0);
	/* And encode refuses what decode would. */
	in.state = STORE_CODE_R_PENDING;
	assert_int_equal(store_code_record_encode(&in, buf, sizeof(buf)), -1);
	sample_done(&in);
	in.has_verifier = false;
	assert_int_equal(store_code_record_encode(&in, buf, sizeof(buf)), -1);
}

int
main(void)
{
#define FX(t)	cmocka_unit_test_setup_teardown(t, setup, teardown)
	const struct CMUnitTest tests[] = {
		FX(test_claim_then_repeats),
		FX(test_no_pkce_matches_nothing),
		FX(test_finish_then_done),
		FX(test_done_expires_after_window),
		FX(test_pending_abandoned_after_max),
		FX(test_record_from_the_future_expires),
		FX(test_abandon),
		FX(test_finish_without_claim),
		FX(test_takeover_gets_nothing),
		cmocka_unit_test(test_store_not_open),
		FX(test_sweep_removes_only_expired),
		FX(test_sweep_at_most_max),
		FX(test_sweep_spares_renewed),
		FX(test_maintain_sweeps),
		FX(test_old_environment_gains_codes),
		FX(test_two_processes_one_claim),
		FX(test_threads_claim_and_finish),
		cmocka_unit_test(test_record_round_trip),
		cmocka_unit_test(test_record_decode_refuses),
	};
#undef FX

	return cmocka_run_group_tests_name("store_code", tests, group_setup,
	    NULL);
}
