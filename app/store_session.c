/*
 * store_session.c: sessions (refresh families) and their token records in
 * sessions.db and refresh.db, with their two secondary indexes.
 *
 * Owns the two record formats and the open / refresh / revoke / list /
 * sweep logic; opening the databases and associating the indexes, the
 * transaction runner and its gate stay in store.c (store_internal.h).
 * Keys are a random sid and the caller's keyed hashes of refresh tokens:
 * never a token, and no sid or tag in any error detail. A refresh
 * serializes with every other refresh of the same token, in any process,
 * through the DB_RMW read of the token's record; a family's writes through
 * the DB_RMW read of the family. Knows nothing of JSON, HTTP or JWTs.
 * Thread-safe like store.c (each call its own DBTs and transaction), except
 * store_session_sweep: one thread at a time (its resume points are in
 * struct store), which is the maintenance thread.
 *
 * Clock steps: a record dated ahead of now (the clock stepped back) is
 * trusted only so far. A family used up to idle_ttl ahead counts as used
 * now; further ahead (or created more than ttl ahead) it is expired, so no
 * date makes a family immortal. A token rotated up to reuse_window ahead
 * gets its successor again; further ahead it counts as reused, so a step
 * back never hides a reuse for longer than the window.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_forward.h"
#include "store_internal.h"
#include "store_session.h"

/* Session record: version, status, reason, pad, generation, sid, ... */
#define S_OFF_GEN	4
#define S_OFF_SID	8
#define S_OFF_USER	(S_OFF_SID + STORE_SID_LEN)
#define S_OFF_KAKAO	(S_OFF_USER + 8)
#define S_OFF_CREATED	(S_OFF_KAKAO + 8)
#define S_OFF_USED	(S_OFF_CREATED + 8)
#define S_OFF_EXPIRES	(S_OFF_USED + 8)
#define S_OFF_REVOKED	(S_OFF_EXPIRES + 8)
/* Token record: version, state, pad (2), generation, sid, ... */
#define T_OFF_GEN	4
#define T_OFF_SID	8
#define T_OFF_ISSUED	(T_OFF_SID + STORE_SID_LEN)
#define T_OFF_ROTATED	(T_OFF_ISSUED + 8)
#define T_OFF_EXPIRES	(T_OFF_ROTATED + 8)
#define T_OFF_SUCC	(T_OFF_EXPIRES + 8)

_Static_assert(S_OFF_USER == STORE_SESSION_USER_OFF, "session user offset");
_Static_assert(S_OFF_REVOKED + 8 == STORE_SESSION_RECORD_LEN, "session len");
_Static_assert(T_OFF_SID == STORE_TOKEN_SID_OFF, "token sid offset");
_Static_assert(T_OFF_SUCC + STORE_TAG_LEN == STORE_TOKEN_RECORD_LEN,
    "token len");

/* ---- records ---- */

/* The canonical forms only: one record, one encoding. */
static bool
session_valid(const struct store_session *s)
{
	if (s->user_id == 0)
		return false;
	if (s->status == STORE_SESSION_ACTIVE)
		return s->reason == STORE_REVOKE_NONE && s->revoked_at == 0;
	if (s->status == STORE_SESSION_REVOKED)
		return s->reason >= STORE_REVOKE_LOGOUT &&
		    s->reason <= STORE_REVOKE_ADMIN;
	return false;
}

static bool
token_valid(const struct store_token_record *r)
{
	if (r->state == STORE_TOKEN_CURRENT)
		return r->rotated == 0 &&
		    store_all_zero(r->successor, STORE_TAG_LEN);
	if (r->state == STORE_TOKEN_ROTATED)
		return !store_all_zero(r->successor, STORE_TAG_LEN);
	return false;
}

static void
put_time(unsigned char *p, time_t t)
{
	store_put_u64(p, (uint64_t)(int64_t)t);
}

static time_t
get_time(const unsigned char *p)
{
	return (time_t)(int64_t)store_get_u64(p);
}

int
store_session_record_encode(const struct store_session *s,
    unsigned char *buf, size_t size)
{
	if (size < STORE_SESSION_RECORD_LEN || !session_valid(s))
		return -1;
	buf[0] = STORE_SESSION_RECORD_VERSION;
	buf[1] = (unsigned char)s->status;
	buf[2] = (unsigned char)s->reason;
	buf[3] = 0;
	buf[4] = (unsigned char)(s->generation >> 24);
	buf[5] = (unsigned char)(s->generation >> 16);
	buf[6] = (unsigned char)(s->generation >> 8);
	buf[7] = (unsigned char)s->generation;
	memcpy(buf + S_OFF_SID, s->sid, STORE_SID_LEN);
	store_put_u64(buf + S_OFF_USER, s->user_id);
	store_put_u64(buf + S_OFF_KAKAO, (uint64_t)s->kakao_id);
	put_time(buf + S_OFF_CREATED, s->created);
	put_time(buf + S_OFF_USED, s->last_used);
	put_time(buf + S_OFF_EXPIRES, s->expires);
	put_time(buf + S_OFF_REVOKED, s->revoked_at);
	return STORE_SESSION_RECORD_LEN;
}

static uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Version 1 is the first: there is nothing older to upgrade yet. */
int
store_session_record_decode(const unsigned char *buf, size_t len,
    struct store_session *s)
{
	memset(s, 0, sizeof(*s));
	if (len != STORE_SESSION_RECORD_LEN || buf[0] < 1 ||
	    buf[0] > STORE_SESSION_RECORD_VERSION || buf[3] != 0)
		return -1;
	s->status = buf[1];
	s->reason = buf[2];
	s->generation = get_u32(buf + S_OFF_GEN);
	memcpy(s->sid, buf + S_OFF_SID, STORE_SID_LEN);
	s->user_id = store_get_u64(buf + S_OFF_USER);
	s->kakao_id = (int64_t)store_get_u64(buf + S_OFF_KAKAO);
	s->created = get_time(buf + S_OFF_CREATED);
	s->last_used = get_time(buf + S_OFF_USED);
	s->expires = get_time(buf + S_OFF_EXPIRES);
	s->revoked_at = get_time(buf + S_OFF_REVOKED);
	if (!session_valid(s)) {
		memset(s, 0, sizeof(*s));
		return -1;
	}
	return 0;
}

