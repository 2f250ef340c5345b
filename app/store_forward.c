/*
 * store_forward.c: a replica's writes, done by the master (see
 * store_forward.h).
 *
 * Owns the wire format of a forwarded write and the repmgr message channel
 * it travels on: a replica's public write function (store_user_login_session,
 * store_session_refresh, ...) calls store_forward_<op>() instead of writing;
 * that encodes its arguments, sends them to the master with
 * DB_CHANNEL->send_request, and decodes the master's reply into the
 * caller's results and kl_error. On the master, the channel's dispatch
 * callback (in the site's replication process, a repmgr message thread)
 * decodes the request, calls the same public function there, and sends
 * back its return, status, detail and results. So a forwarded write is
 * exactly the master's own write, acknowledged by the group under the same
 * policy before it is answered.
 *
 * Message: version, op, then the op's fields in order; integers big-endian
 * of fixed width, byte strings as a 2-byte length and the bytes. Reply:
 * version, rc (0 / 1 for -1), the kl_status, the detail, a flag and, when
 * set, the commit token of the write's last transaction, then the op's
 * results. With a token the replica answers only once it applied that
 * transaction itself (DB_ENV->txn_applied, up to FWD_APPLIED_WAIT_MS), so
 * a read it serves next sees the write (found by the hostile suite against
 * a replica: GET /users/me right after DELETE /users/me answered 200).
 * Anything that does not decode is refused whole (KL_INTERNAL on the
 * replica, nothing done on the master): the bytes come only from our own
 * processes over repmgr's connections, but are checked all the same.
 *
 * Must not write anything itself; knows nothing of HTTP. Thread-safety:
 * the channel is opened once per process under a mutex, then shared (repmgr
 * matches each reply to its request); codec state is per call; the
 * dispatch flag is per thread.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <db.h>

#include "log.h"
#include "metrics.h"
#include "store.h"
#include "store_code.h"
#include "store_forward.h"
#include "store_internal.h"
#include "store_repl.h"
#include "store_session.h"

#define FWD_VERSION	1

enum fwd_op {
	FWD_LOGIN = 1,
	FWD_REFRESH,
	FWD_REVOKE,
	FWD_REVOKE_REFRESH,
	FWD_REVOKE_USER,
	FWD_DELETE,
	FWD_UNLINK,
	FWD_UNLINK_DONE,
	FWD_CODE_CLAIM,
	FWD_CODE_FINISH,
	FWD_CODE_ABANDON,
	FWD_POSITION,		/* not a write: the end of the site's log */
	FWD_USER_GET,		/* reads a replica missed (it may lag) */
	FWD_SESSION_GET,
	FWD_SESSION_OPEN
};

static __thread bool	in_dispatch;	/* this thread runs a forwarded write */
static __thread bool	fwd_unavail;	/* the last send found no connection */
static __thread DB_TXN_TOKEN fwd_token;	/* in_dispatch: the last commit's */
static __thread bool	fwd_token_set;

/* ------------------------------------------------------------ the codec */

struct fwd_buf {
	unsigned char	*p;
	size_t		 size, off;
	bool		 bad;		/* overflowed or short: refuse it all */
};

static void
put_bytes(struct fwd_buf *b, const void *v, size_t n)
{
	if (b->bad || n > b->size - b->off) {
		b->bad = true;
		return;
	}
	memcpy(b->p + b->off, v, n);
	b->off += n;
}

static void
put_u64(struct fwd_buf *b, uint64_t v)
{
	unsigned char	x[8];

	store_put_u64(x, v);
	put_bytes(b, x, 8);
}

static void
put_u8(struct fwd_buf *b, unsigned v)
{
	unsigned char	x = (unsigned char)v;

	put_bytes(b, &x, 1);
}

/* A string of at most max bytes ("" for NULL; has says which). */
static void
put_str(struct fwd_buf *b, const char *s, size_t max)
{
	size_t		len = s != NULL ? strlen(s) : 0;
	unsigned char	x[2];

	if (len > max || len > 0xffff) {
		b->bad = true;
		return;
	}
	x[0] = (unsigned char)(len >> 8);
	x[1] = (unsigned char)len;
	put_bytes(b, x, 2);
	put_bytes(b, s != NULL ? s : "", len);
}

static void
get_bytes(struct fwd_buf *b, void *v, size_t n)
{
	if (b->bad || n > b->size - b->off) {
		b->bad = true;
		memset(v, 0, n);
		return;
	}
	memcpy(v, b->p + b->off, n);
	b->off += n;
}

static uint64_t
get_u64(struct fwd_buf *b)
{
	unsigned char	x[8];

	get_bytes(b, x, 8);
	return store_get_u64(x);
}

static unsigned
get_u8(struct fwd_buf *b)
{
	unsigned char	x;

	get_bytes(b, &x, 1);
	return x;
}

/* Into out[size] (NUL-terminated); longer than size - 1: bad. */
static void
get_str(struct fwd_buf *b, char *out, size_t size)
{
	unsigned char	x[2];
	size_t		len;

	get_bytes(b, x, 2);
	len = (size_t)x[0] << 8 | x[1];
	if (len >= size) {
		b->bad = true;
		len = 0;
	}
	get_bytes(b, out, len);
	out[b->bad ? 0 : len] = '\0';
}

