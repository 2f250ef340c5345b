/*
 * store_backup.h: a hot backup of the live environment, and a restore of
 * one (or a new empty environment) with the service stopped, for the admin
 * tool (app/admin_backup.c).
 *
 * A backup is Berkeley DB's DB_ENV->backup (the data files, then the
 * logs, as db5.3_hotbackup copies them) from a joined store, while the
 * workers run; then catastrophic recovery runs on the copy, in a private
 * environment, which proves it opens and leaves it consistent: a fresh
 * host can point db_home at it. A restore replaces db_home's files with a
 * backup's, runs catastrophic recovery and moves the user id sequence past
 * the id mark (store_mark.h), all under the mark's exclusive lock, so a
 * worker never opens it half-done. Single-threaded callers (a tool).
 */
#ifndef KL_STORE_BACKUP_H
#define KL_STORE_BACKUP_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "kl_error.h"
#include "kl_limits.h"
#include "store.h"

/* What a backup (or the environment a restore made) holds. */
struct store_backup_info {
	uint64_t	users;		/* records in users.db */
	uint64_t	ids_reserved;	/* the sequence: ids handed out so far */
	unsigned	files;		/* databases and logs copied */
};

/* Copies the environment of a joined store into dir (created if missing;
 * it must be empty), then recovers and checks the copy
 * (store_backup_check). KL_BAD_REQUEST: dir is not empty. */
int	store_backup(struct store *st, const char *dir,
	    struct store_backup_info *info, struct kl_error *err);

/* Runs catastrophic recovery on the environment copied in dir (a private
 * one: no region files stay) and reads what it holds. */
int	store_backup_check(const char *dir, struct store_backup_info *info,
	    struct kl_error *err);

/* True in *pid (and 0 returned) when a live process is registered in the
 * environment at home (Berkeley DB's __db.register locks): a worker or a
 * tool has it open. *pid is 0 when none is. */
int	store_home_in_use(const char *home, long *pid, struct kl_error *err);

struct store_restore_info {
	struct store_backup_info env;	/* the environment as restored */
	uint64_t	mark;		/* the id mark it was moved past */
	char		aside[MAX_CONFIG_PATH];	/* db_home's old files; "" none */
};

/* With no process in the environment: db_home's files moved into
 * db_home/pre-restore.<UTC time>/ (kept for the operator), dir's
 * databases and logs copied in (dir NULL: none, a new empty environment:
 * kakao-login-admin init), catastrophic recovery, and the sequence moved
 * past the id mark, the mark first brought up to the old environment's
 * sequence when that one still opens. KL_NOT_READY: a process is
 * registered (the service runs). */
int	store_restore(const char *home, const char *dir,
	    enum config_durability durability, struct store_restore_info *info,
	    struct kl_error *err);

#endif