int
store_token_record_encode(const struct store_token_record *r,
    unsigned char *buf, size_t size)
{
	if (size < STORE_TOKEN_RECORD_LEN || !token_valid(r))
		return -1;
	buf[0] = STORE_TOKEN_RECORD_VERSION;
	buf[1] = (unsigned char)r->state;
	buf[2] = buf[3] = 0;
	buf[4] = (unsigned char)(r->generation >> 24);
	buf[5] = (unsigned char)(r->generation >> 16);
	buf[6] = (unsigned char)(r->generation >> 8);
	buf[7] = (unsigned char)r->generation;
	memcpy(buf + T_OFF_SID, r->sid, STORE_SID_LEN);
	put_time(buf + T_OFF_ISSUED, r->issued);
	put_time(buf + T_OFF_ROTATED, r->rotated);
	put_time(buf + T_OFF_EXPIRES, r->expires);
	memcpy(buf + T_OFF_SUCC, r->successor, STORE_TAG_LEN);
	return STORE_TOKEN_RECORD_LEN;
}

int
store_token_record_decode(const unsigned char *buf, size_t len,
    struct store_token_record *r)
{
	memset(r, 0, sizeof(*r));
	if (len != STORE_TOKEN_RECORD_LEN || buf[0] < 1 ||
	    buf[0] > STORE_TOKEN_RECORD_VERSION || buf[2] != 0 || buf[3] != 0)
		return -1;
	r->state = buf[1];
	r->generation = get_u32(buf + T_OFF_GEN);
	memcpy(r->sid, buf + T_OFF_SID, STORE_SID_LEN);
	r->issued = get_time(buf + T_OFF_ISSUED);
	r->rotated = get_time(buf + T_OFF_ROTATED);
	r->expires = get_time(buf + T_OFF_EXPIRES);
	memcpy(r->successor, buf + T_OFF_SUCC, STORE_TAG_LEN);
	if (!token_valid(r)) {
		memset(r, 0, sizeof(*r));
		return -1;
	}
	return 0;
}

/* ---- policy and liveness ---- */

void
store_session_policy(struct store *st, const struct store_session_policy *p)
{
	st->policy = *p;
}

bool
store_session_live(const struct store *st, const struct store_session *s,
    time_t now)
{
	int64_t	idle = (int64_t)now - (int64_t)s->last_used;
	int64_t	age = (int64_t)now - (int64_t)s->created;

	if (s->status != STORE_SESSION_ACTIVE || now >= s->expires)
		return false;
	/* Dated ahead (idle < 0): used now, but only from so far ahead. */
	if (idle <= -(int64_t)st->policy.idle_ttl ||
	    age <= -(int64_t)st->policy.ttl)
		return false;
	return idle < (int64_t)st->policy.idle_ttl;
}

/* Expired, revoked long enough ago, or not a record of ours at all. */
static bool
family_sweepable(const struct store *st, const DBT *data, time_t now)
{
	struct store_session	s;
	int64_t			age;

	if (store_session_record_decode(data->data, data->size, &s) == -1)
		return true;
	if (s.status == STORE_SESSION_ACTIVE)
		return !store_session_live(st, &s, now);
	age = (int64_t)now - (int64_t)s.revoked_at;
	return age >= SESSION_REVOKED_KEEP_S || age <= -SESSION_REVOKED_KEEP_S;
}

static bool
reason_valid(enum store_session_reason reason)
{
	return reason >= STORE_REVOKE_LOGOUT && reason <= STORE_REVOKE_ADMIN;
}

/* ---- reading and writing one record ---- */

static void
fixed_key(DBT *key, const unsigned char *p, size_t len)
{
	memset(key, 0, sizeof(*key));
	key->data = (void *)(uintptr_t)p;	/* read only: get, put, del */
	key->size = (u_int32_t)len;
}

static void
user_key(DBT *key, unsigned char kbuf[8], uint64_t user_id)
{
	store_put_u64(kbuf, user_id);
	memset(key, 0, sizeof(*key));
	key->data = kbuf;
	key->size = key->ulen = 8;
	key->flags = DB_DBT_USERMEM;	/* cursors write the key back */
}

/* Cursor DBTs Berkeley DB sizes (and the caller frees): a record of
 * another size is read whole, then refused by its decoder. */
static void
realloc_dbts(DBT *a, DBT *b)
{
	memset(a, 0, sizeof(*a));
	memset(b, 0, sizeof(*b));
	a->flags = b->flags = DB_DBT_REALLOC;
}

/*
 * Reads the family sid under txn (NULL: none) into *s. Returns 0,
 * DB_NOTFOUND, STORE_BAD_RECORD (does not decode, or names another sid)
 * or another Berkeley DB error.
 */
static int
family_get(struct store *st, DB_TXN *txn, const unsigned char *sid,
    struct store_session *s, u_int32_t flags)
{
	DBT		key, data;
	unsigned char	buf[STORE_SESSION_RECORD_LEN];
	int		ret;

