/*
 * store_backup.c: hot backup and restore of the environment
 * (include/store_backup.h).
 *
 * Owns the copying of an environment's files in and out of db_home, the
 * recovery of a copy, and the question "is any process in it?". Leaves the
 * id mark's format to app/store_mark.c and the opening of an environment
 * (and the sequence's move past the mark) to app/store.c. Never called by
 * the service's workers. Single-threaded.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <db.h>

#include "log.h"
#include "store_backup.h"
#include "store_internal.h"
#include "store_mark.h"

/* The files an environment's data is: databases and logs (not the region
 * files __db.*, which belong to the processes that had it open). */
static bool
is_env_file(const char *name)
{
	size_t	n = strlen(name);

	if (strncmp(name, "log.", 4) == 0 && n == 14 &&
	    strspn(name + 4, "0123456789") == 10)
		return true;
	return n > 3 && strcmp(name + n - 3, ".db") == 0 &&
	    strncmp(name, "__db", 4) != 0;
}

/* Fails unless dir is missing or empty; creates it (0750). */
static int
dir_fresh(const char *dir, struct kl_error *err)
{
	DIR		*d;
	struct dirent	*e;
	bool		 empty = true;

	if (mkdir(dir, 0750) == 0)
		return 0;
	if (errno != EEXIST || (d = opendir(dir)) == NULL)
		return kl_fail(err, KL_STORE_FAILED, "%s: %s", dir,
		    strerror(errno));
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = false;
	closedir(d);
	if (!empty)
		return kl_fail(err, KL_BAD_REQUEST, "%s: not empty (a backup "
		    "goes into a new or empty directory)", dir);
	return 0;
}

static int
sync_dir(const char *dir, struct kl_error *err)
{
	int	fd, ret = 0;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(fd) == -1)
		ret = kl_fail(err, KL_STORE_FAILED, "fsync %s: %s", dir,
		    strerror(errno));
	if (fd != -1)
		close(fd);
	return ret;
}

int
store_backup_check(const char *dir, struct store_backup_info *info,
    struct kl_error *err)
{
	DB_ENV			*env = NULL;
	DB			*users = NULL, *seqdb = NULL;
	DB_SEQUENCE		*seq = NULL;
	DB_SEQUENCE_STAT	*sp = NULL;
	DBC			*c = NULL;
	DBT			 k, d;
	DBT			 key;
	const char		*what = "environment";
	int			 ret;

	memset(info, 0, sizeof(*info));
	memset(&key, 0, sizeof(key));
	key.data = "user_id";
	key.size = (u_int32_t)strlen("user_id");
	if ((ret = db_env_create(&env, 0)) != 0)
		return kl_fail(err, KL_STORE_FAILED, "db_env_create: %s",
		    db_strerror(ret));
	/* Private: the recovered copy keeps no region file, and is opened
	 * by whoever opens it next as a fresh host would. Catastrophic: a
	 * hot backup's data files were copied while being written, and only
	 * the whole of its logs makes them consistent. */
	if ((ret = env->set_lk_max_locks(env, STORE_MAX_LOCKS)) != 0 ||
	    (ret = env->set_lk_max_objects(env, STORE_MAX_LOCKS)) != 0 ||
	    (ret = env->open(env, dir, DB_CREATE | DB_INIT_TXN |
	    DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL | DB_PRIVATE |
	    DB_RECOVER_FATAL, 0660)) != 0)
		goto out;
	what = "seq.db";
	if ((ret = db_create(&seqdb, env, 0)) != 0 ||
	    (ret = seqdb->open(seqdb, NULL, "seq.db", NULL, DB_BTREE,
	    DB_AUTO_COMMIT, 0)) != 0 ||
	    (ret = db_sequence_create(&seq, seqdb, 0)) != 0 ||
	    (ret = seq->open(seq, NULL, &key, 0)) != 0 ||
	    (ret = seq->stat(seq, &sp, 0)) != 0)
		goto out;
	info->ids_reserved = sp->st_current > 1 ?
	    (uint64_t)sp->st_current - 1 : 0;
	what = "users.db";
	if ((ret = db_create(&users, env, 0)) != 0 ||
	    (ret = users->open(users, NULL, "users.db", NULL, DB_BTREE,
	    DB_AUTO_COMMIT, 0)) != 0 ||
	    (ret = users->cursor(users, NULL, &c, 0)) != 0)
		goto out;
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	d.flags = DB_DBT_PARTIAL;	/* the keys alone */
	while ((ret = c->get(c, &k, &d, DB_NEXT)) == 0)
		info->users++;
	if (ret != DB_NOTFOUND)
		goto out;
	what = "checkpoint";
	ret = env->txn_checkpoint(env, 0, 0, DB_FORCE);
out:
	free(sp);
	if (c != NULL)
		c->close(c);
	if (seq != NULL)
		seq->close(seq, 0);
	if (users != NULL)
		users->close(users, 0);
	if (seqdb != NULL)
		seqdb->close(seqdb, 0);
	env->close(env, 0);
	if (ret != 0)
		return kl_fail(err, KL_STORE_FAILED, "%s: %s: %s", dir, what,
		    db_strerror(ret));
	return 0;
}

