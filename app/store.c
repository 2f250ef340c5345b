/*
 * store.c: users in a Berkeley DB 5.3 transactional environment.
 *
 * Owns the environment and its databases:
 *   users.db        btree, kakao id (8 bytes, big-endian) -> user record
 *   users_by_id.db  secondary index, user id (8 bytes, big-endian) -> kakao id
 *   seq.db          the DB_SEQUENCE that hands out user ids, a block of
 *                   STORE_SEQ_CACHE at a time per process, each block
 *                   covered by the id mark (app/store_mark.c) before
 *                   its first id is used; at open the sequence is moved
 *                   past the mark, and a missing environment is not
 *                   created while the mark says ids were handed out
 *   codes.db        code-exchange records (app/store_code.c owns their
 *                   format and logic; this file only opens the database)
 *   sessions.db, sessions_by_user.db, refresh.db, refresh_by_sid.db
 *                   refresh families and their tokens (app/store_session.c
 *                   owns them; this file opens them and their indexes)
 *   unlinkq.db, retired.db
 *                   unlinks owed to Kakao, deleted accounts' ids
 *                   (app/store_account.c)
 *   probe.db        one record the readiness probe rewrites
 *                   (app/store_probe.c)
 * A database this release added is created when an environment of an older
 * one lacks it: nothing else changes, so that environment opens in place.
 * Every process opens the environment with DB_REGISTER | DB_RECOVER: when a
 * process died holding the environment, the next one to open it runs
 * recovery, and the others see DB_RUNRECOVERY and must restart
 * (store_needs_restart). failchk is deliberately not used: with glibc's
 * condition variables it hangs in pthread_cond_destroy() when the dead
 * thread was waiting on a lock, which under load it usually was.
 * Every write is one transaction, run by store_txn_run(), the one runner
 * the store's files share: deadlocks and lock time-outs abort and retry up
 * to STORE_MAX_RETRIES times. At most STORE_MAX_ACTIVE
 * transactions run at once in a process (a semaphore): with a hundred
 * threads in the store at once, lock and mutex contention cut throughput by
 * a third to a half (make bench); STORE_MAX_ACTIVE_REPL on a site of a
 * replication group, whose commits wait on the network for the replicas'
 * acknowledgements (app/store_repl.c). Commits are made durable by a group
 * commit outside that gate. Knows nothing of JSON, HTTP or Kakao.
 * Thread-safe: handles are opened with DB_THREAD, and each call uses its own
 * DBTs and transaction.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <db.h>

#include "log.h"
#include "kl_clock.h"
#include "metrics.h"
#include "store.h"
#include "store_code.h"
#include "store_forward.h"
#include "store_internal.h"
#include "store_repl.h"

#define RECORD_VERSION	1
#define RECORD_HEADER	52	/* version, status, verified, pad, 6 x 8 bytes */

static int
put_str(unsigned char *buf, size_t size, size_t *off, const char *s,
    size_t max)
{
	size_t	len = strlen(s);

	if (len > max || *off + 2 + len > size)
		return -1;
	buf[(*off)++] = (unsigned char)(len >> 8);
	buf[(*off)++] = (unsigned char)(len & 0xff);
	memcpy(buf + *off, s, len);
	*off += len;
	return 0;
}

static int
get_str(const unsigned char *buf, size_t len, size_t *off, char *out,
    size_t outsize)
{
	size_t	n;

	if (*off + 2 > len)
		return -1;
	n = ((size_t)buf[*off] << 8) | buf[*off + 1];
	*off += 2;
	if (n >= outsize || *off + n > len || memchr(buf + *off, '\0', n))
		return -1;
	memcpy(out, buf + *off, n);
	out[n] = '\0';
	*off += n;
	return 0;
}

int
store_record_encode(const struct store_user *u, unsigned char *buf,
    size_t size)
{
	size_t	off = RECORD_HEADER;

	if (size < RECORD_HEADER)
		return -1;
	buf[0] = RECORD_VERSION;
	buf[1] = (unsigned char)u->status;
	buf[2] = u->email_verified ? 1 : 0;
	buf[3] = 0;
	store_put_u64(buf + 4, u->user_id);
	store_put_u64(buf + 12, (uint64_t)u->kakao_id);
	store_put_u64(buf + 20, (uint64_t)(int64_t)u->created);
	store_put_u64(buf + 28, (uint64_t)(int64_t)u->updated);
	store_put_u64(buf + 36, (uint64_t)(int64_t)u->last_login);
	store_put_u64(buf + 44, u->login_count);
	if (put_str(buf, size, &off, u->nickname, MAX_NICKNAME) == -1 ||
	    put_str(buf, size, &off, u->email, MAX_EMAIL) == -1 ||
	    put_str(buf, size, &off, u->profile_image, MAX_PROFILE_IMAGE) == -1)
		return -1;
	return (int)off;
}

int
store_record_decode(const unsigned char *buf, size_t len, struct store_user *u)
{
	size_t	off = RECORD_HEADER;

	memset(u, 0, sizeof(*u));
	/* Every version up to ours is read (older ones upgraded here, and
	 * written back as ours by the next login); a later one is refused,
	 * so a worker of an older release never mangles a newer record. Only
	 * version 1 exists yet: an environment of any release so far opens
	 * and is read in place. */
	if (len < RECORD_HEADER || buf[0] == 0 || buf[0] > RECORD_VERSION ||
	    buf[1] > STORE_USER_DEACTIVATED ||
	    buf[2] > 1 || buf[3] != 0)
		return -1;
	u->status = buf[1];
	u->email_verified = buf[2] == 1;
	u->user_id = store_get_u64(buf + 4);
	u->kakao_id = (int64_t)store_get_u64(buf + 12);
	u->created = (time_t)(int64_t)store_get_u64(buf + 20);
	u->updated = (time_t)(int64_t)store_get_u64(buf + 28);
	u->last_login = (time_t)(int64_t)store_get_u64(buf + 36);
	u->login_count = store_get_u64(buf + 44);
	if (get_str(buf, len, &off, u->nickname, sizeof(u->nickname)) == -1 ||
	    get_str(buf, len, &off, u->email, sizeof(u->email)) == -1 ||
	    get_str(buf, len, &off, u->profile_image,
	    sizeof(u->profile_image)) == -1 || off != len)
		return -1;
	return 0;
}

