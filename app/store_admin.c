/*
 * store_admin.c: what the admin tool does in the store beside the service
 * (see store_admin.h).
 *
 * Owns no database: it reads users.db through the users_by_id index, the
 * environment's directory, and asks for checkpoints; it writes users.db
 * for a deactivation and an import (through the transaction runner, each
 * a short transaction of at most ADMIN_BATCH users), and moves the user id
 * sequence past imported ids through an uncached handle of its own. The
 * record formats stay their files' (store.c, store_session.c,
 * store_account.c); deletion and revocation are theirs too, called as
 * they are. Each read copies a batch out in one short read-committed
 * transaction, so the tool never holds a lock while it prints. Knows
 * nothing of JSON or of the tool's commands. Thread-safe as the store is.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <db.h>

#include "store_admin.h"
#include "store_internal.h"
#include "store_session.h"

struct batch_arg {
	uint64_t	 after;
	size_t		 max;
	size_t		 n;
	int64_t		*kakao;		/* max Kakao ids, in user id order */
	uint64_t	 last;		/* the last user id read */
};

/* One attempt: up to max entries of the users_by_id index from the first
 * user id above after, read through the store's raw handle of the index
 * (store_join() opens it): the index alone, since reading each user's
 * record here would lock index then record, the reverse of a login's
 * order, and under logins that is a deadlock whose victim may be the
 * login (seen: logins answered 500 while the tool listed users). */
static int
batch_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct batch_arg	*a = arg;
	DBC			*c;
	DBT			 key, data;
	unsigned char		 kbuf[8], dbuf[8];
	u_int32_t		 op = DB_SET_RANGE;
	int			 ret;

	(void)wrote;
	a->n = 0;
	if (st->users_by_id_raw == NULL)
		return EINVAL;		/* not a joined store */
	if ((ret = st->users_by_id_raw->cursor(st->users_by_id_raw, txn, &c,
	    DB_READ_COMMITTED)) != 0)
		return ret;
	store_put_u64(kbuf, a->after + 1);
	memset(&key, 0, sizeof(key));
	key.data = kbuf;
	key.size = 8;
	key.ulen = 8;
	key.flags = DB_DBT_USERMEM;
	store_usermem(&data, dbuf, sizeof(dbuf));
	while (a->n < a->max &&
	    (ret = c->get(c, &key, &data, op)) == 0) {
		op = DB_NEXT;
		if (key.size == 8 && data.size == 8) {
			a->kakao[a->n++] = (int64_t)store_get_u64(dbuf);
			a->last = store_get_u64(kbuf);
		}
	}
	c->close(c);
	return ret == DB_NOTFOUND ? 0 : ret;
}

int
store_user_batch(struct store *st, uint64_t *after, struct store_user *out,
    size_t max, size_t *n, bool *end, struct kl_error *err)
{
	int64_t			kakao[ADMIN_BATCH];
	struct batch_arg	a = { .after = *after, .kakao = kakao,
				      .max = max > ADMIN_BATCH ? ADMIN_BATCH :
				      max };
	size_t			i;
	int			ret;

	*n = 0;
	*end = true;
	if (!store_ready(st))
		return store_not_open(st, err);
	if (*after == UINT64_MAX || a.max == 0)
		return 0;
	ret = store_txn_run(st, DB_READ_COMMITTED, false, batch_attempt, &a);
	if (ret != 0)
		return store_fail(st, ret, "users read", err);
	*end = a.n < a.max;
	if (a.n > 0)
		*after = a.last;
	/* Then each record on its own (a deleted one is skipped): one
	 * lock at a time, never two. */
	for (i = 0; i < a.n; i++) {
		if (store_user_get(st, kakao[i], &out[*n], err) == 0)
			(*n)++;
		else if (err->status != KL_NOT_FOUND)
			return -1;
	}
	kl_error_clear(err);
	return 0;
}

/* "log.0000000001": Berkeley DB's log file names. */
static bool
is_log_file(const char *name)
{
	return strncmp(name, "log.", 4) == 0 && strlen(name) == 14 &&
	    strspn(name + 4, "0123456789") == 10;
}

static bool
is_db_file(const char *name)
{
	size_t	n = strlen(name);

	return n > 3 && strcmp(name + n - 3, ".db") == 0;
}

int
store_disk_usage(struct store *st, struct store_disk *d,
    struct kl_error *err)
{
	DIR		*dir;
	struct dirent	*e;
	struct stat	 sb;

