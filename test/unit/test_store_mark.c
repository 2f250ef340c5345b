/*
 * test_store_mark.c: the user id high-water mark (app/store_mark.c, its
 * use in app/store.c) and the restore and init of app/store_backup.c, on
 * real environments in mkdtemp() directories.
 *
 * The mark covers every id handed out (one write per block), a sequence
 * behind the mark moves past it, a mark behind the sequence (or none: a
 * host of an older release) is raised to it, a missing environment is
 * refused while the mark says ids were handed out (until init or
 * restore), a mark that cannot be written fails the login rather than
 * hand out an id it does not cover, and a backup restored hands out no id
 * answered after the backup was taken.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "store_backup.h"
#include "store_home.h"
#include "store_mark.h"

#include "unit_util.h"

#define NOW	((time_t)1700000000)

struct fixture {
	char	dir[128];	/* mkdtemp(); holds home and backups */
	char	home[160];
};

static int
setup(void **state)
{
	struct fixture	*fx = calloc(1, sizeof(*fx));
	const char	*t = getenv("TMPDIR");

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/kl-test-mark-XXXXXX",
	    t != NULL && *t != '\0' ? t : "/tmp");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->home, sizeof(fx->home), "%s/db", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	remove_tree(fx->dir);
	free(fx);
	return 0;
}

static struct store *
open_ok(const char *home)
{
	struct store	*st;
	struct kl_error	 err;

	if (store_open(&st, home, DURABILITY_SYNC, &err) != 0)
		fail_msg("store_open %s: %s", home, err.detail);
	return st;
}

/* A login of kakao_id; its user id. */
static uint64_t
login(struct store *st, int64_t kakao_id)
{
	struct store_login	in;
	struct store_user	u;
	struct kl_error		err;

	memset(&in, 0, sizeof(in));
	in.kakao_id = kakao_id;
	in.nickname = "n";
	if (store_user_login(st, &in, NOW, &u, &err) != 0)
		fail_msg("login %lld: %s", (long long)kakao_id, err.detail);
	return u.user_id;
}

static uint64_t
mark_of(const char *home)
{
	struct kl_error	err;
	uint64_t	mark;
	bool		exists;

	if (store_mark_peek(home, &mark, &exists, &err) != 0)
		fail_msg("peek: %s", err.detail);
	assert_true(exists);
	return mark;
}