	fixed_key(&key, sid, STORE_SID_LEN);
	store_usermem(&data, buf, sizeof(buf));
	/* Outside a transaction (store_session_get): retried if chosen as
	 * a deadlock's victim; inside one, store_txn_run retries. */
	if (txn == NULL)
		ret = store_get(st, st->sessions, &key, &data);
	else
		ret = st->sessions->get(st->sessions, txn, &key, &data, flags);
	if (ret == DB_BUFFER_SMALL)
		return STORE_BAD_RECORD;
	if (ret != 0)
		return ret;
	if (store_session_record_decode(buf, data.size, s) == -1 ||
	    memcmp(s->sid, sid, STORE_SID_LEN) != 0)
		return STORE_BAD_RECORD;
	return 0;
}

static int
family_put(struct store *st, DB_TXN *txn, const struct store_session *s,
    u_int32_t flags)
{
	DBT		key, data;
	unsigned char	buf[STORE_SESSION_RECORD_LEN];

	if (store_session_record_encode(s, buf, sizeof(buf)) == -1)
		return STORE_BAD_RECORD;
	fixed_key(&key, s->sid, STORE_SID_LEN);
	memset(&data, 0, sizeof(data));
	data.data = buf;
	data.size = sizeof(buf);
	return st->sessions->put(st->sessions, txn, &key, &data, flags);
}

static int
token_get(struct store *st, DB_TXN *txn, const unsigned char *tag,
    struct store_token_record *r, u_int32_t flags)
{
	DBT		key, data;
	unsigned char	buf[STORE_TOKEN_RECORD_LEN];
	int		ret;

	fixed_key(&key, tag, STORE_TAG_LEN);
	store_usermem(&data, buf, sizeof(buf));
	ret = st->refresh->get(st->refresh, txn, &key, &data, flags);
	if (ret == DB_BUFFER_SMALL)
		return STORE_BAD_RECORD;
	if (ret != 0)
		return ret;
	if (store_token_record_decode(buf, data.size, r) == -1)
		return STORE_BAD_RECORD;
	return 0;
}

static int
token_put(struct store *st, DB_TXN *txn, const unsigned char *tag,
    const struct store_token_record *r, u_int32_t flags)
{
	DBT		key, data;
	unsigned char	buf[STORE_TOKEN_RECORD_LEN];

	if (store_token_record_encode(r, buf, sizeof(buf)) == -1)
		return STORE_BAD_RECORD;
	fixed_key(&key, tag, STORE_TAG_LEN);
	memset(&data, 0, sizeof(data));
	data.data = buf;
	data.size = sizeof(buf);
	return st->refresh->put(st->refresh, txn, &key, &data, flags);
}

static void
family_revoke(struct store_session *s, enum store_session_reason reason,
    time_t now)
{
	s->status = STORE_SESSION_REVOKED;
	s->reason = reason;
	s->revoked_at = now;
}

/* The one translation of a runner's result for this file's calls. */
static int
session_result(struct store *st, int ret, const char *what,
    struct kl_error *err)
{
	if (ret == 0)
		return 0;
	if (ret == STORE_BAD_RECORD)
		return kl_fail(err, KL_STORE_FAILED, "%s: session or token "
		    "record does not encode or decode", what);
	if (ret == DB_NOTFOUND)
		return kl_fail(err, KL_NOT_FOUND, "%s: no such session", what);
	if (ret == DB_KEYEXIST)
		return kl_fail(err, KL_STORE_FAILED, "%s: a new session or "
		    "token is already recorded", what);
	return store_fail(st, ret, what, err);
}

/* ---- open ---- */

int
session_txn_open(struct store *st, DB_TXN *txn,
    const struct store_session_new *n, uint64_t user_id, int64_t kakao_id,
    time_t now, bool *wrote)
{
	struct store_session		s;
	struct store_token_record	t;
	int				ret;

	memset(&s, 0, sizeof(s));
	memcpy(s.sid, n->sid, STORE_SID_LEN);
	s.status = STORE_SESSION_ACTIVE;
	s.reason = STORE_REVOKE_NONE;
	s.user_id = user_id;
	s.kakao_id = kakao_id;
	s.created = s.last_used = now;
	s.expires = now + st->policy.ttl;
	memset(&t, 0, sizeof(t));
	t.state = STORE_TOKEN_CURRENT;
	memcpy(t.sid, n->sid, STORE_SID_LEN);
	t.issued = now;
	t.expires = s.expires;
	/* DB_KEYEXIST: a sid or tag drawn twice; nothing is overwritten. */
	*wrote = true;
	if ((ret = family_put(st, txn, &s, DB_NOOVERWRITE)) != 0)
		return ret;
	return token_put(st, txn, n->tag, &t, DB_NOOVERWRITE);
}

struct open_arg {
	const struct store_session_new	*n;
	uint64_t			 user_id;
	int64_t				 kakao_id;
	time_t				 now;
	bool				 no_user;
};

/*
 * Inside txn: is user_id an active user with this Kakao id? 0 when it is,
 * DB_NOTFOUND when it is absent (deleted), unlinked or another Kakao id's,
 * or a Berkeley DB error. Its by-id read locks the record, so a deletion
 * or an unlink notice (which revoke the sessions in their own transaction)
 * is ordered before or after, never beside.
 */
static int
user_active(struct store *st, DB_TXN *txn, uint64_t user_id, int64_t kakao_id)
{
	struct store_user	 u;
	DBT			 key, data;
	unsigned char		 kbuf[8], buf[STORE_RECORD_MAX];
	int			 ret;

	user_key(&key, kbuf, user_id);
	key.flags = 0;
	store_usermem(&data, buf, sizeof(buf));
	ret = st->users_by_id->get(st->users_by_id, txn, &key, &data, 0);
	if (ret != 0)
		return ret;
	if (store_record_decode(buf, data.size, &u) == -1 ||
	    u.kakao_id != kakao_id || u.status != STORE_USER_ACTIVE)
		return DB_NOTFOUND;
	return 0;
}

