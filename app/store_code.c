/*
 * store_code.c: code-exchange records in codes.db, so that a code posted
 * twice makes one Kakao call between every process of the service.
 *
 * Owns the record format and the claim / finish / abandon / sweep logic;
 * opening codes.db, the transaction runner and its gate stay in store.c
 * (store_internal.h). Keys are the caller's keyed hashes of the code and
 * values hold a keyed hash of the verifier: never a code or verifier, and
 * no tag in any error detail. A claim serializes with another claim of the
 * same code through its DB_RMW read, which also locks the place of a
 * missing key. Knows nothing of JSON, HTTP or Kakao.
 * Thread-safe like store.c (each call its own DBTs and transaction), except
 * store_code_sweep: one thread at a time (its resume point is in struct
 * store), which is the maintenance thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "store_code.h"
#include "store_forward.h"
#include "store_internal.h"

/* A sweep reads at most CODE_SWEEP_SCAN records (a bounded scan: live
 * records are skipped, and the next sweep resumes after the last one). */
#define OFF_AT		4
#define OFF_KAKAO	12
#define OFF_USER	20
#define OFF_VERIFIER	28

/* The canonical forms only: one record, one encoding (fuzz round trip). */
static bool
record_valid(const struct store_code_record *r)
{
	if (r->state != STORE_CODE_R_PENDING && r->state != STORE_CODE_R_DONE)
		return false;
	if (!r->has_verifier && !store_all_zero(r->verifier, STORE_TAG_LEN))
		return false;
	return r->state == STORE_CODE_R_DONE ||
	    (r->kakao_id == 0 && r->user_id == 0);
}

int
store_code_record_encode(const struct store_code_record *r,
    unsigned char *buf, size_t size)
{
	if (size < STORE_CODE_RECORD_LEN || !record_valid(r))
		return -1;
	buf[0] = STORE_CODE_RECORD_VERSION;
	buf[1] = (unsigned char)r->state;
	buf[2] = r->has_verifier ? 1 : 0;
	buf[3] = 0;
	store_put_u64(buf + OFF_AT, (uint64_t)(int64_t)r->at);
	store_put_u64(buf + OFF_KAKAO, (uint64_t)r->kakao_id);
	store_put_u64(buf + OFF_USER, r->user_id);
	memcpy(buf + OFF_VERIFIER, r->verifier, STORE_TAG_LEN);
	return STORE_CODE_RECORD_LEN;
}

int
store_code_record_decode(const unsigned char *buf, size_t len,
    struct store_code_record *r)
{
	memset(r, 0, sizeof(*r));
	if (len != STORE_CODE_RECORD_LEN ||
	    buf[0] != STORE_CODE_RECORD_VERSION || buf[2] > 1 || buf[3] != 0)
		return -1;
	r->state = buf[1];
	r->has_verifier = buf[2] == 1;
	r->at = (time_t)(int64_t)store_get_u64(buf + OFF_AT);
	r->kakao_id = (int64_t)store_get_u64(buf + OFF_KAKAO);
	r->user_id = store_get_u64(buf + OFF_USER);
	memcpy(r->verifier, buf + OFF_VERIFIER, STORE_TAG_LEN);
	if (!record_valid(r)) {
		memset(r, 0, sizeof(*r));
		return -1;
	}
	return 0;
}

/* DONE lives for the replay window, PENDING until it counts as abandoned.
 * A record from further in the future than that (the clock stepped back)
 * must not live for as long as the step: it is expired too. */
static bool
record_expired(const struct store_code_record *r, time_t now)
{
	int64_t	age = (int64_t)now - (int64_t)r->at;
	int64_t	life = r->state == STORE_CODE_R_DONE ? CODE_REPLAY_WINDOW_S :
		    CODE_PENDING_MAX_S;

	return age >= life || age <= -life;
}

/* Both present and equal; a side without PKCE matches nothing. */
static bool
verifier_matches(const struct store_code_record *r, const unsigned char *v)
{
	return v != NULL && r->has_verifier &&
	    CRYPTO_memcmp(r->verifier, v, STORE_TAG_LEN) == 0;
}

static void
tag_key(DBT *key, const unsigned char tag[STORE_TAG_LEN])
{
	memset(key, 0, sizeof(*key));
	key->data = (void *)(uintptr_t)tag;	/* read only: get, put, del */
	key->size = STORE_TAG_LEN;
}