static void
put_user(struct fwd_buf *b, const struct store_user *u)
{
	unsigned char	rec[STORE_RECORD_MAX];
	int		len = store_record_encode(u, rec, sizeof(rec));

	if (len < 0) {
		b->bad = true;
		return;
	}
	put_u64(b, (uint64_t)len);
	put_bytes(b, rec, (size_t)len);
}

static void
get_user(struct fwd_buf *b, struct store_user *u)
{
	unsigned char	rec[STORE_RECORD_MAX];
	uint64_t	len = get_u64(b);

	if (len > sizeof(rec)) {
		b->bad = true;
		return;
	}
	get_bytes(b, rec, (size_t)len);
	if (!b->bad && store_record_decode(rec, (size_t)len, u) == -1)
		b->bad = true;
}

static void
put_session(struct fwd_buf *b, const struct store_session *s)
{
	put_bytes(b, s->sid, STORE_SID_LEN);
	put_u8(b, (unsigned)s->status);
	put_u8(b, (unsigned)s->reason);
	put_u64(b, s->user_id);
	put_u64(b, (uint64_t)s->kakao_id);
	put_u64(b, (uint64_t)(int64_t)s->created);
	put_u64(b, (uint64_t)(int64_t)s->last_used);
	put_u64(b, (uint64_t)(int64_t)s->expires);
	put_u64(b, (uint64_t)(int64_t)s->revoked_at);
	put_u64(b, s->generation);
}

static void
get_session(struct fwd_buf *b, struct store_session *s)
{
	get_bytes(b, s->sid, STORE_SID_LEN);
	s->status = (enum store_session_status)get_u8(b);
	s->reason = (enum store_session_reason)get_u8(b);
	s->user_id = get_u64(b);
	s->kakao_id = (int64_t)get_u64(b);
	s->created = (time_t)(int64_t)get_u64(b);
	s->last_used = (time_t)(int64_t)get_u64(b);
	s->expires = (time_t)(int64_t)get_u64(b);
	s->revoked_at = (time_t)(int64_t)get_u64(b);
	s->generation = (uint32_t)get_u64(b);
}

static void
put_outcome(struct fwd_buf *b, const struct store_code_outcome *o)
{
	put_u8(b, (unsigned)o->state);
	put_u64(b, (uint64_t)o->kakao_id);
	put_u64(b, o->user_id);
	put_u64(b, (uint64_t)(int64_t)o->claimed_at);
	put_u8(b, o->has_verifier);
	put_bytes(b, o->verifier, STORE_TAG_LEN);
}

static void
get_outcome(struct fwd_buf *b, struct store_code_outcome *o)
{
	o->state = (enum store_code_state)get_u8(b);
	o->kakao_id = (int64_t)get_u64(b);
	o->user_id = get_u64(b);
	o->claimed_at = (time_t)(int64_t)get_u64(b);
	o->has_verifier = get_u8(b) != 0;
	get_bytes(b, o->verifier, STORE_TAG_LEN);
}

static void
put_tags(struct fwd_buf *b, const unsigned char (*tags)[STORE_TAG_LEN],
    int ntags)
{
	if (ntags < 1 || ntags > MAX_REFRESH_CANDIDATES) {
		b->bad = true;
		return;
	}
	put_u8(b, (unsigned)ntags);
	put_bytes(b, tags, (size_t)ntags * STORE_TAG_LEN);
}

static int
get_tags(struct fwd_buf *b, unsigned char (*tags)[STORE_TAG_LEN])
{
	int	n = (int)get_u8(b);

	if (n < 1 || n > MAX_REFRESH_CANDIDATES) {
		b->bad = true;
		return 0;
	}
	get_bytes(b, tags, (size_t)n * STORE_TAG_LEN);
	return n;
}

/* ------------------------------------------------------ the replica side */

/* The process's channel to the master, opened at first use. */
static DB_CHANNEL *
channel(struct store *st)
{
	DB_CHANNEL	*ch;
	int		 ret;

	pthread_mutex_lock(&st->fwd_lock);
	if ((ch = st->fwd_chan) == NULL) {
		ret = st->env->repmgr_channel(st->env, DB_EID_MASTER, &ch, 0);
		if (ret == 0)
			st->fwd_chan = ch;
		else {
			ch = NULL;
			log_warn("replication: no channel to the master: %s",
			    db_strerror(ret));
		}
	}
	pthread_mutex_unlock(&st->fwd_lock);
	return ch;
}

enum store_write
store_write_where(struct store *st, struct kl_error *err)
{
	enum store_role	role;

	if (!st->repl || st->join || in_dispatch)
		return STORE_WRITE_HERE;
	if ((role = store_role(st)) == STORE_ROLE_MASTER)
		return STORE_WRITE_HERE;
	if (role == STORE_ROLE_REPLICA)
		return STORE_WRITE_FORWARD;
	kl_fail(err, KL_NO_MASTER, "no replication master known (an "
	    "election, or this site is joining)");
	return STORE_WRITE_REFUSED;
}

void
store_forward_commit_token(DB_TXN *txn)
{
	if (in_dispatch && txn->set_commit_token(txn, &fwd_token) == 0)
		fwd_token_set = true;
}

