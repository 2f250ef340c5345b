/*
 * store_home.h: what -t checks of db_home, without opening the environment
 * (joining it with DB_REGISTER | DB_RECOVER would run recovery under the
 * live workers). Start-up only; no state.
 */
#ifndef KL_STORE_HOME_H
#define KL_STORE_HOME_H

#include "kl_error.h"

/* Could the calling user open the store in home? Yes when home is a
 * directory it may read, write and search, and every regular file in it
 * (region files, logs, databases) is one it may read and write; or, when
 * home is missing, when its parent lets it create home (the store makes it,
 * one level, at its first open). Uses access(2): call it after the
 * privilege drop. Returns 0, or -1 with err naming db_home, the file and
 * the reason (KL_BAD_CONFIG). */
int	store_check_home(const char *home, struct kl_error *err);

#endif