/* The user must exist, active, with this Kakao id. */
static int
open_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct open_arg		*a = arg;
	int			 ret;

	a->no_user = false;
	if ((ret = user_active(st, txn, a->user_id, a->kakao_id)) ==
	    DB_NOTFOUND) {
		a->no_user = true;
		return DB_NOTFOUND;
	}
	if (ret != 0)
		return ret;
	return session_txn_open(st, txn, a->n, a->user_id, a->kakao_id,
	    a->now, wrote);
}

int
store_session_open(struct store *st, const struct store_session_new *n,
    uint64_t user_id, int64_t kakao_id, time_t now,
    struct store_session *out, struct kl_error *err)
{
	struct open_arg		a = { n, user_id, kakao_id, now, false };
	enum store_write	where;
	int			ret;

	memset(out, 0, sizeof(*out));
	if (!store_ready(st))
		return store_not_open(st, err);
	if (user_id == 0 || kakao_id <= 0)
		return kl_fail(err, KL_STORE_FAILED, "session open: bad ids");
	if ((where = store_write_where(st, err)) != STORE_WRITE_HERE)
		return where == STORE_WRITE_FORWARD ?
		    store_forward_session_open(st, n, user_id, kakao_id, now,
		    out, err) : -1;
	ret = store_txn_run(st, 0, true, open_attempt, &a);
	if (ret == DB_NOTFOUND && a.no_user)
		return kl_fail(err, KL_NOT_FOUND, "session open: no user %llu "
		    "with Kakao id %lld", (unsigned long long)user_id,
		    (long long)kakao_id);
	if (ret != 0)
		return session_result(st, ret, "session open", err);
	return store_session_get(st, n->sid, out, err);
}

int
store_session_get(struct store *st, const unsigned char sid[STORE_SID_LEN],
    struct store_session *out, struct kl_error *err)
{
	int	ret;

	memset(out, 0, sizeof(*out));
	if (!store_ready(st))
		return store_not_open(st, err);
	ret = family_get(st, NULL, sid, out, 0);
	/* A replica behind its master asks it before saying none. */
	if (ret == DB_NOTFOUND && store_write_where(st, NULL) ==
	    STORE_WRITE_FORWARD)
		return store_forward_session_get(st, sid, out, err);
	if (ret != 0)
		memset(out, 0, sizeof(*out));
	return session_result(st, ret, "session get", err);
}

/* ---- refresh ---- */

struct refresh_arg {
	const struct store_refresh_in	*in;
	struct store_refresh_out	*out;
};

static void
refresh_out_reset(struct store_refresh_out *out)
{
	memset(out, 0, sizeof(*out));
	out->state = STORE_REFRESH_INVALID;
	out->key = -1;
}

/* A current token of a live family: record the successor, mark the token
 * rotated, count the rotation. A successor already recorded (only if the
 * lock failed us, or two tokens derive one successor) is never
 * overwritten: DB_KEYEXIST aborts the whole transaction. */
static int
refresh_rotate(struct store *st, DB_TXN *txn, struct refresh_arg *a,
    struct store_token_record *t, struct store_session *s, bool *wrote)
{
	const struct store_refresh_in	*in = a->in;
	struct store_token_record	 next;
	int				 ret;

	memset(&next, 0, sizeof(next));
	next.state = STORE_TOKEN_CURRENT;
	next.generation = s->generation + 1;
	memcpy(next.sid, s->sid, STORE_SID_LEN);
	next.issued = in->now;
	next.expires = s->expires;
	*wrote = true;
	if ((ret = token_put(st, txn, in->successor, &next,
	    DB_NOOVERWRITE)) != 0)
		return ret;
	t->state = STORE_TOKEN_ROTATED;
	t->rotated = in->now;
	memcpy(t->successor, in->successor, STORE_TAG_LEN);
	if ((ret = token_put(st, txn, in->tags[a->out->key], t, 0)) != 0)
		return ret;
	s->last_used = in->now;
	s->generation++;
	if ((ret = family_put(st, txn, s, 0)) != 0)
		return ret;
	a->out->state = STORE_REFRESH_ROTATED;
	a->out->session = *s;
	memcpy(a->out->successor, in->successor, STORE_TAG_LEN);
	return 0;
}

/* The token and its family are read and locked: decide. */
static int
refresh_decide(struct store *st, DB_TXN *txn, struct refresh_arg *a,
    struct store_token_record *t, struct store_session *s, bool *wrote)
{
	struct store_refresh_out	*out = a->out;
	time_t				 now = a->in->now;
	int64_t				 age, window = st->policy.reuse_window;
	int				 ret;

	if (t->state == STORE_TOKEN_CURRENT) {
		/* Only the family's newest token is current; another one
		 * (which no transaction writes) refreshes nothing. */
		if (!store_session_live(st, s, now) ||
		    t->generation != s->generation ||
		    s->generation == UINT32_MAX)
			return 0;
		/* A deleted or unlinked user's sessions are revoked with it;
		 * one that a failure left active still refreshes nothing. */
		if ((ret = user_active(st, txn, s->user_id, s->kakao_id)) != 0)
			return ret == DB_NOTFOUND ? 0 : ret;
		return refresh_rotate(st, txn, a, t, s, wrote);
	}
	age = (int64_t)now - (int64_t)t->rotated;
	if (age <= window && age >= -window) {
		if (store_session_live(st, s, now) &&
		    (ret = user_active(st, txn, s->user_id, s->kakao_id)) != 0)
			return ret == DB_NOTFOUND ? 0 : ret;
		if (store_session_live(st, s, now)) {
			out->state = STORE_REFRESH_REPEAT;
			out->session = *s;
			memcpy(out->successor, t->successor, STORE_TAG_LEN);
		}
		return 0;
	}
	if (s->status != STORE_SESSION_ACTIVE)
		return 0;
	family_revoke(s, STORE_REVOKE_REUSE, now);
	*wrote = true;
	if ((ret = family_put(st, txn, s, 0)) != 0)
		return ret;
	out->state = STORE_REFRESH_REUSED;
	out->session = *s;
	return 0;
}