/*
 * Reads the record under a write lock into *r. Returns 0, DB_NOTFOUND,
 * STORE_BAD_RECORD (wrong size or does not decode) or another Berkeley DB
 * error.
 */
static int
record_get_rmw(struct store *st, DB_TXN *txn, DBT *key,
    struct store_code_record *r)
{
	DBT		data;
	unsigned char	buf[STORE_CODE_RECORD_LEN];
	int		ret;

	memset(&data, 0, sizeof(data));
	data.data = buf;
	data.ulen = sizeof(buf);
	data.flags = DB_DBT_USERMEM;
	ret = st->codes->get(st->codes, txn, key, &data, DB_RMW);
	if (ret == DB_BUFFER_SMALL)
		return STORE_BAD_RECORD;
	if (ret != 0)
		return ret;
	if (store_code_record_decode(buf, data.size, r) == -1)
		return STORE_BAD_RECORD;
	return 0;
}

static int
record_put(struct store *st, DB_TXN *txn, DBT *key,
    const struct store_code_record *r)
{
	DBT		data;
	unsigned char	buf[STORE_CODE_RECORD_LEN];

	if (store_code_record_encode(r, buf, sizeof(buf)) == -1)
		return STORE_BAD_RECORD;
	memset(&data, 0, sizeof(data));
	data.data = buf;
	data.size = sizeof(buf);
	return st->codes->put(st->codes, txn, key, &data, 0);
}

/* ---- claim ---- */

struct claim_arg {
	const unsigned char		*tag;
	const unsigned char		*verifier;	/* NULL: no PKCE */
	time_t				 now;
	struct store_code_outcome	*out;
};

static int
claim_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct claim_arg		*a = arg;
	struct store_code_record	 r;
	DBT				 key;
	int				 ret;

	memset(a->out, 0, sizeof(*a->out));
	tag_key(&key, a->tag);
	ret = record_get_rmw(st, txn, &key, &r);
	if (ret == 0 && !record_expired(&r, a->now)) {
		if (!verifier_matches(&r, a->verifier))
			a->out->state = STORE_CODE_REFUSED;
		else if (r.state == STORE_CODE_R_PENDING)
			a->out->state = STORE_CODE_PENDING;
		else {
			a->out->state = STORE_CODE_DONE;
			a->out->kakao_id = r.kakao_id;
			a->out->user_id = r.user_id;
		}
		return 0;
	}
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	memset(&r, 0, sizeof(r));
	r.state = STORE_CODE_R_PENDING;
	r.at = a->now;
	if ((r.has_verifier = a->verifier != NULL))
		memcpy(r.verifier, a->verifier, STORE_TAG_LEN);
	*wrote = true;
	if ((ret = record_put(st, txn, &key, &r)) == 0) {
		a->out->state = STORE_CODE_CLAIMED;
		a->out->claimed_at = r.at;
		a->out->has_verifier = r.has_verifier;
		memcpy(a->out->verifier, r.verifier, STORE_TAG_LEN);
	}
	return ret;
}

/* True when r is still the PENDING record claim wrote: the same time and
 * verifier. A claim taken over after CODE_PENDING_MAX_S by another
 * request (another verifier, a later time) is not the caller's any more:
 * finishing it would hand the caller's user to the other verifier. */
static bool
claim_is_mine(const struct store_code_record *r,
    const struct store_code_outcome *claim)
{
	if (claim == NULL)
		return true;
	return r->state == STORE_CODE_R_PENDING && r->at == claim->claimed_at &&
	    r->has_verifier == claim->has_verifier &&
	    CRYPTO_memcmp(r->verifier, claim->verifier, STORE_TAG_LEN) == 0;
}

/* The one translation of a runner's result for this file's calls. */
static int
code_result(struct store *st, int ret, const char *what,
    struct kl_error *err)
{
	if (ret == 0)
		return 0;
	if (ret == STORE_BAD_RECORD)
		return kl_fail(err, KL_STORE_FAILED, "%s: code record does "
		    "not encode or decode", what);
	if (ret == DB_NOTFOUND)
		return kl_fail(err, KL_NOT_FOUND, "%s: no code record", what);
	return store_fail(st, ret, what, err);
}

