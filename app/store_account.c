/*
 * store_account.c: the end of an account: deletion (DELETE /users/me),
 * Kakao's unlink notice, the queue of unlinks owed to Kakao, retired ids.
 *
 * Owns unlinkq.db (Kakao id -> a queued unlink) and retired.db (user id ->
 * when the account was deleted) and their record formats; the users'
 * records stay store.c's, the sessions store_session.c's (revoked here in
 * the same transaction through session_txn_revoke_user). A deletion
 * removes the user's record, so the Kakao id no longer leads to the user
 * id and no personal data is left; the id is recorded as retired, and the
 * sequence never hands it out again. Knows nothing of JSON, HTTP or Kakao:
 * the caller sends the unlinks. Thread-safe like store.c (each call its
 * own DBTs and transaction).
 */
#include <string.h>

#include "store.h"
#include "store_forward.h"
#include "store_internal.h"

#define UNLINK_RECORD_VERSION	1
#define UNLINK_RECORD_LEN	(4 + 4 + 3 * 8)	/* version, pad, attempts, user, queued, next */
#define RETIRED_RECORD_VERSION	1
#define RETIRED_RECORD_LEN	(4 + 2 * 8)	/* version, pad, reserved (0), deleted */
#define UNLINK_SCAN		256	/* queue records one store_unlink_next reads */

int
store_unlink_record_encode(const struct store_unlink_job *j,
    unsigned char *buf, size_t size)
{
	if (size < UNLINK_RECORD_LEN || j->kakao_id <= 0)
		return -1;
	memset(buf, 0, 4);
	buf[0] = UNLINK_RECORD_VERSION;
	buf[4] = (unsigned char)(j->attempts >> 24);
	buf[5] = (unsigned char)(j->attempts >> 16);
	buf[6] = (unsigned char)(j->attempts >> 8);
	buf[7] = (unsigned char)j->attempts;
	store_put_u64(buf + 8, j->user_id);
	store_put_u64(buf + 16, (uint64_t)(int64_t)j->queued);
	store_put_u64(buf + 24, (uint64_t)(int64_t)j->next_try);
	return UNLINK_RECORD_LEN;
}

int
store_unlink_record_decode(int64_t kakao_id, const unsigned char *buf,
    size_t len, struct store_unlink_job *j)
{
	memset(j, 0, sizeof(*j));
	/* Every version up to ours is read; none but 1 exists yet. */
	if (len != UNLINK_RECORD_LEN || buf[0] == 0 ||
	    buf[0] > UNLINK_RECORD_VERSION || buf[1] != 0 || buf[2] != 0 ||
	    buf[3] != 0 || kakao_id <= 0)
		return -1;
	j->kakao_id = kakao_id;
	j->attempts = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 |
	    (uint32_t)buf[6] << 8 | buf[7];
	j->user_id = store_get_u64(buf + 8);
	j->queued = (time_t)(int64_t)store_get_u64(buf + 16);
	j->next_try = (time_t)(int64_t)store_get_u64(buf + 24);
	return 0;
}

/* The sessions of user_id, revoked inside txn; *more when some are left
 * for the caller. */
static int
revoke_sessions(struct store *st, DB_TXN *txn, uint64_t user_id,
    enum store_session_reason reason, time_t now, bool *more, bool *wrote)
{
	int	count = 0;

	return session_txn_revoke_user(st, txn, user_id, reason, now,
	    MAX_USER_SESSIONS, &count, more, wrote);
}

int
store_user_by_id_rmw(struct store *st, DB_TXN *txn, uint64_t user_id,
    unsigned char pbuf[8], unsigned char *buf, size_t size,
    struct store_user *u, u_int32_t *len)
{
	DBT		skey, pkey, data;
	unsigned char	sbuf[8];
	int		ret;

	store_key8(&skey, sbuf, user_id);
	memset(&pkey, 0, sizeof(pkey));
	pkey.data = pbuf;
	pkey.ulen = 8;
	pkey.flags = DB_DBT_USERMEM;
	store_usermem(&data, buf, size);
	ret = st->users_by_id->pget(st->users_by_id, txn, &skey, &pkey, &data,
	    DB_RMW);
	if (ret != 0)
		return ret;
	*len = data.size;
	if (pkey.size != 8 || store_record_decode(buf, data.size, u) == -1)
		return STORE_BAD_RECORD;
	return 0;
}

struct delete_arg {
	uint64_t		 user_id;
	time_t			 now, first_try;
	struct store_user	*was;
	bool			 found, more;
};