	memset(d, 0, sizeof(*d));
	if ((dir = opendir(st->home)) == NULL)
		return kl_fail(err, KL_STORE_FAILED, "%s: %s", st->home,
		    strerror(errno));
	while ((e = readdir(dir)) != NULL) {
		bool	log = is_log_file(e->d_name);

		if (!log && !is_db_file(e->d_name))
			continue;
		if (fstatat(dirfd(dir), e->d_name, &sb,
		    AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(sb.st_mode))
			continue;	/* removed meanwhile (a log) */
		if (log) {
			d->log_bytes += (uint64_t)sb.st_size;
			d->log_files++;
		} else {
			d->db_bytes += (uint64_t)sb.st_size;
			d->db_files++;
		}
	}
	closedir(dir);
	return 0;
}

int
store_checkpoint(struct store *st, struct kl_error *err)
{
	int	ret;

	if (!store_ready(st))
		return store_not_open(st, err);
	if ((ret = st->env->txn_checkpoint(st->env, 0, 0, DB_FORCE)) != 0)
		return store_fail(st, ret, "checkpoint", err);
	return 0;
}

/* ---- deactivation ---- */

struct deactivate_arg {
	uint64_t		 user_id;
	bool			 on;		/* deactivate; false: activate */
	time_t			 now;
	struct store_user	*u;
	bool			 found, more;
	int			 revoked;
};

/* One attempt: the record through users_by_id under a write lock (the
 * order of a deletion), its status, and with a deactivation the user's
 * sessions, in the same transaction. */
static int
deactivate_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct deactivate_arg	*a = arg;
	DBT			 pkey, data;
	unsigned char		 pbuf[8], buf[STORE_RECORD_MAX];
	u_int32_t		 n;
	int			 ret, len;
	enum store_user_status	 want;

	a->found = a->more = false;
	a->revoked = 0;
	ret = store_user_by_id_rmw(st, txn, a->user_id, pbuf, buf, sizeof(buf),
	    a->u, &n);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0)
		return ret;
	a->found = true;
	memset(&pkey, 0, sizeof(pkey));
	pkey.data = pbuf;
	pkey.size = 8;
	memset(&data, 0, sizeof(data));
	data.data = buf;
	/* Only a deactivation is undone: activating an unlinked user leaves
	 * it unlinked. */
	want = a->on ? STORE_USER_DEACTIVATED : STORE_USER_ACTIVE;
	if ((a->u->status == STORE_USER_DEACTIVATED) != a->on) {
		a->u->status = want;
		a->u->updated = a->now;
		if ((len = store_record_encode(a->u, buf, sizeof(buf))) == -1)
			return STORE_BAD_RECORD;
		data.size = (u_int32_t)len;
		*wrote = true;
		if ((ret = st->users->put(st->users, txn, &pkey, &data,
		    0)) != 0)
			return ret;
	}
	if (!a->on)
		return 0;
	return session_txn_revoke_user(st, txn, a->user_id, STORE_REVOKE_ADMIN,
	    a->now, MAX_USER_SESSIONS, &a->revoked, &a->more, wrote);
}

int
store_user_deactivate(struct store *st, uint64_t user_id, bool on,
    time_t now, struct store_user *u, int *revoked, struct kl_error *err)
{
	struct deactivate_arg	a = { .user_id = user_id, .on = on, .now = now,
				      .u = u };
	int			ret, more_n = 0;

	*revoked = 0;
	if (!store_ready(st))
		return store_not_open(st, err);
	ret = store_txn_run(st, 0, true, deactivate_attempt, &a);
	if (ret == STORE_BAD_RECORD)
		return kl_fail(err, KL_STORE_FAILED, "the record of user %llu "
		    "does not encode or decode", (unsigned long long)user_id);
	if (ret != 0)
		return store_fail(st, ret, "user deactivate", err);
	if (!a.found)
		return kl_fail(err, KL_NOT_FOUND, "no user %llu",
		    (unsigned long long)user_id);
	*revoked = a.revoked;
	/* More sessions than one transaction revokes: the rest now. No login
	 * can open one meanwhile: the record is deactivated. */
	if (a.more && store_session_revoke_user(st, user_id,
	    STORE_REVOKE_ADMIN, now, &more_n, err) == -1)
		return -1;
	*revoked += more_n;
	return 0;
}

/* ---- import ---- */

struct store_import {
	DB_SEQUENCE	*seq;		/* uncached: each get is the database's */
	uint64_t	 lo, hi;	/* ids [lo, hi) this import reserved */
};

int
store_import_begin(struct store *st, struct store_import **out,
    struct kl_error *err)
{
	struct store_import	*imp;
	DBT			 key;
	int			 ret;