/* A reply's header: its version, the master's rc (*rc) and error (into
 * err), the commit token if any (*has_token, *tok). Returns 0 with rb at
 * the op's results, or -1 with KL_INTERNAL when the header does not
 * decode. */
static int
reply_open(struct fwd_buf *rb, unsigned *rc, bool *has_token,
    DB_TXN_TOKEN *tok, struct kl_error *err)
{
	unsigned	status, flag;

	if (get_u8(rb) != FWD_VERSION)
		return kl_fail(err, KL_INTERNAL, "forwarded write: a reply "
		    "of another version");
	*rc = get_u8(rb);
	status = get_u8(rb);
	get_str(rb, err->detail, sizeof(err->detail));
	flag = get_u8(rb);
	*has_token = flag == 1;
	if (*has_token)
		get_bytes(rb, tok->buf, sizeof(tok->buf));
	if (rb->bad || status >= KL_STATUS_COUNT || flag > 1)
		return kl_fail(err, KL_INTERNAL, "forwarded write: a reply "
		    "that does not decode");
	err->status = (enum kl_status)status;
	return 0;
}

/* Read your writes: waits until this site applied the master's commit.
 * Past FWD_APPLIED_WAIT_MS (a lagging site), or when the token names
 * nothing to wait for, the answer goes out all the same: the group has
 * the write, only a read here may miss it a while longer. */
static void
applied_wait(struct store *st, DB_TXN_TOKEN *tok)
{
	store_busy_enter(st);
	(void)st->env->txn_applied(st->env, tok,
	    (db_timeout_t)FWD_APPLIED_WAIT_MS * 1000, 0);
	store_busy_leave(st);
}

/* Sends req to the master and opens its reply: 0 with *rb positioned at
 * the op's results (rb->p is resp, which the caller owns), or -1 with err
 * filled (the master's own failure, or the trip's). */
static int
exchange_on(struct store *st, DB_CHANNEL *ch, struct fwd_buf *req,
    unsigned char *resp, size_t resp_size, struct fwd_buf *rb, long wait_ms,
    struct kl_error *err)
{
	DBT		 msg, reply;
	DB_TXN_TOKEN	 tok;
	db_timeout_t	 wait;
	unsigned	 rc;
	bool		 has_token;
	int		 ret;

	if (req->bad)
		return kl_fail(err, KL_INTERNAL, "forwarded write: arguments "
		    "do not encode");
	memset(&msg, 0, sizeof(msg));
	msg.data = req->p;
	msg.size = (u_int32_t)req->off;
	memset(&reply, 0, sizeof(reply));
	reply.data = resp;
	reply.ulen = (u_int32_t)resp_size;
	reply.flags = DB_DBT_USERMEM;
	wait = (db_timeout_t)wait_ms * 1000;
	store_busy_enter(st);
	ret = ch->send_request(ch, &msg, 1, &reply, wait, 0);
	store_busy_leave(st);
	fwd_unavail = ret == DB_REP_UNAVAIL;
	if (ret != 0) {
		metrics_store_failure();
		return kl_fail(err, ret == DB_REP_UNAVAIL ? KL_NO_MASTER :
		    KL_NOT_DURABLE, "forwarded write: %s (it may have been "
		    "done)", ret == DB_TIMEOUT ? "the master did not answer in "
		    "time" : db_strerror(ret));
	}
	rb->p = resp;
	rb->size = reply.size;
	rb->off = 0;
	rb->bad = false;
	if (reply_open(rb, &rc, &has_token, &tok, err) == -1)
		return -1;
	if (rc != 0)
		return -1;
	if (has_token)
		applied_wait(st, &tok);
	return 0;
}

/* A channel whose master connection broke (the master's replication
 * process restarted, another site was elected) keeps failing with
 * DB_REP_UNAVAIL in 5.3: it caches the dead connection. The process's
 * channel is then replaced (the old one is kept open, other threads may
 * hold it, and closed with the environment) and the request tried once
 * more. */
static DB_CHANNEL *
channel_renew(struct store *st, DB_CHANNEL *dead)
{
	DB_CHANNEL	*ch = NULL;
	int		 ret;

	pthread_mutex_lock(&st->fwd_lock);
	if (st->fwd_chan == dead) {
		if (st->fwd_nold == STORE_FWD_OLD_CHANNELS) {
			/* The oldest: its senders have long timed out. */
			st->fwd_old[0]->close(st->fwd_old[0], 0);
			memmove(st->fwd_old, st->fwd_old + 1,
			    sizeof(st->fwd_old[0]) * (size_t)--st->fwd_nold);
		}
		st->fwd_old[st->fwd_nold++] = dead;
		st->fwd_chan = NULL;
		if ((ret = st->env->repmgr_channel(st->env, DB_EID_MASTER,
		    &ch, 0)) == 0)
			st->fwd_chan = ch;
		else
			log_warn("replication: no channel to the master: %s",
			    db_strerror(ret));
	}
	ch = st->fwd_chan;
	pthread_mutex_unlock(&st->fwd_lock);
	return ch;
}