/* One attempt of a deletion: the user's record (through users_by_id, under
 * a write lock), its removal, the retired id, the sessions, the queue. */
static int
delete_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct delete_arg	*a = arg;
	struct store_unlink_job	 job;
	DBT			 pkey, rkey, rdata;
	unsigned char		 pbuf[8], ubuf[STORE_RECORD_MAX];
	unsigned char		 rkbuf[8], rbuf[RETIRED_RECORD_LEN];
	unsigned char		 qkbuf[8], qbuf[UNLINK_RECORD_LEN];
	u_int32_t		 len;
	int			 ret;

	a->found = a->more = false;
	ret = store_user_by_id_rmw(st, txn, a->user_id, pbuf, ubuf,
	    sizeof(ubuf), a->was, &len);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0)
		return ret;
	a->found = true;
	memset(&pkey, 0, sizeof(pkey));
	pkey.data = pbuf;
	pkey.size = 8;
	*wrote = true;
	/* The record goes, and with it the Kakao id's link to the user id
	 * (the index entry goes with its primary). */
	if ((ret = st->users->del(st->users, txn, &pkey, 0)) != 0)
		return ret;
	memset(rbuf, 0, sizeof(rbuf));
	rbuf[0] = RETIRED_RECORD_VERSION;
	store_put_u64(rbuf + 12, (uint64_t)(int64_t)a->now);
	store_key8(&rkey, rkbuf, a->user_id);
	memset(&rdata, 0, sizeof(rdata));
	rdata.data = rbuf;
	rdata.size = sizeof(rbuf);
	if ((ret = st->retired->put(st->retired, txn, &rkey, &rdata, 0)) != 0)
		return ret;
	if ((ret = revoke_sessions(st, txn, a->user_id, STORE_REVOKE_DELETED,
	    a->now, &a->more, wrote)) != 0)
		return ret;
	memset(&job, 0, sizeof(job));
	job.kakao_id = a->was->kakao_id;
	job.user_id = a->user_id;
	job.queued = a->now;
	job.next_try = a->first_try;
	if (store_unlink_record_encode(&job, qbuf, sizeof(qbuf)) == -1)
		return STORE_BAD_RECORD;
	store_key8(&rkey, qkbuf, (uint64_t)job.kakao_id);
	rdata.data = qbuf;
	rdata.size = sizeof(qbuf);
	return st->unlinkq->put(st->unlinkq, txn, &rkey, &rdata, 0);
}

int
store_user_delete(struct store *st, uint64_t user_id, time_t now,
    long first_retry_s, struct store_user *was, bool *more_sessions,
    struct kl_error *err)
{
	struct delete_arg	a = { .user_id = user_id, .now = now,
				      .first_try = now + first_retry_s,
				      .was = was };
	enum store_write	where;
	int			ret;

	*more_sessions = false;
	if (!store_ready(st))
		return store_not_open(st, err);
	if ((where = store_write_where(st, err)) != STORE_WRITE_HERE)
		return where == STORE_WRITE_FORWARD ?
		    store_forward_delete(st, user_id, now,
		    first_retry_s, was, more_sessions, err) : -1;
	ret = store_txn_run(st, 0, true, delete_attempt, &a);
	if (ret == STORE_BAD_RECORD)
		return kl_fail(err, KL_STORE_FAILED, "a record of user %llu "
		    "does not encode or decode", (unsigned long long)user_id);
	if (ret != 0)
		return store_fail(st, ret, "user delete", err);
	if (!a.found)
		return kl_fail(err, KL_NOT_FOUND, "no user %llu",
		    (unsigned long long)user_id);
	*more_sessions = a.more;
	return 0;
}

struct unlink_arg {
	int64_t		 kakao_id;
	time_t		 now;
	bool		 known, more;
	uint64_t	 user_id;
};

/* One attempt of Kakao's unlink notice: the user stays (and keeps its id
 * for a later login), without personal data or sessions. */
