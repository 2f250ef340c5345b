/*
 * store_probe.c: the readiness probe of the store (see store_probe.h).
 *
 * Owns probe.db (store.c opens it with the other databases): one record,
 * key "probe", PROBE_RECORD_LEN bytes: a version byte, seven zero bytes,
 * and the number of probes written (8 bytes, big-endian). It is scratch:
 * a record this release cannot read is simply rewritten. A probe is one
 * transaction through store_txn_run (the gate, deadlock retries, the
 * stuck-call watch), committed without a flush, then one log_flush: a
 * record left in the log buffer would prove nothing about the disk, so
 * the flush happens with every db_durability (with sync it joins the
 * logins' group commit). The cost: one small btree write and one
 * fdatasync per process per max_age_ms, only while something asks.
 * Must not touch users, sessions or any other database; knows nothing of
 * HTTP. Thread-safe: one prober at a time under st->probe_lock, results
 * in atomics.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <db.h>

#include "kl_clock.h"
#include "store.h"
#include "store_internal.h"
#include "store_probe.h"
#include "store_repl.h"

#define PROBE_VERSION		1
#define PROBE_RECORD_LEN	16
#define PROBE_KEY		"probe"

static void
probe_key(DBT *key)
{
	memset(key, 0, sizeof(*key));
	key->data = PROBE_KEY;
	key->size = (u_int32_t)strlen(PROBE_KEY);
}

/* One attempt: read the count under a write lock, write it plus one. */
static int
probe_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	DBT		key, data;
	unsigned char	buf[PROBE_RECORD_LEN];
	uint64_t	n = 0;
	int		ret;

	(void)arg;
	probe_key(&key);
	store_usermem(&data, buf, sizeof(buf));
	ret = st->probe->get(st->probe, txn, &key, &data, DB_RMW);
	if (ret == 0 && data.size == PROBE_RECORD_LEN &&
	    buf[0] == PROBE_VERSION)
		n = store_get_u64(buf + 8);
	else if (ret != 0 && ret != DB_NOTFOUND && ret != DB_BUFFER_SMALL)
		return ret;
	memset(buf, 0, sizeof(buf));
	buf[0] = PROBE_VERSION;
	store_put_u64(buf + 8, n + 1);
	memset(&data, 0, sizeof(data));
	data.data = buf;
	data.size = sizeof(buf);
	*wrote = true;
	return st->probe->put(st->probe, txn, &key, &data, 0);
}

/* A replica's probe: its databases read (its writes are the master's),
 * and a master known. */
static enum store_health
probe_replica(struct store *st, enum store_role role, struct kl_error *err)
{
	DBT		key, data;
	unsigned char	buf[PROBE_RECORD_LEN];
	int		ret;

	probe_key(&key);
	store_usermem(&data, buf, sizeof(buf));
	ret = store_get(st, st->probe, &key, &data);
	if (ret != 0 && ret != DB_NOTFOUND && ret != DB_BUFFER_SMALL) {
		store_fail(st, ret, "readiness probe (a replica's read)", err);
		return STORE_HEALTH_NOT_OPEN;
	}
	if (role == STORE_ROLE_NO_MASTER) {
		kl_fail(err, KL_NO_MASTER, "no master known (an election, or "
		    "this site is still joining)");
		return STORE_HEALTH_NO_MASTER;
	}
	return STORE_HEALTH_OK;
}

/* The write and the flush. */
static enum store_health
probe_write(struct store *st, struct kl_error *err)
{
	enum store_role	role = store_role(st);
	int		ret;

	if (role == STORE_ROLE_REPLICA || role == STORE_ROLE_NO_MASTER)
		return probe_replica(st, role, err);

	if ((ret = store_txn_run(st, 0, false, probe_attempt, NULL)) == 0) {
		store_busy_enter(st);
		ret = st->env->log_flush(st->env, NULL);
		store_busy_leave(st);
	}
	if (ret == 0)
		return STORE_HEALTH_OK;
	/* EROFS, EIO, ENOSPC also mark the process for a restart, as a
	 * login's failure would. */
	store_fail(st, ret, "readiness probe", err);
	return STORE_HEALTH_NOT_WRITABLE;
}

/* The last result, without the lock (another thread is probing). */
static enum store_health
probe_cached(struct store *st, long long now_ms, long long max_age_ms,
    struct kl_error *err)
{
	enum store_health	h;

	if (now_ms - atomic_load(&st->probe_at) >= 2 * max_age_ms) {
		kl_fail(err, KL_STORE_FAILED, "readiness probe running for "
		    "over %lld ms", max_age_ms);
		return STORE_HEALTH_SLOW;
	}
	h = (enum store_health)atomic_load(&st->probe_health);
	if (h != STORE_HEALTH_OK)
		kl_fail(err, KL_STORE_FAILED, "readiness probe failed "
		    "(another thread's result)");
	return h;
}

enum store_health
store_probe(struct store *st, long long now_ms, long long max_age_ms,
    struct kl_error *err)
{
	struct timespec		until;
	struct kl_error		perr;
	enum store_health	h;

	if (!store_ready(st)) {
		store_not_open(st, err);
		return STORE_HEALTH_NOT_OPEN;
	}
	if (store_needs_restart(st)) {
		kl_fail(err, KL_STORE_FAILED, "store handles unusable, the "
		    "process restarts");
		return STORE_HEALTH_RESTARTING;
	}
	if (pthread_mutex_trylock(&st->probe_lock) != 0) {
		if (atomic_load(&st->probe_done))
			return probe_cached(st, now_ms, max_age_ms, err);
		/* The very first probe: wait for it, a while. */
		kl_deadline(&until, (long)max_age_ms);
		if (pthread_mutex_clocklock(&st->probe_lock, CLOCK_MONOTONIC,
		    &until) != 0) {
			kl_fail(err, KL_STORE_FAILED, "first readiness probe "
			    "running for over %lld ms", max_age_ms);
			return STORE_HEALTH_SLOW;
		}
	}
	if (atomic_load(&st->probe_done) &&
	    now_ms - atomic_load(&st->probe_at) < max_age_ms) {
		h = (enum store_health)atomic_load(&st->probe_health);
		if (h != STORE_HEALTH_OK)
			kl_fail(err, KL_STORE_FAILED, "%s", st->probe_detail);
	} else {
		kl_error_clear(&perr);
		h = probe_write(st, &perr);
		snprintf(st->probe_detail, sizeof(st->probe_detail), "%s",
		    perr.detail);
		if (h != STORE_HEALTH_OK)
			kl_fail(err, KL_STORE_FAILED, "%s", perr.detail);
		atomic_store(&st->probe_health, (int)h);
		atomic_store(&st->probe_at, now_ms);
		atomic_store(&st->probe_done, true);
	}
	pthread_mutex_unlock(&st->probe_lock);
	return h;
}

int
store_probe_count(struct store *st, uint64_t *count, struct kl_error *err)
{
	DBT		key, data;
	unsigned char	buf[PROBE_RECORD_LEN];
	int		ret;

	*count = 0;
	if (!store_ready(st))
		return store_not_open(st, err);
	probe_key(&key);
	store_usermem(&data, buf, sizeof(buf));
	ret = store_get(st, st->probe, &key, &data);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0)
		return store_fail(st, ret, "probe count", err);
	if (data.size == PROBE_RECORD_LEN && buf[0] == PROBE_VERSION)
		*count = store_get_u64(buf + 8);
	return 0;
}
