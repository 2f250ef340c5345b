/*
 * store_admin.c: the admin tool's reads of the store (see store_admin.h).
 *
 * Owns nothing: it reads users.db through the users_by_id index, the
 * environment's directory, and asks for checkpoints. Each read copies a
 * batch out in one short read-committed transaction, so the tool never
 * holds a lock while it prints. Knows nothing of JSON or of the tool's
 * commands. Thread-safe as the store is.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <string.h>

#include <db.h>

#include "store_admin.h"
#include "store_internal.h"

struct batch_arg {
	uint64_t	 after;
	size_t		 max;
	size_t		 n;
	int64_t		*kakao;		/* max Kakao ids, in user id order */
	uint64_t	 last;		/* the last user id read */
};

/* One attempt: up to max entries of the users_by_id index from the first
 * user id above after, read through the store's raw handle of the index
 * (store_join() opens it): the index alone, since reading each user's
 * record here would lock index then record, the reverse of a login's
 * order, and under logins that is a deadlock whose victim may be the
 * login (seen: logins answered 500 while the tool listed users). */
static int
batch_attempt(struct store *st, DB_TXN *txn, void *arg, bool *wrote)
{
	struct batch_arg	*a = arg;
	DBC			*c;
	DBT			 key, data;
	unsigned char		 kbuf[8], dbuf[8];
	u_int32_t		 op = DB_SET_RANGE;
	int			 ret;

	(void)wrote;
	a->n = 0;
	if (st->users_by_id_raw == NULL)
		return EINVAL;		/* not a joined store */
	if ((ret = st->users_by_id_raw->cursor(st->users_by_id_raw, txn, &c,
	    DB_READ_COMMITTED)) != 0)
		return ret;
	store_put_u64(kbuf, a->after + 1);
	memset(&key, 0, sizeof(key));
	key.data = kbuf;
	key.size = 8;
	key.ulen = 8;
	key.flags = DB_DBT_USERMEM;
	store_usermem(&data, dbuf, sizeof(dbuf));
	while (a->n < a->max &&
	    (ret = c->get(c, &key, &data, op)) == 0) {
		op = DB_NEXT;
		if (key.size == 8 && data.size == 8) {
			a->kakao[a->n++] = (int64_t)store_get_u64(dbuf);
			a->last = store_get_u64(kbuf);
		}
	}
	c->close(c);
	return ret == DB_NOTFOUND ? 0 : ret;
}

int
store_user_batch(struct store *st, uint64_t *after, struct store_user *out,
    size_t max, size_t *n, bool *end, struct kl_error *err)
{
	int64_t			kakao[ADMIN_BATCH];
	struct batch_arg	a = { .after = *after, .kakao = kakao,
				      .max = max > ADMIN_BATCH ? ADMIN_BATCH :
				      max };
	size_t			i;
	int			ret;

	*n = 0;
	*end = true;
	if (!store_ready(st))
		return kl_fail(err, KL_STORE_FAILED, "store not open");
	if (*after == UINT64_MAX || a.max == 0)
		return 0;
	ret = store_txn_run(st, DB_READ_COMMITTED, false, batch_attempt, &a);
	if (ret != 0)
		return store_fail(st, ret, "users read", err);
	*end = a.n < a.max;
	if (a.n > 0)
		*after = a.last;
	/* Then each record on its own (a deleted one is skipped): one
	 * lock at a time, never two. */
	for (i = 0; i < a.n; i++) {
		if (store_user_get(st, kakao[i], &out[*n], err) == 0)
			(*n)++;
		else if (err->status != KL_NOT_FOUND)
			return -1;
	}
	kl_error_clear(err);
	return 0;
}

/* "log.0000000001": Berkeley DB's log file names. */
static bool
is_log_file(const char *name)
{
	return strncmp(name, "log.", 4) == 0 && strlen(name) == 14 &&
	    strspn(name + 4, "0123456789") == 10;
}

static bool
is_db_file(const char *name)
{
	size_t	n = strlen(name);

	return n > 3 && strcmp(name + n - 3, ".db") == 0;
}

int
store_disk_usage(struct store *st, struct store_disk *d,
    struct kl_error *err)
{
	DIR		*dir;
	struct dirent	*e;
	struct stat	 sb;

	memset(d, 0, sizeof(*d));
	if ((dir = opendir(st->home)) == NULL)
		return kl_fail(err, KL_STORE_FAILED, "%s: %s", st->home,
		    strerror(errno));
	while ((e = readdir(dir)) != NULL) {
		bool	log = is_log_file(e->d_name);

		if (!log && !is_db_file(e->d_name))
			continue;
		if (fstatat(dirfd(dir), e->d_name, &sb,
		    AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(sb.st_mode))
			continue;	/* removed meanwhile (a log) */
		if (log) {
			d->log_bytes += (uint64_t)sb.st_size;
			d->log_files++;
		} else {
			d->db_bytes += (uint64_t)sb.st_size;
			d->db_files++;
		}
	}
	closedir(dir);
	return 0;
}

int
store_checkpoint(struct store *st, struct kl_error *err)
{
	int	ret;

	if (!store_ready(st))
		return kl_fail(err, KL_STORE_FAILED, "store not open");
	if ((ret = st->env->txn_checkpoint(st->env, 0, 0, DB_FORCE)) != 0)
		return store_fail(st, ret, "checkpoint", err);
	return 0;
}