static int
exchange(struct store *st, struct fwd_buf *req, unsigned char *resp,
    size_t resp_size, struct fwd_buf *rb, struct kl_error *err)
{
	DB_CHANNEL	*ch;
	int		 rc;

	if ((ch = channel(st)) == NULL)
		return kl_fail(err, KL_NO_MASTER, "no channel to the master");
	rc = exchange_on(st, ch, req, resp, resp_size, rb,
	    store_forward_timeout_ms(), err);
	if (rc == -1 && fwd_unavail && (ch = channel_renew(st, ch)) != NULL)
		rc = exchange_on(st, ch, req, resp, resp_size, rb,
		    store_forward_timeout_ms(), err);
	return rc;
}

#define REQ_START(b, buf, op) do {					\
	(b).p = (buf); (b).size = sizeof(buf); (b).off = 0;		\
	(b).bad = false;						\
	put_u8(&(b), FWD_VERSION); put_u8(&(b), (op));			\
} while (0)

/* The results of the ops that answer more than a record, as a replica
 * reads them: one decoder each, also run by the fuzz target. */
static void
res_refresh(struct fwd_buf *rb, struct store_refresh_out *out)
{
	out->state = (enum store_refresh_state)get_u8(rb);
	out->key = (int)get_u8(rb) - 1;
	get_session(rb, &out->session);
	get_bytes(rb, out->successor, STORE_TAG_LEN);
}

static void
res_delete(struct fwd_buf *rb, struct store_user *was, bool *more)
{
	get_user(rb, was);
	*more = get_u8(rb) != 0;
}

static void
res_unlink(struct fwd_buf *rb, bool *known, uint64_t *user_id, bool *more)
{
	*known = get_u8(rb) != 0;
	*user_id = get_u64(rb);
	*more = get_u8(rb) != 0;
}

static void
res_position(struct fwd_buf *rb, uint32_t *file, uint32_t *offset)
{
	*file = (uint32_t)get_u64(rb);
	*offset = (uint32_t)get_u64(rb);
}

/* The results after a successful exchange must decode too. */
static int
results_ok(struct fwd_buf *rb, struct kl_error *err)
{
	if (rb->bad)
		return kl_fail(err, KL_INTERNAL, "forwarded write: results "
		    "that do not decode");
	return 0;
}

int
store_forward_login(struct store *st, const struct store_login *in,
    time_t now, const struct store_session_new *session,
    struct store_user *user, struct kl_error *err)
{
	unsigned char	buf[FWD_MAX], resp[FWD_MAX];
	struct fwd_buf	b, rb;

	REQ_START(b, buf, FWD_LOGIN);
	put_u64(&b, (uint64_t)in->kakao_id);
	put_u8(&b, (in->nickname != NULL) | (in->email != NULL) << 1 |
	    (in->profile_image != NULL) << 2 | in->email_verified << 3);
	put_str(&b, in->nickname, MAX_NICKNAME);
	put_str(&b, in->email, MAX_EMAIL);
	put_str(&b, in->profile_image, MAX_PROFILE_IMAGE);
	put_u64(&b, (uint64_t)(int64_t)now);
	put_u8(&b, session != NULL);
	if (session != NULL) {
		put_bytes(&b, session->sid, STORE_SID_LEN);
		put_bytes(&b, session->tag, STORE_TAG_LEN);
	}
	if (exchange(st, &b, resp, sizeof(resp), &rb, err) == -1)
		return -1;
	get_user(&rb, user);
	return results_ok(&rb, err);
}

int
store_forward_refresh(struct store *st, const struct store_refresh_in *in,
    struct store_refresh_out *out, struct kl_error *err)
{
	unsigned char	buf[FWD_MAX], resp[FWD_MAX];
	struct fwd_buf	b, rb;

	memset(out, 0, sizeof(*out));
	out->state = STORE_REFRESH_INVALID;
	out->key = -1;
	REQ_START(b, buf, FWD_REFRESH);
	put_tags(&b, in->tags, in->ntags);
	put_bytes(&b, in->successor, STORE_TAG_LEN);
	put_u64(&b, (uint64_t)(int64_t)in->now);
	if (exchange(st, &b, resp, sizeof(resp), &rb, err) == -1)
		return -1;
	res_refresh(&rb, out);
	return results_ok(&rb, err);
}

int
store_forward_revoke(struct store *st, const unsigned char sid[STORE_SID_LEN],
    uint64_t user_id, enum store_session_reason reason, time_t now,
    struct kl_error *err)
{
	unsigned char	buf[FWD_MAX], resp[FWD_MAX];
	struct fwd_buf	b, rb;

	REQ_START(b, buf, FWD_REVOKE);
	put_bytes(&b, sid, STORE_SID_LEN);
	put_u64(&b, user_id);
	put_u8(&b, (unsigned)reason);
	put_u64(&b, (uint64_t)(int64_t)now);
	return exchange(st, &b, resp, sizeof(resp), &rb, err);
}

int
store_forward_revoke_refresh(struct store *st,
    const unsigned char (*tags)[STORE_TAG_LEN], int ntags, time_t now,
    uint64_t *user_id, struct kl_error *err)
{
	unsigned char	buf[FWD_MAX], resp[FWD_MAX];
	struct fwd_buf	b, rb;

	*user_id = 0;
	REQ_START(b, buf, FWD_REVOKE_REFRESH);
	put_tags(&b, tags, ntags);
	put_u64(&b, (uint64_t)(int64_t)now);
	if (exchange(st, &b, resp, sizeof(resp), &rb, err) == -1)
		return -1;
	*user_id = get_u64(&rb);
	return results_ok(&rb, err);
}

