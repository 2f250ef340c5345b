/*
 * kl_path.h: the directory a configured path lives in, for the start-up
 * checks of log_file (log layer) and db_home (store layer), so both name
 * the same directory for the same spelling. Pure; thread-safe.
 */
#ifndef KL_PATH_H
#define KL_PATH_H

#include <stddef.h>

/* Writes into dir (size bytes) the directory that holds path, as mkdir(2)
 * or open(2) with O_CREAT would need it: "." for a bare name, "/" at the
 * top; trailing slashes of path are ignored ("db/" is "db"). Returns 0, or
 * -1 when path does not fit in size. */
int	kl_path_parent(char *dir, size_t size, const char *path);

#endif
