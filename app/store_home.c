/*
 * store_home.c: the -t check of db_home (include/store_home.h).
 *
 * Owns only the question "could this user open the store here?", asked of
 * the file system with access(2) and never of Berkeley DB: the environment
 * is not joined, so no recovery runs and the live workers are not
 * disturbed. What it catches before a start rather than as 500s after it:
 * a db_home the service's user cannot write, a missing one it cannot
 * create, and an environment whose files another user made (a start or a
 * db5.3_* tool run once as root). Knows nothing of the databases' names.
 * Start-up only; no state, so thread-safe.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kl_limits.h"
#include "kl_path.h"
#include "store_home.h"
#include "store_mark.h"

/* The id mark beside home (store_mark.h): writable, or creatable, by this
 * user, and not saying ids were handed out from an environment that is
 * not there (db_home's disk not mounted: the service would refuse). */
static int
check_mark(const char *home, struct kl_error *err)
{
	char		 path[MAX_CONFIG_PATH], dir[MAX_CONFIG_PATH];
	char		 seq[MAX_CONFIG_PATH + 8];
	struct stat	 st;
	uint64_t	 mark;
	bool		 exists;

	if (store_mark_peek(home, &mark, &exists, err) == -1) {
		err->status = KL_BAD_CONFIG;
		return -1;
	}
	if (store_mark_path(path, sizeof(path), home) == -1 ||
	    kl_path_parent(dir, sizeof(dir), path) == -1)
		return kl_fail(err, KL_BAD_CONFIG, "db_home: path too long");
	if (exists ? access(path, R_OK | W_OK) == -1 :
	    access(dir, W_OK | X_OK) == -1)
		return kl_fail(err, KL_BAD_CONFIG, "id mark %s: uid %ld may "
		    "not %s it", path, (long)geteuid(), exists ? "write" :
		    "create");
	snprintf(seq, sizeof(seq), "%s/seq.db", home);
	if (mark > 0 && stat(seq, &st) == -1)
		return kl_fail(err, KL_BAD_CONFIG, "db_home %s holds no "
		    "environment, but the id mark %s says user ids up to %llu "
		    "were handed out: is its disk mounted? (restore a backup "
		    "or run kakao-login-admin init)", home, path,
		    (unsigned long long)mark);
	return 0;
}

/* home missing: the store's mkdir (one level) needs its parent. */
static int
check_parent(const char *home, struct kl_error *err)
{
	char		 dir[MAX_CONFIG_PATH];
	struct stat	 st;

	if (kl_path_parent(dir, sizeof(dir), home) == -1)
		return kl_fail(err, KL_BAD_CONFIG, "db_home: path too long");
	if (stat(dir, &st) == -1)
		return kl_fail(err, KL_BAD_CONFIG, "db_home %s: missing, and so "
		    "is %s: %s", home, dir, strerror(errno));
	if (!S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) == -1)
		return kl_fail(err, KL_BAD_CONFIG, "db_home %s: missing, and uid "
		    "%ld may not create it in %s", home, (long)geteuid(), dir);
	return 0;
}

int
store_check_home(const char *home, struct kl_error *err)
{
	char		 path[MAX_CONFIG_PATH];
	struct stat	 st;
	struct dirent	*e;
	DIR		*d;
	int		 rc = -1;

	if (home == NULL || home[0] == '\0')
		return kl_fail(err, KL_BAD_CONFIG, "db_home: not set");
	if (strlen(home) >= sizeof(path))
		return kl_fail(err, KL_BAD_CONFIG, "db_home: path too long");
	if (stat(home, &st) == -1) {
		if (errno == ENOENT)
			return check_parent(home, err) == -1 ? -1 :
			    check_mark(home, err);
		return kl_fail(err, KL_BAD_CONFIG, "db_home %s: %s", home,
		    strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return kl_fail(err, KL_BAD_CONFIG, "db_home %s: not a directory",
		    home);
	if (access(home, R_OK | W_OK | X_OK) == -1)
		return kl_fail(err, KL_BAD_CONFIG, "db_home %s: not writable by "
		    "uid %ld: %s", home, (long)geteuid(), strerror(errno));
	if ((d = opendir(home)) == NULL)
		return kl_fail(err, KL_BAD_CONFIG, "db_home %s: %s", home,
		    strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", home, e->d_name) >=
		    (int)sizeof(path)) {
			kl_fail(err, KL_BAD_CONFIG, "db_home %s: a file name "
			    "too long", home);
			goto out;
		}
		/* Berkeley DB keeps regular files only; others are not ours. */
		if (lstat(path, &st) == -1 || !S_ISREG(st.st_mode))
			continue;
		if (access(path, R_OK | W_OK) == -1) {
			kl_fail(err, KL_BAD_CONFIG, "db_home %s: %s is not "
			    "readable and writable by uid %ld (%s): made by "
			    "another user? chown the directory's files to the "
			    "service's user", home, e->d_name, (long)geteuid(),
			    strerror(errno));
			goto out;
		}
	}
	rc = check_mark(home, err);
out:
	closedir(d);
	return rc;
}
