/*
 * store_code.h: code-exchange records, so that an authorization code posted
 * twice (React StrictMode, a double click, a retry) makes one Kakao call.
 *
 * Records live in the database "codes" of the store's environment, keyed
 * by a keyed hash of the code (STORE_TAG_LEN bytes, computed by the caller
 * with the token layer): the store never sees a code or a verifier. A
 * record is PENDING while one request exchanges the code and DONE once it
 * has, and expires (DONE after CODE_REPLAY_WINDOW_S, PENDING after
 * CODE_PENDING_MAX_S). Every function may be called from any thread, and
 * from every process of the service at once, except store_code_sweep (one
 * thread at a time: the maintenance thread).
 */
#ifndef KL_STORE_CODE_H
#define KL_STORE_CODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kl_error.h"
#include "kl_limits.h"
#include "store.h"

enum store_code_state {
	STORE_CODE_CLAIMED = 1,	/* no live record: one was written, the caller exchanges */
	STORE_CODE_PENDING,	/* another request is exchanging it right now: poll again */
	STORE_CODE_DONE,	/* exchanged within the window, same verifier: user below */
	STORE_CODE_REFUSED	/* a live record, but no PKCE or another verifier */
};

struct store_code_outcome {
	enum store_code_state	 state;
	int64_t			 kakao_id;	/* DONE only */
	uint64_t		 user_id;	/* DONE only */
	/* CLAIMED only: what the claim wrote, so that finish and abandon
	 * touch the record only while it is still this claim. */
	time_t			 claimed_at;
	bool			 has_verifier;
	unsigned char		 verifier[STORE_TAG_LEN];
};

/*
 * One transaction (DB_RMW read, then write): absent, expired (DONE older
 * than the window) or abandoned (PENDING older than CODE_PENDING_MAX_S) ->
 * writes PENDING{verifier tag or none, now} and answers CLAIMED. PENDING ->
 * PENDING if the verifier tags match (both present and equal,
 * CRYPTO_memcmp), else REFUSED. DONE -> DONE if they match, else REFUSED.
 * A record with no verifier (no PKCE) matches nothing. A record dated more
 * than its lifetime in the future (the clock stepped back) counts as
 * expired. A record that does not decode fails with KL_STORE_FAILED.
 */
int	store_code_claim(struct store *st, const unsigned char tag[STORE_TAG_LEN],
	    const unsigned char *verifier_tag /* NULL: no PKCE */, time_t now,
	    struct store_code_outcome *out, struct kl_error *err);

/*
 * The exchange succeeded: PENDING -> DONE{kakao_id, user_id, done_at =
 * now}, keeping the record's verifier tag. claim is the CLAIMED outcome
 * of this request's store_code_claim (NULL only in tests and tools: any
 * record): when the record is no longer that claim (taken over after
 * CODE_PENDING_MAX_S by another verifier, swept, abandoned), -1 with
 * KL_NOT_FOUND and nothing is written, so a slow first exchange never
 * hands its user to whoever took the claim over; the login stands.
 */
int	store_code_finish(struct store *st, const unsigned char tag[STORE_TAG_LEN],
	    const struct store_code_outcome *claim, int64_t kakao_id,
	    uint64_t user_id, time_t now, struct kl_error *err);

/*
 * The exchange failed: removes the PENDING record so a retry asks Kakao
 * (which answers KOE320 if the code was used after all). A missing record
 * is not an error; a DONE one, or another request's claim (see finish),
 * is left alone; one that does not decode is removed.
 */
int	store_code_abandon(struct store *st,
	    const unsigned char tag[STORE_TAG_LEN],
	    const struct store_code_outcome *claim, struct kl_error *err);

/*
 * Removes at most max expired records (DONE past the window, PENDING past
 * CODE_PENDING_MAX_S, and records that do not decode); *removed gets how
 * many. Bounded: one read-committed scan of at most CODE_SWEEP_SCAN
 * records, resumed where the last call stopped, then one small transaction
 * deleting what it found (each record checked again under its lock).
 */
int	store_code_sweep(struct store *st, time_t now, int max, int *removed,
	    struct kl_error *err);

/* Record format, exposed for tests and a fuzz target: fixed size,
 * big-endian, versioned. */
#define STORE_CODE_RECORD_VERSION	1
#define STORE_CODE_RECORD_LEN		(4 + 3 * 8 + STORE_TAG_LEN)

enum store_code_rstate {
	STORE_CODE_R_PENDING = 1,
	STORE_CODE_R_DONE = 2
};

struct store_code_record {
	enum store_code_rstate	 state;
	bool			 has_verifier;
	unsigned char		 verifier[STORE_TAG_LEN];	/* zeros: none */
	time_t			 at;		/* claimed (PENDING), done (DONE) */
	int64_t			 kakao_id;	/* 0 while PENDING */
	uint64_t		 user_id;	/* 0 while PENDING */
};

/* encode writes exactly STORE_CODE_RECORD_LEN bytes (buf must hold them)
 * and returns that length, or -1 for a record that is not canonical (see
 * decode). decode returns 0, or -1 for a wrong length or version, an
 * unknown state, a non-zero pad, verifier bytes without the flag, or ids
 * on a PENDING record. */
int	store_code_record_encode(const struct store_code_record *r,
	    unsigned char *buf, size_t size);
int	store_code_record_decode(const unsigned char *buf, size_t len,
	    struct store_code_record *r);

#endif