	*out = NULL;
	if (!store_ready(st))
		return store_not_open(st, err);
	if ((imp = calloc(1, sizeof(*imp))) == NULL)
		return kl_fail(err, KL_STORE_FAILED, "out of memory");
	memset(&key, 0, sizeof(key));
	key.data = "user_id";
	key.size = (u_int32_t)strlen("user_id");
	/* A handle of our own without a cache: a get moves the database's
	 * value itself, and returns where it was, atomically. */
	if ((ret = db_sequence_create(&imp->seq, st->seqdb, 0)) != 0 ||
	    (ret = imp->seq->open(imp->seq, NULL, &key, DB_THREAD)) != 0) {
		if (imp->seq != NULL)
			imp->seq->close(imp->seq, 0);
		free(imp);
		return store_fail(st, ret, "user id sequence", err);
	}
	*out = imp;
	return 0;
}

void
store_import_end(struct store_import *imp)
{
	if (imp == NULL)
		return;
	imp->seq->close(imp->seq, 0);
	free(imp);
}

/*
 * Moves the sequence past max inside txn, the batch's own transaction: the
 * batch's users and the sequence's move commit together or not at all, so
 * a tool killed mid-import leaves no id reserved without its user. The
 * sequence's record is locked last, after every users read of the batch,
 * and only until the commit: a worker refilling its block waits that long,
 * never while we wait on it. *from gets where the sequence stood: every id
 * from there up to max is the batch's, none a process was handed.
 */
static int
import_reserve(DB_TXN *txn, struct store_import *imp, uint64_t max,
    uint64_t *from)
{
	db_seq_t	v;
	uint64_t	next, d;
	int		ret;

	if ((ret = imp->seq->get(imp->seq, txn, 1, &v, 0)) != 0)
		return ret;
	*from = (uint64_t)v;
	for (next = (uint64_t)v + 1; next <= max; next += d) {
		d = max - next + 1;
		if (d > UINT32_MAX)
			d = UINT32_MAX;
		if ((ret = imp->seq->get(imp->seq, txn, (u_int32_t)d, &v,
		    0)) != 0)
			return ret;
	}
	return 0;
}

struct import_arg {
	struct store_import		*imp;
	const struct store_user		*users;
	size_t				 n;
	enum store_import_result	*res;
	uint64_t			 lo, hi;	/* this attempt's reserve */
};

/* Ours: reserved by an earlier batch of this import, or by this one. */
static bool
import_ours(const struct import_arg *a, uint64_t id)
{
	return (id >= a->imp->lo && id < a->imp->hi) ||
	    (id >= a->lo && id < a->hi);
}

/* A result before the writes: the user is new here (pending a check of
 * its id against the sequence). */
#define IMPORT_PENDING	(-1)

/* One line's user, read inside the batch's transaction: its final result,
 * or IMPORT_PENDING. */
static int
import_classify(struct store *st, DB_TXN *txn, const struct store_user *u,
    const unsigned char *mine, int len, int *res)
{
	struct store_user	 was;
	DBT			 key, data, ikey;
	unsigned char		 kbuf[8], ibuf[8], buf[STORE_RECORD_MAX];
	int			 ret;

	store_key8(&key, kbuf, (uint64_t)u->kakao_id);
	store_usermem(&data, buf, sizeof(buf));
	/* Read committed: a batch of users already here (a re-import) holds
	 * no lock a login of them would wait on. A first login of a Kakao id
	 * committed between this read and our write meets our put's
	 * DB_NOOVERWRITE, and the line is read again (import_attempt). */
	ret = st->users->get(st->users, txn, &key, &data, DB_READ_COMMITTED);
	if (ret == 0) {
		if (store_record_decode(buf, data.size, &was) == -1)
			return STORE_BAD_RECORD;
		if (was.user_id != u->user_id)
			*res = STORE_IMPORT_KAKAO_TAKEN;
		else if (data.size == (u_int32_t)len &&
		    memcmp(buf, mine, (size_t)len) == 0)
			*res = STORE_IMPORT_UNCHANGED;
		else
			*res = STORE_IMPORT_KEPT;
		return 0;
	}
	if (ret != DB_NOTFOUND)
		return ret;
	store_key8(&ikey, ibuf, u->user_id);
	store_usermem(&data, buf, sizeof(buf));
	ret = st->retired->get(st->retired, txn, &ikey, &data,
	    DB_READ_COMMITTED);
	if (ret == 0 || ret == DB_BUFFER_SMALL) {
		*res = STORE_IMPORT_RETIRED;
		return 0;
	}
	if (ret != DB_NOTFOUND)
		return ret;
	store_usermem(&data, buf, sizeof(buf));
	ret = st->users_by_id->get(st->users_by_id, txn, &ikey, &data,
	    DB_READ_COMMITTED);
	if (ret == 0 || ret == DB_BUFFER_SMALL) {
		*res = STORE_IMPORT_ID_TAKEN;
		return 0;
	}
	if (ret != DB_NOTFOUND)
		return ret;
	*res = IMPORT_PENDING;
	return 0;
}