int
store_code_claim(struct store *st, const unsigned char tag[STORE_TAG_LEN],
    const unsigned char *verifier_tag, time_t now,
    struct store_code_outcome *out, struct kl_error *err)
{
	struct claim_arg	a = { tag, verifier_tag, now, out };
	enum store_write	where;

	memset(out, 0, sizeof(*out));
	if (!store_ready(st))
		return store_not_open(st, err);
	if ((where = store_write_where(st, err)) != STORE_WRITE_HERE)
		return where == STORE_WRITE_FORWARD ?
		    store_forward_code_claim(st, tag, verifier_tag, now, out,
		    err) : -1;
	return code_result(st, store_txn_run(st, 0, true, claim_attempt, &a),
	    "code claim", err);
}

/* ---- finish, abandon ---- */

struct finish_arg {
	const unsigned char		*tag;
	const struct store_code_outcome	*claim;
	int64_t			 kakao_id;
	uint64_t		 user_id;
	time_t			 now;
};

static int
finish_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct finish_arg		*a = arg;
	struct store_code_record	 r;
	DBT				 key;
	int				 ret;

	tag_key(&key, a->tag);
	if ((ret = record_get_rmw(st, txn, &key, &r)) != 0)
		return ret;
	if (!claim_is_mine(&r, a->claim))
		return DB_NOTFOUND;
	r.state = STORE_CODE_R_DONE;
	r.at = a->now;
	r.kakao_id = a->kakao_id;
	r.user_id = a->user_id;
	*wrote = true;
	return record_put(st, txn, &key, &r);
}

int
store_code_finish(struct store *st, const unsigned char tag[STORE_TAG_LEN],
    const struct store_code_outcome *claim, int64_t kakao_id,
    uint64_t user_id, time_t now, struct kl_error *err)
{
	struct finish_arg	a = { tag, claim, kakao_id, user_id, now };
	enum store_write	where;

	if (kakao_id <= 0 || user_id == 0)
		return kl_fail(err, KL_STORE_FAILED, "code finish: bad ids");
	if (!store_ready(st))
		return store_not_open(st, err);
	if ((where = store_write_where(st, err)) != STORE_WRITE_HERE)
		return where == STORE_WRITE_FORWARD ?
		    store_forward_code_finish(st, tag, claim, kakao_id, user_id,
		    now, err) : -1;
	return code_result(st, store_txn_run(st, 0, true, finish_attempt, &a),
	    "code finish", err);
}

struct abandon_arg {
	const unsigned char		*tag;
	const struct store_code_outcome	*claim;
};

static int
abandon_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct abandon_arg		*a = arg;
	struct store_code_record	 r;
	DBT				 key;
	int				 ret;

	tag_key(&key, a->tag);
	ret = record_get_rmw(st, txn, &key, &r);
	if (ret == DB_NOTFOUND || (ret == 0 && (r.state == STORE_CODE_R_DONE ||
	    !claim_is_mine(&r, a->claim))))
		return 0;
	if (ret != 0 && ret != STORE_BAD_RECORD)
		return ret;
	*wrote = true;
	return st->codes->del(st->codes, txn, &key, 0);
}

int
store_code_abandon(struct store *st, const unsigned char tag[STORE_TAG_LEN],
    const struct store_code_outcome *claim, struct kl_error *err)
{
	struct abandon_arg	a = { tag, claim };
	enum store_write	where;

	if (!store_ready(st))
		return store_not_open(st, err);
	if ((where = store_write_where(st, err)) != STORE_WRITE_HERE)
		return where == STORE_WRITE_FORWARD ?
		    store_forward_code_abandon(st, tag, claim, err) : -1;
	return code_result(st, store_txn_run(st, 0, true, abandon_attempt,
	    &a), "code abandon", err);
}

/* ---- sweep ---- */

struct sweep_arg {
	time_t		  now;
	int		  max;
	unsigned char	(*keys)[STORE_TAG_LEN];	/* max of them */
	int		  n;		/* collected, or removed */
	bool		  at_end;	/* the scan reached the last record */
	bool		  have_last;
	unsigned char	  last[STORE_TAG_LEN];	/* the last key read */
};