static int
refresh_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct refresh_arg		*a = arg;
	struct store_token_record	 t;
	struct store_session		 s;
	int				 i, ret = DB_NOTFOUND;

	refresh_out_reset(a->out);
	for (i = 0; i < a->in->ntags; i++) {
		ret = token_get(st, txn, a->in->tags[i], &t, DB_RMW);
		if (ret != DB_NOTFOUND)
			break;
	}
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0)
		return ret;
	a->out->key = i;
	if ((ret = family_get(st, txn, t.sid, &s, DB_RMW)) == DB_NOTFOUND)
		return 0;
	if (ret != 0)
		return ret;
	return refresh_decide(st, txn, a, &t, &s, wrote);
}

int
store_session_refresh(struct store *st, const struct store_refresh_in *in,
    struct store_refresh_out *out, struct kl_error *err)
{
	struct refresh_arg	a = { in, out };
	enum store_write	where;
	int			ret;

	refresh_out_reset(out);
	if (!store_ready(st))
		return store_not_open(st, err);
	if (in->ntags < 1 || in->ntags > MAX_REFRESH_CANDIDATES ||
	    store_all_zero(in->successor, STORE_TAG_LEN))
		return kl_fail(err, KL_STORE_FAILED, "refresh: bad input");
	if ((where = store_write_where(st, err)) != STORE_WRITE_HERE)
		return where == STORE_WRITE_FORWARD ?
		    store_forward_refresh(st, in, out, err) : -1;
	ret = store_txn_run(st, 0, true, refresh_attempt, &a);
	if (ret == DB_KEYEXIST) {
		refresh_out_reset(out);
		return kl_fail(err, KL_STORE_FAILED, "refresh: the successor "
		    "is already recorded; nothing written");
	}
	/*
	 * A repeat writes nothing, but it answers a rotation another
	 * request committed, whose log may still be only in memory (with
	 * sync, commits are flushed after the gate, by their own thread):
	 * a crash then would lose a successor already answered here (make
	 * faults, refresh storm, found on a clean clone). Flush it first.
	 */
	if (ret == 0 && out->state == STORE_REFRESH_REPEAT && st->sync) {
		store_busy_enter(st);
		ret = st->env->log_flush(st->env, NULL);
		store_busy_leave(st);
	}
	if (ret != 0)
		refresh_out_reset(out);
	return session_result(st, ret, "refresh", err);
}

/* ---- revoke ---- */

struct revoke_arg {
	const unsigned char		*sid;
	uint64_t			 user_id;
	enum store_session_reason	 reason;
	time_t				 now;
};

static int
revoke_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct revoke_arg	*a = arg;
	struct store_session	 s;
	int			 ret;

	if ((ret = family_get(st, txn, a->sid, &s, DB_RMW)) != 0)
		return ret;
	if (s.user_id != a->user_id)
		return DB_NOTFOUND;
	if (s.status == STORE_SESSION_REVOKED)
		return 0;
	family_revoke(&s, a->reason, a->now);
	*wrote = true;
	return family_put(st, txn, &s, 0);
}

int
store_session_revoke(struct store *st,
    const unsigned char sid[STORE_SID_LEN], uint64_t user_id,
    enum store_session_reason reason, time_t now, struct kl_error *err)
{
	struct revoke_arg	a = { sid, user_id, reason, now };
	enum store_write	where;

	if (!store_ready(st))
		return store_not_open(st, err);
	if (!reason_valid(reason))
		return kl_fail(err, KL_STORE_FAILED, "revoke: bad reason");
	if ((where = store_write_where(st, err)) != STORE_WRITE_HERE)
		return where == STORE_WRITE_FORWARD ?
		    store_forward_revoke(st, sid, user_id,
		    reason, now, err) : -1;
	return session_result(st, store_txn_run(st, 0, true, revoke_attempt,
	    &a), "session revoke", err);
}

/* Logout by the refresh cookie: the family of the first tag recorded. */
struct revoke_refresh_arg {
	const unsigned char		(*tags)[STORE_TAG_LEN];
	int				 ntags;
	time_t				 now;
	uint64_t			 user_id;
};

static int
revoke_refresh_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct revoke_refresh_arg	*a = arg;
	struct store_token_record	 t;
	struct store_session		 s;
	int				 i, ret = DB_NOTFOUND;

	a->user_id = 0;
	for (i = 0; i < a->ntags && ret == DB_NOTFOUND; i++)
		ret = token_get(st, txn, a->tags[i], &t, 0);
	if (ret != 0)
		return ret;
	if ((ret = family_get(st, txn, t.sid, &s, DB_RMW)) != 0)
		return ret;
	/* Only a live family names its user: a token of one revoked or
	 * expired logs nobody out (review: with all=1 an old cookie would
	 * have ended every session of its user). */
	if (s.status == STORE_SESSION_REVOKED ||
	    !store_session_live(st, &s, a->now))
		return 0;
	a->user_id = s.user_id;
	family_revoke(&s, STORE_REVOKE_LOGOUT, a->now);
	*wrote = true;
	return family_put(st, txn, &s, 0);
}

int
store_session_revoke_refresh(struct store *st,
    const unsigned char (*tags)[STORE_TAG_LEN], int ntags, time_t now,
    uint64_t *user_id, struct kl_error *err)
{
	struct revoke_refresh_arg	a = { tags, ntags, now, 0 };
	enum store_write		where;
	int				ret;

	*user_id = 0;
	if (!store_ready(st))
		return store_not_open(st, err);
	if (ntags < 1 || ntags > MAX_REFRESH_CANDIDATES)
		return kl_fail(err, KL_STORE_FAILED, "revoke: bad input");
	if ((where = store_write_where(st, err)) != STORE_WRITE_HERE)
		return where == STORE_WRITE_FORWARD ?
		    store_forward_revoke_refresh(st, tags,
		    ntags, now, user_id, err) : -1;
	ret = store_txn_run(st, 0, true, revoke_refresh_attempt, &a);
	*user_id = a.user_id;
	return session_result(st, ret, "session revoke by refresh token", err);
}