/* users_by_id key: the user id bytes inside the record, no copy. */
static int
index_by_user_id(DB *sec, const DBT *key, const DBT *data, DBT *result)
{
	(void)sec;
	(void)key;
	if (data->size < RECORD_HEADER)
		return DB_DONOTINDEX;
	memset(result, 0, sizeof(*result));
	result->data = (unsigned char *)data->data + 4;
	result->size = 8;
	return 0;
}

static void
store_errcall(const DB_ENV *env, const char *prefix, const char *msg)
{
	(void)env;
	(void)prefix;
	log_warn("bdb: %s", msg);
}

/* This thread's place in the stuck-call watch: how deep in store calls,
 * the slot it holds (or last held: tried first), and whether it holds one. */
static _Thread_local int	busy_depth;
static _Thread_local int	busy_slot;
static _Thread_local bool	busy_held;

/*
 * Each thread inside Berkeley DB has a slot saying since when, so that the
 * watchdog sees the oldest call in flight: a count with a "last call
 * ended" time let the maintenance thread's quick checkpoints hide logins
 * hung for good on a mutex a killed tool held. With more threads than
 * slots, the extra ones go unwatched.
 */
void
store_busy_enter(struct store *st)
{
	long long	now, expect;
	int		i, slot;

	if (busy_depth++ > 0)
		return;
	if ((now = kl_mono_ms()) < 1)
		now = 1;
	for (i = 0; i < STORE_BUSY_SLOTS; i++) {
		slot = (busy_slot + i) % STORE_BUSY_SLOTS;
		expect = 0;
		if (atomic_compare_exchange_strong(&st->busy_since[slot],
		    &expect, now)) {
			busy_slot = slot;
			busy_held = true;
			return;
		}
	}
}

void
store_busy_leave(struct store *st)
{
	if (--busy_depth > 0 || !busy_held)
		return;
	atomic_store(&st->busy_since[busy_slot], 0);
	busy_held = false;
}

/*
 * Translates a Berkeley DB error. DB_RUNRECOVERY (another process ran
 * recovery, or ours panicked) and the disk refusing writes both leave this
 * process's handles useless: it must restart, and its successor reopens the
 * environment once the disk lets it.
 */
int
store_fail(struct store *st, int ret, const char *what, struct kl_error *err)
{
	if (ret == STORE_NOT_MASTER)
		return kl_fail(err, KL_NO_MASTER, "%s: this site is not the "
		    "master (%s)", what, store_role_name(store_role(st)));
	if (ret == STORE_NOT_DURABLE)
		return kl_fail(err, KL_NOT_DURABLE, "%s: committed here, but "
		    "not acknowledged by the replication group in time", what);
	/* A replica's handle that a rollback or an internal init made
	 * useless: the process restarts and reopens; meanwhile 503. */
	if (ret == DB_REP_HANDLE_DEAD) {
		atomic_store(&st->needs_restart, true);
		return kl_fail(err, KL_NOT_READY, "%s: this site's handles "
		    "were invalidated by replication; the process restarts",
		    what);
	}
	/* A site of a group during a role change or a sync: reads meet its
	 * lockout (DB_REP_LOCKOUT, or DB_LOCK_DEADLOCK through the retries):
	 * 503, so the front tries another site. */
	if (st->repl && (ret == DB_REP_LOCKOUT || ret == DB_LOCK_DEADLOCK ||
	    ret == DB_LOCK_NOTGRANTED))
		return kl_fail(err, KL_NOT_READY, "%s: %s (a replication role "
		    "change or sync)", what, db_strerror(ret));
	if (ret == DB_RUNRECOVERY || ret == EIO || ret == EROFS ||
	    ret == ENOSPC || ret == EDQUOT)
		atomic_store(&st->needs_restart, true);
	metrics_store_failure();
	/* A site of a group whose process restarts (another process ran
	 * recovery: a step-down's rollback restarted it): 503, so the front
	 * tries another site. Nothing this call wrote was acknowledged. */
	if (st->repl && ret == DB_RUNRECOVERY)
		return kl_fail(err, KL_NOT_READY, "%s: %s (this site's "
		    "processes restart)", what, db_strerror(ret));
	return kl_fail(err, KL_STORE_FAILED, "%s: %s", what, db_strerror(ret));
}

/* The index keys the sessions' secondaries read in place: a family's
 * user id, a token's sid. */
static int
index_session_user(DB *sec, const DBT *key, const DBT *data, DBT *result)
{
	(void)sec;
	(void)key;
	if (data->size < STORE_SESSION_USER_OFF + 8)
		return DB_DONOTINDEX;
	memset(result, 0, sizeof(*result));
	result->data = (unsigned char *)data->data + STORE_SESSION_USER_OFF;
	result->size = 8;
	return 0;
}

static int
index_token_sid(DB *sec, const DBT *key, const DBT *data, DBT *result)
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

/* Whether opens may create: not a tool's, not a replica's (its databases
 * come from the master, by internal init). */
static bool
store_may_create(struct store *st)
{
	if (st->join)
		return false;
	return !st->repl || store_role(st) == STORE_ROLE_MASTER;
}

/*
 * A database that would not open. A group's site keeps its environment
 * while it tries its databases again, so when another process ran
 * recovery (DB_RUNRECOVERY: a panic another process set, which fires no
 * event here) the tries could never succeed: the process restarts. A
 * single site closes its environment and opens it afresh.
 */
static int
open_fail(struct store *st, int ret, const char *what, struct kl_error *err)
{
	if (st->repl && ret == DB_RUNRECOVERY)
		atomic_store(&st->needs_restart, true);
	return kl_fail(err, KL_STORE_FAILED, "%s: %s", what,
	    db_strerror(ret));
}

/* dups: a secondary index with sorted duplicates (one key, many
 * records). */