/* Expired, or not a record of ours at all (wrong size, does not decode). */
static bool
sweepable(const DBT *data, time_t now)
{
	struct store_code_record	r;

	if (store_code_record_decode(data->data, data->size, &r) == -1)
		return true;
	return record_expired(&r, now);
}

/*
 * Phase one, read committed: each read lock goes as the cursor moves on,
 * so a login waits at most for one page. Starts at the resume point (the
 * first key at or after it), reads at most CODE_SWEEP_SCAN records.
 */
static int
sweep_scan(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct sweep_arg	*a = arg;
	DBC			*c = NULL;
	DBT			 key, data;
	u_int32_t		 op = DB_FIRST;
	int			 ret, scanned;

	(void)wrote;
	a->n = 0;
	a->at_end = a->have_last = false;
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.flags = data.flags = DB_DBT_REALLOC;
	if (st->sweep_resume) {
		if ((key.data = malloc(STORE_TAG_LEN)) == NULL)
			return ENOMEM;
		memcpy(key.data, st->sweep_from, STORE_TAG_LEN);
		key.size = STORE_TAG_LEN;
		op = DB_SET_RANGE;
	}
	if ((ret = st->codes->cursor(st->codes, txn, &c, 0)) != 0)
		goto out;
	for (scanned = 0; scanned < CODE_SWEEP_SCAN && a->n < a->max;
	    scanned++, op = DB_NEXT) {
		if ((ret = c->get(c, &key, &data, op)) != 0)
			break;
		/* Keys of another size are not ours: nothing writes them. */
		if (key.size != STORE_TAG_LEN)
			continue;
		memcpy(a->last, key.data, STORE_TAG_LEN);
		a->have_last = true;
		if (sweepable(&data, a->now))
			memcpy(a->keys[a->n++], key.data, STORE_TAG_LEN);
	}
	if (ret == DB_NOTFOUND) {
		a->at_end = true;
		ret = 0;
	}
out:
	if (c != NULL) {
		int cret = c->close(c);

		if (ret == 0)
			ret = cret;
	}
	free(key.data);
	free(data.data);
	return ret;
}

/* Phase two: each record found is checked again under its write lock (a
 * claim may have renewed it meanwhile), then deleted. */
static int
sweep_delete(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct sweep_arg	*a = arg;
	DBT			 key, data;
	unsigned char		 buf[STORE_CODE_RECORD_LEN];
	int			 i, ret, removed = 0;

	for (i = 0; i < a->n; i++) {
		tag_key(&key, a->keys[i]);
		memset(&data, 0, sizeof(data));
		data.data = buf;
		data.ulen = sizeof(buf);
		data.flags = DB_DBT_USERMEM;
		ret = st->codes->get(st->codes, txn, &key, &data, DB_RMW);
		if (ret == DB_NOTFOUND)
			continue;
		if (ret == DB_BUFFER_SMALL)
			data.size = 0;	/* too long: not ours */
		else if (ret != 0)
			return ret;
		if (!sweepable(&data, a->now))
			continue;
		*wrote = true;
		if ((ret = st->codes->del(st->codes, txn, &key, 0)) != 0)
			return ret;
		removed++;
	}
	a->n = removed;
	return 0;
}

int
store_code_sweep(struct store *st, time_t now, int max, int *removed,
    struct kl_error *err)
{
	struct sweep_arg	a = { .now = now, .max = max };
	int			ret;

	*removed = 0;
	if (!store_ready(st))
		return store_not_open(st, err);
	if (max <= 0)
		return 0;
	if ((a.keys = calloc((size_t)max, STORE_TAG_LEN)) == NULL)
		return kl_fail(err, KL_STORE_FAILED, "code sweep: out of "
		    "memory");
	ret = store_txn_run(st, DB_READ_COMMITTED, false, sweep_scan, &a);
	if (ret == 0) {
		/* Resume after the last record read; from the start once the
		 * scan reached the end. */
		st->sweep_resume = !a.at_end && a.have_last;
		if (st->sweep_resume)
			memcpy(st->sweep_from, a.last, STORE_TAG_LEN);
		if (a.n > 0)
			ret = store_txn_run(st, 0, false, sweep_delete, &a);
		else
			a.n = 0;
	}
	free(a.keys);
	if (ret != 0)
		return code_result(st, ret, "code sweep", err);
	*removed = a.n;
	return 0;
}
