/*
 * store_internal.h: what the store's own files (app/store*.c) share and
 * nobody else may see: the struct store, the big-endian helpers, and the
 * one transaction runner (gate, retries, group commit, stuck-call watch).
 *
 * Included only by app/store*.c: every other layer knows the store through
 * include/store.h and never touches a Berkeley DB handle. Thread-safety is
 * that of struct store (see the fields); the helpers keep no state.
 */
#ifndef KL_STORE_INTERNAL_H
#define KL_STORE_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <db.h>

#include "store.h"
#include "store_mark.h"
#include "store_session.h"

/* An attempt's own failure: a record that does not encode or decode.
 * Outside Berkeley DB's error range (-30999 .. -30800) and errno's
 * (positive), so a real EINVAL from Berkeley DB stays what it is. */
#define STORE_BAD_RECORD	(-29999)
/* The id mark could not be raised (st->mark_err says why): no new id. */
#define STORE_MARK_FAILED	(-29998)
/* A first login's transaction found no marked user id: it ends, and one
 * is taken outside it (app/store.c). */
#define STORE_NEED_IDS		(-29997)
/* A login attempt's refusal: the user is deactivated (nothing written). */
#define STORE_USER_REFUSED	(-29996)
/* Replication (app/store_repl.c): a write on a site that is not the
 * master; a commit the group did not acknowledge. */
#define STORE_NOT_MASTER	(-29995)
#define STORE_NOT_DURABLE	(-29994)

struct store {
	char			 home[MAX_CONFIG_PATH];
	enum config_durability	 durability;
	bool			 sync;	/* flush the log before a write returns */
	bool			 join;	/* a tool: no recovery, no creation */
	/* A site of a replication group (store_repl.c): no id mark, ids
	 * taken inside the login's transaction; the role the engine last
	 * reported and when (kl_mono_ms; 0: read it again). */
	bool			 repl;
	atomic_int		 role;
	atomic_llong		 role_at;
	/* A replica's channel to the master (store_forward.c), opened at
	 * the first forwarded write under fwd_lock. */
	pthread_mutex_t		 fwd_lock;
	DB_CHANNEL		*fwd_chan;
	/* Channels replaced after their connection broke, closed with the
	 * environment (threads may still be sending on them). */
	DB_CHANNEL		*fwd_old[STORE_FWD_OLD_CHANNELS];
	int			 fwd_nold;
	/* A restore or init (app/store_backup.c): a new environment despite
	 * a mark that says ids were handed out. */
	bool			 allow_new;
	/* The id mark (store_mark.h; not a joined store's), and the block of
	 * ids this process hands out: id_next .. id_end, taken from the
	 * sequence STORE_SEQ_CACHE at a time; none is used before the mark
	 * covers id_end (id_unmarked clear). All under id_lock. */
	struct store_mark	 mark;
	pthread_mutex_t		 id_lock;
	int64_t			 id_next, id_end;
	bool			 id_unmarked;
	char			 mark_err[MAX_ERROR_DETAIL];
	/* Opened by store_new() or, later, by store_maintain(); workers
	 * touch them only once ready is set, and nothing closes them while
	 * the process serves: a broken environment means a restart. */
	DB_ENV			*env;
	DB			*users;
	DB			*users_by_id;
	DB			*users_by_id_raw;	/* a tool's: not associated */
	DB			*seqdb;
	DB			*codes;
	DB			*sessions;	/* sid -> family */
	DB			*sessions_by_user;	/* secondary */
	DB			*refresh;	/* token tag -> token */
	DB			*refresh_by_sid;	/* secondary */
	DB			*unlinkq;	/* kakao id -> queued unlink */
	DB			*retired;	/* user id -> deletion */
	DB			*probe;		/* readiness probe (store_probe.c) */
	DB_SEQUENCE		*seq;
	/* Set before the threads start (store_session_policy), then
	 * read-only. */
	struct store_session_policy policy;
	atomic_bool		 ready;
	long long		 next_open;	/* kl_mono_ms(); store_maintain()'s thread only */
	long long		 next_sweep;	/* store_maintain()'s thread only */
	long long		 next_trim;	/* store_maintain()'s thread only */
	/* Where the next code sweep starts: store_code_sweep()'s caller
	 * only (one thread at a time). */
	bool			 sweep_resume;
	unsigned char		 sweep_from[STORE_TAG_LEN];
	/* The same for store_session_sweep(): families, then tokens. */
	bool			 session_sweep_resume;
	unsigned char		 session_sweep_from[STORE_SID_LEN];
	bool			 token_sweep_resume;
	unsigned char		 token_sweep_from[STORE_TAG_LEN];
	sem_t			 gate;	/* transactions in flight, this process */
	atomic_bool		 needs_restart;
	/* store_probe()'s cache: one probe at a time under probe_lock, the
	 * last result (and when, on the caller's ms clock) readable without
	 * it; the detail only under it. */
	pthread_mutex_t		 probe_lock;
	atomic_bool		 probe_done;
	atomic_int		 probe_health;
	atomic_llong		 probe_at;
	char			 probe_detail[MAX_ERROR_DETAIL];
	/* The stuck-call watch: per thread inside Berkeley DB, when its
	 * outermost call began (kl_mono_ms; 0: a free slot). */
	atomic_llong		 busy_since[STORE_BUSY_SLOTS];
};