static int
store_open_db(struct store *st, DB **db, const char *file, DBTYPE type,
    bool dups, struct kl_error *err)
{
	int	ret;

	if ((ret = db_create(db, st->env, 0)) != 0) {
		*db = NULL;
		return open_fail(st, ret, "db_create", err);
	}
	if (dups && (ret = (*db)->set_flags(*db, DB_DUP | DB_DUPSORT)) != 0)
		return kl_fail(err, KL_STORE_FAILED, "%s: %s", file,
		    db_strerror(ret));
	ret = (*db)->open(*db, NULL, file, NULL, type,
	    (store_may_create(st) ? DB_CREATE : 0) | DB_AUTO_COMMIT |
	    DB_THREAD, 0660);
	if (ret != 0)
		return open_fail(st, ret, file, err);
	return 0;
}

/* Closes the databases env_open() managed to open, not the environment. */
static void
dbs_close(struct store *st)
{
	if (st->seq != NULL)
		st->seq->close(st->seq, 0);
	if (st->users_by_id_raw != NULL)
		st->users_by_id_raw->close(st->users_by_id_raw, 0);
	/* The secondary closes before its primary. */
	if (st->users_by_id != NULL)
		st->users_by_id->close(st->users_by_id, 0);
	if (st->users != NULL)
		st->users->close(st->users, 0);
	if (st->seqdb != NULL)
		st->seqdb->close(st->seqdb, 0);
	if (st->codes != NULL)
		st->codes->close(st->codes, 0);
	if (st->sessions_by_user != NULL)
		st->sessions_by_user->close(st->sessions_by_user, 0);
	if (st->sessions != NULL)
		st->sessions->close(st->sessions, 0);
	if (st->refresh_by_sid != NULL)
		st->refresh_by_sid->close(st->refresh_by_sid, 0);
	if (st->refresh != NULL)
		st->refresh->close(st->refresh, 0);
	if (st->unlinkq != NULL)
		st->unlinkq->close(st->unlinkq, 0);
	if (st->retired != NULL)
		st->retired->close(st->retired, 0);
	if (st->probe != NULL)
		st->probe->close(st->probe, 0);
	st->seq = NULL;
	st->users_by_id_raw = NULL;
	st->users_by_id = st->users = st->seqdb = st->codes = NULL;
	st->sessions_by_user = st->sessions = NULL;
	st->refresh_by_sid = st->refresh = st->unlinkq = st->retired = NULL;
	st->probe = NULL;
}

/* Closes whatever env_open() managed to open. */
static void
env_close(struct store *st)
{
	store_forward_close(st);
	dbs_close(st);
	if (st->env != NULL)
		st->env->close(st->env, 0);
	st->env = NULL;
}

/*
 * Opens (creating if needed) the user id sequence. Processes of a fresh
 * service start at once: when two create it together, the second gets
 * DB_KEYEXIST; by then the sequence exists, and opening it again works.
 */
static int
seq_open(struct store *st)
{
	DBT	key;
	int	ret, attempt;

	memset(&key, 0, sizeof(key));
	key.data = "user_id";
	key.size = (u_int32_t)strlen("user_id");
	for (attempt = 0; attempt < STORE_MAX_RETRIES; attempt++) {
		if ((ret = db_sequence_create(&st->seq, st->seqdb, 0)) != 0) {
			st->seq = NULL;
			return ret;
		}
		/* No cache of Berkeley DB's: next_user_id() takes blocks
		 * itself, so that it knows when one starts (the mark). */
		if ((ret = st->seq->initial_value(st->seq, 1)) == 0)
			ret = st->seq->open(st->seq, NULL, &key,
			    (store_may_create(st) ? DB_CREATE : 0) | DB_THREAD);
		if (ret == 0)
			return 0;
		st->seq->close(st->seq, 0);
		st->seq = NULL;
		if (ret != DB_KEYEXIST && ret != DB_LOCK_DEADLOCK &&
		    ret != DB_LOCK_NOTGRANTED)
			break;
	}
	return ret;
}

/* True when home holds the user id sequence's database: an environment
 * that handed out ids, not one about to be created. */
static bool
env_exists(const struct store *st)
{
	char		path[MAX_CONFIG_PATH + 8];
	struct stat	sb;

	snprintf(path, sizeof(path), "%s/seq.db", st->home);
	return stat(path, &sb) == 0;
}

/*
 * The mark's lock before an open: exclusive, waited for, while no
 * environment exists; shared otherwise, without waiting on a restore (its
 * exclusive lock lasts; the open is retried every second), but through
 * the short exclusive holds of the other processes: a mark being raised
 * (milliseconds) or a fresh environment being created by the first
 * process (found under SAN, where the second one's open failed and half
 * the first logins answered 500 until its retry).
 */
static int
mark_lock_shared(struct store *st, struct kl_error *err)
{
	int	tries;

	if (!env_exists(st))
		return store_mark_lock(&st->mark, LOCK_EX, err);
	for (tries = 0;; tries++) {
		if (store_mark_lock(&st->mark, LOCK_SH | LOCK_NB, err) == 0)
			return 0;
		if (tries >= STORE_MARK_WAIT_MS / 10)
			return -1;
		usleep(10000);
	}
}

/*
 * Before the environment opens: the mark opened and locked (a
 * restore holds it exclusively), and a missing environment refused while
 * the mark says ids were handed out: db_home's disk not mounted, or its
 * files lost. Creating a fresh one would hand those ids out again.
 */
static int
mark_before_open(struct store *st, struct kl_error *err)
{
	uint64_t	mark;

	/* Shared for an existing environment; exclusive, waited for, while
	 * none exists: the first processes of a fresh service then create it
	 * one after the other (two creating the sequence at once had
	 * Berkeley DB log "Sequence create failed"). */
	if (mark_lock_shared(st, err) == -1)
		return -1;
	if (store_mark_get(&st->mark, &mark, err) == -1)
		goto fail;
	if (mark > 0 && !st->allow_new && !env_exists(st)) {
		kl_fail(err, KL_STORE_FAILED, "%s holds no environment, but "
		    "the id mark %s says user ids up to %llu were handed out: "
		    "is db_home's disk mounted? If the data is lost, restore "
		    "a backup (kakao-login-admin restore DIR) or start empty "
		    "past the mark (kakao-login-admin init)", st->home,
		    st->mark.path, (unsigned long long)mark);
		goto fail;
	}
	return 0;
fail:
	store_mark_unlock(&st->mark);
	return -1;
}