/*
 * The cursor reads every family of the user (DB_RMW: a refresh of one of
 * them waits for this transaction), keeps the sids of at most max active
 * ones, and notes whether one more is active; then each is revoked through
 * the primary. A record that does not decode is skipped: no refresh can
 * use it, and the sweep removes it.
 */
static int
revoke_user_collect(struct store *st, DB_TXN *txn, uint64_t user_id,
    int max, unsigned char (*sids)[STORE_SID_LEN], int *n, bool *more)
{
	struct store_session	 s;
	DBC			*c = NULL;
	DBT			 key, pkey, data;
	unsigned char		 kbuf[8];
	u_int32_t		 op = DB_SET;
	int			 ret, cret;

	user_key(&key, kbuf, user_id);
	realloc_dbts(&pkey, &data);
	/* Read committed: the scan's locks go as it moves on (a user with
	 * thousands of sessions would otherwise hold a lock per page of
	 * them); each family found is read again under its write lock. */
	if ((ret = st->sessions_by_user->cursor(st->sessions_by_user, txn, &c,
	    DB_READ_COMMITTED)) != 0)
		return ret;
	for (;; op = DB_NEXT_DUP) {
		if ((ret = c->pget(c, &key, &pkey, &data, op)) != 0)
			break;
		if (pkey.size != STORE_SID_LEN ||
		    store_session_record_decode(data.data, data.size,
		    &s) == -1 || s.status != STORE_SESSION_ACTIVE)
			continue;
		if (*n == max) {
			*more = true;
			break;
		}
		memcpy(sids[(*n)++], pkey.data, STORE_SID_LEN);
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
	cret = c->close(c);
	free(pkey.data);
	free(data.data);
	return ret != 0 ? ret : cret;
}

int
session_txn_revoke_user(struct store *st, DB_TXN *txn, uint64_t user_id,
    enum store_session_reason reason, time_t now, int max, int *count,
    bool *more, bool *wrote)
{
	unsigned char		(*sids)[STORE_SID_LEN];
	struct store_session	  s;
	int			  i, n = 0, ret;

	*count = 0;
	*more = false;
	if (max < 1 || !reason_valid(reason))
		return EINVAL;
	if ((sids = calloc((size_t)max, STORE_SID_LEN)) == NULL)
		return ENOMEM;
	ret = revoke_user_collect(st, txn, user_id, max, sids, &n, more);
	for (i = 0; ret == 0 && i < n; i++) {
		if ((ret = family_get(st, txn, sids[i], &s, DB_RMW)) ==
		    DB_NOTFOUND) {
			ret = 0;	/* swept since the scan */
			continue;
		}
		if (ret != 0)
			break;
		if (s.status != STORE_SESSION_ACTIVE)
			continue;
		family_revoke(&s, reason, now);
		*wrote = true;
		if ((ret = family_put(st, txn, &s, 0)) == 0)
			(*count)++;
	}
	free(sids);
	return ret;
}

struct revoke_user_arg {
	uint64_t			 user_id;
	enum store_session_reason	 reason;
	time_t				 now;
	int				 count;
	bool				 more;
};

static int
revoke_user_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct revoke_user_arg	*a = arg;

	return session_txn_revoke_user(st, txn, a->user_id, a->reason, a->now,
	    MAX_USER_SESSIONS, &a->count, &a->more, wrote);
}

/* Each transaction revokes at least one family while some are left, so
 * the loop ends unless logins of the user keep opening new ones. */
int
store_session_revoke_user(struct store *st, uint64_t user_id,
    enum store_session_reason reason, time_t now, int *count,
    struct kl_error *err)
{
	struct revoke_user_arg	a = { user_id, reason, now, 0, false };
	enum store_write	where;
	int			ret;

	*count = 0;
	if (!store_ready(st))
		return store_not_open(st, err);
	if (!reason_valid(reason))
		return kl_fail(err, KL_STORE_FAILED, "revoke all: bad reason");
	if ((where = store_write_where(st, err)) != STORE_WRITE_HERE)
		return where == STORE_WRITE_FORWARD ?
		    store_forward_revoke_user(st, user_id,
		    reason, now, count, err) : -1;
	do {
		ret = store_txn_run(st, 0, true, revoke_user_attempt, &a);
		if (ret != 0)
			return session_result(st, ret, "revoke all", err);
		*count += a.count;
	} while (a.more);
	return 0;
}

/* ---- list ---- */

struct list_arg {
	uint64_t		 user_id;
	struct store_session	*out;
	int			 max;
	int			 n;
};

static bool
older(const struct store_session *a, const struct store_session *b)
{
	if (a->created != b->created)
		return a->created < b->created;
	return memcmp(a->sid, b->sid, STORE_SID_LEN) < 0;
}

/* Keeps the max oldest, sorted, in a->out. */
static void
list_keep(struct list_arg *a, const struct store_session *s)
{
	int	i;

	if (a->n == a->max && !older(s, &a->out[a->max - 1]))
		return;
	i = a->n < a->max ? a->n++ : a->max - 1;
	for (; i > 0 && older(s, &a->out[i - 1]); i--)
		a->out[i] = a->out[i - 1];
	a->out[i] = *s;
}

