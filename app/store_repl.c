/*
 * store_repl.c: the store as one site of a replication group (see
 * store_repl.h), on Berkeley DB 5.3's Replication Manager.
 *
 * Owns the environment's replication settings (sites, acknowledgement
 * policy, time-outs, priority), the start of repmgr, its event callback,
 * the role a site reports, and the group as the admin tool sees and
 * changes it (its sites, the removal of a stopped one). Every worker process of a site calls
 * repmgr_start(): the first becomes the site's replication process (it
 * listens on repl_site and runs the message threads), the others are
 * subordinates that write through it. When the replication process exits,
 * 5.3 hands its role to no one: the next process to start (multiwatch's
 * replacement) takes it, or, when it died, the recovery its death causes
 * makes every process reopen and the first takes it.
 *
 * Must not touch the databases themselves (app/store.c opens them) nor
 * know HTTP. Thread-safety: the configuration is set once before any store
 * exists; the role cache is atomics; the permanence flag is per thread,
 * set by the engine's event callback in the thread whose commit waited for
 * acknowledgements (__repmgr_send fires DB_EVENT_REP_PERM_FAILED there).
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <db.h>

#include "kl_clock.h"
#include "log.h"
#include "store.h"
#include "store_forward.h"
#include "store_internal.h"
#include "store_repl.h"

static const struct config	*repl_cfg;	/* NULL: single site */
static __thread bool		 perm_failed;	/* this thread's last commit */

void
store_repl_configure(const struct config *cfg)
{
	repl_cfg = cfg != NULL && config_replicated(cfg) ? cfg : NULL;
}

bool
store_repl_on(void)
{
	return repl_cfg != NULL;
}

u_int32_t
store_repl_env_flags(void)
{
	return repl_cfg != NULL ? DB_INIT_REP : 0;
}

/* The engine's events, in its own threads (and, for PERM_FAILED, in the
 * committing one). Only atomics and the log here. */
static void
repl_event(DB_ENV *env, u_int32_t event, void *info)
{
	struct store	*st = env->app_private;

	(void)info;
	switch (event) {
	case DB_EVENT_REP_PERM_FAILED:
		perm_failed = true;
		break;
	case DB_EVENT_REP_MASTER:
		log_info("replication: this site (%s:%u) is the master",
		    repl_cfg->repl_self.host, repl_cfg->repl_self.port);
		atomic_store(&st->role_at, 0);
		break;
	case DB_EVENT_REP_CLIENT:
		log_info("replication: this site is a replica");
		atomic_store(&st->role_at, 0);
		break;
	case DB_EVENT_REP_NEWMASTER:
		atomic_store(&st->role_at, 0);
		break;
	case DB_EVENT_REP_STARTUPDONE:
		log_info("replication: this site has caught up with its "
		    "master");
		break;
	case DB_EVENT_REP_DUPMASTER:
		log_warn("replication: another master was found; this site "
		    "steps down");
		atomic_store(&st->role_at, 0);
		break;
	case DB_EVENT_REP_ELECTION_FAILED:
		log_warn("replication: an election failed (too few sites "
		    "reachable?)");
		break;
	case DB_EVENT_REP_JOIN_FAILURE:
		log_warn("replication: this site cannot join the group: its "
		    "data is too old to be updated (see README)");
		break;
	case DB_EVENT_REP_LOCAL_SITE_REMOVED:
		log_warn("replication: this site was removed from the group");
		break;
	case DB_EVENT_PANIC:
		atomic_store(&st->needs_restart, true);
		break;
	default:
		break;
	}
}

/* One site handle, configured and closed. */
static int
site_add(DB_ENV *env, const struct config_site *s, u_int32_t which,
    bool creator)
{
	DB_SITE	*site;
	int	 ret;

	if ((ret = env->repmgr_site(env, s->host, s->port, &site, 0)) != 0)
		return ret;
	ret = site->set_config(site, which, 1);
	if (ret == 0 && creator)
		ret = site->set_config(site, DB_GROUP_CREATOR, 1);
	site->close(site);
	return ret;
}

