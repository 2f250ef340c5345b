/*
 * kakao_reject.h: the access tokens Kakao refused lately, so that the same
 * bogus token sent again is answered without another Kakao call (each call
 * counts against the app's monthly quota).
 *
 * Part of the kakao layer. One cache per process, shared by its threads.
 * It never holds a token: only a keyed hash of it (SipHash-2-4 with a
 * 128-bit output, KAKAO_REJECT_TAG bytes, under a key drawn with
 * getrandom() when the cache is made, so it differs in every process and
 * after every restart, and nobody can aim tokens at one bucket), with the
 * refusal (KL_KAKAO_REJECTED or KL_WRONG_APP) and when it expires. Memory
 * is fixed at creation: a full bucket forgets the entry that expires first.
 * Thread-safe: one mutex per bucket of KAKAO_REJECT_WAYS entries.
 */
#ifndef KL_KAKAO_REJECT_H
#define KL_KAKAO_REJECT_H

#include <stdbool.h>
#include <stddef.h>

#include "kl_error.h"
#include "kl_limits.h"

struct kakao_reject;

/* Seconds of a monotonic clock; tests pass their own. */
typedef long long (*kakao_reject_clock)(void);

/*
 * A cache of slots entries (a positive multiple of KAKAO_REJECT_WAYS) that
 * remembers a refusal for ttl_s seconds; clock NULL means the process's
 * monotonic clock. Free it with kakao_reject_free(), after every thread
 * that uses it is done.
 */
struct kakao_reject	*kakao_reject_new(size_t slots, int ttl_s,
			    kakao_reject_clock clock, struct kl_error *err);
void			 kakao_reject_free(struct kakao_reject *rc);

/* True when Kakao refused token (len bytes) less than ttl_s seconds ago;
 * *status then says how. rc may be NULL (no cache: false). */
bool	kakao_reject_check(struct kakao_reject *rc, const char *token,
	    size_t len, enum kl_status *status);

/* Remembers that Kakao refused token with status. rc may be NULL. */
void	kakao_reject_remember(struct kakao_reject *rc, const char *token,
	    size_t len, enum kl_status status);

/* Entries not yet expired (tests, diagnostics). */
size_t	kakao_reject_count(struct kakao_reject *rc);

/* The tag rc keeps for token (tests: the key differs per cache). */
void	kakao_reject_tag(const struct kakao_reject *rc, const char *token,
	    size_t len, unsigned char tag[KAKAO_REJECT_TAG]);

#endif
