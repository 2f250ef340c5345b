/*
 * test_store_home.c: store_check_home, the -t check of db_home, on real
 * directories. What access(2) refuses only to an unprivileged user (an
 * unwritable directory or file) is tested as that user: ourselves, or
 * nobody in a child when we run as root.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "store_home.h"
#include "unit_util.h"

static char	dir[] = "/tmp/kl-test-home-XXXXXX";

static void
refused(const char *home, const char *want)
{
	struct kl_error	err;

	kl_error_clear(&err);
	if (store_check_home(home, &err) != -1)
		fail_msg("accepted: %s", home);
	assert_int_equal(err.status, KL_BAD_CONFIG);
	assert_non_null(strstr(err.detail, "db_home"));
	if (strstr(err.detail, want) == NULL)
		fail_msg("\"%s\" lacks \"%s\"", err.detail, want);
}

static void
accepted(const char *home)
{
	struct kl_error	err;

	if (store_check_home(home, &err) != 0)
		fail_msg("refused: %s: %s", home, err.detail);
}

static void
test_shapes(void **state)
{
	char	p[128];
	int	fd;

	(void)state;
	refused("", "not set");
	accepted(dir);				/* empty, ours */
	snprintf(p, sizeof(p), "%s/new", dir);
	accepted(p);				/* missing: the store makes it */
	assert_int_equal(access(p, F_OK), -1);	/* and -t did not */
	snprintf(p, sizeof(p), "%s/new/", dir);
	accepted(p);				/* the same, spelt with a slash */
	snprintf(p, sizeof(p), "%s/no/db", dir);
	refused(p, "missing");			/* the store's mkdir is one level */
	snprintf(p, sizeof(p), "%s/file", dir);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd != -1);
	close(fd);
	refused(p, "not a directory");
	snprintf(p, sizeof(p), "%s/file/db", dir);
	refused(p, "Not a directory");	/* its "parent" is a file */
}

/* What access(2) refuses: a file of the environment, then the directory,
 * made unwritable. Returns NULL or what went wrong. As an unprivileged
 * user only (access(2) lets root write anything). */
static const char *
unwritable_refused(const char *home)
{
	struct kl_error	err;
	char		f[160];

	snprintf(f, sizeof(f), "%s/__db.001", home);
	if (chmod(f, 0400) == -1)
		return "chmod __db.001";
	if (store_check_home(home, &err) != -1 ||
	    strstr(err.detail, "__db.001") == NULL)
		return "a read-only __db.001 accepted, or not named";
	if (chmod(f, 0600) == -1 || chmod(home, 0500) == -1)
		return "chmod";
	if (store_check_home(home, &err) != -1 ||
	    strstr(err.detail, "not writable") == NULL)
		return "a read-only db_home accepted, or not said so";
	if (chmod(home, 0700) == -1)
		return "chmod back";
	return NULL;
}

static void
chown_tree(const char *path, uid_t uid, gid_t gid)
{
	char		 p[PATH_MAX];
	DIR		*d;
	struct dirent	*e;

	assert_int_equal(chown(path, uid, gid), 0);
	if ((d = opendir(path)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		chown_tree(p, uid, gid);
	}
	closedir(d);
}

/* A store opened here is accepted; its files made unwritable are not (as
 * nobody, in a child, when we are root). */
static void
test_environment_files(void **state)
{
	struct store	*st;
	struct kl_error	 err;
	const char	*why;
	char		 home[128];
	pid_t		 pid;
	int		 status;

	(void)state;
	snprintf(home, sizeof(home), "%s/env", dir);
	assert_int_equal(store_open(&st, home, DURABILITY_SYNC, &err), 0);
	store_close(st);
	accepted(home);
	if (geteuid() != 0) {
		if ((why = unwritable_refused(home)) != NULL)
			fail_msg("%s", why);
		return;
	}
	chown_tree(dir, 65534, 65534);
	if ((pid = fork()) == 0) {
		if (setgid(65534) == -1 || setuid(65534) == -1)
			_exit(2);
		why = unwritable_refused(home);
		if (why != NULL)
			fprintf(stderr, "as nobody: %s\n", why);
		_exit(why == NULL ? 0 : 1);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	chown_tree(dir, 0, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char	p[160];

	(void)state;
	snprintf(p, sizeof(p), "%s/env", dir);
	remove_tree(p);
	remove_tree(dir);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shapes),
		cmocka_unit_test(test_environment_files),
	};

	return cmocka_run_group_tests_name("store_home", tests, setup,
	    teardown);
}