int
store_repl_env_setup(struct store *st, struct kl_error *err)
{
	const struct config	*c = repl_cfg;
	DB_ENV			*env = st->env;
	u_int32_t		 policy;
	int			 ret, i;

	if (c == NULL)
		return 0;
	st->repl = true;
	policy = c->repl_ack_policy == ACK_ALL ? DB_REPMGR_ACKS_ALL :
	    c->repl_ack_policy == ACK_ONE ? DB_REPMGR_ACKS_ONE :
	    DB_REPMGR_ACKS_QUORUM;
	env->app_private = st;
	if ((ret = env->set_event_notify(env, repl_event)) != 0 ||
	    (ret = env->repmgr_msg_dispatch(env, store_forward_dispatch,
	    0)) != 0 ||
	    (ret = site_add(env, &c->repl_self, DB_LOCAL_SITE,
	    c->n_repl_peers == 0)) != 0)
		goto fail;
	for (i = 0; i < c->n_repl_peers; i++)
		if ((ret = site_add(env, &c->repl_peer[i],
		    DB_BOOTSTRAP_HELPER, false)) != 0)
			goto fail;
	/* Heartbeats find a stopped master (SIGSTOP, a hung host) whose
	 * connections stay open; a broken connection is found at once. */
	if ((ret = env->repmgr_set_ack_policy(env, policy)) != 0 ||
	    /* A tool never becomes master. */
	    (ret = env->rep_set_priority(env, st->join ? 0 :
	    (u_int32_t)c->repl_priority)) != 0 ||
	    (ret = env->rep_set_timeout(env, DB_REP_ACK_TIMEOUT,
	    (db_timeout_t)(c->repl_ack_timeout_ms * 1000))) != 0 ||
	    (ret = env->rep_set_timeout(env, DB_REP_HEARTBEAT_SEND,
	    REPL_HEARTBEAT_SEND_US)) != 0 ||
	    (ret = env->rep_set_timeout(env, DB_REP_HEARTBEAT_MONITOR,
	    REPL_HEARTBEAT_MONITOR_US)) != 0 ||
	    (ret = env->rep_set_timeout(env, DB_REP_CONNECTION_RETRY,
	    REPL_CONNECTION_RETRY_US)) != 0 ||
	    (ret = env->rep_set_timeout(env, DB_REP_ELECTION_RETRY,
	    REPL_ELECTION_RETRY_US)) != 0 ||
	    /* 5.3's default has a master's checkpoint sleep 30 s between
	     * its cache flush and its log record (time for the replicas to
	     * flush theirs), holding the checkpoint mutex: the maintenance
	     * thread of every process waited in it past the stuck-call
	     * limit, and each new master's processes restarted about 17 s
	     * after its election (make ha). The replicas start their flush
	     * at the master's START_SYNC, before its own flush. */
	    (ret = env->rep_set_timeout(env, DB_REP_CHECKPOINT_DELAY,
	    0)) != 0)
		goto fail;
	return 0;
fail:
	return kl_fail(err, KL_STORE_FAILED, "replication settings: %s",
	    db_strerror(ret));
}