static void
mark_set(const char *home, const char *text)
{
	char	path[256];
	FILE	*f;

	snprintf(path, sizeof(path), "%s.idmark", home);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* Removes home's files, as an unmounted disk or a lost one shows it. */
static void
empty_home(const char *home)
{
	remove_tree(home);	/* also the mark: put it back */
}

static void
test_mark_covers_each_block(void **state)
{
	struct fixture	*fx = *state;
	struct store	*st = open_ok(fx->home);
	int		 i;

	/* Opened, nothing handed out: the mark exists and says 0. */
	assert_int_equal(mark_of(fx->home), 0);
	assert_int_equal(login(st, 1000), 1);
	assert_int_equal(mark_of(fx->home), STORE_SEQ_CACHE);
	/* A repeat login takes no id, and the mark stays. */
	assert_int_equal(login(st, 1000), 1);
	for (i = 2; i <= STORE_SEQ_CACHE; i++)
		assert_int_equal(login(st, 1000 + i), (uint64_t)i);
	assert_int_equal(mark_of(fx->home), STORE_SEQ_CACHE);
	assert_int_equal(login(st, 5000), STORE_SEQ_CACHE + 1);
	assert_int_equal(mark_of(fx->home), 2 * STORE_SEQ_CACHE);
	store_close(st);
}

static void
test_sequence_behind_mark(void **state)
{
	struct fixture	*fx = *state;
	struct store	*st = open_ok(fx->home);

	assert_int_equal(login(st, 1), 1);
	store_close(st);
	/* Ids up to 1000 were handed out elsewhere (before a restore). */
	mark_set(fx->home, "1000\n");
	st = open_ok(fx->home);
	assert_int_equal(login(st, 2), 1001);
	assert_int_equal(login(st, 1), 1);	/* the old user keeps its id */
	store_close(st);
	assert_int_equal(mark_of(fx->home), 1000 + STORE_SEQ_CACHE);
}

static void
test_mark_behind_sequence(void **state)
{
	struct fixture	*fx = *state;
	struct store	*st = open_ok(fx->home);
	int		 i;

	for (i = 1; i <= 20; i++)
		assert_int_equal(login(st, i), (uint64_t)i);
	store_close(st);
	mark_set(fx->home, "5\n");
	st = open_ok(fx->home);
	/* Raised at open to what the sequence reserved (two blocks). */
	assert_int_equal(mark_of(fx->home), 2 * STORE_SEQ_CACHE);
	assert_int_equal(login(st, 100), 2 * STORE_SEQ_CACHE + 1);
	store_close(st);
}

static void
test_missing_mark_from_sequence(void **state)
{
	struct fixture	*fx = *state;
	struct store	*st = open_ok(fx->home);
	char		 path[256];

	assert_int_equal(login(st, 1), 1);
	store_close(st);
	/* A host of a release before the mark: made from the sequence. */
	snprintf(path, sizeof(path), "%s.idmark", fx->home);
	assert_int_equal(unlink(path), 0);
	st = open_ok(fx->home);
	assert_int_equal(mark_of(fx->home), STORE_SEQ_CACHE);
	assert_int_equal(login(st, 2), STORE_SEQ_CACHE + 1);
	store_close(st);
}

static void
test_malformed_mark_refused(void **state)
{
	struct fixture	*fx = *state;
	struct store	*st = open_ok(fx->home);
	struct kl_error	 err;

	store_close(st);
	mark_set(fx->home, "12x\n");
	assert_int_equal(store_open(&st, fx->home, DURABILITY_NOSYNC, &err),
	    -1);
	assert_non_null(strstr(err.detail, "not one number"));
}

static void
test_missing_environment_refused(void **state)
{
	struct fixture			*fx = *state;
	struct store			*st = open_ok(fx->home);
	struct store_restore_info	 info;
	struct kl_error			 err;
	char				 mark[32];

	assert_int_equal(login(st, 1), 1);
	store_close(st);
	snprintf(mark, sizeof(mark), "%d\n", STORE_SEQ_CACHE);
	empty_home(fx->home);
	assert_int_equal(mkdir(fx->home, 0750), 0);
	mark_set(fx->home, mark);
	/* The service does not start a fresh environment at 1 ... */
	assert_int_equal(store_open(&st, fx->home, DURABILITY_NOSYNC, &err),
	    -1);
	assert_non_null(strstr(err.detail, "holds no environment"));
	assert_non_null(strstr(err.detail, "mounted"));
	/* ... -t says so too ... */
	assert_int_equal(store_check_home(fx->home, &err), -1);
	assert_non_null(strstr(err.detail, "holds no environment"));
	/* ... and init starts it empty, past the mark. */
	assert_int_equal(store_restore(fx->home, NULL, DURABILITY_NOSYNC,
	    &info, &err), 0);
	assert_int_equal(info.mark, STORE_SEQ_CACHE);
	assert_int_equal(info.env.ids_reserved, STORE_SEQ_CACHE);
	assert_int_equal(store_check_home(fx->home, &err), 0);
	st = open_ok(fx->home);
	assert_int_equal(login(st, 2), STORE_SEQ_CACHE + 1);
	store_close(st);
}

static void
test_backup_restore_no_reuse(void **state)
{
	struct fixture			*fx = *state;
	struct store			*st = open_ok(fx->home);
	struct store_backup_info	 b;
	struct store_restore_info	 info;
	struct store_user		 u;
	struct kl_error			 err;
	char				 bdir[200], fresh[200];
	uint64_t			 after[40], id;
	int				 i, j;

	for (i = 1; i <= 3; i++)
		login(st, i);
	store_close(st);
	snprintf(bdir, sizeof(bdir), "%s/backup", fx->dir);
	if (store_join(&st, fx->home, DURABILITY_NOSYNC, &err) != 0)
		fail_msg("join: %s", err.detail);
	if (store_backup(st, bdir, &b, &err) != 0)
		fail_msg("backup: %s", err.detail);
	assert_int_equal(b.users, 3);
	assert_int_equal(b.ids_reserved, STORE_SEQ_CACHE);
	/* Not into a directory that holds something. */
	assert_int_equal(store_backup(st, bdir, &b, &err), -1);
	assert_int_equal(err.status, KL_BAD_REQUEST);
	store_close(st);
	/* More users after the backup, over several processes' blocks. */
	for (i = 0; i < 40; i++) {
		st = open_ok(fx->home);
		after[i] = login(st, 100 + i);
		store_close(st);
	}
	assert_int_equal(store_restore(fx->home, bdir, DURABILITY_NOSYNC,
	    &info, &err), 0);
	assert_true(info.mark >= after[39]);
	assert_int_equal(info.env.users, 3);
	assert_non_null(strstr(info.aside, "/pre-restore."));
	st = open_ok(fx->home);
	assert_int_equal(store_user_get(st, 2, &u, &err), 0);
	assert_int_equal(u.user_id, 2);
	assert_int_equal(store_user_get(st, 100, &u, &err), -1);
	for (i = 0; i < 20; i++) {
		id = login(st, 500 + i);
		assert_true(id > STORE_SEQ_CACHE);
		for (j = 0; j < 40; j++)
			assert_true(id != after[j]);
	}
	store_close(st);
	/* A fresh host (no mark, another directory) opens the backup. */
	snprintf(fresh, sizeof(fresh), "%s/fresh", fx->dir);
	assert_int_equal(rename(bdir, fresh), 0);
	st = open_ok(fresh);
	assert_int_equal(store_user_get(st, 3, &u, &err), 0);
	assert_int_equal(login(st, 900), STORE_SEQ_CACHE + 1);
	store_close(st);
}

static void
test_restore_refused_while_open(void **state)
{
	struct fixture			*fx = *state;
	struct store_restore_info	 info;
	struct kl_error			 err;
	struct store			*st;
	long				 pid;
	int				 p[2], q[2], status;
	pid_t				 child;
	char				 c;

	st = open_ok(fx->home);
	store_close(st);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(pipe(q), 0);
	if ((child = fork()) == 0) {
		struct store	*cst;
		struct kl_error	 cerr;

		if (store_open(&cst, fx->home, DURABILITY_NOSYNC, &cerr) != 0) {
			fprintf(stderr, "child: %s\n", cerr.detail);
			_exit(1);
		}
		close(q[1]);
		(void)write(p[1], "x", 1);
		(void)read(q[0], &c, 1);	/* until the parent closes q */
		store_close(cst);
		_exit(0);
	}
	close(p[1]);
	close(q[0]);
	if (read(p[0], &c, 1) != 1) {
		waitpid(child, &status, 0);
		fail_msg("the child did not open the store: status %#x", status);
	}
	assert_int_equal(store_home_in_use(fx->home, &pid, &err), 0);
	assert_int_equal(pid, child);
	assert_int_equal(store_restore(fx->home, NULL, DURABILITY_NOSYNC,
	    &info, &err), -1);
	assert_int_equal(err.status, KL_NOT_READY);
	assert_non_null(strstr(err.detail, "stop the service"));
	close(q[1]);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(p[0]);
}

/* In a child as nobody when root (root writes any file): a mark the
 * process may not write fails the first login of a new block, with the
 * reason, and hands out nothing; once writable, the same block goes on. */
static void
test_unwritable_mark_fails_login(void **state)
{
	struct fixture	*fx = *state;
	pid_t		 child;
	int		 status;

	if ((child = fork()) == 0) {
		struct store_login	 in;
		struct store_user	 u;
		struct kl_error		 err;
		struct passwd		*pw = getpwnam("nobody");
		struct store		*st;
		char			 path[256];
		int			 i;

		if (geteuid() == 0 && (pw == NULL ||
		    chown(fx->dir, pw->pw_uid, pw->pw_gid) == -1 ||
		    setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1))
			_exit(10);
		if (store_open(&st, fx->home, DURABILITY_NOSYNC, &err) != 0)
			_exit(11);
		for (i = 1; i <= STORE_SEQ_CACHE; i++)
			if (login(st, i) != (uint64_t)i)
				_exit(12);
		snprintf(path, sizeof(path), "%s.idmark", fx->home);
		if (chmod(path, 0440) == -1)
			_exit(13);
		memset(&in, 0, sizeof(in));
		in.kakao_id = 999;
		if (store_user_login(st, &in, NOW, &u, &err) != -1 ||
		    err.status != KL_STORE_FAILED ||
		    strstr(err.detail, "id mark") == NULL ||
		    strstr(err.detail, "Permission denied") == NULL)
			_exit(14);
		if (store_user_get(st, 999, &u, &err) != -1)
			_exit(15);
		if (chmod(path, 0640) == -1)
			_exit(16);
		if (login(st, 999) != STORE_SEQ_CACHE + 1)
			_exit(17);
		store_close(st);
		if (mark_of(fx->home) != 2 * STORE_SEQ_CACHE)
			_exit(18);
		_exit(0);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mark_covers_each_block,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_sequence_behind_mark,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_behind_sequence,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_mark_from_sequence,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_mark_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_environment_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_backup_restore_no_reuse,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_refused_while_open,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_mark_fails_login,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
