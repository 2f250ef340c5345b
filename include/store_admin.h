/*
 * store_admin.h: what the admin tool (app/admin.c) reads from the store
 * beside the service: users a batch at a time, the database and log files'
 * sizes, and a checkpoint.
 *
 * Every read is a short read-committed transaction that copies a batch out
 * and ends before the caller prints it: a tool writing to a slow pipe, or
 * killed half-way, holds no lock a worker could wait on. Thread-safe as the
 * store is; meant for a store opened with store_join().
 */
#ifndef KL_STORE_ADMIN_H
#define KL_STORE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