int
store_repl_start(struct store *st, struct kl_error *err)
{
	int	ret;

	if (!st->repl)
		return 0;
	ret = st->env->repmgr_start(st->env, REPL_MSG_THREADS,
	    DB_REP_ELECTION);
	/* 5.3 records the first caller as the site's replication process
	 * before it binds repl_site, and a failed bind (the process it
	 * replaces still holds the port while it exits) leaves the record:
	 * every later repmgr_start of the site, this process's included,
	 * is then a subordinate of nobody. Only the recovery that a
	 * registered process's death causes clears it: so this process
	 * waits a little (the old one is going, and multiwatch gives up on
	 * a child that dies within a second of its start) and exits with
	 * its environment open. System errors (> 0) are the ones that can
	 * leave the record; 5.3's own codes come after the bind. */
	if (ret > 0 && !st->join) {
		log_warn("replication: cannot listen on %s:%u: %s; this process "
		    "restarts (a previous replication process of this site "
		    "still holding the port?)", repl_cfg->repl_self.host,
		    repl_cfg->repl_self.port, db_strerror(ret));
		usleep(REPL_LISTEN_RESTART_MS * 1000);
		atomic_store(&st->needs_restart, true);
		return kl_fail(err, KL_STORE_FAILED, "repmgr_start: %s; the "
		    "process restarts", db_strerror(ret));
	}
	/* A tool that found no replication process would be the site's:
	 * it would listen, vote and leave again, a failover for nothing. */
	if (ret == 0 && st->join)
		return kl_fail(err, KL_NOT_READY, "this site's service is not "
		    "running: the tool joins a running site of a group only");
	if (ret == 0)
		log_info("replication: this process is the site's replication "
		    "process, listening on %s:%u", repl_cfg->repl_self.host,
		    repl_cfg->repl_self.port);
	else if (ret != DB_REP_IGNORE)	/* a subordinate: the usual case */
		return kl_fail(err, KL_STORE_FAILED, "repmgr_start: %s",
		    ret == DB_REP_UNAVAIL ? "no site of repl_peers answers "
		    "(the group is joined through one of them)" :
		    db_strerror(ret));

	atomic_store(&st->role_at, 0);
	return 0;
}

long
store_stuck_limit_ms(void)
{
	long	repl;

	if (repl_cfg == NULL)
		return STORE_STUCK_MS;
	repl = REPL_STUCK_EPISODES * REPL_QUEUE_BLOCKS *
	    repl_cfg->repl_ack_timeout_ms + REPL_STUCK_EXTRA_MS;
	return repl > STORE_STUCK_MS ? repl : STORE_STUCK_MS;
}

long
store_forward_timeout_ms(void)
{
	return (repl_cfg != NULL ? repl_cfg->repl_ack_timeout_ms : 0) +
	    FWD_EXTRA_MS;
}

/* The port of a TCP socket's address (IPv4 or IPv6), 0 for anything else. */
static unsigned
sock_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

/* Whether port is a site's: this one's, or one of the group's list (the
 * creator's config names no peer; the others come from the membership). */
static bool
site_port(unsigned port, const DB_REPMGR_SITE *list, u_int count)
{
	u_int	i;

	if (port == repl_cfg->repl_self.port)
		return true;
	for (i = 0; i < count; i++)
		if (port == list[i].port)
			return true;
	return false;
}

/*
 * Berkeley DB 5.3's repmgr never sets TCP_NODELAY and writes a message in
 * more than one write: with Nagle's algorithm and the peer's delayed ACKs
 * every acknowledged commit waited about 40 ms (make ha's one-client
 * figures). So this process's TCP sockets to or from a site's port (the
 * listener's accepted connections, and those repmgr opened to the sites)
 * get TCP_NODELAY, at every maintenance tick: a new connection waits at
 * most MAINTAIN_US for it. Nothing else of the process is TCP to such a
 * port but by mistake, and TCP_NODELAY harms no socket.
 */
void
store_repl_nodelay(struct store *st)
{
	struct sockaddr_storage	 a;
	socklen_t		 alen;
	struct dirent		*de;
	DB_REPMGR_SITE		*list = NULL;
	u_int			 count = 0;
	DIR			*d;
	int			 fd, type, one = 1;

	if (!st->repl || st->env == NULL)
		return;
	if (st->env->repmgr_site_list(st->env, &count, &list) != 0) {
		list = NULL;
		count = 0;
	}
	if ((d = opendir("/proc/self/fd")) == NULL) {
		free(list);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if ((fd = atoi(de->d_name)) <= 2 || fd == dirfd(d))
			continue;
		alen = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &alen) != 0 ||
		    type != SOCK_STREAM)
			continue;
		alen = sizeof(a);
		if (getsockname(fd, (struct sockaddr *)&a, &alen) != 0 ||
		    sock_port(&a) == 0)
			continue;
		if (!site_port(sock_port(&a), list, count)) {
			alen = sizeof(a);
			if (getpeername(fd, (struct sockaddr *)&a, &alen) != 0 ||
			    !site_port(sock_port(&a), list, count))
				continue;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));

	}
	closedir(d);
	free(list);
}

