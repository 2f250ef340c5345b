/*
 * store_mark.c: the user id high-water mark file (include/store_mark.h).
 *
 * Owns the file "<db_home>.idmark": its name, format, locking and durable
 * writes. Knows nothing of Berkeley DB: app/store.c decides when to raise
 * it (before the first id of each block it reserves) and moves the
 * sequence past it at open; app/store_backup.c holds its lock through a
 * restore. Not thread-safe: one caller at a time per handle.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kl_path.h"
#include "store_mark.h"

#define MARK_WIDTH	20	/* digits: every write is the same length */

int
store_mark_path(char *buf, size_t size, const char *home)
{
	size_t	n = strlen(home);

	while (n > 1 && home[n - 1] == '/')
		n--;
	if (snprintf(buf, size, "%.*s.idmark", (int)n, home) >= (int)size)
		return -1;
	return 0;
}

/* The number in the first bytes of fd; an empty file is 0. */
static int
mark_parse(int fd, const char *path, uint64_t *mark, struct kl_error *err)
{
	char		 buf[MARK_WIDTH + 8], *end;
	ssize_t		 n;
	unsigned long long v;

	*mark = 0;
	if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) == -1)
		return kl_fail(err, KL_STORE_FAILED, "id mark %s: %s", path,
		    strerror(errno));
	if (n == 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (end == buf || *end != '\n' || end[1] != '\0' || errno != 0 ||
	    buf[0] < '0' || buf[0] > '9')
		return kl_fail(err, KL_STORE_FAILED, "id mark %s: not one "
		    "number (fix it by hand to at least the highest user id "
		    "ever handed out)", path);
	*mark = v;
	return 0;
}

int
store_mark_peek(const char *home, uint64_t *mark, bool *exists,
    struct kl_error *err)
{
	char	path[MAX_CONFIG_PATH];
	int	fd, ret;

	*mark = 0;
	*exists = false;
	if (store_mark_path(path, sizeof(path), home) == -1)
		return kl_fail(err, KL_STORE_FAILED, "id mark: path too long");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		return kl_fail(err, KL_STORE_FAILED, "id mark %s: %s", path,
		    strerror(errno));
	}
	*exists = true;
	ret = mark_parse(fd, path, mark, err);
	close(fd);
	return ret;
}

/* A new file's name is durable only once its directory is. */
static int
sync_parent(const char *path, struct kl_error *err)
{
	char	dir[MAX_CONFIG_PATH];
	int	fd, ret = 0;

	if (kl_path_parent(dir, sizeof(dir), path) == -1)
		return kl_fail(err, KL_STORE_FAILED, "id mark: path too long");
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(fd) == -1)
		ret = kl_fail(err, KL_STORE_FAILED, "id mark directory %s: %s",
		    dir, strerror(errno));
	if (fd != -1)
		close(fd);
	return ret;
}

int
store_mark_init(struct store_mark *m, const char *home, struct kl_error *err)
{
	m->fd = -1;
	m->held = false;
	if (store_mark_path(m->path, sizeof(m->path), home) == -1)
		return kl_fail(err, KL_STORE_FAILED, "id mark: path too long");
	return 0;
}

/* Opens the file, creating it (and making its name durable) if missing. */
static int
mark_open(struct store_mark *m, struct kl_error *err)
{
	if ((m->fd = open(m->path, O_RDWR | O_CLOEXEC)) != -1)
		return 0;
	if (errno == ENOENT) {
		m->fd = open(m->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		    0640);
		if (m->fd == -1 && errno == EEXIST)	/* another process */
			m->fd = open(m->path, O_RDWR | O_CLOEXEC);
		else if (m->fd != -1 && sync_parent(m->path, err) == -1) {
			close(m->fd);
			m->fd = -1;
			return -1;
		}
	}
	if (m->fd == -1)
		return kl_fail(err, KL_STORE_FAILED, "id mark %s: %s (the "
		    "service's user must be able to create and write it, "
		    "beside db_home)", m->path, strerror(errno));
	return 0;
}

int
store_mark_lock(struct store_mark *m, int how, struct kl_error *err)
{
	if (m->held)
		return 0;
	if (mark_open(m, err) == -1)
		return -1;
	while (flock(m->fd, how) == -1) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK)
			kl_fail(err, KL_STORE_FAILED, "id mark %s: locked by a "
			    "restore in progress (kakao-login-admin restore); "
			    "the store opens once it ends", m->path);
		else
			kl_fail(err, KL_STORE_FAILED, "id mark %s: lock: %s",
			    m->path, strerror(errno));
		close(m->fd);
		m->fd = -1;
		return -1;
	}
	return 0;
}

void
store_mark_unlock(struct store_mark *m)
{
	if (m->held || m->fd == -1)
		return;
	close(m->fd);	/* and its lock */
	m->fd = -1;
}

int
store_mark_hold(struct store_mark *m, struct kl_error *err)
{
	if (store_mark_lock(m, LOCK_EX, err) == -1)
		return -1;
	m->held = true;
	return 0;
}

void
store_mark_release(struct store_mark *m)
{
	m->held = false;
	store_mark_unlock(m);
}

int
store_mark_get(struct store_mark *m, uint64_t *mark, struct kl_error *err)
{
	return mark_parse(m->fd, m->path, mark, err);
}

int
store_mark_raise(struct store_mark *m, uint64_t to, struct kl_error *err)
{
	char		buf[MARK_WIDTH + 2];
	uint64_t	cur;
	int		ret = -1, len;

	if (store_mark_lock(m, LOCK_EX, err) == -1)
		return -1;
	if (store_mark_get(m, &cur, err) == -1)
		goto out;
	if (cur >= to) {
		ret = 0;
		goto out;
	}
	len = snprintf(buf, sizeof(buf), "%0*" PRIu64 "\n", MARK_WIDTH, to);
	/* One short write at offset 0, always the same length: nothing
	 * to truncate, and a reader sees the old number or the new. */
	if (pwrite(m->fd, buf, (size_t)len, 0) != len) {
		kl_fail(err, KL_STORE_FAILED, "id mark %s: write: %s", m->path,
		    errno != 0 ? strerror(errno) : "short write");
		goto out;
	}
	if (fdatasync(m->fd) == -1) {
		kl_fail(err, KL_STORE_FAILED, "id mark %s: fsync: %s", m->path,
		    strerror(errno));
		goto out;
	}
	ret = 0;
out:
	store_mark_unlock(m);
	return ret;
}