int
store_forward_revoke_user(struct store *st, uint64_t user_id,
    enum store_session_reason reason, time_t now, int *count,
    struct kl_error *err)
{
	unsigned char	buf[FWD_MAX], resp[FWD_MAX];
	struct fwd_buf	b, rb;

	*count = 0;
	REQ_START(b, buf, FWD_REVOKE_USER);
	put_u64(&b, user_id);
	put_u8(&b, (unsigned)reason);
	put_u64(&b, (uint64_t)(int64_t)now);
	if (exchange(st, &b, resp, sizeof(resp), &rb, err) == -1)
		return -1;
	*count = (int)get_u64(&rb);
	return results_ok(&rb, err);
}

int
store_forward_delete(struct store *st, uint64_t user_id, time_t now,
    long first_retry_s, struct store_user *was, bool *more,
    struct kl_error *err)
{
	unsigned char	buf[FWD_MAX], resp[FWD_MAX];
	struct fwd_buf	b, rb;

	*more = false;
	REQ_START(b, buf, FWD_DELETE);
	put_u64(&b, user_id);
	put_u64(&b, (uint64_t)(int64_t)now);
	put_u64(&b, (uint64_t)first_retry_s);
	if (exchange(st, &b, resp, sizeof(resp), &rb, err) == -1)
		return -1;
	res_delete(&rb, was, more);
	return results_ok(&rb, err);
}

int
store_forward_unlink(struct store *st, int64_t kakao_id, time_t now,
    bool *known, uint64_t *user_id, bool *more, struct kl_error *err)
{
	unsigned char	buf[FWD_MAX], resp[FWD_MAX];
	struct fwd_buf	b, rb;

	*known = *more = false;
	*user_id = 0;
	REQ_START(b, buf, FWD_UNLINK);
	put_u64(&b, (uint64_t)kakao_id);
	put_u64(&b, (uint64_t)(int64_t)now);
	if (exchange(st, &b, resp, sizeof(resp), &rb, err) == -1)
		return -1;
	res_unlink(&rb, known, user_id, more);
	return results_ok(&rb, err);
}

int
store_forward_unlink_done(struct store *st, int64_t kakao_id,
    struct kl_error *err)
{
	unsigned char	buf[FWD_MAX], resp[FWD_MAX];
	struct fwd_buf	b, rb;

	REQ_START(b, buf, FWD_UNLINK_DONE);
	put_u64(&b, (uint64_t)kakao_id);
	return exchange(st, &b, resp, sizeof(resp), &rb, err);
}

int
store_forward_code_claim(struct store *st,
    const unsigned char tag[STORE_TAG_LEN], const unsigned char *verifier_tag,
    time_t now, struct store_code_outcome *out, struct kl_error *err)
{
	unsigned char	buf[FWD_MAX], resp[FWD_MAX];
	struct fwd_buf	b, rb;

	memset(out, 0, sizeof(*out));
	REQ_START(b, buf, FWD_CODE_CLAIM);
	put_bytes(&b, tag, STORE_TAG_LEN);
	put_u8(&b, verifier_tag != NULL);
	if (verifier_tag != NULL)
		put_bytes(&b, verifier_tag, STORE_TAG_LEN);
	put_u64(&b, (uint64_t)(int64_t)now);
	if (exchange(st, &b, resp, sizeof(resp), &rb, err) == -1)
		return -1;
	get_outcome(&rb, out);
	return results_ok(&rb, err);
}

int
store_forward_code_finish(struct store *st,
    const unsigned char tag[STORE_TAG_LEN],
    const struct store_code_outcome *claim, int64_t kakao_id,
    uint64_t user_id, time_t now, struct kl_error *err)
{
	unsigned char	buf[FWD_MAX], resp[FWD_MAX];
	struct fwd_buf	b, rb;

	REQ_START(b, buf, FWD_CODE_FINISH);
	put_bytes(&b, tag, STORE_TAG_LEN);
	put_u8(&b, claim != NULL);
	if (claim != NULL)
		put_outcome(&b, claim);
	put_u64(&b, (uint64_t)kakao_id);
	put_u64(&b, user_id);
	put_u64(&b, (uint64_t)(int64_t)now);
	return exchange(st, &b, resp, sizeof(resp), &rb, err);
}

int
store_forward_code_abandon(struct store *st,
    const unsigned char tag[STORE_TAG_LEN],
    const struct store_code_outcome *claim, struct kl_error *err)
{
	unsigned char	buf[FWD_MAX], resp[FWD_MAX];
	struct fwd_buf	b, rb;

	REQ_START(b, buf, FWD_CODE_ABANDON);
	put_bytes(&b, tag, STORE_TAG_LEN);
	put_u8(&b, claim != NULL);
	if (claim != NULL)
		put_outcome(&b, claim);
	return exchange(st, &b, resp, sizeof(resp), &rb, err);
}

