/*
 * store_forward.h: a replica's writes, sent to the master over a repmgr
 * message channel and answered from its reply (app/store_forward.c).
 *
 * Included only by app/store*.c. Each public write function of the store
 * begins with store_write_where(): HERE (a single site, the master, a tool,
 * or a write the master runs for a replica), FORWARD (a replica: the
 * matching store_forward_<op> sends it, with the same arguments and
 * results as the function itself) or REFUSED (no master known; err says
 * KL_NO_MASTER). A forward that fails on the way is KL_NO_MASTER when no
 * master could be reached, KL_NOT_DURABLE when the master did not answer
 * in time (it may have done the write: the caller answers 503, and a retry
 * of a login or refresh is safe). Thread-safe.
 */
#ifndef KL_STORE_FORWARD_H
#define KL_STORE_FORWARD_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <db.h>

#include "kl_error.h"
#include "store.h"
#include "store_code.h"
#include "store_session.h"

enum store_write {
	STORE_WRITE_HERE = 0,
	STORE_WRITE_FORWARD,
	STORE_WRITE_REFUSED
};

enum store_write store_write_where(struct store *st, struct kl_error *err);

int	store_forward_login(struct store *st, const struct store_login *in,
	    time_t now, const struct store_session_new *session,
	    struct store_user *user, struct kl_error *err);
int	store_forward_refresh(struct store *st,
	    const struct store_refresh_in *in, struct store_refresh_out *out,
	    struct kl_error *err);
int	store_forward_revoke(struct store *st,
	    const unsigned char sid[STORE_SID_LEN], uint64_t user_id,
	    enum store_session_reason reason, time_t now,
	    struct kl_error *err);
int	store_forward_revoke_refresh(struct store *st,
	    const unsigned char (*tags)[STORE_TAG_LEN], int ntags, time_t now,
	    uint64_t *user_id, struct kl_error *err);
int	store_forward_revoke_user(struct store *st, uint64_t user_id,
	    enum store_session_reason reason, time_t now, int *count,
	    struct kl_error *err);
int	store_forward_delete(struct store *st, uint64_t user_id, time_t now,
	    long first_retry_s, struct store_user *was, bool *more,
	    struct kl_error *err);
int	store_forward_unlink(struct store *st, int64_t kakao_id, time_t now,
	    bool *known, uint64_t *user_id, bool *more, struct kl_error *err);
int	store_forward_unlink_done(struct store *st, int64_t kakao_id,
	    struct kl_error *err);
int	store_forward_code_claim(struct store *st,
	    const unsigned char tag[STORE_TAG_LEN],
	    const unsigned char *verifier_tag, time_t now,
	    struct store_code_outcome *out, struct kl_error *err);
int	store_forward_code_finish(struct store *st,
	    const unsigned char tag[STORE_TAG_LEN],
	    const struct store_code_outcome *claim, int64_t kakao_id,
	    uint64_t user_id, time_t now, struct kl_error *err);
int	store_forward_code_abandon(struct store *st,
	    const unsigned char tag[STORE_TAG_LEN],
	    const struct store_code_outcome *claim, struct kl_error *err);

int	store_forward_session_open(struct store *st,
	    const struct store_session_new *n, uint64_t user_id,
	    int64_t kakao_id, time_t now, struct store_session *out,
	    struct kl_error *err);
/* Reads a replica missed (it may lag behind what a quorum acknowledged):
 * asked of the master before a replica answers NOT_FOUND. */
int	store_forward_user_get(struct store *st, bool by_id, uint64_t id,
	    struct store_user *user, struct kl_error *err);
int	store_forward_session_get(struct store *st,
	    const unsigned char sid[STORE_SID_LEN], struct store_session *out,
	    struct kl_error *err);
/* Not a write: asks site eid for the end of its log (store_repl_group). */
int	store_forward_position(struct store *st, int eid, uint32_t *file,
	    uint32_t *offset, struct kl_error *err);

/* The master's side: repmgr's message dispatch callback. */
void	store_forward_dispatch(DB_ENV *env, DB_CHANNEL *ch, DBT *request,
	    u_int32_t nrequest, u_int32_t cb_flags);
/* The fuzz target's door (test/fuzz/fuzz_forward.c): decodes len bytes
 * as a forwarded request (*request_ok: it decodes whole; nothing is run)
 * and as the reply to each op (*nreplies_ok: how many decode). */
int	store_forward_decode_check(const unsigned char *buf, size_t len,
	    bool *request_ok, unsigned *nreplies_ok);
/* Closes the process's channel (before the environment closes). */
void	store_forward_close(struct store *st);

#endif