/*
 * 5.3's automatic log removal (DB_LOG_AUTO_REMOVE, a single site's) takes a
 * file as soon as this site's recovery no longer needs it, which on a
 * master may be before a replica that lagged (a stopped or restarting
 * site) has read it: that replica then needs a new copy of every database
 * (internal init), and while it runs the replica's processes restart on
 * each database it replaces. So a group's site removes them here, all but
 * the newest REPL_LOG_KEEP_FILES, every REPL_LOG_TRIM_S. log_archive()
 * lists them oldest first.
 */
int
store_repl_log_trim(struct store *st)
{
	char	**list = NULL;
	size_t	  n, i;
	int	  ret;

	if (!st->repl || st->env == NULL ||
	    kl_mono_seconds() < st->next_trim)
		return 0;
	st->next_trim = kl_mono_seconds() + REPL_LOG_TRIM_S;
	if ((ret = st->env->log_archive(st->env, &list, DB_ARCH_ABS)) != 0)
		return ret;
	if (list == NULL)
		return 0;
	for (n = 0; list[n] != NULL; n++)
		;
	for (i = 0; i + REPL_LOG_KEEP_FILES < n; i++)
		if (unlink(list[i]) == -1 && errno != ENOENT)
			log_warn("replication: removing an old log file: %s",
			    strerror(errno));
	free(list);
	return 0;
}

/*
 * A write that found nothing to change (a refresh repeated in its window,
 * a second logout, a retried deletion) commits no log record, so its
 * commit waits for no acknowledgement: the state it answers from may be
 * one the group never acknowledged (a first try that ended NOT_DURABLE).
 * On a group's master it writes one small record in probe.db instead,
 * which makes its commit wait for the group like any write: an
 * acknowledgement of a later log position covers every earlier one. A
 * replica's read through the runner is left as it is.
 */
int
store_repl_ack_mark(struct store *st, DB_TXN *txn, bool *wrote)
{
	DBT		key, data;
	unsigned char	k[] = "ack", v[8];
	int		ret;

	memset(&key, 0, sizeof(key));
	key.data = k;
	key.size = 3;
	store_put_u64(v, (uint64_t)kl_mono_ms());
	memset(&data, 0, sizeof(data));
	data.data = v;
	data.size = sizeof(v);
	ret = st->probe->put(st->probe, txn, &key, &data, 0);
	if (ret == EACCES)
		return 0;
	if (ret == 0)
		*wrote = true;
	return ret;
}

void
store_repl_commit_begin(void)
{
	perm_failed = false;
}

bool
store_repl_commit_failed(void)
{
	return perm_failed;
}

/* A write's failure as the store's own codes: refused as a replica's. */
int
store_repl_map(struct store *st, int ret)
{
	if (!st->repl || ret == 0)
		return ret;
	if (ret == DB_REP_HANDLE_DEAD)
		atomic_store(&st->needs_restart, true);
	/* EACCES is a replica's refusal only where this site is not the
	 * master: on the master it is a file's permissions, a real failure. */
	if ((ret == EACCES && store_role(st) != STORE_ROLE_MASTER) ||
	    ret == DB_REP_LOCKOUT || ret == DB_REP_UNAVAIL)
		return STORE_NOT_MASTER;
	return ret;
}