/* Counts the environment files in dir. */
static unsigned
count_files(const char *dir)
{
	DIR		*d;
	struct dirent	*e;
	unsigned	 n = 0;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (is_env_file(e->d_name))
			n++;
	closedir(d);
	return n;
}

int
store_backup(struct store *st, const char *dir,
    struct store_backup_info *info, struct kl_error *err)
{
	int	ret;

	memset(info, 0, sizeof(*info));
	if (!store_ready(st))
		return store_not_open(st, err);
	if (dir_fresh(dir, err) == -1)
		return -1;
	/* A checkpoint first: the copy's logs, and its recovery, shrink to
	 * what was written since. */
	store_busy_enter(st);
	if ((ret = st->env->txn_checkpoint(st->env, 0, 0, DB_FORCE)) == 0)
		ret = st->env->backup(st->env, dir, DB_CREATE);
	store_busy_leave(st);
	if (ret != 0)
		return store_fail(st, ret, "backup", err);
	if (sync_dir(dir, err) == -1 || store_backup_check(dir, info, err) == -1)
		return -1;
	info->files = count_files(dir);
	return 0;
}

int
store_home_in_use(const char *home, long *pid, struct kl_error *err)
{
	char		path[MAX_CONFIG_PATH + 16];
	struct flock	fl;
	int		fd;

	*pid = 0;
	snprintf(path, sizeof(path), "%s/__db.register", home);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		return kl_fail(err, KL_STORE_FAILED, "%s: %s", path,
		    strerror(errno));
	}
	/* Each process in the environment holds a lock on its slot of the
	 * registry for as long as it has the environment open. */
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_GETLK, &fl) == -1) {
		close(fd);
		return kl_fail(err, KL_STORE_FAILED, "%s: %s", path,
		    strerror(errno));
	}
	close(fd);
	if (fl.l_type != F_UNLCK)
		*pid = fl.l_pid > 0 ? (long)fl.l_pid : 1;
	return 0;
}

/* Moves every regular file of home into home/pre-restore.<time>/. */
static int
move_aside(const char *home, char *aside, size_t size, struct kl_error *err)
{
	char		 from[MAX_CONFIG_PATH + 256], to[MAX_CONFIG_PATH + 512];
	char		 stamp[32];
	struct stat	 sb;
	struct dirent	*e;
	struct tm	 tm;
	time_t		 now = time(NULL);
	DIR		*d;
	bool		 any = false;
	int		 ret = 0;

	aside[0] = '\0';
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	if (snprintf(aside, size, "%s/pre-restore.%s", home, stamp) >=
	    (int)size)
		return kl_fail(err, KL_STORE_FAILED, "db_home too long");
	if ((d = opendir(home)) == NULL)
		return kl_fail(err, KL_STORE_FAILED, "%s: %s", home,
		    strerror(errno));
	while (ret == 0 && (e = readdir(d)) != NULL) {
		snprintf(from, sizeof(from), "%s/%s", home, e->d_name);
		if (lstat(from, &sb) == -1 || !S_ISREG(sb.st_mode))
			continue;
		if (!any && mkdir(aside, 0750) == -1)
			ret = kl_fail(err, KL_STORE_FAILED, "%s: %s", aside,
			    strerror(errno));
		any = true;
		snprintf(to, sizeof(to), "%s/%s", aside, e->d_name);
		if (ret == 0 && rename(from, to) == -1)
			ret = kl_fail(err, KL_STORE_FAILED, "%s: %s", from,
			    strerror(errno));
	}
	closedir(d);
	if (!any)
		aside[0] = '\0';
	return ret == 0 ? sync_dir(home, err) : -1;
}