/* store_repl.c, for the store's own files. */
bool		store_repl_on(void);
u_int32_t	store_repl_env_flags(void);
/* Before env->open: sites, policy, time-outs, the event callback. */
int		store_repl_env_setup(struct store *st, struct kl_error *err);
/* After env->open: repmgr_start (this process the replication process
 * or a subordinate). */
int		store_repl_start(struct store *st, struct kl_error *err);
/* A no-op write's record that makes its commit wait for the group. */
int		store_repl_ack_mark(struct store *st, DB_TXN *txn, bool *wrote);
/* Around a commit: clear, then ask whether the group acknowledged it. */
void		store_repl_commit_begin(void);
bool		store_repl_commit_failed(void);
/* The end of this site's log (kakao-login-admin group, and the
 * master's answer to a position request). */
int		store_log_end(struct store *st, uint32_t *file,
		    uint32_t *offset, struct kl_error *err);
/* How long a replica waits for the master's reply to a forward. */
long		store_forward_timeout_ms(void);
/* Just before a commit that wrote (store_txn_run): inside a forwarded
 * write, has the commit fill the token its reply carries. */
void		store_forward_commit_token(DB_TXN *txn);
/* TCP_NODELAY on repmgr's sockets (store_maintain, every tick). */
void		store_repl_nodelay(struct store *st);
/* A group's site removes the log files its recovery no longer needs
 * but the newest REPL_LOG_KEEP_FILES of them (store_maintain; a single
 * site has 5.3 remove them itself). Returns 0 or a Berkeley DB error. */
int		store_repl_log_trim(struct store *st);
/* A write's Berkeley DB error as STORE_NOT_MASTER where a replica's. */
int		store_repl_map(struct store *st, int ret);