static int
unlink_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct unlink_arg	*a = arg;
	struct store_user	 u;
	DBT			 key, data;
	unsigned char		 kbuf[8], buf[STORE_RECORD_MAX];
	int			 ret, len;

	a->known = a->more = false;
	store_key8(&key, kbuf, (uint64_t)a->kakao_id);
	store_usermem(&data, buf, sizeof(buf));
	ret = st->users->get(st->users, txn, &key, &data, DB_RMW);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0)
		return ret;
	if (store_record_decode(buf, data.size, &u) == -1)
		return STORE_BAD_RECORD;
	a->known = true;
	a->user_id = u.user_id;
	/* A deactivated user stays deactivated: a later login must not
	 * bring it back, as it brings an unlinked one back. */
	if (u.status == STORE_USER_ACTIVE || u.nickname[0] != '\0' ||
	    u.email[0] != '\0' || u.profile_image[0] != '\0') {
		if (u.status == STORE_USER_ACTIVE)
			u.status = STORE_USER_UNLINKED;
		u.nickname[0] = u.email[0] = u.profile_image[0] = '\0';
		u.email_verified = false;
		u.updated = a->now;
		if ((len = store_record_encode(&u, buf, sizeof(buf))) == -1)
			return STORE_BAD_RECORD;
		data.data = buf;
		data.size = (u_int32_t)len;
		data.flags = 0;
		*wrote = true;
		if ((ret = st->users->put(st->users, txn, &key, &data,
		    0)) != 0)
			return ret;
	}
	return revoke_sessions(st, txn, u.user_id, STORE_REVOKE_UNLINKED,
	    a->now, &a->more, wrote);
}

int
store_user_unlink(struct store *st, int64_t kakao_id, time_t now,
    bool *known, uint64_t *user_id, bool *more_sessions, struct kl_error *err)
{
	struct unlink_arg	a = { .kakao_id = kakao_id, .now = now };
	enum store_write	where;
	int			ret;

	*known = *more_sessions = false;
	*user_id = 0;
	if (kakao_id <= 0)
		return kl_fail(err, KL_BAD_REQUEST, "bad kakao id");
	if (!store_ready(st))
		return store_not_open(st, err);
	if ((where = store_write_where(st, err)) != STORE_WRITE_HERE)
		return where == STORE_WRITE_FORWARD ?
		    store_forward_unlink(st, kakao_id, now,
		    known, user_id, more_sessions, err) : -1;
	ret = store_txn_run(st, 0, true, unlink_attempt, &a);
	if (ret == STORE_BAD_RECORD)
		return kl_fail(err, KL_STORE_FAILED, "user record for kakao "
		    "id %lld does not encode or decode", (long long)kakao_id);
	if (ret != 0)
		return store_fail(st, ret, "user unlink", err);
	*known = a.known;
	*user_id = a.user_id;
	*more_sessions = a.more;
	return 0;
}

/* The next try of a job that has been tried attempts times. */
static time_t
unlink_backoff(time_t now, long first_s, uint32_t attempts)
{
	long	wait = first_s > 0 ? first_s : 1;

	while (attempts-- > 0 && wait < UNLINK_MAX_RETRY_S)
		wait *= 2;
	return now + (wait < UNLINK_MAX_RETRY_S ? wait : UNLINK_MAX_RETRY_S);
}

struct next_arg {
	time_t			 now;
	long			 first_s;
	struct store_unlink_job	*job;
	bool			 found;
};

/*
 * One attempt: the first due job of at most UNLINK_SCAN, taken under its
 * write lock and pushed back by the backoff, so that another process (or
 * this one, if it dies while sending) tries it only later.
 */
static int
next_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct next_arg	*a = arg;
	DBC		*c;
	DBT		 key, data;
	unsigned char	 kbuf[8], buf[UNLINK_RECORD_LEN];
	int		 ret, n = 0;

	a->found = false;
	if ((ret = st->unlinkq->cursor(st->unlinkq, txn, &c, 0)) != 0)
		return ret;
	memset(&key, 0, sizeof(key));
	key.data = kbuf;
	key.ulen = sizeof(kbuf);
	key.flags = DB_DBT_USERMEM;
	memset(&data, 0, sizeof(data));
	data.data = buf;
	data.ulen = sizeof(buf);
	data.flags = DB_DBT_USERMEM;
	while (n++ < UNLINK_SCAN &&
	    (ret = c->get(c, &key, &data, DB_NEXT | DB_RMW)) == 0) {
		if (key.size != 8 || store_unlink_record_decode(
		    (int64_t)store_get_u64(kbuf), buf, data.size,
		    a->job) == -1)
			continue;	/* left for a tool: never sent */
		if (a->job->next_try > a->now &&
		    a->job->next_try <= a->now + UNLINK_MAX_RETRY_S)
			continue;
		a->job->attempts++;
		a->job->next_try = unlink_backoff(a->now, a->first_s,
		    a->job->attempts);
		if (store_unlink_record_encode(a->job, buf, sizeof(buf)) ==
		    -1) {
			ret = STORE_BAD_RECORD;
			break;
		}
		data.size = UNLINK_RECORD_LEN;
		*wrote = true;
		if ((ret = c->put(c, &key, &data, DB_CURRENT)) == 0)
			a->found = true;
		break;
	}
	c->close(c);
	return ret == DB_NOTFOUND ? 0 : ret;
}