/* A new user written, as a first login would leave it. */
static int
import_write(struct store *st, DB_TXN *txn, const struct store_user *u,
    unsigned char *mine, int len, bool *wrote)
{
	DBT		key, data;
	unsigned char	kbuf[8];
	int		ret;

	store_key8(&key, kbuf, (uint64_t)u->kakao_id);
	/* As a first login does: an unlink queued by an earlier deletion of
	 * this Kakao user would cut the imported account off at Kakao. */
	*wrote = true;
	ret = st->unlinkq->del(st->unlinkq, txn, &key, 0);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	memset(&data, 0, sizeof(data));
	data.data = mine;
	data.size = (u_int32_t)len;
	return st->users->put(st->users, txn, &key, &data, DB_NOOVERWRITE);
}

/* Reads every line's place, then (locked last) moves the sequence past
 * the new ids no earlier batch of this import reserved, then writes. */
static int
import_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct import_arg	*a = arg;
	unsigned char		(*rec)[STORE_RECORD_MAX];
	int			 len[ADMIN_BATCH], r[ADMIN_BATCH];
	uint64_t		 max = 0, from;
	size_t			 i;
	int			 ret = 0;

	a->lo = a->hi = 0;
	if ((rec = malloc(ADMIN_BATCH * sizeof(*rec))) == NULL)
		return ENOMEM;
	for (i = 0; i < a->n && ret == 0; i++) {
		if ((len[i] = store_record_encode(&a->users[i], rec[i],
		    sizeof(rec[i]))) == -1)
			ret = STORE_BAD_RECORD;
		else
			ret = import_classify(st, txn, &a->users[i], rec[i],
			    len[i], &r[i]);
		if (ret == 0 && r[i] == IMPORT_PENDING &&
		    !import_ours(a, a->users[i].user_id) &&
		    a->users[i].user_id > max)
			max = a->users[i].user_id;
	}
	if (ret == 0 && max > 0 &&
	    (ret = import_reserve(txn, a->imp, max, &from)) == 0) {
		a->lo = from;
		a->hi = max + 1 > from + 1 ? max + 1 : from + 1;
	}
	for (i = 0; i < a->n && ret == 0; i++) {
		if (r[i] != IMPORT_PENDING) {
			a->res[i] = (enum store_import_result)r[i];
			continue;
		}
		/* An id below the sequence, not ours: a process may hold it. */
		if (!import_ours(a, a->users[i].user_id)) {
			a->res[i] = STORE_IMPORT_ID_HANDED_OUT;
			continue;
		}
		ret = import_write(st, txn, &a->users[i], rec[i], len[i], wrote);
		if (ret == 0)
			a->res[i] = STORE_IMPORT_ADDED;
		else if (ret == DB_KEYEXIST &&
		    (ret = import_classify(st, txn, &a->users[i], rec[i],
		    len[i], &r[i])) == 0) {
			/* Logged in meanwhile: here now, as any other. */
			if (r[i] == IMPORT_PENDING)
				ret = DB_KEYEXIST;
			else
				a->res[i] = (enum store_import_result)r[i];
		}
	}
	free(rec);
	return ret;
}

/* The id mark (store_mark.h) raised to the batch's highest id once the
 * batch (and the sequence's move past it) committed: a fresh environment
 * after a lost disk must not hand an imported id out again. Not before
 * the commit: a workers' reopen moves the sequence past the mark, and a
 * killed import's ids would then count as handed out, refused when the
 * import runs again. A tool killed between commit and raise leaves the
 * mark to the next open or restore, which raise it to the sequence. One
 * fsync a batch at most. */
static int
import_mark(struct store *st, const struct store_user *users, size_t n,
    struct kl_error *err)
{
	struct store_mark	m;
	uint64_t		max = 0;
	size_t			i;

	for (i = 0; i < n; i++)
		if (users[i].user_id > max)
			max = users[i].user_id;
	if (store_mark_init(&m, st->home, err) == -1)
		return -1;
	return store_mark_raise(&m, max, err);
}

int
store_user_import(struct store *st, struct store_import *imp,
    const struct store_user *users, size_t n, enum store_import_result *res,
    struct kl_error *err)
{
	struct import_arg	a = { imp, users, n, res, 0, 0 };
	size_t			i;
	int			ret;

