/*
 * metrics.c: the counters every process of the service shares, and their
 * Prometheus text (see metrics.h).
 *
 * Owns the region: one file, db_home/METRICS_FILE, of a fixed layout (a
 * header of magic, layout version, size and a fingerprint of everything
 * the layout depends on: the route table's paths, the status list, the
 * buckets), mapped MAP_SHARED by every process. The first process creates
 * it under flock (the others wait, then join it), written in full rather
 * than sparse, so that no add can meet a full disk; a process that finds
 * another layout (an upgrade) unlinks that file, while holding its
 * lock, and makes a new one, so counts start again from zero and the old
 * file's processes count into an unlinked file until they are restarted.
 * The counters live in the file: they survive restarts of every process,
 * and Prometheus takes the reset after a replacement as any other reset.
 * Must not call any layer above it (it is below log too: it logs nothing;
 * main says what metrics_open() returned).
 *
 * Thread- and process-safety: every counter is a lock-free C11 atomic
 * (checked at compile time), added to with relaxed order; on Linux
 * lock-free atomics in a MAP_SHARED mapping work across processes. A
 * scrape reads the counters one by one while others count, so it is not a
 * snapshot: a histogram's count is the sum of its buckets as read, so
 * count and +Inf always agree. metrics_open() runs before threads start;
 * after it the region pointer and the route names are read-only.
 *
 * When the region cannot be made (db_home unwritable, the file a symlink
 * or another user's, no memory to map), the process counts into a region
 * of its own and GET /metrics answers 503 METRICS_UNAVAILABLE: one
 * process's counts, different for every scrape, would read as resets.
 */
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kl_limits.h"
#include "metrics.h"

_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
    "metrics need lock-free 64-bit atomics to share them across processes");

#define METRICS_MAGIC	UINT64_C(0x4b4c4d4554524943)	/* "KLMETRIC" */
#define METRICS_LAYOUT	1	/* bump on any change to struct region */

/* The statuses the service answers; any other is counted as "other". */
static const int status_codes[] = {
	200, 204, 400, 401, 403, 404, 405, 413, 500, 501, 502, 503, 504
};
#define N_CODES		(sizeof(status_codes) / sizeof(status_codes[0]))
#define N_STATUS	(N_CODES + 1)

/* Latency buckets of every histogram (upper bounds, microseconds, with
 * their le labels); observations above the last go to +Inf. */
static const long duration_buckets_us[] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000
};
static const char *const duration_buckets_le[] = {
	"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
	"0.5", "1", "2.5", "5", "10"
};
#define N_BOUNDS	(sizeof(duration_buckets_us) / sizeof(duration_buckets_us[0]))
#define N_BUCKETS	(N_BOUNDS + 1)
_Static_assert(sizeof(duration_buckets_le) / sizeof(duration_buckets_le[0]) ==
    N_BOUNDS, "one le label per bucket");

static const char *const endpoint_names[METRICS_KAKAO_ENDPOINTS] = {
	[METRICS_KAKAO_USER_ME] = "/v2/user/me",
	[METRICS_KAKAO_TOKEN_INFO] = "/v1/user/access_token_info",
	[METRICS_KAKAO_OAUTH_TOKEN] = "/oauth/token",
	[METRICS_KAKAO_JWKS] = "/.well-known/jwks.json",
	[METRICS_KAKAO_UNLINK] = "/v1/user/unlink",
};
static const char *const outcome_names[METRICS_KAKAO_OUTCOMES] = {
	[METRICS_KAKAO_OK] = "ok",
	[METRICS_KAKAO_REFUSED] = "refused",
	[METRICS_KAKAO_ERROR] = "error",
	[METRICS_KAKAO_TIMEOUT] = "timeout",
	[METRICS_KAKAO_BUSY] = "busy",
};

typedef atomic_uint_least64_t	counter;

struct histogram {
	counter	bucket[N_BUCKETS];	/* not cumulative: one add each */
	counter	sum_us;
};

/* The file's layout. The header is written once, by its creator, under
 * the file's lock; everything after it is counters. */
struct region {
	uint64_t		magic;
	uint32_t		layout;
	uint32_t		size;
	uint64_t		fingerprint;
	counter			created;	/* Unix seconds */
	counter			starts;
	counter			last_start;	/* Unix seconds */
	counter			requests[METRICS_MAX_ROUTES][N_STATUS];
	struct histogram	request_time[METRICS_MAX_ROUTES];
	counter			kakao[METRICS_KAKAO_ENDPOINTS]
				    [METRICS_KAKAO_OUTCOMES];
	struct histogram	kakao_time[METRICS_KAKAO_ENDPOINTS];
	counter			store_retries;
	counter			store_failures;
	counter			users_created;
};

#ifndef KL_VERSION
#define KL_VERSION	"unknown"
#endif
const char		 metrics_version[] = KL_VERSION;