/* Moves the sequence on by n ids, in chunks get's int32 delta takes. */
static int
seq_skip(struct store *st, uint64_t n)
{
	db_seq_t	v;
	int		ret = 0;

	while (n > 0 && ret == 0) {
		int32_t	d = n > INT32_MAX ? INT32_MAX : (int32_t)n;

		ret = st->seq->get(st->seq, NULL, d, &v, 0);
		n -= (uint64_t)d;
	}
	return ret;
}

/*
 * After it opened, under mark_before_open()'s lock: a sequence behind the
 * mark (a restored, imported or re-created environment) moves past it;
 * a mark behind the sequence (none yet: a host of an older release) is
 * raised to the sequence's last reserved id. Unlocks.
 */
static int
mark_after_open(struct store *st, struct kl_error *err)
{
	DB_SEQUENCE_STAT	*sp = NULL;
	uint64_t		 mark, cur;
	int			 ret;

	if (store_mark_get(&st->mark, &mark, err) == -1)
		goto fail;
	if ((ret = st->seq->stat(st->seq, &sp, 0)) != 0) {
		kl_fail(err, KL_STORE_FAILED, "sequence stat: %s",
		    db_strerror(ret));
		goto fail;
	}
	cur = sp->st_current > 0 ? (uint64_t)sp->st_current : 1;
	free(sp);
	if (cur <= mark) {
		if ((ret = seq_skip(st, mark + 1 - cur)) != 0 ||
		    (ret = st->env->log_flush(st->env, NULL)) != 0) {
			kl_fail(err, KL_STORE_FAILED, "sequence past the id "
			    "mark: %s", db_strerror(ret));
			goto fail;
		}
		log_info("store: user ids continue after %llu (id mark %s)",
		    (unsigned long long)mark, st->mark.path);
	}
	store_mark_unlock(&st->mark);
	return cur - 1 > mark ? store_mark_raise(&st->mark, cur - 1, err) : 0;
fail:
	store_mark_unlock(&st->mark);
	return -1;
}

/* The environment handle: created, configured, opened, replication
 * started. On failure nothing is left open. */
static int
env_handle_open(struct store *st, struct kl_error *err)
{
	u_int32_t	flags;
	int		ret = 0;

	if ((ret = db_env_create(&st->env, 0)) != 0) {
		st->env = NULL;
		return kl_fail(err, KL_STORE_FAILED, "db_env_create: %s",
		    db_strerror(ret));
	}
	st->env->set_errcall(st->env, store_errcall);
	if ((ret = st->env->set_lk_detect(st->env, DB_LOCK_DEFAULT)) != 0 ||
	    (ret = st->env->set_timeout(st->env, STORE_LOCK_TIMEOUT_US,
	    DB_SET_LOCK_TIMEOUT)) != 0 ||
	    (ret = st->env->set_cachesize(st->env, 0, STORE_CACHE_BYTES,
	    1)) != 0 ||
	    /* Logout of every session, a deletion, a sweep lock many
	     * pages; the defaults (1,000) ran out at a few thousand
	     * sessions of one user (ENOMEM). Takes effect when the
	     * environment is created, as recovery does. */
	    (ret = st->env->set_lk_max_locks(st->env, STORE_MAX_LOCKS)) != 0 ||
	    (ret = st->env->set_lk_max_objects(st->env,
	    STORE_MAX_LOCKS)) != 0 ||
	    /* A group's site removes its own (store_repl_log_trim). */
	    (ret = st->env->log_set_config(st->env, DB_LOG_AUTO_REMOVE,
	    store_repl_on() ? 0 : 1)) != 0) {
		kl_fail(err, KL_STORE_FAILED, "environment settings: %s",
		    db_strerror(ret));
		goto fail;
	}
	if (st->durability == DURABILITY_WRITE_NOSYNC)
		ret = st->env->set_flags(st->env, DB_TXN_WRITE_NOSYNC, 1);
	else if (st->durability == DURABILITY_NOSYNC)
		ret = st->env->set_flags(st->env, DB_TXN_NOSYNC, 1);
	if (ret != 0) {
		kl_fail(err, KL_STORE_FAILED, "durability: %s",
		    db_strerror(ret));
		goto fail;
	}
	if (store_repl_env_setup(st, err) == -1)
		goto fail;
	/* A tool joins a running environment: registered, so a tool that
	 * dies is recovered like a worker, but it never runs recovery itself
	 * (that would make every worker restart) and creates nothing. */
	flags = DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL |
	    DB_THREAD | DB_REGISTER | store_repl_env_flags();
	if (!st->join)
		flags |= DB_CREATE | DB_RECOVER;
	if ((ret = st->env->open(st->env, st->home, flags, 0660)) != 0) {
		kl_fail(err, KL_STORE_FAILED, "%s: %s", st->home,
		    ret == DB_RUNRECOVERY ? "the environment needs recovery (a "
		    "process died in it): the service's workers restart and "
		    "run it; try again in a few seconds" : ret == ENOENT ?
		    "no environment here (the service creates it)" :
		    db_strerror(ret));
		goto fail;
	}
	if (store_repl_start(st, err) == -1) {
		/* The process exits with it open (store_repl_start). */
		if (store_needs_restart(st))
			return -1;
		goto fail;
	}
	return 0;
fail:
	env_close(st);
	return -1;
}

/* The databases, their indexes and the sequence, in an open
 * environment. */