	if (!store_ready(st))
		return store_not_open(st, err);
	if (n > ADMIN_BATCH)
		return kl_fail(err, KL_STORE_FAILED, "import: batch too large");
	for (i = 0; i < n; i++) {
		if (users[i].user_id == 0 || users[i].kakao_id <= 0 ||
		    users[i].user_id > ADMIN_IMPORT_MAX_ID)
			return kl_fail(err, KL_STORE_FAILED, "import: bad ids");
	}
	if (n == 0)
		return 0;
	ret = store_txn_run(st, 0, true, import_attempt, &a);
	if (ret == STORE_BAD_RECORD)
		return kl_fail(err, KL_STORE_FAILED, "import: a record does not "
		    "encode or decode");
	if (ret != 0)
		return store_fail(st, ret, "user import", err);
	/* Committed: the range is the import's for its later batches (one
	 * range, grown while batches follow each other, as an export's
	 * sorted ids do). */
	if (a.hi > a.lo) {
		if (a.lo != imp->hi)
			imp->lo = a.lo;
		imp->hi = a.hi;
	}
	return import_mark(st, users, n, err);
}

/* ---- verify ---- */

#define SCAN_KEY_MAX	64

/* A batch of one database's entries, copied out of a short read-committed
 * cursor walk (no lock kept when it returns). */
struct scan {
	DB		*db;
	bool		 started, end;
	unsigned char	 from[SCAN_KEY_MAX];
	u_int32_t	 fromlen;
	size_t		 n;
	unsigned char	 key[ADMIN_BATCH][SCAN_KEY_MAX];
	u_int32_t	 klen[ADMIN_BATCH];
	unsigned char	 data[ADMIN_BATCH][STORE_RECORD_MAX];
	u_int32_t	 dlen[ADMIN_BATCH];	/* > STORE_RECORD_MAX: too long */
};

static int
scan_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct scan	*s = arg;
	DBC		*c;
	DBT		 key, data;
	u_int32_t	 op;
	int		 ret, cret;

	(void)st;
	(void)wrote;
	s->n = 0;
	s->end = false;
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.flags = data.flags = DB_DBT_REALLOC;
	if ((ret = s->db->cursor(s->db, txn, &c, DB_READ_COMMITTED)) != 0)
		return ret;
	if (s->started) {
		if ((key.data = malloc(s->fromlen)) == NULL) {
			c->close(c);
			return ENOMEM;
		}
		memcpy(key.data, s->from, s->fromlen);
		key.size = s->fromlen;
		op = DB_SET_RANGE;
	} else
		op = DB_FIRST;
	while (s->n < ADMIN_BATCH && (ret = c->get(c, &key, &data, op)) == 0) {
		op = DB_NEXT;
		/* The resume point itself was seen by the last batch. */
		if (s->started && s->n == 0 && key.size == s->fromlen &&
		    memcmp(key.data, s->from, key.size) == 0)
			continue;
		s->klen[s->n] = key.size;
		memcpy(s->key[s->n], key.data,
		    key.size < SCAN_KEY_MAX ? key.size : SCAN_KEY_MAX);
		s->dlen[s->n] = data.size;
		memcpy(s->data[s->n], data.data, data.size < STORE_RECORD_MAX ?
		    data.size : STORE_RECORD_MAX);
		s->n++;
	}
	if (ret == DB_NOTFOUND) {
		s->end = true;
		ret = 0;
	}
	cret = c->close(c);
	free(key.data);
	free(data.data);
	return ret != 0 ? ret : cret;
}

/* The next batch of s->db; s->end once the walk is done. A key longer
 * than SCAN_KEY_MAX cannot be resumed from: the walk ends at it. */
static int
scan_next(struct store *st, struct scan *s)
{
	int	ret;

	if ((ret = store_txn_run(st, DB_READ_COMMITTED, false, scan_attempt,
	    s)) != 0)
		return ret;
	if (s->n > 0) {
		s->fromlen = s->klen[s->n - 1];
		if (s->fromlen > SCAN_KEY_MAX)
			s->end = true;
		else
			memcpy(s->from, s->key[s->n - 1], s->fromlen);
		s->started = true;
	}
	return 0;
}