static enum store_role
role_read(struct store *st)
{
	DB_REP_STAT	*sp;
	enum store_role	 role;

	if (st->env == NULL || st->env->rep_stat(st->env, &sp, 0) != 0)
		return STORE_ROLE_NO_MASTER;
	if (sp->st_status == DB_REP_MASTER)
		role = STORE_ROLE_MASTER;
	else if (sp->st_master != DB_EID_INVALID && sp->st_startup_complete)
		role = STORE_ROLE_REPLICA;
	else
		role = STORE_ROLE_NO_MASTER;
	free(sp);
	return role;
}

enum store_role
store_role(struct store *st)
{
	long long	now = kl_mono_ms(), at;
	enum store_role	role;

	if (st == NULL || !st->repl)
		return STORE_ROLE_SINGLE;
	at = atomic_load(&st->role_at);
	if (at != 0 && now - at < STORE_ROLE_CACHE_MS)
		return (enum store_role)atomic_load(&st->role);
	role = role_read(st);
	atomic_store(&st->role, (int)role);
	atomic_store(&st->role_at, now);
	return role;
}

const char *
store_role_name(enum store_role role)
{
	switch (role) {
	case STORE_ROLE_SINGLE:
		return "single";
	case STORE_ROLE_MASTER:
		return "master";
	case STORE_ROLE_REPLICA:
		return "replica";
	case STORE_ROLE_NO_MASTER:
		break;
	}
	return "no_master";
}

int
store_repl_group(struct store *st, struct store_repl_site *out, size_t max,
    size_t *n, struct kl_error *err)
{
	DB_REPMGR_SITE	*list = NULL;
	DB_REP_STAT	*sp;
	struct kl_error	 perr;
	u_int		 count = 0, i;
	int		 tries;
	db_ssize_t	 master = DB_EID_INVALID;
	int		 ret;
	bool		 master_self = false;

	*n = 0;
	if (!st->repl)
		return kl_fail(err, KL_NOT_CONFIGURED, "repl_site is not set: "
		    "a single site");
	if ((ret = st->env->rep_stat(st->env, &sp, 0)) != 0)
		return store_fail(st, ret, "rep_stat", err);
	master = sp->st_master;
	master_self = sp->st_status == DB_REP_MASTER;
	free(sp);
	/* A tool's process has just started repmgr: its own connections to
	 * the sites (what the list reports) take a moment. */
	for (tries = 0; ; tries++) {
		if ((ret = st->env->repmgr_site_list(st->env, &count,
		    &list)) != 0)
			return store_fail(st, ret, "repmgr_site_list", err);
		for (i = 0; i < count; i++)
			if (list[i].status != DB_REPMGR_CONNECTED)
				break;
		if (i == count || tries * 100 >= FWD_POSITION_TIMEOUT_MS)
			break;
		free(list);
		list = NULL;
		usleep(100 * 1000);
	}
	store_repl_nodelay(st);
	if (max > 0) {
		snprintf(out[0].host, sizeof(out[0].host), "%s",
		    repl_cfg->repl_self.host);
		out[0].port = repl_cfg->repl_self.port;
		out[0].self = out[0].connected = true;
		out[0].master = master_self;
		*n = 1;
	}
	for (i = 0; i < count && *n < max; i++) {
		struct store_repl_site	*s = &out[*n];

		snprintf(s->host, sizeof(s->host), "%s", list[i].host);
		s->port = list[i].port;
		s->self = false;
		s->connected = list[i].status == DB_REPMGR_CONNECTED;
		s->master = !master_self && master == (db_ssize_t)list[i].eid;
		s->known = s->connected && store_forward_position(st,
		    list[i].eid, &s->log_file, &s->log_offset, &perr) == 0;
		(*n)++;
	}
	free(list);
	if (*n > 0)
		out[0].known = store_log_end(st, &out[0].log_file,
		    &out[0].log_offset, &perr) == 0;
	return 0;
}

/* One look at this process's site list for the remote site host:port:
 * 1 found (its eid, whether this process is connected to it), 0 not. */