static int
list_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct list_arg		*a = arg;
	struct store_session	 s;
	DBC			*c = NULL;
	DBT			 key, pkey, data;
	unsigned char		 kbuf[8];
	u_int32_t		 op = DB_SET;
	int			 ret, cret;

	(void)wrote;
	a->n = 0;
	user_key(&key, kbuf, a->user_id);
	realloc_dbts(&pkey, &data);
	if ((ret = st->sessions_by_user->cursor(st->sessions_by_user, txn, &c,
	    0)) != 0)
		return ret;
	for (;; op = DB_NEXT_DUP) {
		if ((ret = c->pget(c, &key, &pkey, &data, op)) != 0)
			break;
		if (pkey.size != STORE_SID_LEN ||
		    store_session_record_decode(data.data, data.size,
		    &s) == -1 || memcmp(s.sid, pkey.data, STORE_SID_LEN) != 0) {
			ret = STORE_BAD_RECORD;
			break;
		}
		list_keep(a, &s);
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
	cret = c->close(c);
	free(pkey.data);
	free(data.data);
	return ret != 0 ? ret : cret;
}

int
store_session_list(struct store *st, uint64_t user_id,
    struct store_session *out, int max, int *n, struct kl_error *err)
{
	struct list_arg	a = { user_id, out, max, 0 };
	int		ret;

	*n = 0;
	if (!store_ready(st))
		return store_not_open(st, err);
	if (max <= 0)
		return 0;
	ret = store_txn_run(st, DB_READ_COMMITTED, false, list_attempt, &a);
	if (ret != 0)
		return session_result(st, ret, "session list", err);
	*n = a.n;
	return 0;
}

/* ---- sweep ---- */

#define SWEEP_KEY_MAX	(STORE_TAG_LEN > STORE_SID_LEN ? STORE_TAG_LEN : \
			 STORE_SID_LEN)

struct sweep_arg;
/* Whether the scan collects this record: 0 with *pick set, or an error. */
typedef int (*sweep_pick_fn)(struct store *, DB_TXN *, const DBT *, time_t,
    bool *);

struct sweep_arg {
	DB		 *db;
	size_t		  keylen;	/* STORE_SID_LEN or STORE_TAG_LEN */
	bool		  resume;
	const unsigned char *from;	/* resume point, keylen bytes */
	sweep_pick_fn	  pick;
	time_t		  now;
	int		  max;
	unsigned char	 *keys;		/* max keys of keylen bytes */
	int		  n;		/* collected, or removed */
	bool		  at_end;	/* the scan reached the last record */
	bool		  have_last;
	unsigned char	  last[SWEEP_KEY_MAX];	/* the last key read */
	bool		  partial;	/* a family's tokens did not all fit */
};

static int
pick_family(struct store *st, DB_TXN *txn, const DBT *data, time_t now,
    bool *pick)
{
	(void)txn;
	*pick = family_sweepable(st, data, now);
	return 0;
}

/* A token that does not decode, or whose family is gone. */
static int
pick_token(struct store *st, DB_TXN *txn, const DBT *data, time_t now,
    bool *pick)
{
	struct store_token_record	 t;
	DBT				 key, fdata;
	unsigned char			 buf[STORE_SESSION_RECORD_LEN];
	int				 ret;

	(void)now;
	*pick = true;
	if (store_token_record_decode(data->data, data->size, &t) == -1)
		return 0;
	fixed_key(&key, t.sid, STORE_SID_LEN);
	store_usermem(&fdata, buf, sizeof(buf));
	ret = st->sessions->get(st->sessions, txn, &key, &fdata, 0);
	if (ret == 0 || ret == DB_BUFFER_SMALL) {
		*pick = false;
		return 0;
	}
	return ret == DB_NOTFOUND ? 0 : ret;
}

/*
 * Phase one, read committed: each read lock goes as the cursor moves on.
 * Starts at the resume point (the first key at or after it), reads at most
 * SESSION_SWEEP_SCAN records, collects at most max.
 */
static int
sweep_scan(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct sweep_arg	*a = arg;
	DBC			*c = NULL;
	DBT			 key, data;
	u_int32_t		 op = DB_FIRST;
	bool			 pick;
	int			 ret, cret, scanned;

	(void)wrote;
	a->n = 0;
	a->at_end = a->have_last = false;
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.flags = data.flags = DB_DBT_REALLOC;
	if (a->resume) {
		if ((key.data = malloc(a->keylen)) == NULL)
			return ENOMEM;
		memcpy(key.data, a->from, a->keylen);
		key.size = (u_int32_t)a->keylen;
		op = DB_SET_RANGE;
	}
	if ((ret = a->db->cursor(a->db, txn, &c, 0)) != 0)
		goto out;
	for (scanned = 0; scanned < SESSION_SWEEP_SCAN && a->n < a->max;
	    scanned++, op = DB_NEXT) {
		if ((ret = c->get(c, &key, &data, op)) != 0)
			break;
		/* Keys of another size are not ours: nothing writes them. */
		if (key.size != a->keylen)
			continue;
		memcpy(a->last, key.data, a->keylen);
		a->have_last = true;
		if ((ret = a->pick(st, txn, &data, a->now, &pick)) != 0)
			break;
		if (pick)
			memcpy(a->keys + (size_t)a->n++ * a->keylen, key.data,
			    a->keylen);
	}
	if (ret == DB_NOTFOUND) {
		a->at_end = true;
		ret = 0;
	}
	cret = c->close(c);
	if (ret == 0)
		ret = cret;
out:
	free(key.data);
	free(data.data);
	return ret;
}

/* Deletes the family's tokens through refresh_by_sid, at most *budget of
 * them; *done once none is left. */