static inline void
store_put_u64(unsigned char *p, uint64_t v)
{
	int	i;

	for (i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static inline uint64_t
store_get_u64(const unsigned char *p)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* True when all n bytes are zero (a tag or pad that is not there). */
static inline bool
store_all_zero(const unsigned char *p, size_t n)
{
	unsigned char	acc = 0;

	while (n-- > 0)
		acc |= *p++;
	return acc == 0;
}

/* A DBT keyed by the 8 big-endian bytes of v, written into kbuf (Kakao
 * ids, user ids): for get, put and del, not for cursors. */
static inline void
store_key8(DBT *key, unsigned char kbuf[8], uint64_t v)
{
	store_put_u64(kbuf, v);
	memset(key, 0, sizeof(*key));
	key->data = kbuf;
	key->size = 8;
}

/* A DBT that reads into buf (size bytes), which the caller owns. */
static inline void
store_usermem(DBT *data, unsigned char *buf, size_t size)
{
	memset(data, 0, sizeof(*data));
	data->data = buf;
	data->ulen = (u_int32_t)size;
	data->flags = DB_DBT_USERMEM;
}

/*
 * One attempt of a transaction: reads and writes under txn and returns 0
 * to commit it, or a Berkeley DB error (or STORE_BAD_RECORD) to abort it.
 * Sets *wrote when it wrote something (only then is the commit flushed).
 * It may run again after a deadlock: it must reset what it fills.
 */
typedef int (*store_txn_fn)(struct store *st, DB_TXN *txn, void *arg,
    bool *wrote);

/*
 * Runs fn in a transaction begun with begin_flags, inside the process's
 * gate and the stuck-call watch, retrying deadlocks and lock time-outs up
 * to STORE_MAX_RETRIES times. durable: the commit follows db_durability
 * (with sync, a group commit after the gate); otherwise it is not flushed.
 * Returns 0 or the last Berkeley DB error (or fn's STORE_BAD_RECORD); the
 * caller turns it into a kl_error with store_fail(). The store must be
 * ready.
 */
int	store_txn_run(struct store *st, u_int32_t begin_flags, bool durable,
	    store_txn_fn fn, void *arg);

/*
 * Inside another file's transaction (store_session.c provides them):
 * session_txn_open writes a new family and its first token record (the
 * login's transaction); session_txn_revoke_user revokes at most max active
 * families of user_id (deletion, unlink), *count gets how many, *more
 * whether some are left. Both return 0 or a Berkeley DB error (or
 * STORE_BAD_RECORD) and set *wrote when they wrote.
 */
int	session_txn_open(struct store *st, DB_TXN *txn,
	    const struct store_session_new *n, uint64_t user_id,
	    int64_t kakao_id, time_t now, bool *wrote);
int	session_txn_revoke_user(struct store *st, DB_TXN *txn,
	    uint64_t user_id, enum store_session_reason reason, time_t now,
	    int max, int *count, bool *more, bool *wrote);

/* Inside txn (store_account.c): the record of user_id through the
 * users_by_id index under a write lock, the order of a deletion: its Kakao
 * id key into pbuf, the record's bytes into buf (*len of them) and decoded
 * into *u. 0, DB_NOTFOUND, STORE_BAD_RECORD or a Berkeley DB error. */
int	store_user_by_id_rmw(struct store *st, DB_TXN *txn, uint64_t user_id,
	    unsigned char pbuf[8], unsigned char *buf, size_t size,
	    struct store_user *u, u_int32_t *len);

/* A read outside any transaction (db->get with NULL txn), inside the
 * stuck-call watch, retried like a transaction when the deadlock detector
 * chose it (a writer's locks on the same pages): returns the get's result. */
int	store_get(struct store *st, DB *db, DBT *key, DBT *data);

/* Translates a Berkeley DB error into KL_STORE_FAILED ("what: why"), and
 * marks the process for a restart when its handles are now useless. */
int	store_fail(struct store *st, int ret, const char *what,
	    struct kl_error *err);

/* The watchdog's view (store_stuck): every call into Berkeley DB is
 * bracketed by these, which keep when this thread's outermost call began
 * in a slot of its own. They nest; a thread uses one store at a time. */
void	store_busy_enter(struct store *st);
void	store_busy_leave(struct store *st);

/*
 * A restore's or init's open (app/store_backup.c): the environment in home
 * is created if missing despite the mark, and the sequence moves past the
 * mark, whose exclusive lock the caller holds
 * on held's file (which stays the caller's to close).
 */
int	store_open_restored(struct store **out, const char *home,
	    enum config_durability durability, const struct store_mark *held,
	    struct kl_error *err);

#endif
