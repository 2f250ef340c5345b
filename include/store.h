/*
 * store.h: the user store, on a transactional Berkeley DB 5.3 environment
 * shared by every process of the service.
 *
 * One struct store per process, opened before the threads start and closed
 * after they stop; all its functions may be called from any thread. The
 * code-exchange records of the same environment are in store_code.h.
 */
#ifndef KL_STORE_H
#define KL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "kl_error.h"
#include "kl_limits.h"

enum store_user_status {
	STORE_USER_ACTIVE = 0,
	STORE_USER_UNLINKED = 1,
	/* kakao-login-admin users deactivate: logins refused
	 * (KL_USER_DEACTIVATED), sessions revoked; only the tool undoes it. */
	STORE_USER_DEACTIVATED = 2
};

struct store_user {
	uint64_t		 user_id;	/* ours; never reused */
	int64_t			 kakao_id;	/* Kakao's, per app */
	char			 nickname[MAX_NICKNAME + 1];	/* "": none */
	char			 email[MAX_EMAIL + 1];		/* "": none */
	bool			 email_verified;
	char			 profile_image[MAX_PROFILE_IMAGE + 1];
	enum store_user_status	 status;
	time_t			 created, updated, last_login;
	uint64_t		 login_count;
};

/* What a login learned about the user from Kakao. It replaces what the
 * record held: NULL means Kakao did not return the field (no consent, or
 * consent withdrawn), and the stored field is cleared. */
struct store_login {
	int64_t		 kakao_id;
	const char	*nickname;	/* NULL: none */
	const char	*email;		/* NULL: none, and not verified */
	bool		 email_verified;
	const char	*profile_image;	/* NULL: none */
};

struct store;

/* Makes the store for home and tries to open (creating if needed) the
 * environment and the databases. Fails only when out of memory: if the
 * environment cannot be opened yet, err says why, store_ready() is false,
 * calls fail with KL_STORE_FAILED, and store_maintain() keeps trying.
 * *out is owned by the caller and freed by store_close(). */
int	store_new(struct store **out, const char *home,
	    enum config_durability durability, struct kl_error *err);

/* store_new() that also fails when the environment does not open (tools,
 * tests). */
int	store_open(struct store **out, const char *home,
	    enum config_durability durability, struct kl_error *err);

/* Joins the environment a running service (or none) keeps at home, for a
 * tool: never runs recovery and creates nothing, so the workers notice
 * nothing; fails when home holds no environment, or one that needs
 * recovery (the service's next start runs it). Registered like a worker:
 * a tool killed half-way is recovered as a dead worker is. store_maintain()
 * is not for a joined store. *out is freed by store_close(). */
int	store_join(struct store **out, const char *home,
	    enum config_durability durability, struct kl_error *err);

/* Closes the databases and the environment; only once no thread uses the
 * store any more. Accepts NULL. */
void	store_close(struct store *st);

/* True once the environment is open. */
bool	store_ready(const struct store *st);
/* How long a store call may be in flight before the process calls it
 * stuck and restarts: STORE_STUCK_MS, longer for a site of a replication
 * group (kl_limits.h: REPL_QUEUE_BLOCKS). */
long	store_stuck_limit_ms(void);
/* The failure of a call on a store not open (yet): "store not open",
 * KL_STORE_FAILED (500) for a single site, as always; KL_NOT_READY (503)
 * for a site of a replication group, whose front tries another site.
 * Returns -1. */
int	store_not_open(const struct store *st, struct kl_error *err);

/* Creates the user on a first login or updates it, counting the login, in
 * one transaction. Fills *user with the record as stored. A deactivated
 * user is refused (KL_USER_DEACTIVATED) and nothing is written. */
int	store_user_login(struct store *st, const struct store_login *in,
	    time_t now, struct store_user *user, struct kl_error *err);

/* The same, also opening the session (store_session.h) in the login's
 * transaction: a login is one commit. session NULL: none. */
struct store_session_new;
int	store_user_login_session(struct store *st, const struct store_login *in,
	    time_t now, const struct store_session_new *session,
	    struct store_user *user, struct kl_error *err);

/* Looks a user up by Kakao id. Returns 0 when found, -1 with KL_NOT_FOUND
 * when absent, -1 with KL_STORE_FAILED on trouble. */
int	store_user_get(struct store *st, int64_t kakao_id,
	    struct store_user *user, struct kl_error *err);

/* Looks a user up by our user id (the users_by_id index); the same
 * results as store_user_get. */
int	store_user_get_by_id(struct store *st, uint64_t user_id,
	    struct store_user *user, struct kl_error *err);