static void
problem(struct store_verify *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
problem(struct store_verify *v, const char *fmt, ...)
{
	va_list	ap;

	if (v->problems < STORE_VERIFY_KEEP) {
		va_start(ap, fmt);
		vsnprintf(v->problem[v->problems], sizeof(v->problem[0]), fmt,
		    ap);
		va_end(ap);
	}
	v->problems++;
}

/* An exact read outside a transaction into buf: 0, DB_NOTFOUND, or an
 * error (a record longer than size is STORE_BAD_RECORD). */
static int
read_exact(struct store *st, DB *db, const void *k, u_int32_t klen,
    unsigned char *buf, size_t size, u_int32_t *len)
{
	DBT	key, data;
	int	ret;

	memset(&key, 0, sizeof(key));
	key.data = (void *)(uintptr_t)k;
	key.size = klen;
	store_usermem(&data, buf, size);
	ret = store_get(st, db, &key, &data);
	if (ret == DB_BUFFER_SMALL)
		return STORE_BAD_RECORD;
	*len = data.size;
	return ret;
}

/* What users.db holds at kakao id k: 0 with *u, DB_NOTFOUND, or an
 * error. */
static int
user_at(struct store *st, int64_t k, struct store_user *u)
{
	unsigned char	kb[8], buf[STORE_RECORD_MAX];
	u_int32_t	len;
	int		ret;

	store_put_u64(kb, (uint64_t)k);
	if ((ret = read_exact(st, st->users, kb, 8, buf, sizeof(buf),
	    &len)) != 0)
		return ret;
	return store_record_decode(buf, len, u) == -1 ? STORE_BAD_RECORD : 0;
}

/* The raw index at user id id: 0 with *k, DB_NOTFOUND or an error. */
static int
index_at(struct store *st, uint64_t id, int64_t *k)
{
	unsigned char	kb[8], buf[8];
	u_int32_t	len;
	int		ret;

	store_put_u64(kb, id);
	if ((ret = read_exact(st, st->users_by_id_raw, kb, 8, buf, sizeof(buf),
	    &len)) != 0)
		return ret;
	if (len != 8)
		return STORE_BAD_RECORD;
	*k = (int64_t)store_get_u64(buf);
	return 0;
}

/* A users.db entry: decodes, its key is its Kakao id, its id is indexed
 * back to it, not retired, and one the sequence handed out. What a
 * writer changes meanwhile is looked at twice before it counts. */
static int
verify_user(struct store *st, struct store_verify *v, const unsigned char *key,
    u_int32_t klen, const unsigned char *data, u_int32_t dlen, uint64_t *seq)
{
	struct store_user	u, again;
	struct kl_error		kerr;
	unsigned char		kb[8], rb[64];
	u_int32_t		len;
	int64_t			k;
	int			ret;

	v->users++;
	if (klen != 8 || dlen > STORE_RECORD_MAX ||
	    store_record_decode(data, dlen, &u) == -1) {
		problem(v, "users.db: a record that does not decode (key of "
		    "%u bytes)", klen);
		return 0;
	}
	if (u.status == STORE_USER_UNLINKED)
		v->unlinked++;
	else if (u.status == STORE_USER_DEACTIVATED)
		v->deactivated++;
	if ((uint64_t)u.kakao_id != store_get_u64(key)) {
		problem(v, "users.db: the record at Kakao id %llu says Kakao "
		    "id %lld", (unsigned long long)store_get_u64(key),
		    (long long)u.kakao_id);
		return 0;
	}
	/* A process's refill since the walk began? Read it again. */
	if (u.user_id >= *seq) {
		if (store_user_ids_reserved(st, seq, &kerr) == -1)
			return EIO;
		(*seq)++;
	}
	if (u.user_id >= *seq)
		problem(v, "user %llu: above the ids the sequence handed out "
		    "(%llu): a later login could get it",
		    (unsigned long long)u.user_id, (unsigned long long)*seq);
	store_put_u64(kb, u.user_id);
	ret = read_exact(st, st->retired, kb, 8, rb, sizeof(rb), &len);
	if (ret == 0)
		problem(v, "user %llu: both a user and retired",
		    (unsigned long long)u.user_id);
	else if (ret != DB_NOTFOUND)
		return ret;
	ret = index_at(st, u.user_id, &k);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	if (ret == 0 && k == u.kakao_id)
		return 0;
	/* A deletion or first login between the two reads? Again. */
	if (user_at(st, u.kakao_id, &again) != 0 ||
	    again.user_id != u.user_id)
		return 0;
	ret = index_at(st, u.user_id, &k);
	if (ret == DB_NOTFOUND)
		problem(v, "user %llu (Kakao id %lld): not in users_by_id",
		    (unsigned long long)u.user_id, (long long)u.kakao_id);
	else if (ret == 0 && k != u.kakao_id)
		problem(v, "user %llu: users_by_id points to Kakao id %lld, "
		    "the record is Kakao id %lld", (unsigned long long)u.user_id,
		    (long long)k, (long long)u.kakao_id);
	else if (ret != 0)
		return ret;
	return 0;
}

/* A users_by_id entry: its Kakao id's record has this user id. */
static int
verify_index(struct store *st, struct store_verify *v, const unsigned char *key,
    u_int32_t klen, const unsigned char *data, u_int32_t dlen)
{
	struct store_user	u;
	uint64_t		id;
	int64_t			k, k2;
	int			ret;

	v->index++;
	if (klen != 8 || dlen != 8) {
		problem(v, "users_by_id.db: an entry of %u and %u bytes", klen,
		    dlen);
		return 0;
	}
	id = store_get_u64(key);
	k = (int64_t)store_get_u64(data);
	ret = user_at(st, k, &u);
	if (ret == 0 && u.user_id == id)
		return 0;
	if (ret != 0 && ret != DB_NOTFOUND && ret != STORE_BAD_RECORD)
		return ret;
	if (index_at(st, id, &k2) != 0 || k2 != k)
		return 0;	/* changed meanwhile */
	ret = user_at(st, k, &u);
	if (ret == DB_NOTFOUND)
		problem(v, "users_by_id.db: user %llu points to Kakao id %lld, "
		    "which has no record", (unsigned long long)id,
		    (long long)k);
	else if (ret == 0 && u.user_id != id)
		problem(v, "users_by_id.db: user %llu points to Kakao id %lld, "
		    "whose record is user %llu", (unsigned long long)id,
		    (long long)k, (unsigned long long)u.user_id);
	else if (ret != 0 && ret != STORE_BAD_RECORD)
		return ret;
	return 0;
}

/* An active session's user exists, and the family is indexed by it. */
static int
verify_session(struct store *st, struct store_verify *v,
    const unsigned char *key, u_int32_t klen, const unsigned char *data,
    u_int32_t dlen)
{
	struct store_session	 s, again;
	struct store_user	 u;
	struct kl_error		 kerr;
	DBT			 skey, pkey, pdata;
	unsigned char		 kb[8], pk[STORE_SID_LEN], pd[8];
	int64_t			 k;
	int			 ret;

	v->sessions++;
	if (klen != STORE_SID_LEN || dlen > STORE_RECORD_MAX ||
	    store_session_record_decode(data, dlen, &s) == -1 ||
	    memcmp(s.sid, key, STORE_SID_LEN) != 0) {
		problem(v, "sessions.db: a record that does not decode");
		return 0;
	}
	store_put_u64(kb, s.user_id);
	memset(&skey, 0, sizeof(skey));
	skey.data = kb;
	skey.size = 8;
	/* DB_THREAD: both DBTs the get writes say whose memory it is. */
	memcpy(pk, s.sid, STORE_SID_LEN);
	memset(&pkey, 0, sizeof(pkey));
	pkey.data = pk;
	pkey.size = pkey.ulen = STORE_SID_LEN;
	pkey.flags = DB_DBT_USERMEM;
	store_usermem(&pdata, pd, sizeof(pd));
	pdata.flags |= DB_DBT_PARTIAL;	/* the match only, no data */
	pdata.dlen = 0;
	store_busy_enter(st);
	ret = st->sessions_by_user->pget(st->sessions_by_user, NULL, &skey,
	    &pkey, &pdata, DB_GET_BOTH);
	store_busy_leave(st);
	if (ret == DB_NOTFOUND)
		problem(v, "session of user %llu: not in sessions_by_user",
		    (unsigned long long)s.user_id);
	else if (ret != 0)
		return ret;
	if (s.status != STORE_SESSION_ACTIVE)
		return 0;
	v->active_sessions++;
	ret = index_at(st, s.user_id, &k);
	if (ret == 0 && k == s.kakao_id && user_at(st, k, &u) == 0 &&
	    u.user_id == s.user_id)
		return 0;
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	/* Revoked meanwhile (a deletion revokes in its transaction)? */
	if (store_session_get(st, s.sid, &again, &kerr) == -1 ||
	    again.status != STORE_SESSION_ACTIVE)
		return 0;
	if (index_at(st, s.user_id, &k) == 0 && k == s.kakao_id)
		return 0;
	problem(v, "an active session of user %llu (Kakao id %lld), who "
	    "does not exist", (unsigned long long)s.user_id,
	    (long long)s.kakao_id);
	return 0;
}

/* A token record decodes; one whose family is gone is an orphan, which
 * the sweep's second pass removes: counted, not a problem. */
static int
verify_token(struct store *st, struct store_verify *v, u_int32_t klen,
    const unsigned char *data, u_int32_t dlen)
{
	struct store_token_record	r;
	unsigned char			buf[STORE_SESSION_RECORD_LEN];
	u_int32_t			len;
	int				ret;

	v->tokens++;
	if (klen != STORE_TAG_LEN || dlen > STORE_RECORD_MAX ||
	    store_token_record_decode(data, dlen, &r) == -1) {
		problem(v, "refresh.db: a record that does not decode");
		return 0;
	}
	ret = read_exact(st, st->sessions, r.sid, STORE_SID_LEN, buf,
	    sizeof(buf), &len);
	if (ret == DB_NOTFOUND)
		v->orphan_tokens++;
	else if (ret != 0 && ret != STORE_BAD_RECORD)
		return ret;
	return 0;
}

static int
verify_queue(struct store_verify *v, const unsigned char *key, u_int32_t klen,
    const unsigned char *data, u_int32_t dlen)
{
	struct store_unlink_job	j;

	v->unlinks++;
	if (klen != 8 || dlen > STORE_RECORD_MAX ||
	    store_unlink_record_decode((int64_t)store_get_u64(key), data, dlen,
	    &j) == -1)
		problem(v, "unlinkq.db: a record that does not decode");
	return 0;
}

static int
verify_retired(struct store *st, struct store_verify *v,
    const unsigned char *key, u_int32_t klen)
{
	struct kl_error	kerr;
	time_t		when;

	v->retired++;
	if (klen != 8) {
		problem(v, "retired.db: a key of %u bytes", klen);
		return 0;
	}
	if (store_retired_get(st, store_get_u64(key), &when, &kerr) == -1 &&
	    kerr.status != KL_NOT_FOUND)
		problem(v, "retired.db: user %llu: %s",
		    (unsigned long long)store_get_u64(key), kerr.detail);
	return 0;
}

enum walk { W_USERS, W_INDEX, W_SESSIONS, W_TOKENS, W_QUEUE, W_RETIRED };

static int
verify_walk(struct store *st, struct store_verify *v, struct scan *s,
    enum walk w, uint64_t *seq, volatile sig_atomic_t *stop)
{
	size_t	i;
	int	ret = 0;

	do {
		if (stop != NULL && *stop)
			return EINTR;
		if ((ret = scan_next(st, s)) != 0)
			return ret;
		for (i = 0; i < s->n && ret == 0; i++) {
			const unsigned char	*k = s->key[i], *d = s->data[i];
			u_int32_t		 kl = s->klen[i], dl = s->dlen[i];

			switch (w) {
			case W_USERS:
				ret = verify_user(st, v, k, kl, d, dl, seq);
				break;
			case W_INDEX:
				ret = verify_index(st, v, k, kl, d, dl);
				break;
			case W_SESSIONS:
				ret = verify_session(st, v, k, kl, d, dl);
				break;
			case W_TOKENS:
				ret = verify_token(st, v, kl, d, dl);
				break;
			case W_QUEUE:
				ret = verify_queue(v, k, kl, d, dl);
				break;
			case W_RETIRED:
				ret = verify_retired(st, v, k, kl);
				break;
			}
		}
	} while (ret == 0 && !s->end);
	return ret;
}

int
store_verify(struct store *st, struct store_verify *v,
    volatile sig_atomic_t *stop, struct kl_error *err)
{
	static const char	*names[] = { "users.db", "users_by_id.db",
				    "sessions.db", "refresh.db", "unlinkq.db",
				    "retired.db" };
	DB			*dbs[6];
	struct scan		*s;
	uint64_t		 seq;
	int			 w, ret = 0;

	memset(v, 0, sizeof(*v));
	if (!store_ready(st) || st->users_by_id_raw == NULL)
		return kl_fail(err, KL_STORE_FAILED, "store not joined");
	/* Read first: a user made after it has an id below the sequence's
	 * value then, and the check "every id was handed out" holds. */
	if (store_user_ids_reserved(st, &seq, err) == -1)
		return -1;
	seq++;
	dbs[0] = st->users;
	dbs[1] = st->users_by_id_raw;
	dbs[2] = st->sessions;
	dbs[3] = st->refresh;
	dbs[4] = st->unlinkq;
	dbs[5] = st->retired;
	if ((s = malloc(sizeof(*s))) == NULL)
		return kl_fail(err, KL_STORE_FAILED, "out of memory");
	for (w = W_USERS; w <= W_RETIRED && ret == 0; w++) {
		memset(s, 0, sizeof(*s));
		s->db = dbs[w];
		ret = verify_walk(st, v, s, (enum walk)w, &seq, stop);
		if (ret != 0 && ret != EINTR)
			store_fail(st, ret, names[w], err);
	}
	free(s);
	if (ret == EINTR)
		return kl_fail(err, KL_STORE_FAILED, "interrupted");
	return ret == 0 ? 0 : -1;
}
