/*
 * store_admin.h: what the admin tool (app/admin.c) does in the store
 * beside the service: users a batch at a time, the database and log files'
 * sizes, a checkpoint, deactivation, import and a consistency walk.
 *
 * Every read is a short read-committed transaction that copies a batch out
 * and ends before the caller prints it: a tool writing to a slow pipe, or
 * killed half-way, holds no lock a worker could wait on. Thread-safe as the
 * store is; meant for a store opened with store_join().
 */
#ifndef KL_STORE_ADMIN_H
#define KL_STORE_ADMIN_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kl_error.h"
#include "store.h"

/* Up to max (at most ADMIN_BATCH) users with ids above *after, in id
 * order, into out; *n says how many. A batch is the index's next max
 * entries, then each user's record read on its own (a user deleted
 * meanwhile is left out, so *n may be below max before the end). *after
 * moves to the last id read; *end is set when the index held no more. A
 * record that does not decode fails the call (KL_STORE_FAILED). */
int	store_user_batch(struct store *st, uint64_t *after,
	    struct store_user *out, size_t max, size_t *n, bool *end,
	    struct kl_error *err);

/* The files of the environment: databases (*.db) and logs (log.*), in
 * bytes, counted from the directory. */
struct store_disk {
	uint64_t	 db_bytes;
	uint64_t	 log_bytes;
	unsigned	 db_files;
	unsigned	 log_files;
};
int	store_disk_usage(struct store *st, struct store_disk *d,
	    struct kl_error *err);

/* A checkpoint now (DB_FORCE): what a restart must replay shrinks to
 * nothing; old log files are removed by the environment's auto-remove. */
int	store_checkpoint(struct store *st, struct kl_error *err);

/* on: deactivates user_id (logins then answer KL_USER_DEACTIVATED) and
 * revokes its sessions (STORE_REVOKE_ADMIN), *revoked counting them, the
 * status and the first MAX_USER_SESSIONS in one transaction. !on: a
 * deactivated user is active again (nothing else changes; an unlinked one
 * stays unlinked). A repeat changes nothing but revoking sessions. *u gets
 * the record as it is now. KL_NOT_FOUND: no such user. */
int	store_user_deactivate(struct store *st, uint64_t user_id, bool on,
	    time_t now, struct store_user *u, int *revoked,
	    struct kl_error *err);

/*
 * users import: records as they were exported, ids kept. One import is
 * begun, fed batches, and ended (store_import_end frees it, accepts NULL).
 * store_user_import decides each user of a batch in one transaction,
 * which also moves the user id sequence past the batch's new ids (so no
 * process is ever handed an imported id, and a tool killed mid-import
 * leaves no id reserved without its user):
 *   ADDED      new here: written as given;
 *   UNCHANGED  this Kakao id is this user id already, byte for byte;
 *   KEPT       this Kakao id is this user id, with other fields (logged in
 *              since): the stored record is kept;
 *   KAKAO_TAKEN  this Kakao id is another user id here      }
 *   RETIRED      the user id was deleted here (retired.db)  } refused,
 *   ID_TAKEN     the user id is another Kakao id's here     } nothing
 *   ID_HANDED_OUT the user id is below what the sequence    } written
 *                had handed out, and not by this import (a
 *                worker may hold it): only ids above are
 *                importable
 * res[i] is users[i]'s; at most ADMIN_BATCH users, ids 1 ..
 * ADMIN_IMPORT_MAX_ID (other ids: KL_STORE_FAILED, nothing written).
 */
enum store_import_result {
	STORE_IMPORT_ADDED,
	STORE_IMPORT_UNCHANGED,
	STORE_IMPORT_KEPT,
	STORE_IMPORT_KAKAO_TAKEN,
	STORE_IMPORT_RETIRED,
	STORE_IMPORT_ID_TAKEN,
	STORE_IMPORT_ID_HANDED_OUT
};
struct store_import;
int	store_import_begin(struct store *st, struct store_import **imp,
	    struct kl_error *err);
int	store_user_import(struct store *st, struct store_import *imp,
	    const struct store_user *users, size_t n,
	    enum store_import_result *res, struct kl_error *err);
void	store_import_end(struct store_import *imp);

/*
 * verify: a walk of the environment while it serves, each database in
 * short read-committed batches: every user record decodes, sits at its
 * Kakao id, is indexed back by users_by_id, is not retired and has an id
 * the sequence handed out; every users_by_id entry leads to a record of
 * that id; every session decodes and is in sessions_by_user, and an
 * active one's user exists; every token, queued unlink and retired id
 * decodes. What a writer changes between two reads is read again before
 * it counts. Tokens whose family is gone are counted (the sweep removes
 * them), not problems. The first STORE_VERIFY_KEEP problems are kept.
 * -1 only when the walk could not be made (a store error, *stop set).
 */
#define STORE_VERIFY_KEEP	32
struct store_verify {
	uint64_t	users, unlinked, deactivated, index;
	uint64_t	sessions, active_sessions, tokens, orphan_tokens;
	uint64_t	unlinks, retired;
	uint64_t	problems;
	char		problem[STORE_VERIFY_KEEP][160];
};
int	store_verify(struct store *st, struct store_verify *v,
	    volatile sig_atomic_t *stop, struct kl_error *err);

#endif
