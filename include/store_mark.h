/*
 * store_mark.h: the user id high-water mark, a small file kept beside
 * db_home (never inside it): the highest user id any process may have
 * handed out. A restored, imported or recreated environment is moved past
 * it, so no id is ever answered twice (README: Reliability).
 *
 * The file is "<db_home>.idmark" (db_home without its trailing slashes):
 * on db_home's parent file system, so it survives a restore (which
 * replaces db_home's files) and is still there when db_home's own disk is
 * not mounted. One decimal number and a newline, rewritten in place and
 * fsync'd; writers take an exclusive flock(2), and an opening worker a
 * shared one, so a restore (which holds the exclusive lock throughout) is
 * never seen half-done. A struct store_mark names one mark; its functions
 * are not thread-safe (the store calls them under its id lock).
 */
#ifndef KL_STORE_MARK_H
#define KL_STORE_MARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kl_error.h"
#include "kl_limits.h"

struct store_mark {
	int	fd;		/* open only while locked; -1: not */
	bool	held;		/* the caller holds the exclusive lock */
	char	path[MAX_CONFIG_PATH];
};

/* "<home>.idmark" into buf. -1 when it does not fit. */
int	store_mark_path(char *buf, size_t size, const char *home);

/* Reads the mark of home without opening it for writing (-t, tools):
 * *exists false and *mark 0 when there is no file; an empty file is 0. A
 * file that is not one number fails (KL_STORE_FAILED). */
int	store_mark_peek(const char *home, uint64_t *mark, bool *exists,
	    struct kl_error *err);

/* Names home's mark in m; opens nothing yet. */
int	store_mark_init(struct store_mark *m, const char *home,
	    struct kl_error *err);

/* Opens the file (creating it, and then fsync'ing its directory, when
 * missing) and takes flock(2): LOCK_SH or LOCK_EX, optionally | LOCK_NB;
 * nothing when m->held. store_mark_unlock closes it again. The file is
 * opened afresh each time, so a mark that became unwritable fails here. */
int	store_mark_lock(struct store_mark *m, int how, struct kl_error *err);
void	store_mark_unlock(struct store_mark *m);

/* A restore's: the exclusive lock taken and kept (m->held) until
 * store_mark_release(). */
int	store_mark_hold(struct store_mark *m, struct kl_error *err);
void	store_mark_release(struct store_mark *m);

/* The mark's value (call under a lock). */
int	store_mark_get(struct store_mark *m, uint64_t *mark,
	    struct kl_error *err);

/* Raises the mark to at least to, under the exclusive lock: written and
 * fsync'd before it returns 0. Never lowers it. */
int	store_mark_raise(struct store_mark *m, uint64_t to,
	    struct kl_error *err);

#endif
