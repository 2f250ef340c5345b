/*
 * admin_user.h: a user as the admin tool prints it (users show --json,
 * users list --json, users export) and reads it back (users import).
 * See app/admin_user.c. Thread-safe.
 */
#ifndef KL_ADMIN_USER_H
#define KL_ADMIN_USER_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "store.h"

/* "active", "unlinked" or "deactivated". */
const char	*admin_user_status_name(enum store_user_status s);

/* t as UTC ISO 8601 into buf (at least 21 bytes), "" for 0; returns buf. */
const char	*admin_iso_time(time_t t, char *buf, size_t size);

/* The user as a JSON object, every field of its record; the caller
 * json_decref()s it (NULL: out of memory). */
json_t		*admin_user_json(const struct store_user *u);

/* One line of an export (len bytes, no newline) into *u: 0, or -1 with
 * the reason, naming no field value, in why. Ids: user id 1 ..
 * ADMIN_IMPORT_MAX_ID, Kakao id positive. */
int		 admin_user_parse(const char *line, size_t len,
		    struct store_user *u, char *why, size_t whysize);

#endif