static int
copy_file(const char *from, const char *to, struct kl_error *err)
{
	char	buf[65536];
	ssize_t	n;
	int	in, out = -1, ret = -1;

	if ((in = open(from, O_RDONLY | O_CLOEXEC)) == -1 ||
	    (out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0660)) == -1) {
		kl_fail(err, KL_STORE_FAILED, "%s: %s", in == -1 ? from : to,
		    strerror(errno));
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			break;
	if (n != 0 || fsync(out) == -1) {
		kl_fail(err, KL_STORE_FAILED, "copy %s: %s", from,
		    strerror(errno != 0 ? errno : EIO));
		goto out;
	}
	ret = 0;
out:
	if (in != -1)
		close(in);
	if (out != -1)
		close(out);
	return ret;
}

/* dir's databases and logs into home. */
static int
copy_in(const char *dir, const char *home, struct kl_error *err)
{
	char		 from[MAX_CONFIG_PATH + 256], to[MAX_CONFIG_PATH + 256];
	struct dirent	*e;
	DIR		*d;
	int		 ret = 0;

	if ((d = opendir(dir)) == NULL)
		return kl_fail(err, KL_STORE_FAILED, "%s: %s", dir,
		    strerror(errno));
	while (ret == 0 && (e = readdir(d)) != NULL) {
		if (!is_env_file(e->d_name))
			continue;
		snprintf(from, sizeof(from), "%s/%s", dir, e->d_name);
		snprintf(to, sizeof(to), "%s/%s", home, e->d_name);
		ret = copy_file(from, to, err);
	}
	closedir(d);
	return ret == 0 ? sync_dir(home, err) : -1;
}

static int
busy(const char *home, struct kl_error *err)
{
	long	pid;

	if (store_home_in_use(home, &pid, err) == -1)
		return -1;
	if (pid != 0)
		return kl_fail(err, KL_NOT_READY, "%s: process %ld has the "
		    "environment open: stop the service first", home, pid);
	return 0;
}

/* Brings the mark up to the old environment's sequence, when that one
 * still opens (its own open does it); one that does not is replaced
 * anyway, and the mark is what it is. */
static void
mark_from_old(const char *home, enum config_durability durability)
{
	char		 path[MAX_CONFIG_PATH + 8];
	struct store	*old;
	struct kl_error	 err;
	struct stat	 sb;

	snprintf(path, sizeof(path), "%s/seq.db", home);
	if (stat(path, &sb) == -1)
		return;
	if (store_open(&old, home, durability, &err) == 0)
		store_close(old);
	else
		log_warn("restore: the environment being replaced does not "
		    "open (%s); the id mark stays as it is", err.detail);
}

int
store_restore(const char *home, const char *dir,
    enum config_durability durability, struct store_restore_info *info,
    struct kl_error *err)
{
	struct store_backup_info	 probe;
	struct store_mark		 m;
	struct store			*st = NULL;
	int				 ret = -1;

	memset(info, 0, sizeof(*info));
	if (busy(home, err) == -1)
		return -1;
	/* The backup proves itself before db_home is touched. */
	if (dir != NULL && store_backup_check(dir, &probe, err) == -1)
		return -1;
	mark_from_old(home, durability);
	if (store_mark_init(&m, home, err) == -1 ||
	    store_mark_hold(&m, err) == -1)
		return -1;
	if (busy(home, err) == -1 ||
	    store_mark_get(&m, &info->mark, err) == -1 ||
	    move_aside(home, info->aside, sizeof(info->aside), err) == -1 ||
	    (dir != NULL && (copy_in(dir, home, err) == -1 ||
	    store_backup_check(home, &probe, err) == -1)) ||
	    store_open_restored(&st, home, durability, &m, err) == -1)
		goto out;
	if (store_user_ids_reserved(st, &info->env.ids_reserved, err) == -1)
		goto out;
	info->env.users = dir != NULL ? probe.users : 0;
	info->env.files = count_files(home);
	ret = 0;
out:
	store_close(st);
	store_mark_release(&m);
	return ret;
}