int
store_unlink_next(struct store *st, time_t now, long first_retry_s,
    struct store_unlink_job *job, struct kl_error *err)
{
	struct next_arg	a = { .now = now, .first_s = first_retry_s,
			      .job = job };
	int		ret;

	memset(job, 0, sizeof(*job));
	if (!store_ready(st))
		return store_not_open(st, err);
	/* The queue is the master's to work through; a replica has none
	 * due (its handlers_unlink retries nothing). */
	if (store_write_where(st, err) != STORE_WRITE_HERE)
		return kl_fail(err, KL_NOT_FOUND, "no unlink due here: the "
		    "master retries the queue");
	ret = store_txn_run(st, 0, true, next_attempt, &a);
	if (ret == STORE_BAD_RECORD)
		return kl_fail(err, KL_STORE_FAILED, "an unlink record does "
		    "not encode");
	if (ret != 0)
		return store_fail(st, ret, "unlink queue", err);
	if (!a.found)
		return kl_fail(err, KL_NOT_FOUND, "no unlink due");
	return 0;
}

static int
done_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	DBT		key;
	unsigned char	kbuf[8];
	int		ret;

	store_key8(&key, kbuf, *(const uint64_t *)arg);
	ret = st->unlinkq->del(st->unlinkq, txn, &key, 0);
	if (ret == 0)
		*wrote = true;
	return ret == DB_NOTFOUND ? 0 : ret;
}

int
store_unlink_done(struct store *st, int64_t kakao_id, struct kl_error *err)
{
	uint64_t		k = (uint64_t)kakao_id;
	enum store_write	where;
	int			ret;

	if (!store_ready(st))
		return store_not_open(st, err);
	if ((where = store_write_where(st, err)) != STORE_WRITE_HERE)
		return where == STORE_WRITE_FORWARD ?
		    store_forward_unlink_done(st, kakao_id, err) : -1;
	if ((ret = store_txn_run(st, 0, true, done_attempt, &k)) != 0)
		return store_fail(st, ret, "unlink done", err);
	return 0;
}

int
store_unlink_get(struct store *st, int64_t kakao_id,
    struct store_unlink_job *job, struct kl_error *err)
{
	DBT		key, data;
	unsigned char	kbuf[8], buf[UNLINK_RECORD_LEN];
	int		ret;

	memset(job, 0, sizeof(*job));
	if (!store_ready(st))
		return store_not_open(st, err);
	store_key8(&key, kbuf, (uint64_t)kakao_id);
	memset(&data, 0, sizeof(data));
	data.data = buf;
	data.ulen = sizeof(buf);
	data.flags = DB_DBT_USERMEM;
	ret = store_get(st, st->unlinkq, &key, &data);
	if (ret == DB_NOTFOUND)
		return kl_fail(err, KL_NOT_FOUND, "no unlink queued");
	if (ret != 0)
		return store_fail(st, ret, "unlink get", err);
	if (store_unlink_record_decode(kakao_id, buf, data.size, job) == -1)
		return kl_fail(err, KL_STORE_FAILED, "unlink record does not "
		    "decode");
	return 0;
}

int
store_retired_get(struct store *st, uint64_t user_id, time_t *deleted,
    struct kl_error *err)
{
	DBT		key, data;
	unsigned char	kbuf[8], buf[RETIRED_RECORD_LEN];
	int		ret;

	*deleted = 0;
	if (!store_ready(st))
		return store_not_open(st, err);
	store_key8(&key, kbuf, user_id);
	memset(&data, 0, sizeof(data));
	data.data = buf;
	data.ulen = sizeof(buf);
	data.flags = DB_DBT_USERMEM;
	ret = store_get(st, st->retired, &key, &data);
	if (ret == DB_NOTFOUND)
		return kl_fail(err, KL_NOT_FOUND, "user %llu not retired",
		    (unsigned long long)user_id);
	if (ret != 0)
		return store_fail(st, ret, "retired get", err);
	if (data.size != RETIRED_RECORD_LEN || buf[0] == 0 ||
	    buf[0] > RETIRED_RECORD_VERSION)
		return kl_fail(err, KL_STORE_FAILED, "retired record does not "
		    "decode");
	*deleted = (time_t)(int64_t)store_get_u64(buf + 12);
	return 0;
}