static struct region	 private_region;
static struct region	*rg = &private_region;
static const char	*route_names[METRICS_MAX_ROUTES] = { "other" };
static size_t		 route_slots = 1;

static inline void
add(counter *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t
get(counter *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char	*s = p;

	while (n-- > 0) {
		h ^= *s++;
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

/* Everything a counter's meaning depends on: a binary whose route table,
 * statuses or buckets differ must not read another's file. */
static uint64_t
fingerprint(void)
{
	uint64_t	h = UINT64_C(0xcbf29ce484222325);
	uint32_t	v[3] = { METRICS_LAYOUT, (uint32_t)sizeof(struct region),
			    (uint32_t)route_slots };
	size_t		i;

	h = fnv(h, v, sizeof(v));
	h = fnv(h, status_codes, sizeof(status_codes));
	h = fnv(h, duration_buckets_us, sizeof(duration_buckets_us));
	for (i = 0; i < route_slots; i++)
		h = fnv(h, route_names[i], strlen(route_names[i]) + 1);
	for (i = 0; i < METRICS_KAKAO_ENDPOINTS; i++)
		h = fnv(h, endpoint_names[i], strlen(endpoint_names[i]) + 1);
	for (i = 0; i < METRICS_KAKAO_OUTCOMES; i++)
		h = fnv(h, outcome_names[i], strlen(outcome_names[i]) + 1);
	return h;
}

static void
count_start(struct region *r)
{
	uint64_t	now = (uint64_t)time(NULL), last;

	add(&r->starts, 1);
	last = get(&r->last_start);
	while (last < now && !atomic_compare_exchange_weak_explicit(
	    &r->last_start, &last, now, memory_order_relaxed,
	    memory_order_relaxed))
		;
}

/* Writes the whole file as zeros: a sparse file (ftruncate) would let a
 * counter's first add on a full disk kill the process with SIGBUS. */
static int
region_fill(int fd)
{
	static const char	zero[4096];
	size_t			off, n;
	ssize_t			w;

	for (off = 0; off < sizeof(struct region); off += (size_t)w) {
		n = sizeof(struct region) - off;
		if (n > sizeof(zero))
			n = sizeof(zero);
		if ((w = pwrite(fd, zero, n, (off_t)off)) <= 0) {
			if (w == -1 && errno == EINTR) {
				w = 0;
				continue;
			}
			if (w == 0)
				errno = ENOSPC;
			(void)ftruncate(fd, 0);	/* not a region: try again */
			return -1;
		}
	}
	return fdatasync(fd);
}

/*
 * One try at mapping path. Returns the region, or NULL: with *stale set
 * when the file was of another layout (now unlinked) or was replaced while
 * we waited for its lock (try again), else with err filled.
 */
static struct region *
region_map(const char *path, uint64_t fp, bool *stale, struct kl_error *err)
{
	struct region	*r = NULL;
	struct stat	 st, named;
	void		*p;
	int		 fd;

	*stale = false;
	if ((fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC, 0600)) == -1) {
		kl_fail(err, KL_INTERNAL, "metrics: open %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (flock(fd, LOCK_EX) == -1 || fstat(fd, &st) == -1) {
		kl_fail(err, KL_INTERNAL, "metrics: lock %s: %s", path,
		    strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		kl_fail(err, KL_INTERNAL, "metrics: %s is not a regular file "
		    "of ours", path);
		goto done;
	}
	/* Unlinked by a process that replaced it while we waited. */
	if (stat(path, &named) == -1 || named.st_ino != st.st_ino ||
	    named.st_dev != st.st_dev) {
		*stale = true;
		goto done;
	}
	if (st.st_size != 0 && st.st_size != (off_t)sizeof(struct region))
		goto replace;
	if (st.st_size == 0 && region_fill(fd) == -1) {
		kl_fail(err, KL_INTERNAL, "metrics: write %s: %s", path,
		    strerror(errno));
		goto done;
	}
	if ((p = mmap(NULL, sizeof(struct region), PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0)) == MAP_FAILED) {
		kl_fail(err, KL_INTERNAL, "metrics: mmap %s: %s", path,
		    strerror(errno));
		goto done;
	}
	r = p;
	if (st.st_size == 0) {
		/* region_fill zeroed the counters. */
		r->layout = METRICS_LAYOUT;
		r->size = (uint32_t)sizeof(struct region);
		r->fingerprint = fp;
		atomic_store(&r->created, (uint64_t)time(NULL));
		r->magic = METRICS_MAGIC;
		goto done;
	}
	if (r->magic == METRICS_MAGIC && r->layout == METRICS_LAYOUT &&
	    r->size == sizeof(struct region) && r->fingerprint == fp)
		goto done;
	munmap(p, sizeof(struct region));
	r = NULL;
replace:
	/* Ours and still the named file (checked under its lock): whoever
	 * waits for the lock sees it unlinked and tries again. */
	if (unlink(path) == -1)
		kl_fail(err, KL_INTERNAL, "metrics: unlink %s: %s", path,
		    strerror(errno));
	else
		*stale = true;
done:
	/* The mapping keeps the open file, and so its lock: unlock first. */
	flock(fd, LOCK_UN);
	close(fd);
	return r;
}

int
metrics_open(const char *dir, const char *const *routes, size_t nroutes,
    bool *replaced, struct kl_error *err)
{
	struct region	*r;
	char		 path[MAX_CONFIG_PATH + sizeof(METRICS_FILE) + 1];
	uint64_t	 fp;
	bool		 stale;
	size_t		 i;
	int		 n, attempt;

	*replaced = false;
	rg = &private_region;	/* until a region is mapped */
	if (nroutes + 1 > METRICS_MAX_ROUTES)
		return kl_fail(err, KL_INTERNAL, "metrics: %zu routes, room "
		    "for %d", nroutes, METRICS_MAX_ROUTES - 1);
	for (i = 0; i < nroutes; i++)
		route_names[i + 1] = routes[i];
	route_slots = nroutes + 1;
	atomic_store(&private_region.created, (uint64_t)time(NULL));
	n = snprintf(path, sizeof(path), "%s/%s", dir, METRICS_FILE);
	if (n < 0 || (size_t)n >= sizeof(path))
		return kl_fail(err, KL_INTERNAL, "metrics: db_home too long");
	fp = fingerprint();
	for (attempt = 0; attempt < METRICS_OPEN_TRIES; attempt++) {
		if ((r = region_map(path, fp, &stale, err)) != NULL) {
			rg = r;
			count_start(rg);
			return 0;
		}
		if (!stale)
			break;
		*replaced = true;
	}
	count_start(rg);
	if (stale)
		return kl_fail(err, KL_INTERNAL, "metrics: %s replaced %d "
		    "times while opening", path, METRICS_OPEN_TRIES);
	return -1;
}

bool
metrics_shared(void)
{
	return rg != &private_region;
}

static size_t
status_slot(int status)
{
	size_t	i;

	for (i = 0; i < N_CODES; i++)
		if (status_codes[i] == status)
			return i;
	return N_CODES;
}

static void
observe(struct histogram *h, long us)
{
	size_t	i;

	if (us < 0)
		us = 0;
	for (i = 0; i < N_BOUNDS && us > duration_buckets_us[i]; i++)
		;
	add(&h->bucket[i], 1);
	add(&h->sum_us, (uint64_t)us);
}

void
metrics_request(size_t route_slot, int http_status, long duration_us)
{
	if (route_slot >= METRICS_MAX_ROUTES)
		route_slot = 0;
	add(&rg->requests[route_slot][status_slot(http_status)], 1);
	observe(&rg->request_time[route_slot], duration_us);
}

void
metrics_kakao(enum metrics_kakao_endpoint ep,
    enum metrics_kakao_outcome outcome, long duration_us)
{
	if ((unsigned)ep >= METRICS_KAKAO_ENDPOINTS ||
	    (unsigned)outcome >= METRICS_KAKAO_OUTCOMES)
		return;
	add(&rg->kakao[ep][outcome], 1);
	if (duration_us >= 0)
		observe(&rg->kakao_time[ep], duration_us);
}

void
metrics_store_retry(void)
{
	add(&rg->store_retries, 1);
}

void
metrics_store_failure(void)
{
	add(&rg->store_failures, 1);
}

void
metrics_user_created(void)
{
	add(&rg->users_created, 1);
}

/* ---- the text ---- */

static void
put(struct kl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
put(struct kl_buf *b, const char *fmt, ...)
{
	char	line[512];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		b->overflow = true;	/* never: labels are ours and short */
	else
		kl_buf_put(b, line, (size_t)n);
}

static void
head(struct kl_buf *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's lines; label is `name="value",` (ours, no escaping
 * needed: route paths and endpoint names hold no quote or backslash). */
static void
histogram(struct kl_buf *b, const char *name, const char *label,
    const char *value, struct histogram *h)
{
	uint64_t	cum = 0;
	size_t		i;

	for (i = 0; i < N_BUCKETS; i++) {
		cum += get(&h->bucket[i]);
		put(b, "%s_bucket{%s=\"%s\",le=\"%s\"} %" PRIu64 "\n", name,
		    label, value, i < N_BOUNDS ? duration_buckets_le[i] :
		    "+Inf", cum);
	}
	put(b, "%s_sum{%s=\"%s\"} %.6f\n", name, label, value,
	    (double)get(&h->sum_us) / 1e6);
	put(b, "%s_count{%s=\"%s\"} %" PRIu64 "\n", name, label, value, cum);
}

static void
render_requests(struct kl_buf *b)
{
	uint64_t	v;
	size_t		i, s;

	/* Only the route and status pairs seen: most never happen. */
	head(b, "kakao_login_requests_total", "counter", "Requests answered, "
	    "by route (\"other\": no route) and HTTP status.");
	for (i = 0; i < route_slots; i++)
		for (s = 0; s < N_STATUS; s++) {
			if ((v = get(&rg->requests[i][s])) == 0)
				continue;
			if (s < N_CODES)
				put(b, "kakao_login_requests_total{route=\"%s\","
				    "status=\"%d\"} %" PRIu64 "\n",
				    route_names[i], status_codes[s], v);
			else
				put(b, "kakao_login_requests_total{route=\"%s\","
				    "status=\"other\"} %" PRIu64 "\n",
				    route_names[i], v);
		}
	head(b, "kakao_login_request_duration_seconds", "histogram", "Time "
	    "from accepting a request to its answer, by route.");
	for (i = 0; i < route_slots; i++)
		histogram(b, "kakao_login_request_duration_seconds", "route",
		    route_names[i], &rg->request_time[i]);
}

static void
render_kakao(struct kl_buf *b)
{
	size_t	e, o;

	head(b, "kakao_login_kakao_requests_total", "counter", "Calls to "
	    "Kakao, by endpoint and outcome (busy: not sent, the process's "
	    "kakao_max_calls in use).");
	for (e = 0; e < METRICS_KAKAO_ENDPOINTS; e++)
		for (o = 0; o < METRICS_KAKAO_OUTCOMES; o++)
			put(b, "kakao_login_kakao_requests_total{endpoint="
			    "\"%s\",outcome=\"%s\"} %" PRIu64 "\n",
			    endpoint_names[e], outcome_names[o],
			    get(&rg->kakao[e][o]));
	head(b, "kakao_login_kakao_request_duration_seconds", "histogram",
	    "Time of the calls to Kakao that were sent, by endpoint.");
	for (e = 0; e < METRICS_KAKAO_ENDPOINTS; e++)
		histogram(b, "kakao_login_kakao_request_duration_seconds",
		    "endpoint", endpoint_names[e], &rg->kakao_time[e]);
}

/* The region's single counters, rendered in this order. */
static const struct scalar {
	const char	*name;
	const char	*type;
	const char	*help;
	size_t		 off;		/* of its counter in struct region */
} scalars[] = {
	{ "kakao_login_metrics_created_seconds", "gauge", "When these "
	    "counters began (Unix time): they survive restarts.",
	    offsetof(struct region, created) },
	{ "kakao_login_process_starts_total", "counter", "Service processes "
	    "started since the counters began.",
	    offsetof(struct region, starts) },
	{ "kakao_login_process_last_start_time_seconds", "gauge", "When the "
	    "most recently started service process started (Unix time).",
	    offsetof(struct region, last_start) },
	{ "kakao_login_store_retries_total", "counter", "Store transactions "
	    "and reads retried after a deadlock or lock time-out.",
	    offsetof(struct region, store_retries) },
	{ "kakao_login_store_failures_total", "counter", "Store calls that "
	    "failed with a storage error (answered 500).",
	    offsetof(struct region, store_failures) },
	{ "kakao_login_users_created_total", "counter", "Users created by a "
	    "first login since the counters began.",
	    offsetof(struct region, users_created) },
};

static void
render_service(struct kl_buf *b, const struct metrics_gauges *g)
{
	const struct scalar	*sc;
	size_t			 i;

	head(b, "kakao_login_build_info", "gauge", "The version of the "
	    "process that answered this scrape.");
	put(b, "kakao_login_build_info{version=\"%s\"} 1\n",
	    metrics_version);
	for (i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
		sc = &scalars[i];
		head(b, sc->name, sc->type, sc->help);
		put(b, "%s %" PRIu64 "\n", sc->name,
		    get((counter *)((char *)rg + sc->off)));
	}
	if (g != NULL && g->users_known) {
		head(b, "kakao_login_users", "gauge", "User ids reserved from "
		    "the store's sequence: every user has one; ahead of the "
		    "users created by the unused ids of each process's block, "
		    "and deleted users stay counted.");
		put(b, "kakao_login_users %" PRIu64 "\n", g->users);
	}
}

int
metrics_render(struct kl_buf *out, const struct metrics_gauges *g,
    struct kl_error *err)
{
	size_t	limit = out->limit;

	out->limit = out->len + METRICS_TEXT_MAX;
	render_service(out, g);
	render_requests(out);
	render_kakao(out);
	out->limit = limit;
	if (kl_buf_bad(out))
		return kl_fail(err, KL_INTERNAL, "metrics: text over %d bytes "
		    "or out of memory", METRICS_TEXT_MAX);
	return 0;
}
