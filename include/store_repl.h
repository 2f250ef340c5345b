/*
 * store_repl.h: one store as a site of a Berkeley DB replication group
 * (the Replication Manager, repmgr), when repl_site is configured.
 *
 * What the layers above see: the site's role, and two failures a write
 * can end in (store_fail maps them): KL_NO_MASTER, this site cannot write
 * now (a replica, or an election is on), and KL_NOT_DURABLE, the write
 * committed here but the group did not acknowledge it under
 * repl_ack_policy within repl_ack_timeout_ms (nothing may be answered as
 * done). Without repl_site nothing here is used and the store is exactly
 * the single site it always was.
 *
 * Thread-safety: store_repl_configure() once, before the first store is
 * made; the rest from any thread.
 */
#ifndef KL_STORE_REPL_H
#define KL_STORE_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "kl_error.h"
#include "store.h"

enum store_role {
	STORE_ROLE_SINGLE = 0,	/* no replication configured */
	STORE_ROLE_MASTER,	/* this site takes the group's writes */
	STORE_ROLE_REPLICA,	/* a client that knows its master */
	STORE_ROLE_NO_MASTER	/* a client during an election, or joining */
};

/* The replication keys of cfg for every store this process makes from now
 * on (the workers' and the admin tool's). cfg must outlive those stores
 * (it is the process's loaded configuration); NULL or a cfg without
 * repl_site: single site. */
void		 store_repl_configure(const struct config *cfg);

/* This site's role, read from the engine at most every
 * STORE_ROLE_CACHE_MS (a cached value may lag a role change by that
 * much; the engine itself refuses a write a replica tries). */
enum store_role	 store_role(struct store *st);
const char	*store_role_name(enum store_role role);

/* One site of the group as this site sees it (store_repl_group). */
struct store_repl_site {
	char		 host[MAX_REPL_HOST];
	unsigned	 port;
	bool		 self;
	bool		 master;
	bool		 connected;	/* to this site; the local one: true */
	/* The end of its log (each site is asked over a channel; a site
	 * that does not answer within a second: known false). */
	bool		 known;
	uint32_t	 log_file, log_offset;
};

/* The group's sites (this one first) into out[max]: *n of them. Returns
 * 0, or -1 with err (single site: KL_NOT_CONFIGURED). How far a replica
 * is behind is the master's log end less its own. */
int		 store_repl_group(struct store *st, struct store_repl_site *out,
		    size_t max, size_t *n, struct kl_error *err);

/* Removes the stopped site host:port (as store_repl_group names it) from
 * the group's membership, through the master, so that elections and
 * acknowledgements stop counting it. Refused (-1, KL_BAD_REQUEST): this
 * site, the master, a site this one is connected to (still running).
 * KL_NOT_FOUND: no such site; KL_NO_MASTER: no master known, or the change
 * was not acknowledged (DB_REP_UNAVAIL); single site: KL_NOT_CONFIGURED. */
int		 store_repl_site_remove(struct store *st, const char *host,
		    unsigned port, struct kl_error *err);

#endif