static int
dbs_open(struct store *st, struct kl_error *err)
{
	int	ret;

	if (store_open_db(st, &st->users, "users.db", DB_BTREE, false,
	    err) == -1 ||
	    store_open_db(st, &st->users_by_id, "users_by_id.db", DB_BTREE,
	    false, err) == -1 ||
	    store_open_db(st, &st->seqdb, "seq.db", DB_BTREE, false,
	    err) == -1 ||
	    store_open_db(st, &st->codes, "codes.db", DB_BTREE, false,
	    err) == -1 ||
	    store_open_db(st, &st->sessions, "sessions.db", DB_BTREE, false,
	    err) == -1 ||
	    store_open_db(st, &st->sessions_by_user, "sessions_by_user.db",
	    DB_BTREE, true, err) == -1 ||
	    store_open_db(st, &st->refresh, "refresh.db", DB_BTREE, false,
	    err) == -1 ||
	    store_open_db(st, &st->refresh_by_sid, "refresh_by_sid.db",
	    DB_BTREE, true, err) == -1 ||
	    store_open_db(st, &st->unlinkq, "unlinkq.db", DB_BTREE, false,
	    err) == -1 ||
	    store_open_db(st, &st->retired, "retired.db", DB_BTREE, false,
	    err) == -1 ||
	    store_open_db(st, &st->probe, "probe.db", DB_BTREE, false,
	    err) == -1)
		return -1;
	/* The sessions' indexes came with their primaries, so no primary
	 * holds records its index lacks (no DB_CREATE rebuild). */
	if ((ret = st->users->associate(st->users, NULL, st->users_by_id,
	    index_by_user_id, 0)) != 0 ||
	    (ret = st->sessions->associate(st->sessions, NULL,
	    st->sessions_by_user, index_session_user, 0)) != 0 ||
	    (ret = st->refresh->associate(st->refresh, NULL,
	    st->refresh_by_sid, index_token_sid, 0)) != 0)
		return open_fail(st, ret, "associate an index", err);
	/* A tool reads the index as it is (user id -> Kakao id) through a
	 * handle of its own: through the associated one a read also locks
	 * the user's record, index before record, the reverse of a login. */
	if (st->join && store_open_db(st, &st->users_by_id_raw,
	    "users_by_id.db", DB_BTREE, false, err) == -1)
		return -1;
	if ((ret = seq_open(st)) != 0)
		return open_fail(st, ret, "sequence open", err);
	return 0;
}

/*
 * Opens the environment and the databases; on failure closes them again,
 * but for a site of a replication group's environment: it stays open (its
 * replication process keeps the site in the group) while the databases
 * are tried again (a joining replica has none until the master's copy,
 * its internal init, arrived). A replica keeps no id mark: its ids are the
 * group's, taken inside each first login's transaction.
 */
static int
env_open(struct store *st, struct kl_error *err)
{
	bool	marked = !st->join && !store_repl_on();

	if (st->env == NULL) {
		if (!st->join && mkdir(st->home, 0750) == -1 &&
		    errno != EEXIST)
			return kl_fail(err, KL_STORE_FAILED, "mkdir %s: %s",
			    st->home, strerror(errno));
		if (marked && mark_before_open(st, err) == -1)
			return -1;
		if (env_handle_open(st, err) == -1)
			goto fail;
	} else if (marked && mark_before_open(st, err) == -1)
		return -1;
	if (dbs_open(st, err) == -1)
		goto fail;
	if (marked && mark_after_open(st, err) == -1) {
		env_close(st);
		return -1;
	}
	return 0;
fail:
	if (marked)
		store_mark_unlock(&st->mark);
	if (st->repl)
		dbs_close(st);
	else
		env_close(st);
	return -1;
}

/*
 * When store_maintain() tries a failed open again. A group's site keeps its
 * environment open and only opens the databases again: cheap, and they
 * appear any moment (the creating process of the site or the master's copy
 * makes them), so soon; a process that answered 503 for a second beside
 * one that answers was seen in make ha. Without an environment the next
 * try opens it again (recovery, a full disk): once a second.
 */
static void
open_retry_later(struct store *st)
{
	st->next_open = kl_mono_ms() + (st->env != NULL ?
	    STORE_DBS_RETRY_MS : STORE_OPEN_RETRY_MS);
}

static int
store_make(struct store **out, const char *home,
    enum config_durability durability, bool join,
    const struct store_mark *held, struct kl_error *err)
{
	struct store	*st;
	int		 i;

	*out = NULL;
	kl_error_clear(err);
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return kl_fail(err, KL_STORE_FAILED, "out of memory");
	if (snprintf(st->home, sizeof(st->home), "%s", home) >=
	    (int)sizeof(st->home)) {
		free(st);
		return kl_fail(err, KL_STORE_FAILED, "db_home too long");
	}
	if (store_mark_init(&st->mark, st->home, err) == -1) {
		free(st);
		return -1;
	}
	if (sem_init(&st->gate, 0, store_repl_on() ? STORE_MAX_ACTIVE_REPL :
	    STORE_MAX_ACTIVE) == -1) {
		free(st);
		return kl_fail(err, KL_STORE_FAILED, "sem_init: %s",
		    strerror(errno));
	}
	pthread_mutex_init(&st->probe_lock, NULL);
	pthread_mutex_init(&st->id_lock, NULL);
	pthread_mutex_init(&st->fwd_lock, NULL);
	st->id_next = 1;	/* above id_end: no block yet */
	st->durability = durability;
	st->sync = durability == DURABILITY_SYNC;
	st->join = join;
	if (held != NULL) {
		st->mark = *held;	/* its fd stays the caller's */
		st->mark.held = true;
		st->allow_new = true;
	}
	st->policy.ttl = DEFAULT_REFRESH_TTL;
	st->policy.idle_ttl = DEFAULT_REFRESH_IDLE_TTL;
	st->policy.reuse_window = DEFAULT_REFRESH_REUSE_WINDOW;
	for (i = 0; i < STORE_BUSY_SLOTS; i++)
		atomic_init(&st->busy_since[i], 0);
	/* A first try; store_maintain() tries again until it works. */
	if (env_open(st, err) == 0)
		atomic_store(&st->ready, true);
	else
		open_retry_later(st);
	*out = st;
	return 0;
}

int
store_new(struct store **out, const char *home,
    enum config_durability durability, struct kl_error *err)
{
	return store_make(out, home, durability, false, NULL, err);
}

