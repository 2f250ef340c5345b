/*
 * store_session.h: sessions, the refresh families of our tokens.
 *
 * A login opens a session (a family): its id (sid, STORE_SID_LEN random
 * bytes, chosen by the caller) names it in our JWTs' sid claim, and its
 * first refresh token is recorded by its tag (a keyed hash the caller
 * computes with the token layer: the store never sees a token). A refresh
 * rotates the token: the presented one is marked rotated and its successor
 * recorded, in one transaction that reads the presented token's record
 * with a write lock, so concurrent refreshes of one token, in any process,
 * are decided one after the other and exactly one rotation is recorded.
 *
 * Databases of the store's environment (opened by store.c):
 *   sessions.db          sid -> family record
 *   sessions_by_user.db  secondary: user id -> sid (sorted duplicates)
 *   refresh.db           token tag -> token record
 *   refresh_by_sid.db    secondary: sid -> token tag (sorted duplicates)
 * Every function may be called from any thread of any process, except
 * store_session_sweep (one thread at a time: the maintenance thread).
 */
#ifndef KL_STORE_SESSION_H
#define KL_STORE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kl_error.h"
#include "kl_limits.h"
#include "store.h"

/* The lifetimes the store applies; set once before the threads start
 * (store_session_policy), defaults DEFAULT_REFRESH_*. */
struct store_session_policy {
	long	ttl;		/* a family's whole life, seconds */
	long	idle_ttl;	/* unused this long: expired */
	long	reuse_window;	/* a rotated token still gets its successor */
};

enum store_session_status {
	STORE_SESSION_ACTIVE = 1,
	STORE_SESSION_REVOKED = 2
};

/* Why a family was revoked (kept in the record, for logs and tools). */
enum store_session_reason {
	STORE_REVOKE_NONE = 0,
	STORE_REVOKE_LOGOUT = 1,	/* logout, or logout with all=1 */
	STORE_REVOKE_REUSE = 2,		/* a rotated token came back late */
	STORE_REVOKE_DELETED = 3,	/* the account was deleted */
	STORE_REVOKE_UNLINKED = 4,	/* Kakao's unlink callback */
	STORE_REVOKE_ADMIN = 5		/* kakao-login-admin (issue 11) */
};

/* A family as stored. */
struct store_session {
	unsigned char			sid[STORE_SID_LEN];
	enum store_session_status	status;
	enum store_session_reason	reason;
	uint64_t			user_id;
	int64_t				kakao_id;
	time_t				created;
	time_t				last_used;	/* login or last rotation */
	time_t				expires;	/* created + policy ttl */
	time_t				revoked_at;	/* 0 while active */
	uint32_t			generation;	/* rotations so far */
};

/* What a login opens: the sid and the first token's tag (keys[0]). */
struct store_session_new {
	unsigned char	sid[STORE_SID_LEN];
	unsigned char	tag[STORE_TAG_LEN];
};

void	store_session_policy(struct store *st,
	    const struct store_session_policy *p);

/* True when the family may refresh at now: active, before expires and
 * within idle_ttl of last_used. A record dated in the future (the clock
 * stepped back) counts as used now, but only from less than idle_ttl (and
 * created less than ttl) ahead: further ahead it is expired, so no date
 * makes a family immortal. */
bool	store_session_live(const struct store *st,
	    const struct store_session *s, time_t now);

/* Opens a session for an existing user in its own transaction (tools and
 * tests; a login opens its session inside the login's transaction, see
 * store_user_login). No user user_id with Kakao id kakao_id: KL_NOT_FOUND.
 * A sid or first tag already recorded is not overwritten: KL_STORE_FAILED.
 * Fills *out with the family as stored. */
int	store_session_open(struct store *st, const struct store_session_new *n,
	    uint64_t user_id, int64_t kakao_id, time_t now,
	    struct store_session *out, struct kl_error *err);

/* Reads a family by sid: 0, or -1 with KL_NOT_FOUND (absent, swept) or
 * KL_STORE_FAILED. No transaction, no lock held after it returns. */
int	store_session_get(struct store *st, const unsigned char sid[STORE_SID_LEN],
	    struct store_session *out, struct kl_error *err);

enum store_refresh_state {
	STORE_REFRESH_ROTATED = 1,	/* rotated now: successor recorded */
	STORE_REFRESH_REPEAT,		/* rotated within the window: same successor */
	STORE_REFRESH_REUSED,		/* rotated before the window: family revoked now */
	STORE_REFRESH_INVALID		/* unknown, or its family expired or revoked */
};

/* One refresh: the presented token's tag under each key (tags[0] under
 * keys[0], ...), and the tag of its successor derived under keys[0]. */
struct store_refresh_in {
	const unsigned char	(*tags)[STORE_TAG_LEN];
	int			 ntags;		/* 1 .. MAX_REFRESH_CANDIDATES */
	unsigned char		 successor[STORE_TAG_LEN];
	time_t			 now;
};

struct store_refresh_out {
	enum store_refresh_state state;
	int			 key;		/* which tags[] matched; -1: none */
	struct store_session	 session;	/* all but INVALID */
	/* REPEAT: the successor's tag as recorded at the rotation, which the
	 * caller compares with its own (a key rotated between the two). */
	unsigned char		 successor[STORE_TAG_LEN];
};

