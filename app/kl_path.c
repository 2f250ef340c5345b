/*
 * kl_path.c: the parent directory of a configured path (see kl_path.h).
 * No state, no I/O.
 */
#include <stdio.h>
#include <string.h>

#include "kl_path.h"

int
kl_path_parent(char *dir, size_t size, const char *path)
{
	char	*slash;

	if (snprintf(dir, size, "%s", path) >= (int)size)
		return -1;
	while ((slash = strrchr(dir, '/')) != NULL && slash[1] == '\0' &&
	    slash != dir)
		*slash = '\0';
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, size, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	return 0;
}