/* store_make() that fails unless the environment opened. */
static int
store_make_ready(struct store **out, const char *home,
    enum config_durability durability, bool join,
    const struct store_mark *held, struct kl_error *err)
{
	if (store_make(out, home, durability, join, held, err) == -1)
		return -1;
	if (!store_ready(*out)) {
		store_close(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int
store_join(struct store **out, const char *home,
    enum config_durability durability, struct kl_error *err)
{
	return store_make_ready(out, home, durability, true, NULL, err);
}

int
store_open(struct store **out, const char *home,
    enum config_durability durability, struct kl_error *err)
{
	return store_make_ready(out, home, durability, false, NULL, err);
}

int
store_open_restored(struct store **out, const char *home,
    enum config_durability durability, const struct store_mark *held,
    struct kl_error *err)
{
	return store_make_ready(out, home, durability, false, held, err);
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	env_close(st);
	sem_destroy(&st->gate);
	pthread_mutex_destroy(&st->probe_lock);
	pthread_mutex_destroy(&st->id_lock);
	pthread_mutex_destroy(&st->fwd_lock);
	free(st);
}

int
store_not_open(const struct store *st, struct kl_error *err)
{
	return kl_fail(err, st->repl || store_repl_on() ? KL_NOT_READY :
	    KL_STORE_FAILED, "store not open");
}

bool
store_ready(const struct store *st)
{
	return atomic_load(&st->ready);
}

/* src, or "" when Kakao did not return the field. */
static void
copy_field(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src != NULL ? src : "");
}

/*
 * User ids come from this process's block, STORE_SEQ_CACHE taken from the
 * sequence at once by its own small transaction. The block is flushed to
 * the log, whatever db_durability says (a block lost in a crash would hand
 * the same ids out again, and a token already issued for one user would
 * then name another), and the id mark raised to its end, before any id of
 * it is used: so the mark is never below an id answered, and a restored
 * environment, moved past it, never hands one out again.
 *
 * next_user_id, inside a login's transaction, only takes an id of a
 * marked block; with none (or another thread refilling) it returns
 * STORE_NEED_IDS, the login's transaction ends, and id_refill does the
 * flush and the mark's fsync outside any transaction, so no page lock is
 * held across them.
 */
static int
next_user_id(struct store *st, db_seq_t *id)
{
	int	ret = STORE_NEED_IDS;

	if (pthread_mutex_trylock(&st->id_lock) != 0)
		return ret;
	if (!st->id_unmarked && st->id_next <= st->id_end) {
		*id = st->id_next++;
		ret = 0;
	}
	pthread_mutex_unlock(&st->id_lock);
	return ret;
}

/* Outside any transaction: a new block if this one is used up, the mark
 * raised over it, and an id of it for the caller. A mark that cannot be
 * written keeps the block unused (the next first login tries again) and
 * fails this one (STORE_MARK_FAILED): no id the mark does not cover. */
static int
id_refill(struct store *st, db_seq_t *id)
{
	struct kl_error	merr;
	db_seq_t	start;
	int		ret = 0;

	pthread_mutex_lock(&st->id_lock);
	store_busy_enter(st);
	if (st->id_next > st->id_end) {
		if ((ret = st->seq->get(st->seq, NULL, STORE_SEQ_CACHE, &start,
		    DB_TXN_NOSYNC)) != 0 ||
		    (ret = st->env->log_flush(st->env, NULL)) != 0)
			goto out;
		st->id_next = start;
		st->id_end = start + STORE_SEQ_CACHE - 1;
		st->id_unmarked = true;
	}
	if (st->id_unmarked) {
		if (store_mark_raise(&st->mark, (uint64_t)st->id_end,
		    &merr) == -1) {
			snprintf(st->mark_err, sizeof(st->mark_err), "%s",
			    merr.detail);
			ret = STORE_MARK_FAILED;
			goto out;
		}
		st->id_unmarked = false;
	}
	*id = st->id_next++;
out:
	store_busy_leave(st);
	pthread_mutex_unlock(&st->id_lock);
	return ret;
}

/*
 * Runs fn in one transaction, within the gate, retrying deadlocks and lock
 * time-outs. At most STORE_MAX_ACTIVE run at once in a process: more only
 * contend for locks and mutexes.
 */
int
store_txn_run(struct store *st, u_int32_t begin_flags, bool durable,
    store_txn_fn fn, void *arg)
{
	DB_TXN	*txn;
	bool	 wrote = false;
	int	 ret = 0, attempt;

	while (sem_wait(&st->gate) == -1 && errno == EINTR)
		;
	store_busy_enter(st);
	for (attempt = 0; attempt < STORE_MAX_RETRIES; attempt++) {
		wrote = false;
		if ((ret = st->env->txn_begin(st->env, NULL, &txn,
		    begin_flags)) != 0)
			break;
		/* A tool's transaction is the deadlock detector's first
		 * victim (it retries), never a login beside it. */
		if (st->join && (ret = txn->set_priority(txn,
		    STORE_TOOL_TXN_PRIORITY)) != 0) {
			txn->abort(txn);
			break;
		}
		if ((ret = fn(st, txn, arg, &wrote)) == 0 && st->repl &&
		    durable && !wrote)
			ret = store_repl_ack_mark(st, txn, &wrote);
		if (ret != 0)
			txn->abort(txn);
		/* With sync durability, made durable below; otherwise the
		 * environment's flags say what a commit writes. A site of
		 * a group: the commit waits for the acknowledgements
		 * repl_ack_policy asks for; without them it is not done. */
		else {
			if (wrote && st->repl)
				store_forward_commit_token(txn);
			store_repl_commit_begin();
			ret = txn->commit(txn, !durable || st->sync ?
			    DB_TXN_NOSYNC : 0);
			if (ret == 0 && wrote && st->repl &&
			    store_repl_commit_failed())
				ret = STORE_NOT_DURABLE;
		}
		if (ret != DB_LOCK_DEADLOCK && ret != DB_LOCK_NOTGRANTED)
			break;
		metrics_store_retry();
	}
	sem_post(&st->gate);
	/*
	 * Group commit: the transaction committed without a flush, so its
	 * locks are already free; here every thread waits for the log to be
	 * on disk, and one fdatasync covers all commits written meanwhile.
	 * Nothing is answered before its commit record is durable, and a
	 * later transaction's record lies after it in the log.
	 */
	if (ret == 0 && durable && wrote && st->sync)
		ret = st->env->log_flush(st->env, NULL);
	store_busy_leave(st);
	return store_repl_map(st, ret);
}

struct login_arg {
	const struct store_login	*in;
	const struct store_session_new	*session;	/* NULL: none */
	time_t				 now;
	struct store_user		*u;
	db_seq_t			 new_id;	/* kept across retries */
};

/*
 * One attempt: read the user under a write lock (DB_RMW also locks the
 * place of a missing key, so two first logins of one Kakao id serialize),
 * then write the new record. new_id carries a user id fetched for a first
 * login across retries, so a retry does not burn another id.
 */
static int
login_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct login_arg		*a = arg;
	const struct store_login	*in = a->in;
	struct store_user		*u = a->u;
	DBT				 key, data;
	unsigned char			 kbuf[8], buf[STORE_RECORD_MAX];
	int				 ret, len;

	store_key8(&key, kbuf, (uint64_t)in->kakao_id);
	store_usermem(&data, buf, sizeof(buf));
	ret = st->users->get(st->users, txn, &key, &data, DB_RMW);
	if (ret == 0) {
		if (store_record_decode(buf, data.size, u) == -1)
			return STORE_BAD_RECORD;
		/* Only the admin tool lifts a deactivation. */
		if (u->status == STORE_USER_DEACTIVATED)
			return STORE_USER_REFUSED;
	} else if (ret == DB_NOTFOUND) {
		/* A group's ids: from the sequence inside this transaction,
		 * so an id is the group's exactly when the login is (a
		 * commit rolled back on a rejoining site takes its id back;
		 * it was never answered). */
		if (st->repl) {
			if ((ret = st->seq->get(st->seq, txn, 1, &a->new_id,
			    0)) != 0)
				return ret;
		} else if (a->new_id == 0 &&
		    (ret = next_user_id(st, &a->new_id)) != 0)
			return ret;
		/* A deleted account's Kakao user logging in again: the unlink
		 * its deletion queued would cut the new account off at Kakao.
		 * First logins only, so the hot path pays nothing. */
		ret = st->unlinkq->del(st->unlinkq, txn, &key, 0);
		if (ret != 0 && ret != DB_NOTFOUND)
			return ret;
		memset(u, 0, sizeof(*u));
		u->user_id = (uint64_t)a->new_id;
		u->kakao_id = in->kakao_id;
		u->created = a->now;
	} else
		return ret;
	/* What Kakao returned now replaces what we had: a field it no longer
	 * returns (consent withdrawn) is cleared, not kept. */
	copy_field(u->nickname, sizeof(u->nickname), in->nickname);
	copy_field(u->email, sizeof(u->email), in->email);
	u->email_verified = in->email != NULL && in->email_verified;
	copy_field(u->profile_image, sizeof(u->profile_image),
	    in->profile_image);
	u->status = STORE_USER_ACTIVE;
	u->updated = a->now;
	u->last_login = a->now;
	u->login_count++;
	if ((len = store_record_encode(u, buf, sizeof(buf))) == -1)
		return STORE_BAD_RECORD;
	data.data = buf;
	data.size = (u_int32_t)len;
	data.flags = 0;
	*wrote = true;
	if ((ret = st->users->put(st->users, txn, &key, &data, 0)) != 0)
		return ret;
	/* The session in the same transaction: a login is one commit, one
	 * flush. */
	if (a->session != NULL)
		ret = session_txn_open(st, txn, a->session, u->user_id,
		    u->kakao_id, a->now, wrote);
	return ret;
}

int
store_user_login(struct store *st, const struct store_login *in, time_t now,
    struct store_user *user, struct kl_error *err)
{
	return store_user_login_session(st, in, now, NULL, user, err);
}

int
store_user_login_session(struct store *st, const struct store_login *in,
    time_t now, const struct store_session_new *session,
    struct store_user *user, struct kl_error *err)
{
	struct login_arg	a = { .in = in, .session = session, .now = now,
				      .u = user };
	enum store_write	where;
	int			ret;

	if (in->kakao_id <= 0)
		return kl_fail(err, KL_STORE_FAILED, "bad kakao id");
	if (!store_ready(st))
		return store_not_open(st, err);
	if ((where = store_write_where(st, err)) != STORE_WRITE_HERE)
		return where == STORE_WRITE_FORWARD ?
		    store_forward_login(st, in, now, session,
		    user, err) : -1;
	ret = store_txn_run(st, 0, true, login_attempt, &a);
	/* A first login found no marked id: one is taken outside the
	 * transaction, and the login runs again with it. */
	if (ret == STORE_NEED_IDS && (ret = id_refill(st, &a.new_id)) == 0)
		ret = store_txn_run(st, 0, true, login_attempt, &a);
	if (ret == STORE_USER_REFUSED)
		return kl_fail(err, KL_USER_DEACTIVATED, "user %llu is "
		    "deactivated", (unsigned long long)user->user_id);
	if (ret == STORE_BAD_RECORD)
		return kl_fail(err, KL_STORE_FAILED, "user record for kakao "
		    "id %lld does not encode or decode",
		    (long long)in->kakao_id);
	if (ret == STORE_MARK_FAILED) {
		metrics_store_failure();
		pthread_mutex_lock(&st->id_lock);
		kl_fail(err, KL_STORE_FAILED, "new user: no id handed out, "
		    "the id mark was not raised: %s", st->mark_err);
		pthread_mutex_unlock(&st->id_lock);
		return -1;
	}
	if (ret != 0)
		return store_fail(st, ret, "user login", err);
	/* A first login's id, not one a retry found already taken. */
	if (a.new_id != 0 && user->user_id == (uint64_t)a.new_id)
		metrics_user_created();
	return 0;
}

int
store_user_ids_reserved(struct store *st, uint64_t *n, struct kl_error *err)
{
	DB_SEQUENCE_STAT	*sp = NULL;
	int			 ret;

	*n = 0;
	if (!store_ready(st))
		return store_not_open(st, err);
	store_busy_enter(st);
	ret = st->seq->stat(st->seq, &sp, 0);
	store_busy_leave(st);
	if (ret != 0)
		return store_fail(st, ret, "sequence stat", err);
	/* st_current is the first id no process has reserved yet. */
	if (sp->st_current > 1)
		*n = (uint64_t)(sp->st_current - 1);
	free(sp);
	return 0;
}

int
store_get(struct store *st, DB *db, DBT *key, DBT *data)
{
	int	ret = 0, attempt;

	store_busy_enter(st);
	for (attempt = 0; attempt < STORE_MAX_RETRIES; attempt++) {
		ret = db->get(db, NULL, key, data, 0);
		if (ret != DB_LOCK_DEADLOCK && ret != DB_LOCK_NOTGRANTED)
			break;
		metrics_store_retry();
	}
	store_busy_leave(st);
	return ret;
}

/* Both lookups end here: the record behind key in db (users, or the
 * users_by_id index, whose get returns the primary's record). */
static int
user_read(struct store *st, DB *db, DBT *key, struct store_user *user,
    const char *what, struct kl_error *err)
{
	DBT		data;
	unsigned char	buf[STORE_RECORD_MAX];
	int		ret;

	store_usermem(&data, buf, sizeof(buf));
	/* A deadlock victim (under load, beside a login's write) was a 500
	 * of /users/me in memcheck: retried like a transaction. */
	ret = store_get(st, db, key, &data);
	if (ret == DB_NOTFOUND)
		return kl_fail(err, KL_NOT_FOUND, "no user for this %s", what);
	if (ret != 0)
		return store_fail(st, ret, "user get", err);
	if (store_record_decode(buf, data.size, user) == -1)
		return kl_fail(err, KL_STORE_FAILED, "user record does not "
		    "decode");
	return 0;
}

int
store_user_get_by_id(struct store *st, uint64_t user_id,
    struct store_user *user, struct kl_error *err)
{
	DBT		key;
	unsigned char	kbuf[8];

	if (!store_ready(st))
		return store_not_open(st, err);
	store_put_u64(kbuf, user_id);
	memset(&key, 0, sizeof(key));
	key.data = kbuf;
	key.size = 8;
	if (user_read(st, st->users_by_id, &key, user, "user id", err) == 0)
		return 0;
	/* A replica behind its master (a quorum acknowledged the write
	 * without it) asks the master before it says there is none. */
	if (err->status == KL_NOT_FOUND && store_write_where(st, NULL) ==
	    STORE_WRITE_FORWARD)
		return store_forward_user_get(st, true, user_id, user, err);
	return -1;
}

int
store_user_get(struct store *st, int64_t kakao_id, struct store_user *user,
    struct kl_error *err)
{
	DBT		key;
	unsigned char	kbuf[8];

	if (!store_ready(st))
		return store_not_open(st, err);
	store_key8(&key, kbuf, (uint64_t)kakao_id);
	if (user_read(st, st->users, &key, user, "Kakao id", err) == 0)
		return 0;
	if (err->status == KL_NOT_FOUND && store_write_where(st, NULL) ==
	    STORE_WRITE_FORWARD)
		return store_forward_user_get(st, false, (uint64_t)kakao_id,
		    user, err);
	return -1;
}

/* Expired code records and sessions go once a second, a batch at a time:
 * short transactions a login may wait on, not a long one. One sweep
 * failing does not skip the other; err tells the first failure. */
static int
maintain_sweep(struct store *st, struct kl_error *err)
{
	struct kl_error	serr;
	int		removed, ret;

	if (kl_mono_seconds() < st->next_sweep)
		return 0;
	st->next_sweep = kl_mono_seconds() + 1;
	ret = store_code_sweep(st, time(NULL), CODE_SWEEP_BATCH, &removed,
	    err);
	if (store_session_sweep(st, time(NULL), SESSION_SWEEP_BATCH, &removed,
	    ret == 0 ? err : &serr) == -1)
		ret = -1;
	return ret;
}

int
store_maintain(struct store *st, struct kl_error *err)
{
	int	ret;
	bool	writable;

	if (!store_ready(st)) {
		/* Between tries nothing fails: the last try's error was
		 * reported, and a message alternating with it would defeat
		 * the caller's repeat suppression. */
		if (kl_mono_ms() < st->next_open || store_needs_restart(st))
			return 0;
		if (env_open(st, err) == -1) {
			open_retry_later(st);
			return -1;
		}
		atomic_store(&st->ready, true);
		log_info("store open after all: %s", st->home);
		return 0;
	}
	store_repl_nodelay(st);
	store_busy_enter(st);
	/* Lock time-outs are only noticed when the detector runs: run it,
	 * so a lock held by a process that died does not hold us forever.
	 * A replica's checkpoints and sweeps are its master's, replicated. */
	writable = store_role(st) == STORE_ROLE_SINGLE ||
	    store_role(st) == STORE_ROLE_MASTER;
	if ((ret = st->env->lock_detect(st->env, 0, DB_LOCK_EXPIRE,
	    NULL)) == 0 && writable)
		ret = st->env->txn_checkpoint(st->env, 1024, 1, 0);
	if (ret == 0)
		ret = store_repl_log_trim(st);
	store_busy_leave(st);
	if (ret != 0)
		return store_fail(st, ret, "maintenance", err);
	return writable ? maintain_sweep(st, err) : 0;
}

bool
store_needs_restart(const struct store *st)
{
	return atomic_load(&st->needs_restart);
}

bool
store_stuck(const struct store *st, long limit_ms)
{
	long long	now = kl_mono_ms(), since;
	int		i;

	for (i = 0; i < STORE_BUSY_SLOTS; i++) {
		since = atomic_load(&st->busy_since[i]);
		if (since != 0 && now - since > limit_ms)
			return true;
	}
	return false;
}
