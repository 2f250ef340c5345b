/*
 * unit_util.h: helpers the unit suites share. Header-only, static, so each
 * suite stays one program built from one file.
 */
#ifndef KL_UNIT_UTIL_H
#define KL_UNIT_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Removes dir and everything below it (a suite's mkdtemp() directory),
 * and the store's id mark beside it ("<dir>.idmark", store_mark.h). */
static void
remove_tree(const char *dir)
{
	char		 path[512];
	DIR		*d;
	struct dirent	*e;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path) == -1)
			remove_tree(path);
	}
	closedir(d);
	rmdir(dir);
	snprintf(path, sizeof(path), "%s.idmark", dir);
	unlink(path);
}

#endif