static int
site_find(struct store *st, const char *host, unsigned port, int *eid,
    bool *connected, struct kl_error *err)
{
	DB_REPMGR_SITE	*list = NULL;
	u_int		 count = 0, i;
	int		 ret, found = 0;

	if ((ret = st->env->repmgr_site_list(st->env, &count, &list)) != 0)
		return store_fail(st, ret, "repmgr_site_list", err);
	for (i = 0; i < count; i++)
		if (list[i].port == port && strcasecmp(list[i].host, host) ==
		    0) {
			*eid = list[i].eid;
			*connected = list[i].status == DB_REPMGR_CONNECTED;
			found = 1;
		}
	free(list);
	return found;
}

/* The remote site host:port, or -1 (KL_NOT_FOUND). The tool's process has
 * just started repmgr: a running site is one it connects to within
 * REPL_REMOVE_CONNECT_MS; a stopped one costs that wait. */
static int
site_lookup(struct store *st, const char *host, unsigned port, int *eid,
    bool *connected, struct kl_error *err)
{
	long long	deadline = kl_mono_ms() + REPL_REMOVE_CONNECT_MS;
	int		found;

	for (;;) {
		if ((found = site_find(st, host, port, eid, connected,
		    err)) == -1)
			return -1;
		if (found == 0)
			return kl_fail(err, KL_NOT_FOUND, "%s:%u is not a site "
			    "of the group (name it as \"group\" lists it)",
			    host, port);
		if (*connected || kl_mono_ms() >= deadline)
			return 0;
		usleep(100 * 1000);
	}
}

int
store_repl_site_remove(struct store *st, const char *host, unsigned port,
    struct kl_error *err)
{
	DB_REP_STAT	*sp;
	DB_SITE		*site;
	int		 eid = DB_EID_INVALID, master, ret;
	bool		 connected = false;

	if (!st->repl)
		return kl_fail(err, KL_NOT_CONFIGURED, "repl_site is not set: "
		    "a single site");
	if (port == repl_cfg->repl_self.port &&
	    strcasecmp(host, repl_cfg->repl_self.host) == 0)
		return kl_fail(err, KL_BAD_REQUEST, "%s:%u is this site: stop "
		    "it, then remove it from another site", host, port);
	/* Before repmgr_site(), which would add a site it does not know. */
	if (site_lookup(st, host, port, &eid, &connected, err) == -1)
		return -1;
	if ((ret = st->env->rep_stat(st->env, &sp, 0)) != 0)
		return store_fail(st, ret, "rep_stat", err);
	master = sp->st_master;
	free(sp);
	if (master == eid)
		return kl_fail(err, KL_BAD_REQUEST, "%s:%u is the master: stop "
		    "it first, and remove it once another site is elected",
		    host, port);
	/* A running site that is removed keeps serving what it had, and
	 * rejoins at its next start: the group must not lose it unawares. */
	if (connected)
		return kl_fail(err, KL_BAD_REQUEST, "%s:%u is running (this "
		    "site is connected to it): stop it first", host, port);
	if ((ret = st->env->repmgr_site(st->env, host, port, &site, 0)) != 0)
		return store_fail(st, ret, "repmgr_site", err);
	/* remove() frees the handle, whatever it returns. */
	if ((ret = site->remove(site)) == DB_REP_UNAVAIL)
		return kl_fail(err, KL_NO_MASTER, "%s:%u not removed: no master "
		    "known, or the group did not acknowledge the change in "
		    "time (see \"group\", and try again)", host, port);
	if (ret != 0)
		return store_fail(st, ret, "DB_SITE->remove", err);
	return 0;
}

int
store_log_end(struct store *st, uint32_t *file, uint32_t *offset,
    struct kl_error *err)
{
	DB_LOG_STAT	*sp;
	int		 ret;

	if ((ret = st->env->log_stat(st->env, &sp, 0)) != 0)
		return store_fail(st, ret, "log_stat", err);
	*file = sp->st_cur_file;
	*offset = sp->st_cur_offset;
	free(sp);
	return 0;
}