static int
sweep_tokens_of(struct store *st, DB_TXN *txn, const unsigned char *sid,
    int *budget, bool *done, bool *wrote)
{
	DBC		*c = NULL;
	DBT		 key, data;
	unsigned char	 kbuf[STORE_SID_LEN];
	u_int32_t	 op = DB_SET;
	int		 ret, cret;

	*done = false;
	memcpy(kbuf, sid, STORE_SID_LEN);
	store_usermem(&key, kbuf, sizeof(kbuf));
	key.size = STORE_SID_LEN;
	memset(&data, 0, sizeof(data));
	data.flags = DB_DBT_REALLOC;
	if ((ret = st->refresh_by_sid->cursor(st->refresh_by_sid, txn, &c,
	    0)) != 0)
		return ret;
	for (;; op = DB_NEXT_DUP) {
		if ((ret = c->get(c, &key, &data, op | DB_RMW)) != 0)
			break;
		if (*budget == 0)
			break;
		/* Through a secondary: the primary record goes. */
		*wrote = true;
		if ((ret = c->del(c, 0)) != 0)
			break;
		(*budget)--;
	}
	if (ret == DB_NOTFOUND) {
		*done = true;
		ret = 0;
	}
	cret = c->close(c);
	free(data.data);
	return ret != 0 ? ret : cret;
}

/* Phase two for families: each checked again under its write lock (a
 * refresh may have renewed it), its tokens deleted, then itself. */
static int
sweep_families(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct sweep_arg	*a = arg;
	const unsigned char	*sid;
	DBT			 key, data;
	unsigned char		 buf[STORE_SESSION_RECORD_LEN];
	int			 i, ret, removed = 0, budget = SESSION_SWEEP_TOKENS;
	bool			 done;

	a->partial = false;
	for (i = 0; i < a->n; i++) {
		sid = a->keys + (size_t)i * STORE_SID_LEN;
		fixed_key(&key, sid, STORE_SID_LEN);
		store_usermem(&data, buf, sizeof(buf));
		ret = st->sessions->get(st->sessions, txn, &key, &data, DB_RMW);
		if (ret == DB_NOTFOUND)
			continue;
		if (ret == DB_BUFFER_SMALL)
			data.size = 0;	/* too long: not ours */
		else if (ret != 0)
			return ret;
		if (!family_sweepable(st, &data, a->now))
			continue;
		if ((ret = sweep_tokens_of(st, txn, sid, &budget, &done,
		    wrote)) != 0)
			return ret;
		if (!done) {
			a->partial = true;
			memcpy(a->last, sid, STORE_SID_LEN);
			break;
		}
		*wrote = true;
		if ((ret = st->sessions->del(st->sessions, txn, &key, 0)) != 0)
			return ret;
		removed++;
	}
	a->n = removed;
	return 0;
}

/* Phase two for tokens: each checked again (its family may be there after
 * all), then deleted. */
static int
sweep_orphans(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct sweep_arg	*a = arg;
	DBT			 key, data;
	unsigned char		 buf[STORE_TOKEN_RECORD_LEN];
	int			 i, ret, removed = 0;
	bool			 pick;

	for (i = 0; i < a->n; i++) {
		fixed_key(&key, a->keys + (size_t)i * STORE_TAG_LEN,
		    STORE_TAG_LEN);
		store_usermem(&data, buf, sizeof(buf));
		ret = st->refresh->get(st->refresh, txn, &key, &data, DB_RMW);
		if (ret == DB_NOTFOUND)
			continue;
		if (ret == DB_BUFFER_SMALL)
			data.size = 0;
		else if (ret != 0)
			return ret;
		if ((ret = pick_token(st, txn, &data, a->now, &pick)) != 0)
			return ret;
		if (!pick)
			continue;
		*wrote = true;
		if ((ret = st->refresh->del(st->refresh, txn, &key, 0)) != 0)
			return ret;
		removed++;
	}
	a->n = removed;
	return 0;
}

/*
 * One bounded pass over db: scan, note where the next pass starts, delete.
 * *resume and from are the pass's resume point in struct store.
 */
static int
sweep_pass(struct store *st, struct sweep_arg *a, bool *resume,
    unsigned char *from, store_txn_fn del, int *removed)
{
	int	ret;

	*removed = 0;
	if ((a->keys = calloc((size_t)a->max, a->keylen)) == NULL)
		return ENOMEM;
	a->resume = *resume;
	a->from = from;
	ret = store_txn_run(st, DB_READ_COMMITTED, false, sweep_scan, a);
	if (ret == 0) {
		/* After the last record read; from the start at the end. */
		*resume = !a->at_end && a->have_last;
		if (*resume)
			memcpy(from, a->last, a->keylen);
		a->partial = false;
		if (a->n > 0)
			ret = store_txn_run(st, 0, false, del, a);
		else
			a->n = 0;
	}
	/* A family left half done: the next pass starts with it. */
	if (ret == 0 && a->partial) {
		*resume = true;
		memcpy(from, a->last, a->keylen);
	}
	if (ret == 0)
		*removed = a->n;
	free(a->keys);
	a->keys = NULL;
	return ret;
}

int
store_session_sweep(struct store *st, time_t now, int max, int *removed,
    struct kl_error *err)
{
	struct sweep_arg	fam = { .db = st->sessions,
				    .keylen = STORE_SID_LEN,
				    .pick = pick_family, .now = now,
				    .max = max };
	struct sweep_arg	tok = { .db = st->refresh,
				    .keylen = STORE_TAG_LEN,
				    .pick = pick_token, .now = now,
				    .max = max };
	int			fret, tret, orphans;

	*removed = 0;
	if (!store_ready(st))
		return store_not_open(st, err);
	if (max <= 0)
		return 0;
	/* One failing does not keep the other from its turn. */
	fret = sweep_pass(st, &fam, &st->session_sweep_resume,
	    st->session_sweep_from, sweep_families, removed);
	tret = sweep_pass(st, &tok, &st->token_sweep_resume,
	    st->token_sweep_from, sweep_orphans, &orphans);
	if (fret != 0)
		return session_result(st, fret, "session sweep", err);
	return session_result(st, tret, "token sweep", err);
}
