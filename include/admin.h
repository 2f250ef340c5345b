/*
 * admin.h: what the admin tool's files (app/admin*.c) share: the tool's
 * state, handed to every command, and its exit codes. Single-threaded.
 */
#ifndef KL_ADMIN_H
#define KL_ADMIN_H

#include <stdbool.h>

#include "config.h"
#include "store.h"

#define EXIT_PROBLEMS	1	/* verify: the report says which */
#define EXIT_USAGE	2
#define EXIT_NOT_FOUND	3
#define EXIT_REFUSED	4	/* users import refused lines */
#define EXIT_BUSY	5	/* restore, init: the service has db_home open */

struct admin {
	struct config	 cfg;
	struct store	*st;	/* NULL for a command that does not join */
	bool		 json;
};

/* app/admin_backup.c: backup DIR, restore DIR, init. */
int	admin_cmd_backup(struct admin *a, int argc, char **argv);
int	admin_cmd_restore(struct admin *a, int argc, char **argv);
int	admin_cmd_init(struct admin *a, int argc, char **argv);
/* False for the commands that run with the service stopped and must not
 * join the environment (restore, init). */
bool	admin_cmd_joins(int (*fn)(struct admin *, int, char **));

#endif