int
store_forward_position(struct store *st, int eid, uint32_t *file,
    uint32_t *offset, struct kl_error *err)
{
	unsigned char	buf[16], resp[FWD_MAX];
	struct fwd_buf	b, rb;
	DB_CHANNEL	*ch;
	int		ret, rc;

	REQ_START(b, buf, FWD_POSITION);
	if ((ret = st->env->repmgr_channel(st->env, eid, &ch, 0)) != 0)
		return kl_fail(err, KL_NO_MASTER, "no channel to site %d: %s",
		    eid, db_strerror(ret));
	rc = exchange_on(st, ch, &b, resp, sizeof(resp), &rb,
	    FWD_POSITION_TIMEOUT_MS, err);
	ch->close(ch, 0);
	if (rc == -1)
		return -1;
	res_position(&rb, file, offset);
	return results_ok(&rb, err);
}

int
store_forward_session_open(struct store *st, const struct store_session_new *n,
    uint64_t user_id, int64_t kakao_id, time_t now, struct store_session *out,
    struct kl_error *err)
{
	unsigned char	buf[FWD_MAX], resp[FWD_MAX];
	struct fwd_buf	b, rb;

	memset(out, 0, sizeof(*out));
	REQ_START(b, buf, FWD_SESSION_OPEN);
	put_bytes(&b, n->sid, STORE_SID_LEN);
	put_bytes(&b, n->tag, STORE_TAG_LEN);
	put_u64(&b, user_id);
	put_u64(&b, (uint64_t)kakao_id);
	put_u64(&b, (uint64_t)(int64_t)now);
	if (exchange(st, &b, resp, sizeof(resp), &rb, err) == -1)
		return -1;
	get_session(&rb, out);
	return results_ok(&rb, err);
}

int
store_forward_user_get(struct store *st, bool by_id, uint64_t id,
    struct store_user *user, struct kl_error *err)
{
	unsigned char	buf[32], resp[FWD_MAX];
	struct fwd_buf	b, rb;

	REQ_START(b, buf, FWD_USER_GET);
	put_u8(&b, by_id);
	put_u64(&b, id);
	if (exchange(st, &b, resp, sizeof(resp), &rb, err) == -1)
		return -1;
	get_user(&rb, user);
	return results_ok(&rb, err);
}

int
store_forward_session_get(struct store *st,
    const unsigned char sid[STORE_SID_LEN], struct store_session *out,
    struct kl_error *err)
{
	unsigned char	buf[32], resp[FWD_MAX];
	struct fwd_buf	b, rb;

	memset(out, 0, sizeof(*out));
	REQ_START(b, buf, FWD_SESSION_GET);
	put_bytes(&b, sid, STORE_SID_LEN);
	if (exchange(st, &b, resp, sizeof(resp), &rb, err) == -1)
		return -1;
	get_session(&rb, out);
	return results_ok(&rb, err);
}

/* ------------------------------------------------------- the master side */

/* One forwarded write, run here; its results into rb (after the header
 * the caller wrote). Returns the public function's rc; a request that does
 * not decode: -1 with KL_INTERNAL and nothing run. */
