/*
 * admin_backup.c: the admin tool's backup, restore and init commands
 * (include/admin.h; the store's part is app/store_backup.c).
 *
 *   backup DIR    a hot backup while the service runs (the tool joins)
 *   restore DIR   with the service stopped: db_home becomes the backup,
 *                 user ids continue past the id mark
 *   init          with the service stopped: a new empty environment whose
 *                 ids continue past the mark (db_home's data is lost)
 * Owns their arguments, output (text, or one JSON object with --json) and
 * exit codes (0, 1 failed, 2 usage, 4 the service has db_home open).
 * Single-threaded.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "admin.h"
#include "store_backup.h"
#include "store_mark.h"

static int
usage_error(const char *why)
{
	fprintf(stderr, "kakao-login-admin: %s\n", why);
	return EXIT_USAGE;
}

static int
json_out(json_t *v)
{
	int	ret = 1;

	if (v != NULL && json_dumpf(v, stdout, JSON_COMPACT) == 0 &&
	    putchar('\n') != EOF)
		ret = 0;
	json_decref(v);
	return ret;
}

static int
failed(const struct kl_error *err)
{
	fprintf(stderr, "kakao-login-admin: %s\n", err->detail);
	return err->status == KL_NOT_READY ? EXIT_BUSY : 1;
}

int
admin_cmd_backup(struct admin *a, int argc, char **argv)
{
	struct store_backup_info	info;
	struct kl_error			err;

	if (argc != 1 || argv[0][0] == '\0')
		return usage_error("backup: one DIR (new or empty)");
	if (store_backup(a->st, argv[0], &info, &err) == -1)
		return err.status == KL_BAD_REQUEST ?
		    usage_error(err.detail) : failed(&err);
	if (a->json)
		return json_out(json_pack("{s:s,s:I,s:I,s:i,s:b}",
		    "backup", argv[0], "users", (json_int_t)info.users,
		    "ids_reserved", (json_int_t)info.ids_reserved,
		    "files", (int)info.files, "recovered", 1));
	return printf("backup %s: %" PRIu64 " users, ids up to %" PRIu64
	    " reserved, %u files; recovered and checked\n", argv[0],
	    info.users, info.ids_reserved, info.files) < 0 ? 1 : 0;
}

static int
restore_run(struct admin *a, const char *dir)
{
	struct store_restore_info	info;
	struct kl_error			err;
	const char			*what = dir != NULL ? "restore" : "init";

	if (store_restore(a->cfg.db_home, dir, a->cfg.db_durability, &info,
	    &err) == -1)
		return failed(&err);
	if (a->json)
		return json_out(json_pack("{s:s,s:s?,s:I,s:I,s:I,s:s?}",
		    what, a->cfg.db_home, "from", dir,
		    "users", (json_int_t)info.env.users,
		    "id_mark", (json_int_t)info.mark,
		    "next_user_id", (json_int_t)info.env.ids_reserved + 1,
		    "old_files", *info.aside != '\0' ? info.aside : NULL));
	return printf("%s %s%s%s: %" PRIu64 " users; id mark %" PRIu64
	    ", new user ids start at %" PRIu64 "%s%s\n", what,
	    a->cfg.db_home, dir != NULL ? " from " : "", dir != NULL ? dir :
	    "", info.env.users, info.mark, info.env.ids_reserved + 1,
	    *info.aside != '\0' ? "; the old files are in " : "",
	    info.aside) < 0 ? 1 : 0;
}

int
admin_cmd_restore(struct admin *a, int argc, char **argv)
{
	if (argc != 1 || argv[0][0] == '\0')
		return usage_error("restore: one DIR (a backup)");
	return restore_run(a, argv[0]);
}

int
admin_cmd_init(struct admin *a, int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		return usage_error("init takes no arguments");
	return restore_run(a, NULL);
}

bool
admin_cmd_joins(int (*fn)(struct admin *, int, char **))
{
	return fn != admin_cmd_restore && fn != admin_cmd_init;
}