/*
 * One transaction: finds the first tags[i] recorded (DB_RMW), reads its
 * family (DB_RMW), and decides:
 *   token current, family live -> token marked rotated {now, successor},
 *     successor recorded current, family last_used = now, generation + 1:
 *     ROTATED;
 *   token rotated at most reuse_window ago (and not in the future by more
 *     than the window), family live -> REPEAT, nothing written;
 *   token rotated earlier, or further in the future than the window (a
 *     step back hides no reuse), family active (even if expired) ->
 *     family revoked (REUSE), every token of it useless: REUSED;
 *   anything else (unknown tag, family missing, revoked or expired, a
 *     current token that is not the family's newest) -> INVALID, nothing
 *     written.
 * REUSED and INVALID are answers, not failures: 0 is returned, and the
 * REUSED revocation is committed (durably) before it returns. -1 only for
 * KL_STORE_FAILED: a record that does not decode, bad input (ntags out of
 * range, a zero successor), or a successor tag that is already recorded
 * (the same parent rotated twice, which the lock forbids, or a collision):
 * nothing is overwritten, the whole transaction is undone and the token
 * stays current. out is INVALID, key -1, whenever -1 is returned.
 */
int	store_session_refresh(struct store *st, const struct store_refresh_in *in,
	    struct store_refresh_out *out, struct kl_error *err);

/* Logout: revokes the family sid if it belongs to user_id (one that does
 * not, or is absent, is KL_NOT_FOUND and untouched; one already revoked is
 * success). */
int	store_session_revoke(struct store *st,
	    const unsigned char sid[STORE_SID_LEN], uint64_t user_id,
	    enum store_session_reason reason, time_t now, struct kl_error *err);

/* Logout by the refresh cookie: revokes (reason logout) the family of
 * the first of tags[] (the token's tag under each key) that is recorded,
 * in any state: a rotated token still names its family. *user_id gets
 * the family's user when it was live and is revoked now, else 0 (already
 * revoked or expired: success, nothing written). None recorded, or its
 * family gone: KL_NOT_FOUND. */
int	store_session_revoke_refresh(struct store *st,
	    const unsigned char (*tags)[STORE_TAG_LEN], int ntags, time_t now,
	    uint64_t *user_id, struct kl_error *err);

/* Logout with all=1: revokes every active family of user_id (at most
 * MAX_USER_SESSIONS per transaction, transactions repeated until none is
 * left); *count gets how many were revoked. */
int	store_session_revoke_user(struct store *st, uint64_t user_id,
	    enum store_session_reason reason, time_t now, int *count,
	    struct kl_error *err);

/* Every family of user_id, oldest first, at most max into out; *n gets how
 * many. For tools and tests. */
int	store_session_list(struct store *st, uint64_t user_id,
	    struct store_session *out, int max, int *n, struct kl_error *err);

/*
 * Removes at most max families that are expired (past expires, or idle
 * past idle_ttl) or revoked more than SESSION_REVOKED_KEEP_S ago, with all
 * their token records; *removed gets how many families. Bounded like
 * store_code_sweep: one read-committed scan of at most SESSION_SWEEP_SCAN
 * families, resumed where the last call stopped, then one small
 * transaction deleting what it found (each checked again under its lock).
 * A family keeps every token it had (an old one coming back is a reuse):
 * one transaction deletes at most 2 * SESSION_SWEEP_BATCH token records,
 * and a family whose tokens do not all fit is finished by the next call,
 * its record deleted last. Token records whose family is gone, or that do
 * not decode, are removed by a second pass over refresh.db, bounded the
 * same way (SESSION_SWEEP_SCAN read, max removed).
 */
int	store_session_sweep(struct store *st, time_t now, int max,
	    int *removed, struct kl_error *err);

/* Record formats, exposed for tests and a fuzz target: fixed size,
 * big-endian, byte 0 the version. decode accepts every version up to the
 * current one (older ones are upgraded in memory, written back in the
 * current format by the next write; 1 is the first) and refuses later
 * ones, version 0, wrong lengths, unknown states, non-zero pads, and
 * non-canonical records, which encode refuses too: a family with user id
 * 0, an active one with a reason or revocation time, a revoked one without
 * a reason; a current token with a rotation time or successor, a rotated
 * one with a zero successor. encode writes exactly the record's length and
 * returns it, or -1. */
#define STORE_SESSION_RECORD_VERSION	1
#define STORE_SESSION_RECORD_LEN	(4 + 4 + STORE_SID_LEN + 6 * 8)
#define STORE_TOKEN_RECORD_VERSION	1
#define STORE_TOKEN_RECORD_LEN		(4 + 4 + STORE_SID_LEN + 3 * 8 + \
					 STORE_TAG_LEN)

enum store_token_state {
	STORE_TOKEN_CURRENT = 1,
	STORE_TOKEN_ROTATED = 2
};

struct store_token_record {
	enum store_token_state	 state;
	uint32_t		 generation;	/* the family's when issued */
	unsigned char		 sid[STORE_SID_LEN];
	time_t			 issued;
	time_t			 rotated;	/* 0 while CURRENT */
	time_t			 expires;	/* the family's, for the sweep */
	unsigned char		 successor[STORE_TAG_LEN];	/* zeros while CURRENT */
};

/* Layout: session: version, status, reason, pad, generation (4), sid,
 * user id, kakao id, created, last used, expires, revoked at. Token:
 * version, state, pad (2), generation (4), sid, issued, rotated, expires,
 * successor. The secondary indexes read the user id and the sid in place
 * (STORE_SESSION_USER_OFF, STORE_TOKEN_SID_OFF). */
#define STORE_SESSION_USER_OFF	(8 + STORE_SID_LEN)
#define STORE_TOKEN_SID_OFF	8

int	store_session_record_encode(const struct store_session *s,
	    unsigned char *buf, size_t size);
int	store_session_record_decode(const unsigned char *buf, size_t len,
	    struct store_session *s);
int	store_token_record_encode(const struct store_token_record *r,
	    unsigned char *buf, size_t size);
int	store_token_record_decode(const unsigned char *buf, size_t len,
	    struct store_token_record *r);

#endif