static int
run_op(struct store *st, unsigned op, struct fwd_buf *q, struct fwd_buf *rb,
    bool dry, struct kl_error *err)
{
	char			 nick[MAX_NICKNAME + 1], email[MAX_EMAIL + 1];
	char			 image[MAX_PROFILE_IMAGE + 1];
	unsigned char		 tags[MAX_REFRESH_CANDIDATES][STORE_TAG_LEN];
	unsigned char		 sid[STORE_SID_LEN], tag[STORE_TAG_LEN];
	unsigned char		 vtag[STORE_TAG_LEN];
	struct store_login	 in;
	struct store_session_new sn;
	struct store_user	 u;
	struct store_refresh_in	 ri;
	struct store_refresh_out ro;
	struct store_code_outcome oc;
	uint64_t		 a64, b64;
	time_t			 now;
	unsigned		 flags, reason;
	uint32_t		 file, offset;
	bool			 has, known, more;
	int			 rc = -1, n;

	memset(&u, 0, sizeof(u));
	switch (op) {
	case FWD_LOGIN:
		in.kakao_id = (int64_t)get_u64(q);
		flags = get_u8(q);
		get_str(q, nick, sizeof(nick));
		get_str(q, email, sizeof(email));
		get_str(q, image, sizeof(image));
		now = (time_t)(int64_t)get_u64(q);
		has = get_u8(q) != 0;
		if (has) {
			get_bytes(q, sn.sid, STORE_SID_LEN);
			get_bytes(q, sn.tag, STORE_TAG_LEN);
		}
		if (q->bad)
			break;
		if (dry)
			return 0;
		in.nickname = flags & 1 ? nick : NULL;
		in.email = flags & 2 ? email : NULL;
		in.profile_image = flags & 4 ? image : NULL;
		in.email_verified = (flags & 8) != 0;
		rc = store_user_login_session(st, &in, now, has ? &sn : NULL,
		    &u, err);
		put_user(rb, &u);
		return rc;
	case FWD_REFRESH:
		n = get_tags(q, tags);
		get_bytes(q, ri.successor, STORE_TAG_LEN);
		ri.now = (time_t)(int64_t)get_u64(q);
		if (q->bad)
			break;
		if (dry)
			return 0;
		ri.tags = (const unsigned char (*)[STORE_TAG_LEN])tags;
		ri.ntags = n;
		rc = store_session_refresh(st, &ri, &ro, err);
		put_u8(rb, (unsigned)ro.state);
		put_u8(rb, (unsigned)(ro.key + 1));
		put_session(rb, &ro.session);
		put_bytes(rb, ro.successor, STORE_TAG_LEN);
		return rc;
	case FWD_REVOKE:
		get_bytes(q, sid, STORE_SID_LEN);
		a64 = get_u64(q);
		reason = get_u8(q);
		now = (time_t)(int64_t)get_u64(q);
		if (q->bad)
			break;
		if (dry)
			return 0;
		return store_session_revoke(st, sid, a64,
		    (enum store_session_reason)reason, now, err);
	case FWD_REVOKE_REFRESH:
		n = get_tags(q, tags);
		now = (time_t)(int64_t)get_u64(q);
		if (q->bad)
			break;
		if (dry)
			return 0;
		rc = store_session_revoke_refresh(st,
		    (const unsigned char (*)[STORE_TAG_LEN])tags, n, now, &a64,
		    err);
		put_u64(rb, a64);
		return rc;
	case FWD_REVOKE_USER:
		a64 = get_u64(q);
		reason = get_u8(q);
		now = (time_t)(int64_t)get_u64(q);
		if (q->bad)
			break;
		if (dry)
			return 0;
		rc = store_session_revoke_user(st, a64,
		    (enum store_session_reason)reason, now, &n, err);
		put_u64(rb, (uint64_t)n);
		return rc;
	case FWD_DELETE:
		a64 = get_u64(q);
		now = (time_t)(int64_t)get_u64(q);
		b64 = get_u64(q);
		if (q->bad)
			break;
		if (dry)
			return 0;
		rc = store_user_delete(st, a64, now, (long)b64, &u, &more,
		    err);
		put_user(rb, &u);
		put_u8(rb, more);
		return rc;
	case FWD_UNLINK:
		a64 = get_u64(q);
		now = (time_t)(int64_t)get_u64(q);
		if (q->bad)
			break;
		if (dry)
			return 0;
		rc = store_user_unlink(st, (int64_t)a64, now, &known, &b64,
		    &more, err);
		put_u8(rb, known);
		put_u64(rb, b64);
		put_u8(rb, more);
		return rc;
	case FWD_UNLINK_DONE:
		a64 = get_u64(q);
		if (q->bad)
			break;
		if (dry)
			return 0;
		return store_unlink_done(st, (int64_t)a64, err);
	case FWD_CODE_CLAIM:
		get_bytes(q, tag, STORE_TAG_LEN);
		has = get_u8(q) != 0;
		if (has)
			get_bytes(q, vtag, STORE_TAG_LEN);
		now = (time_t)(int64_t)get_u64(q);
		if (q->bad)
			break;
		if (dry)
			return 0;
		rc = store_code_claim(st, tag, has ? vtag : NULL, now, &oc,
		    err);
		put_outcome(rb, &oc);
		return rc;
	case FWD_CODE_FINISH:
		get_bytes(q, tag, STORE_TAG_LEN);
		has = get_u8(q) != 0;
		if (has)
			get_outcome(q, &oc);
		a64 = get_u64(q);
		b64 = get_u64(q);
		now = (time_t)(int64_t)get_u64(q);
		if (q->bad)
			break;
		if (dry)
			return 0;
		return store_code_finish(st, tag, has ? &oc : NULL,
		    (int64_t)a64, b64, now, err);
	case FWD_CODE_ABANDON:
		get_bytes(q, tag, STORE_TAG_LEN);
		has = get_u8(q) != 0;
		if (has)
			get_outcome(q, &oc);
		if (q->bad)
			break;
		if (dry)
			return 0;
		return store_code_abandon(st, tag, has ? &oc : NULL, err);
	case FWD_USER_GET:
		has = get_u8(q) != 0;
		a64 = get_u64(q);
		if (q->bad)
			break;
		if (dry)
			return 0;
		rc = has ? store_user_get_by_id(st, a64, &u, err) :
		    store_user_get(st, (int64_t)a64, &u, err);
		put_user(rb, &u);
		return rc;
	case FWD_SESSION_OPEN:
		get_bytes(q, sn.sid, STORE_SID_LEN);
		get_bytes(q, sn.tag, STORE_TAG_LEN);
		a64 = get_u64(q);
		b64 = get_u64(q);
		now = (time_t)(int64_t)get_u64(q);
		if (q->bad)
			break;
		if (dry)
			return 0;
		rc = store_session_open(st, &sn, a64, (int64_t)b64, now,
		    &ro.session, err);
		put_session(rb, &ro.session);
		return rc;
	case FWD_SESSION_GET:
		get_bytes(q, sid, STORE_SID_LEN);
		if (q->bad)
			break;
		if (dry)
			return 0;
		rc = store_session_get(st, sid, &ro.session, err);
		put_session(rb, &ro.session);
		return rc;
	case FWD_POSITION:
		if (dry)
			return 0;
		if (store_log_end(st, &file, &offset, err) == -1)
			return -1;
		put_u64(rb, file);
		put_u64(rb, offset);
		return 0;
	default:
		break;
	}
	return kl_fail(err, KL_INTERNAL, "forwarded write: a request that "
	    "does not decode (op %u)", op);
}