/* The user ids the sequence has handed out to processes (the metrics'
 * users gauge): one read of the sequence's record, no scan. Every user has
 * one of them; each process reserves STORE_SEQ_CACHE at a time and loses
 * the unused ones when it stops, and deleted users' ids stay counted. */
int	store_user_ids_reserved(struct store *st, uint64_t *n,
	    struct kl_error *err);

/*
 * The end of an account (app/store_account.c).
 *
 * store_user_delete: in one transaction, removes the record of user_id (its
 * personal data, and the Kakao id's link to it: a later login of that Kakao
 * id is a new user), records the id as retired (the sequence never hands
 * it out again), revokes its sessions (at most MAX_USER_SESSIONS; *more
 * says some are left, for store_session_revoke_user) and queues an unlink
 * of its Kakao id, first due first_retry_s from now (the caller tries at
 * once). *was gets the record as it was. KL_NOT_FOUND: no such user.
 *
 * store_user_unlink: Kakao's notice that kakao_id unlinked our app: its
 * user becomes unlinked, loses nickname, e-mail and image, and its
 * sessions are revoked; its user id stays (a later login is active again
 * with it). *known is false, and nothing written, for a Kakao id we do not
 * know. A repeat changes nothing but revoking sessions opened since.
 */
int	store_user_delete(struct store *st, uint64_t user_id, time_t now,
	    long first_retry_s, struct store_user *was, bool *more,
	    struct kl_error *err);
int	store_user_unlink(struct store *st, int64_t kakao_id, time_t now,
	    bool *known, uint64_t *user_id, bool *more, struct kl_error *err);

/* A queued unlink owed to Kakao. */
struct store_unlink_job {
	int64_t		kakao_id;
	uint64_t	user_id;	/* the deleted account's, for the log */
	time_t		queued, next_try;
	uint32_t	attempts;	/* tries taken so far */
};

/* Takes the first due job (next_try reached, or absurdly far ahead after
 * the clock stepped back) of at most 256 read, counts the attempt and
 * pushes next_try back (first_retry_s doubled per attempt, at most
 * UNLINK_MAX_RETRY_S) in the same transaction, so a process that dies while
 * sending leaves the job for a later try. KL_NOT_FOUND: none due. */
int	store_unlink_next(struct store *st, time_t now, long first_retry_s,
	    struct store_unlink_job *job, struct kl_error *err);
/* The unlink was sent (or Kakao no longer links the user): job gone. */
int	store_unlink_done(struct store *st, int64_t kakao_id,
	    struct kl_error *err);
/* Tools and tests: a queued job, and when a retired id was deleted. */
int	store_unlink_get(struct store *st, int64_t kakao_id,
	    struct store_unlink_job *job, struct kl_error *err);
int	store_retired_get(struct store *st, uint64_t user_id, time_t *deleted,
	    struct kl_error *err);
/* The queue's record format (fuzz target, tests). */
int	store_unlink_record_encode(const struct store_unlink_job *j,
	    unsigned char *buf, size_t size);
int	store_unlink_record_decode(int64_t kakao_id, const unsigned char *buf,
	    size_t len, struct store_unlink_job *j);

/* Called a few times a second by one thread: opens the environment if it
 * is not open yet (tries STORE_OPEN_RETRY_MS apart, STORE_DBS_RETRY_MS
 * where only the databases are missing), expires lock waits that timed
 * out, checkpoints (so old log files can go), and at most once a second
 * removes a batch of expired code records (store_code_sweep). It is also
 * how an idle process notices that another one ran recovery. Returns -1 on
 * failure, 0 between the tries of an open that failed. */
int	store_maintain(struct store *st, struct kl_error *err);

/* True once this process's handles are useless (another process ran
 * recovery, the environment panicked, the disk refuses writes): the
 * process must restart, and its successor reopens the environment. */
bool	store_needs_restart(const struct store *st);

/* True when a call has been inside Berkeley DB for more than limit_ms
 * milliseconds: a thread waits on something a dead process held, which only a
 * restart (and recovery) can release. */
bool	store_stuck(const struct store *st, long limit_ms);

/* Record encoding, exposed for tests and the fuzz target. encode returns
 * the length written (at most STORE_RECORD_MAX) or -1. */
#define STORE_RECORD_MAX	(52 + 3 * 2 + MAX_NICKNAME + MAX_EMAIL + \
				 MAX_PROFILE_IMAGE)
int	store_record_encode(const struct store_user *u, unsigned char *buf,
	    size_t size);
int	store_record_decode(const unsigned char *buf, size_t len,
	    struct store_user *u);

#endif