/* repmgr's message dispatch (store_repl.c sets it): a forwarded write
 * from a replica, run here and answered. */
void
store_forward_dispatch(DB_ENV *env, DB_CHANNEL *ch, DBT *request,
    u_int32_t nrequest, u_int32_t cb_flags)
{
	struct store	*st = env->app_private;
	unsigned char	 res[FWD_MAX], out[FWD_MAX];
	struct fwd_buf	 q, rb = { .p = res, .size = sizeof(res) };
	struct fwd_buf	 o = { .p = out, .size = sizeof(out) };
	struct kl_error	 err;
	DBT		 reply;
	unsigned	 op = 0;
	int		 rc;

	kl_error_clear(&err);
	if (nrequest != 1 || request[0].size < 2) {
		rc = kl_fail(&err, KL_INTERNAL, "forwarded write: no request");
	} else {
		q.p = request[0].data;
		q.size = request[0].size;
		q.off = 0;
		q.bad = false;
		if (get_u8(&q) != FWD_VERSION)
			rc = kl_fail(&err, KL_INTERNAL, "forwarded write of "
			    "another version");
		else {
			op = get_u8(&q);
			in_dispatch = true;
			fwd_token_set = false;
			rc = run_op(st, op, &q, &rb, false, &err);
			in_dispatch = false;
		}
	}
	if (rb.bad) {
		rc = kl_fail(&err, KL_INTERNAL, "forwarded write: results do "
		    "not encode (op %u)", op);
		rb.off = 0;
	}
	if (!(cb_flags & DB_REPMGR_NEED_RESPONSE))
		return;
	put_u8(&o, FWD_VERSION);
	put_u8(&o, rc == 0 ? 0 : 1);
	put_u8(&o, (unsigned)(rc == 0 ? KL_OK : err.status));
	put_str(&o, rc == 0 ? "" : err.detail, MAX_ERROR_DETAIL);
	put_u8(&o, rc == 0 && fwd_token_set);
	if (rc == 0 && fwd_token_set)
		put_bytes(&o, fwd_token.buf, sizeof(fwd_token.buf));
	put_bytes(&o, res, rb.off);
	memset(&reply, 0, sizeof(reply));
	reply.data = out;
	reply.size = (u_int32_t)o.off;
	(void)ch->send_msg(ch, &reply, 1, 0);
}

void
store_forward_close(struct store *st)
{
	int	i;

	if (st->fwd_chan != NULL)
		st->fwd_chan->close(st->fwd_chan, 0);
	st->fwd_chan = NULL;
	for (i = 0; i < st->fwd_nold; i++)
		st->fwd_old[i]->close(st->fwd_old[i], 0);
	st->fwd_nold = 0;
}

/* ---------------------------------------------------- the fuzz target's */

/* The results of op as a replica reads them: the decoders the
 * store_forward_* above call, into scratch. */
static void
reply_results(unsigned op, struct fwd_buf *rb)
{
	struct store_user		u;
	struct store_session		ss;
	struct store_refresh_out	ro;
	struct store_code_outcome	o;
	uint64_t			id;
	uint32_t			file, offset;
	bool				known, more;

	switch (op) {
	case FWD_LOGIN:
	case FWD_USER_GET:
		get_user(rb, &u);
		break;
	case FWD_REFRESH:
		res_refresh(rb, &ro);
		break;
	case FWD_REVOKE_REFRESH:
	case FWD_REVOKE_USER:
		(void)get_u64(rb);
		break;
	case FWD_DELETE:
		res_delete(rb, &u, &more);
		break;
	case FWD_UNLINK:
		res_unlink(rb, &known, &id, &more);
		break;
	case FWD_CODE_CLAIM:
		get_outcome(rb, &o);
		break;
	case FWD_SESSION_GET:
	case FWD_SESSION_OPEN:
		get_session(rb, &ss);
		break;
	case FWD_POSITION:
		res_position(rb, &file, &offset);
		break;
	default:
		break;
	}
}

int
store_forward_decode_check(const unsigned char *buf, size_t len,
    bool *request_ok, unsigned *nreplies_ok)
{
	unsigned char	 res[FWD_MAX];
	struct fwd_buf	 q = { .p = (unsigned char *)buf, .size = len };
	struct fwd_buf	 rb = { .p = res, .size = sizeof(res) };
	struct kl_error	 err;
	unsigned	 op, rc;

	/* As a request the master receives: decoded whole, nothing run. */
	*request_ok = false;
	if (get_u8(&q) == FWD_VERSION) {
		op = get_u8(&q);
		*request_ok = run_op(NULL, op, &q, &rb, true, &err) == 0 &&
		    !q.bad;
	}
	/* As the reply to each op: the header, then that op's results. */
	*nreplies_ok = 0;
	for (op = FWD_LOGIN; op <= FWD_SESSION_OPEN; op++) {
		struct fwd_buf	r = { .p = (unsigned char *)buf, .size = len };
		DB_TXN_TOKEN	tok;
		bool		has_token;

		if (reply_open(&r, &rc, &has_token, &tok, &err) == -1)
			continue;
		reply_results(op, &r);
		if (!r.bad)
			(*nreplies_ok)++;
	}
	return 0;
}
