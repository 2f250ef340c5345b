/*
 * fake_kakao: a fake of Kakao's user API (kapi.kakao.com: /v2/user/me,
 * /v1/user/access_token_info) and of its OAuth side (kauth.kakao.com:
 * /oauth/token, /.well-known/jwks.json), for tests and benchmarks.  Plain
 * HTTP/1.1 with keep-alive on 127.0.0.1.  Wire formats follow
 * /work/shared/kakao-api.md.  It touches nothing but its socket.
 *
 * The bearer token alone selects the kapi behaviour.  A token is
 * "<kind>-<id>" with optional "slow<ms>." prefixes: "valid-42" is a full
 * profile for user 42, "status503-1" a maintenance error, "slow1500.valid-42"
 * the full profile 1.5 s late.  The kinds[] table lists every kind.
 *
 * At /oauth/token the code alone selects the behaviour, the same way:
 * "[slow<ms>.]<kind>-<id>[.u<tag>][.s<challenge>][.n<nonce>]", kinds in
 * code_kinds[]; the tag only makes a code unique.
 * "good-<id>" exchanges for the access token "valid-<id>"; "oidc-<id>" also
 * gets an id_token (RS256, signed with a key generated at start and served
 * at /.well-known/jwks.json); ".s" demands a PKCE S256 verifier, ".n" puts
 * a nonce in the id_token.  Every code works once, like Kakao's.
 * GET /oauth/authorize is the consent page a browser meets, which hands out
 * such codes for test users 1001 to 1003 (see oauth_authorize()).  Test-only
 * control routes start with "/__" (see routes[]).
 *
 * POST /v1/user/unlink and /v1/user/logout take both of Kakao's forms: a
 * bearer token of the grammar above, or "KakaoAK <-K key>" with the form
 * target_id_type=user_id&target_id=N.  Either answers {"id":N}; an unlinked
 * N answers -101 until a successful /v2/user/me of N links it again.
 * GET /__unlinked?id=N shows N's state, GET /__admin?fail=1|0|drop takes
 * both calls down (503 -7), up, or to closing without an answer.  With -U
 * the binary serves nothing: it sends one unlink callback the way Kakao
 * does and exits 0 for a 200 (see callback_send()).
 *
 * Threads: the main thread accepts; every connection gets a detached thread
 * with a small stack and one heap buffer, so a slow, hanging or trickling
 * answer never holds up another connection.  The counters and the JWKS
 * and admin switches are atomics; the key set, the used-code table and
 * the unlink state each have a mutex (keys are never freed, so a key read
 * under the lock stays valid); one more thread makes the first RSA keys
 * after the fake starts listening (key users wait for it); everything else
 * is per connection or read-only once listening.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#define REQ_HDR_MAX	(16 * 1024)	/* request line + headers; more is 431 */
#define REQ_BODY_MAX	(64 * 1024)	/* request body; more is 413 */
#define OUT_HDR_ROOM	512		/* response headers go just before the body */
#define OUT_MAX		(32 * 1024)	/* largest built body (longnick is ~20 KB) */
#ifdef __SANITIZE_ADDRESS__
#define THREAD_STACK	(512 * 1024)	/* ASan's redzones need more stack */
#else
#define THREAD_STACK	(64 * 1024)
#endif
#define LISTEN_BACKLOG	1024
#define IDLE_TIMEOUT_S	300		/* drop keep-alive connections idle this long */
#define SEND_TIMEOUT_S	60		/* give up on a client that stops reading */
#define HANG_MAX_MS	60000		/* "hang" gives up after this */
#define SLOW_MAX_MS	600000		/* cap for slow<ms> and -d */
#define TRICKLE_MS	200		/* "trickle" sends one byte this often */
#define HUGE_BODY	(10 * 1024 * 1024)
#define PAD_CHUNK	(64 * 1024)
#define TRUNC_CLAIM	500		/* Content-Length "truncated" claims */
#define TRUNC_SENT	20		/* bytes it really sends */
#define LONGNICK_LEN	10000
#define DRAIN_MS	1000		/* drain() limits, see there */
#define DRAIN_MAX	(1024 * 1024)
#define CODE_MAX	1024		/* longest /oauth/token form value we take */
#define LOG_TOKEN_CHARS	4		/* -v never prints more of a token */
#define DEFAULT_APP_ID	424242LL
#define FOREIGN_APP_ID	999999LL
#define EXPIRES_IN	21599
#define REFRESH_EXPIRES	5183999
#define CONNECTED_AT	"2021-08-18T08:54:05Z"
#define JSON_CT		"application/json;charset=UTF-8"
#define INVALID_TOKEN	"{\"msg\":\"this access token does not exist\",\"code\":-401}"
#define DEFAULT_REST_KEY "fake-rest-api-key"
#define DEFAULT_ISSUER	"https://kauth.kakao.com"
#define FORM_CT		"application/x-www-form-urlencoded"
#define RSA_BITS	2048
#define KEYS_MAX	64		/* keys one run may make: 1 + rotations */
#define JWKS_SERVE_MAX	8		/* keys one JWKS lists at most */
#define KID_MAX		32
#define PEM_MAX		1024		/* an RSA-2048 public key PEM is ~450 */
#define B64_N_MAX	512		/* base64url of a 2048-bit modulus: 342 */
#define SIG_MAX		512		/* RSA-2048 signature: 256 bytes */
#define CLAIMS_MAX	(16 * 1024)	/* an id_token's payload JSON */
#define USED_MAX	65536		/* used codes remembered (power of 2) */
#define CHALLENGE_MAX	128		/* a PKCE challenge in a code */
#define DEFAULT_ADMIN_KEY "fake-admin-key-0123456789abcdef"
#define USERS_MAX	65536		/* ids with unlink state (power of 2) */
#define USERS_FULL	(USERS_MAX / 4 * 3)	/* more is refused: 500 */
#define ADMIN_FORM_MAX	64		/* target_id_type / target_id values */
#define SEND_WAIT_MS	5000		/* -U: the whole exchange, at most */
#define SEND_HOST_MAX	256
#define SEND_REQ_MAX	(8 * 1024)	/* -U: the request it sends */
#define DEFAULT_REFERRER "UNLINK_FROM_APPS"
#define NOT_LINKED	"{\"msg\":\"NotRegisteredUserException\",\"code\":-101}"

enum idfmt { ID_NUM, ID_NONE, ID_STR, ID_NEG, ID_FLOAT, ID_BIG, ID_ZERO };
enum shape { P_FULL, P_BARE, P_NONICK, P_NOID };
enum nick { N_USER, N_BADUTF8, N_LONG, N_UNICODE };
enum fault {
	F_NONE,		/* normal answer */
	F_INVALID,	/* 401 -401, like an expired token */
	F_STATUS,	/* HTTP <code> with a Kakao error body */
	F_GARBAGE,	/* 200 text/html */
	F_CTLGARBAGE,	/* 200, broken JSON with ESC, U+202E, U+2028 raw */
	F_HUGE,		/* 10 MB JSON */
	F_TRUNCATED,	/* Content-Length 500, 20 bytes, close */
	F_TRICKLE,	/* one body byte every TRICKLE_MS */
	F_HANG,		/* never answer */
	F_CLOSE		/* close without answering */
};

struct kind {
	const char	*name;
	enum idfmt	 idf;		/* how "id" is written, both endpoints */
	enum shape	 shape;		/* /v2/user/me only */
	enum nick	 nick;		/* /v2/user/me only */
	int		 mail_valid;	/* /v2/user/me only */
	int		 mail_verified;	/* /v2/user/me only */
	long long	 app_id;	/* token info app_id; 0 means the -a value */
	enum fault	 fault;		/* both endpoints */
	const char	*image;		/* /v2/user/me image URLs; NULL: ours */
};

/*
 * Every token kind, for both endpoints.  Token info uses only the id,
 * app_id and fault columns: profile-only kinds (bare, nonick, badutf8, ...)
 * give a normal token info, the id kinds the same malformed id.  Tokens
 * that match no row (and "expired") get 401 -401.
 */
static const struct kind kinds[] = {
	/* name	      id	shape	  nick	    valid verif app_id	    fault, image */
	{ "valid",	ID_NUM,	P_FULL,	  N_USER,	1, 1, 0,	    F_NONE, NULL },
	{ "bare",	ID_NUM,	P_BARE,	  N_USER,	1, 1, 0,	    F_NONE, NULL },
	{ "nonick",	ID_NUM,	P_NONICK, N_USER,	1, 1, 0,	    F_NONE, NULL },
	{ "unverified",	ID_NUM,	P_FULL,	  N_USER,	1, 0, 0,	    F_NONE, NULL },
	{ "invalidmail", ID_NUM, P_FULL,  N_USER,	0, 1, 0,	    F_NONE, NULL },
	{ "foreign",	ID_NUM,	P_FULL,	  N_USER,	1, 1, FOREIGN_APP_ID, F_NONE, NULL },
	{ "expired",	ID_NUM,	P_FULL,	  N_USER,	1, 1, 0,	    F_INVALID, NULL },
	{ "status",	ID_NUM,	P_FULL,	  N_USER,	1, 1, 0,	    F_STATUS, NULL }, /* status<code> */
	{ "garbage",	ID_NUM,	P_FULL,	  N_USER,	1, 1, 0,	    F_GARBAGE, NULL },
	/* Bytes a log viewer acts on, where a JSON parser's error quotes them. */
	{ "ctlgarbage",	ID_NUM,	P_FULL,	  N_USER,	1, 1, 0,	    F_CTLGARBAGE, NULL },
	{ "noid",	ID_NONE, P_NOID,  N_USER,	1, 1, 0,	    F_NONE, NULL },
	{ "strid",	ID_STR,	P_FULL,	  N_USER,	1, 1, 0,	    F_NONE, NULL },
	{ "negid",	ID_NEG,	P_FULL,	  N_USER,	1, 1, 0,	    F_NONE, NULL },
	{ "floatid",	ID_FLOAT, P_FULL, N_USER,	1, 1, 0,	    F_NONE, NULL },
	{ "bigid",	ID_BIG,	P_FULL,	  N_USER,	1, 1, 0,	    F_NONE, NULL },
	{ "zeroid",	ID_ZERO, P_FULL,  N_USER,	1, 1, 0,	    F_NONE, NULL },
	{ "badutf8",	ID_NUM,	P_FULL,	  N_BADUTF8,	1, 1, 0,	    F_NONE, NULL },
	{ "longnick",	ID_NUM,	P_FULL,	  N_LONG,	1, 1, 0,	    F_NONE, NULL },
	{ "unicode",	ID_NUM,	P_FULL,	  N_UNICODE,	1, 1, 0,	    F_NONE, NULL },
	{ "huge",	ID_NUM,	P_FULL,	  N_USER,	1, 1, 0,	    F_HUGE, NULL },
	{ "truncated",	ID_NUM,	P_FULL,	  N_USER,	1, 1, 0,	    F_TRUNCATED, NULL },
	{ "trickle",	ID_NUM,	P_FULL,	  N_USER,	1, 1, 0,	    F_TRICKLE, NULL },
	{ "hang",	ID_NUM,	P_FULL,	  N_USER,	1, 1, 0,	    F_HANG, NULL },
	{ "close",	ID_NUM,	P_FULL,	  N_USER,	1, 1, 0,	    F_CLOSE, NULL },
	/* A profile image a front end must never put in a src or href. */
	{ "jsimage",	ID_NUM,	P_FULL,	  N_USER,	1, 1, 0,	    F_NONE,
	  "javascript:alert(document.domain)" },
};

struct tok {
	const struct kind *k;	/* NULL: not in the grammar */
	long long	 id;
	int		 slow_ms;
	int		 status;	/* F_STATUS only */
};

struct req {
	const char	*method;
	const char	*path;		/* query string cut off */
	const char	*query;		/* after '?', or "" */
	const char	*auth;		/* Authorization value, or NULL */
	const char	*ctype;		/* Content-Type value, or NULL */
	const char	*body;
	size_t		 blen;
	int		 keepalive;
	int		 head;		/* HEAD: headers only */
};

struct conn {
	int	 fd;
	int	 status;		/* last answer, for -v; 0 = none */
	char	 note[LOG_TOKEN_CHARS + 1];	/* a code's head, for -v */
	size_t	 fill;			/* bytes in in[] */
	char	 in[REQ_HDR_MAX + REQ_BODY_MAX];
	char	 out[OUT_HDR_ROOM + OUT_MAX];
};

/* A body being built in conn.out; overflow is sticky and checked once. */
struct out {
	char	*p;
	size_t	 len, cap;
	int	 overflow;
};

static long long	app_id = DEFAULT_APP_ID;
static int		delay_ms;
static int		verbose;
static char		padding[PAD_CHUNK];	/* 'x' * PAD_CHUNK, set in main */
static const char	*rest_key = DEFAULT_REST_KEY;	/* -k */
static const char	*client_secret;			/* -s; NULL: not checked */
static const char	*issuer = DEFAULT_ISSUER;	/* -i */
static size_t		used_cap = USED_MAX;		/* -c */

static atomic_ullong	st_requests, st_connections, st_open;
static atomic_ullong	st_token_calls, st_jwks_calls;
static atomic_int	jwks_failing;			/* POST /__jwks?fail=1 */
static const char	*admin_key = DEFAULT_ADMIN_KEY;	/* -K */
static atomic_ullong	st_unlink_calls, st_logout_calls;
enum { ADMIN_UP, ADMIN_DOWN, ADMIN_DROP };
static atomic_int	admin_state;			/* GET /__admin?fail= */

/*
 * Unlink state, per user id: an open-addressed table that only grows (an
 * id, once in it, stays).  unlinked_n counts the ids unlinked now, so that
 * /v2/user/me looks nothing up while there is none.
 */
struct user {
	long long	 id;		/* 0: free slot */
	int		 unlinked;
	unsigned	 unlinks, logouts;
};

static struct {
	pthread_mutex_t	 mu;
	struct user	 slot[USERS_MAX];
	size_t		 n;
} users = { .mu = PTHREAD_MUTEX_INITIALIZER };
static atomic_int	unlinked_n;

/* ---- small helpers ---- */

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (ms > 0 && nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Parse a decimal id 1..LLONG_MAX at the start of s; returns the end of
 * its digits, or NULL. */
static const char *
parse_id_prefix(const char *s, long long *id)
{
	const char *p;
	long long v = 0;

	for (p = s; *p >= '0' && *p <= '9'; p++) {
		if (v > (LLONG_MAX - (*p - '0')) / 10)
			return NULL;
		v = v * 10 + (*p - '0');
	}
	if (p == s || v < 1)
		return NULL;
	*id = v;
	return p;
}

/* Parse a decimal id 1..LLONG_MAX filling the whole of s. */
static int
parse_id(const char *s, long long *id)
{
	const char *end = parse_id_prefix(s, id);

	return end != NULL && *end == '\0';
}

static void
oputs_n(struct out *o, const char *s, size_t n)
{
	if (o->overflow || n > o->cap - o->len) {
		o->overflow = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void
oputs(struct out *o, const char *s)
{
	oputs_n(o, s, strlen(s));
}

static void oprintf(struct out *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
oprintf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		o->overflow = 1;
	else
		o->len += (size_t)n;
}

/* Write s as JSON string content; bytes we do not trust become '?'. */
static void
ojson(struct out *o, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			oprintf(o, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			oputs(o, "?");
		else
			oputs_n(o, s, 1);
	}
}

static void
out_init(struct out *o, struct conn *c)
{
	o->p = c->out + OUT_HDR_ROOM;
	o->len = 0;
	o->cap = OUT_MAX;
	o->overflow = 0;
}

/* ---- responses ---- */

static const char *
reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 302: return "Found";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:  return "Status";
	}
}

static size_t
format_head(char *dst, size_t cap, int status, const char *ctype,
    const char *extra, size_t clen, int keepalive)
{
	int n = snprintf(dst, cap, "HTTP/1.1 %d %s\r\n"
	    "Server: fake-kakao\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "%s%s\r\n",
	    status, reason(status), ctype, clen, extra ? extra : "",
	    keepalive ? "" : "Connection: close\r\n");

	/* Callers pass short constant extras; this cannot truncate. */
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* Send only the headers; the body follows by other means. */
static int
send_head(struct conn *c, int status, const char *ctype, size_t clen,
    int keepalive)
{
	char head[OUT_HDR_ROOM];
	size_t hl = format_head(head, sizeof head, status, ctype, NULL, clen,
	    keepalive);

	c->status = status;
	return send_all(c->fd, head, hl);
}

/*
 * Answer with the blen-byte body already built at c->out + OUT_HDR_ROOM.
 * Returns 1 to keep the connection, 0 to close it.
 */
static int
respond(struct conn *c, const struct req *r, int status, const char *ctype,
    const char *extra, size_t blen)
{
	char head[OUT_HDR_ROOM];
	size_t hl = format_head(head, sizeof head, status, ctype, extra, blen,
	    r->keepalive);
	char *p = c->out + OUT_HDR_ROOM - hl;

	memcpy(p, head, hl);
	c->status = status;
	if (send_all(c->fd, p, hl + (r->head ? 0 : blen)) == -1)
		return 0;
	return r->keepalive;
}

static int
respond_str(struct conn *c, const struct req *r, int status,
    const char *extra, const char *body)
{
	struct out o;

	out_init(&o, c);
	oputs(&o, body);
	return respond(c, r, status, JSON_CT, extra, o.len);
}

static int
invalid_token(struct conn *c, const struct req *r)
{
	return respond_str(c, r, 401,
	    "WWW-Authenticate: Bearer error=invalid_token\r\n", INVALID_TOKEN);
}

static int
status_error(struct conn *c, const struct req *r, int status)
{
	const char *body;

	switch (status) {
	case 500: body = "{\"msg\":\"internal error\",\"code\":-1}"; break;
	case 503: body = "{\"msg\":\"system is under maintenance\",\"code\":-9798}"; break;
	case 429: body = "{\"msg\":\"API limit has been exceeded.\",\"code\":-10}"; break;
	case 403: body = "{\"msg\":\"user is not linked\",\"code\":-101}"; break;
	case 400: body = "{\"msg\":\"invalid parameter\",\"code\":-2}"; break;
	default:  body = "{\"msg\":\"error\",\"code\":-1}"; break;
	}
	return respond_str(c, r, status, NULL, body);
}

/* ---- unlink state ---- */

/* The slot of id, made when absent and make is set; NULL when absent (or
 * the table is full).  Call with users.mu held. */
static struct user *
user_slot(long long id, int make)
{
	size_t i = (size_t)((unsigned long long)id * 0x9E3779B97F4A7C15ULL >>
	    48) & (USERS_MAX - 1);

	for (; users.slot[i].id != 0; i = (i + 1) & (USERS_MAX - 1))
		if (users.slot[i].id == id)
			return &users.slot[i];
	if (!make || users.n >= USERS_FULL)
		return NULL;
	users.n++;
	users.slot[i].id = id;
	return &users.slot[i];
}

enum admin_op { OP_UNLINK, OP_LOGOUT };

/* Applies op to id: 200, 400 when id is not linked (-101), 500 when the
 * table is full. */
static int
user_apply(long long id, enum admin_op op)
{
	struct user *u;
	int status = 200;

	pthread_mutex_lock(&users.mu);
	if ((u = user_slot(id, 1)) == NULL)
		status = 500;
	else if (u->unlinked)
		status = 400;
	else if (op == OP_UNLINK) {
		u->unlinked = 1;
		u->unlinks++;
		atomic_fetch_add(&unlinked_n, 1);
	} else
		u->logouts++;
	pthread_mutex_unlock(&users.mu);
	return status;
}

/* A successful /v2/user/me of id: the user logged in again. */
static void
user_relink(long long id)
{
	struct user *u;

	if (atomic_load(&unlinked_n) == 0)
		return;
	pthread_mutex_lock(&users.mu);
	if ((u = user_slot(id, 0)) != NULL && u->unlinked) {
		u->unlinked = 0;
		atomic_fetch_sub(&unlinked_n, 1);
	}
	pthread_mutex_unlock(&users.mu);
}

/* A copy of id's state (all zero when the table has none). */
static struct user
user_get(long long id)
{
	struct user *u, copy = { id, 0, 0, 0 };

	pthread_mutex_lock(&users.mu);
	if ((u = user_slot(id, 0)) != NULL)
		copy = *u;
	pthread_mutex_unlock(&users.mu);
	return copy;
}

/* ---- tokens and bodies ---- */

/*
 * Skip the "slow<ms>." prefixes at *sp, adding their delays (capped) to
 * *slow_ms.  Returns 0 when a prefix is malformed.
 */
static int
parse_slow(const char **sp, int *slow_ms)
{
	const char *s = *sp;

	while (strncmp(s, "slow", 4) == 0 && s[4] >= '0' && s[4] <= '9') {
		long ms = 0;

		for (s += 4; *s >= '0' && *s <= '9'; s++)
			if (ms <= SLOW_MAX_MS)
				ms = ms * 10 + (*s - '0');
		if (*s++ != '.')
			return 0;
		*slow_ms += ms > SLOW_MAX_MS ? SLOW_MAX_MS : (int)ms;
		if (*slow_ms > SLOW_MAX_MS)
			*slow_ms = SLOW_MAX_MS;
	}
	*sp = s;
	return 1;
}

/* "status<code>" as a kind name: three digits, 400..599; 0 if not. */
static int
parse_status_kind(const char *s, size_t nlen)
{
	int code = 0;
	size_t i;

	if (nlen != 9 || strncmp(s, "status", 6) != 0)
		return 0;
	for (i = 6; i < 9; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		code = code * 10 + (s[i] - '0');
	}
	return code >= 400 && code <= 599 ? code : 0;
}

/*
 * Parse "[slow<ms>.]...<kind>-<id>" into t.  t->k stays NULL when the token
 * is outside the grammar; slow_ms is still honoured then.
 */
static void
parse_token(const char *s, struct tok *t)
{
	const char *dash;
	size_t nlen, i;

	memset(t, 0, sizeof *t);
	if (!parse_slow(&s, &t->slow_ms))
		return;
	if ((dash = strchr(s, '-')) == NULL || !parse_id(dash + 1, &t->id))
		return;
	nlen = (size_t)(dash - s);

	if (nlen >= 6 && strncmp(s, "status", 6) == 0) {
		if ((t->status = parse_status_kind(s, nlen)) == 0)
			return;
		s = "status";
		nlen = 6;
	}

	for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strlen(kinds[i].name) == nlen &&
		    memcmp(kinds[i].name, s, nlen) == 0) {
			t->k = &kinds[i];
			return;
		}
}

/* Writes "id":...,  (with the comma), or nothing for ID_NONE. */
static void
put_id(struct out *o, enum idfmt f, long long id)
{
	switch (f) {
	case ID_NUM:	oprintf(o, "\"id\":%lld,", id); break;
	case ID_STR:	oprintf(o, "\"id\":\"%lld\",", id); break;
	case ID_NEG:	oprintf(o, "\"id\":-%lld,", id); break;
	case ID_FLOAT:	oprintf(o, "\"id\":%lld.5,", id); break;
	case ID_BIG:	oputs(o, "\"id\":18446744073709551616,"); break;
	case ID_ZERO:	oputs(o, "\"id\":0,"); break;
	case ID_NONE:	break;
	}
}

static void
put_nick(struct out *o, enum nick n, long long id)
{
	int i;

	switch (n) {
	case N_USER:
		oprintf(o, "user%lld", id);
		break;
	case N_BADUTF8:
		oprintf(o, "user%lld", id);
		oputs(o, "\xC3\x28");		/* lead byte + non-continuation */
		break;
	case N_LONG:
		for (i = 0; i < LONGNICK_LEN; i += 10)
			oputs_n(o, "aaaaaaaaaa", 10);
		break;
	case N_UNICODE:
		oputs(o, "\xEA\xB9\x80\xEC\xB9\xB4\xEC\xB9\xB4\xEC\x98\xA4");
		break;				/* "김카카오" */
	}
}

/* An image URL's JSON string content: the kind's own, else ours. */
static void
put_image(struct out *o, const struct kind *k, const char *what,
    long long id)
{
	if (k->image != NULL)
		ojson(o, k->image);
	else
		oprintf(o, "http://k.kakaocdn.net/%s/%lld.jpg", what, id);
}

static const char *
jbool(int b)
{
	return b ? "true" : "false";
}

static void
profile_body(struct out *o, const struct kind *k, long long id)
{
	if (k->shape == P_NOID) {
		oputs(o, "{\"connected_at\":\"" CONNECTED_AT "\","
		    "\"properties\":{\"nickname\":\"x\"}}");
		return;
	}
	oputs(o, "{");
	put_id(o, k->idf, id);
	oputs(o, "\"connected_at\":\"" CONNECTED_AT "\"");
	if (k->shape == P_BARE) {
		oputs(o, "}");
		return;
	}
	if (k->shape == P_FULL) {
		oputs(o, ",\"properties\":{\"nickname\":\"");
		put_nick(o, k->nick, id);
		oputs(o, "\",\"profile_image\":\"");
		put_image(o, k, "img", id);
		oputs(o, "\",\"thumbnail_image\":\"");
		put_image(o, k, "thumb", id);
		oputs(o, "\"},\"kakao_account\":{"
		    "\"profile_nickname_needs_agreement\":false,"
		    "\"profile\":{\"nickname\":\"");
		put_nick(o, k->nick, id);
		oputs(o, "\",\"thumbnail_image_url\":\"");
		put_image(o, k, "thumb", id);
		oputs(o, "\",\"profile_image_url\":\"");
		put_image(o, k, "img", id);
		oputs(o, "\",\"is_default_image\":false,"
		    "\"is_default_nickname\":false},");
	} else		/* P_NONICK: the user did not consent to the nickname */
		oputs(o, ",\"kakao_account\":{"
		    "\"profile_nickname_needs_agreement\":true,");
	oprintf(o, "\"email_needs_agreement\":false,\"is_email_valid\":%s,"
	    "\"is_email_verified\":%s,\"email\":\"user%lld@example.com\"}}",
	    jbool(k->mail_valid), jbool(k->mail_verified), id);
}

static void
info_body(struct out *o, const struct kind *k, long long id)
{
	oputs(o, "{");
	put_id(o, k->idf, id);
	oprintf(o, "\"expires_in\":%d,\"app_id\":%lld}", EXPIRES_IN,
	    k->app_id ? k->app_id : app_id);
}

/* ---- faults ---- */

/* Read and drop input until the peer closes or HANG_MAX_MS pass. */
static void
hang(int fd)
{
	long long deadline = now_ms() + HANG_MAX_MS;
	char scratch[512];

	for (;;) {
		long long left = deadline - now_ms();
		struct pollfd pfd = { fd, POLLIN, 0 };
		int n;

		if (left <= 0)
			return;
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || recv(fd, scratch, sizeof scratch, 0) <= 0)
			return;
	}
}

/* Same JSON with its last '}' turned into ,"padding":"xxx..."} to HUGE_BODY. */
static int
send_huge(struct conn *c, const struct req *r, const char *body, size_t blen)
{
	static const char pad_open[] = ",\"padding\":\"", pad_close[] = "\"}";
	size_t fixed = blen - 1 + (sizeof pad_open - 1) + (sizeof pad_close - 1);
	size_t left = HUGE_BODY - fixed, n;

	if (send_head(c, 200, JSON_CT, HUGE_BODY, r->keepalive) == -1 ||
	    send_all(c->fd, body, blen - 1) == -1 ||
	    send_all(c->fd, pad_open, sizeof pad_open - 1) == -1)
		return 0;
	for (; left > 0; left -= n) {
		n = left < PAD_CHUNK ? left : PAD_CHUNK;
		if (send_all(c->fd, padding, n) == -1)
			return 0;
	}
	if (send_all(c->fd, pad_close, sizeof pad_close - 1) == -1)
		return 0;
	return r->keepalive;
}

static void
send_truncated(struct conn *c, const char *body, size_t blen)
{
	if (send_head(c, 200, JSON_CT, TRUNC_CLAIM, 0) == 0)
		send_all(c->fd, body, blen < TRUNC_SENT ? blen : TRUNC_SENT);
	shutdown(c->fd, SHUT_WR);
}

/* One byte every TRICKLE_MS; poll() doubles as the sleep and notices a hang-up. */
static void
send_trickle(struct conn *c, const char *body, size_t blen)
{
	size_t i;

	if (send_head(c, 200, JSON_CT, blen, 0) == -1)
		return;
	for (i = 0; i < blen; i++) {
		struct pollfd pfd = { c->fd, POLLRDHUP, 0 };

		if (poll(&pfd, 1, TRICKLE_MS) != 0)
			return;		/* peer gone (or EINTR: give up) */
		if (send_all(c->fd, body + i, 1) == -1)
			return;
	}
}

/* ---- endpoints ---- */

enum endpoint { EP_ME, EP_INFO };

/* The token in "Bearer <token>", or NULL. */
static const char *
bearer(const char *auth)
{
	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return NULL;
	for (auth += 7; *auth == ' '; auth++)
		;
	return *auth ? auth : NULL;
}

/*
 * The faults that replace the answer whatever it was (close, hang,
 * garbage); *done says one was sent.  Returns 1 to keep the connection.
 */
static int
send_early_fault(struct conn *c, const struct req *r, enum fault f, int *done)
{
	struct out o;

	*done = 1;
	switch (f) {
	case F_CLOSE:
		return 0;
	case F_HANG:
		hang(c->fd);
		return 0;
	case F_GARBAGE:
		out_init(&o, c);
		oputs(&o, "<html>not json</html>");
		return respond(c, r, 200, "text/html", NULL, o.len);
	case F_CTLGARBAGE:
		out_init(&o, c);
		oputs(&o, "{\"id\":\"\xe2\x80\xae\xe2\x80\xa8" "fake\x7f\x1b[2J\"}");
		return respond(c, r, 200, JSON_CT, NULL, o.len);
	default:
		*done = 0;
		return 1;
	}
}

/* Send the 200 body built in o, spoilt the way the fault f says. */
static int
send_body(struct conn *c, const struct req *r, enum fault f, struct out *o)
{
	if (o->overflow)
		return respond_str(c, r, 500, NULL,
		    "{\"msg\":\"fake-kakao: body too big\",\"code\":-1}");
	switch (f) {
	case F_HUGE:
		return send_huge(c, r, o->p, o->len);
	case F_TRUNCATED:
		send_truncated(c, o->p, o->len);
		return 0;
	case F_TRICKLE:
		send_trickle(c, o->p, o->len);
		return 0;
	default:
		return respond(c, r, 200, JSON_CT, NULL, o->len);
	}
}

static int
kapi(struct conn *c, const struct req *r, enum endpoint ep)
{
	const char *token = bearer(r->auth);
	struct tok t;
	struct out o;
	int keep, done;

	memset(&t, 0, sizeof t);
	if (token != NULL)
		parse_token(token, &t);
	sleep_ms(delay_ms + t.slow_ms);

	if (t.k == NULL || t.k->fault == F_INVALID)
		return invalid_token(c, r);
	if (t.k->fault == F_STATUS)
		return status_error(c, r, t.status);
	keep = send_early_fault(c, r, t.k->fault, &done);
	if (done)
		return keep;

	out_init(&o, c);
	if (ep == EP_ME)
		profile_body(&o, t.k, t.id);
	else
		info_body(&o, t.k, t.id);
	/* The user logged in again: linked again. */
	if (ep == EP_ME && t.k->fault == F_NONE && t.k->idf == ID_NUM &&
	    !o.overflow)
		user_relink(t.id);
	return send_body(c, r, t.k->fault, &o);
}

static int
kapi_me(struct conn *c, const struct req *r)
{
	return kapi(c, r, EP_ME);
}

static int
kapi_info(struct conn *c, const struct req *r)
{
	return kapi(c, r, EP_INFO);
}

/* ---- forms ---- */

/*
 * Copy the url-decoded value of key from an x-www-form-urlencoded body into
 * dst.  Returns 1 when the key is present, 0 when it is not (dst empty), -1
 * when its value does not fit in cap - 1 bytes (dst holds the start).
 */
static int
form_value(const char *body, size_t blen, const char *key, char *dst,
    size_t cap)
{
	const char *p = body, *end = body + blen;
	size_t klen = strlen(key);

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pend = amp ? amp : end;

		if ((size_t)(pend - p) > klen && memcmp(p, key, klen) == 0 &&
		    p[klen] == '=') {
			size_t n = 0;

			for (p += klen + 1; p < pend && n + 1 < cap; p++) {
				unsigned int hex;

				if (*p == '+')
					dst[n++] = ' ';
				else if (*p == '%' && pend - p >= 3 &&
				    sscanf(p + 1, "%2x", &hex) == 1) {
					dst[n++] = (char)hex;
					p += 2;
				} else
					dst[n++] = *p;
			}
			dst[n] = '\0';
			return p < pend ? -1 : 1;
		}
		p = amp ? amp + 1 : end;
	}
	dst[0] = '\0';
	return 0;
}

/* The decoded value of key in the query, or NULL when absent (or out of
 * memory).  The caller frees it. */
static char *
query_dup(const struct req *r, const char *key)
{
	size_t qlen = strlen(r->query);
	char *v = malloc(qlen + 1);

	if (v != NULL && form_value(r->query, qlen, key, v, qlen + 1) != 1) {
		free(v);
		v = NULL;
	}
	return v;
}

/* key=1 / key=0 in the query: 1 or 0, dflt when absent, -1 otherwise. */
static int
query_bool(const struct req *r, const char *key, int dflt)
{
	char v[8];

	switch (form_value(r->query, strlen(r->query), key, v, sizeof v)) {
	case 0:
		return dflt;
	case 1:
		if (strcmp(v, "1") == 0 || strcmp(v, "0") == 0)
			return v[0] == '1';
		return -1;
	default:
		return -1;
	}
}

/* True for "application/x-www-form-urlencoded", parameters allowed. */
static int
is_form(const char *ctype)
{
	size_t n = sizeof FORM_CT - 1;

	if (ctype == NULL || strncasecmp(ctype, FORM_CT, n) != 0)
		return 0;
	for (ctype += n; *ctype == ' ' || *ctype == '\t'; ctype++)
		;
	return *ctype == '\0' || *ctype == ';';
}

/* ---- /v1/user/unlink and /v1/user/logout ---- */

/* The key in "KakaoAK <key>", or NULL. */
static const char *
kakao_ak(const char *auth)
{
	if (auth == NULL || strncasecmp(auth, "KakaoAK ", 8) != 0)
		return NULL;
	for (auth += 8; *auth == ' '; auth++)
		;
	return auth;
}

/* The -K key, compared in constant time (its length is no secret here). */
static int
admin_key_ok(const char *got)
{
	size_t n = strlen(admin_key);

	return strlen(got) == n && CRYPTO_memcmp(got, admin_key, n) == 0;
}

/* {"id":N} once the state allows op on id, else Kakao's -101. */
static int
admin_answer(struct conn *c, const struct req *r, long long id,
    enum admin_op op)
{
	struct out o;

	switch (user_apply(id, op)) {
	case 400:
		return respond_str(c, r, 400, NULL, NOT_LINKED);
	case 500:
		return respond_str(c, r, 500, NULL,
		    "{\"msg\":\"fake-kakao: too many users\",\"code\":-1}");
	default:
		break;
	}
	out_init(&o, c);
	oprintf(&o, "{\"id\":%lld}", id);
	return respond(c, r, 200, JSON_CT, NULL, o.len);
}

/* The admin form: KakaoAK <key>, target_id_type=user_id&target_id=N. */
static int
admin_by_key(struct conn *c, const struct req *r, const char *key,
    enum admin_op op)
{
	char type[ADMIN_FORM_MAX], target[ADMIN_FORM_MAX];
	long long id;

	sleep_ms(delay_ms);
	if (!admin_key_ok(key))
		return respond_str(c, r, 401, NULL,
		    "{\"msg\":\"wrong appKey\",\"code\":-401}");
	if (!is_form(r->ctype) ||
	    form_value(r->body, r->blen, "target_id_type", type,
	    sizeof type) != 1 || strcmp(type, "user_id") != 0 ||
	    form_value(r->body, r->blen, "target_id", target,
	    sizeof target) != 1 || !parse_id(target, &id))
		return respond_str(c, r, 400, NULL,
		    "{\"msg\":\"target_id_type=user_id and a target_id are "
		    "required\",\"code\":-2}");
	return admin_answer(c, r, id, op);
}

/* The user's form: Bearer <token>, the token grammar of /v2/user/me. */
static int
admin_by_token(struct conn *c, const struct req *r, enum admin_op op)
{
	const char *token = bearer(r->auth);
	struct tok t;
	struct out o;
	int keep, done;

	memset(&t, 0, sizeof t);
	if (token != NULL)
		parse_token(token, &t);
	sleep_ms(delay_ms + t.slow_ms);
	if (t.k == NULL || t.k->fault == F_INVALID)
		return invalid_token(c, r);
	if (t.k->fault == F_STATUS)
		return status_error(c, r, t.status);
	keep = send_early_fault(c, r, t.k->fault, &done);
	if (done)
		return keep;
	if (t.k->fault == F_NONE && t.k->idf == ID_NUM)
		return admin_answer(c, r, t.id, op);
	/* A spoilt id or body, and no change of state. */
	out_init(&o, c);
	oputs(&o, "{");
	put_id(&o, t.k->idf, t.id);
	if (o.len > 1)
		o.len--;			/* put_id's comma */
	oputs(&o, "}");
	return send_body(c, r, t.k->fault, &o);
}

static int
kapi_admin(struct conn *c, const struct req *r, enum admin_op op)
{
	const char *key;

	atomic_fetch_add(op == OP_UNLINK ? &st_unlink_calls : &st_logout_calls,
	    1);
	switch (atomic_load(&admin_state)) {
	case ADMIN_DROP:
		return 0;
	case ADMIN_DOWN:
		return respond_str(c, r, 503, NULL,
		    "{\"msg\":\"system maintenance\",\"code\":-7}");
	default:
		break;
	}
	if ((key = kakao_ak(r->auth)) != NULL)
		return admin_by_key(c, r, key, op);
	return admin_by_token(c, r, op);
}

static int
kapi_unlink(struct conn *c, const struct req *r)
{
	return kapi_admin(c, r, OP_UNLINK);
}

static int
kapi_logout(struct conn *c, const struct req *r)
{
	return kapi_admin(c, r, OP_LOGOUT);
}

/* ---- keys and id_tokens ---- */

/* Append base64url of src (no padding); sets o->overflow if it does not fit. */
static void
ob64url(struct out *o, const unsigned char *src, size_t n)
{
	size_t need = 4 * ((n + 2) / 3) + 1, i;	/* + EVP_EncodeBlock's NUL */
	char *d;
	int len;

	if (o->overflow || need > o->cap - o->len || n > INT_MAX / 2) {
		o->overflow = 1;
		return;
	}
	d = o->p + o->len;
	len = EVP_EncodeBlock((unsigned char *)d, src, (int)n);
	for (i = 0; i < (size_t)len && d[i] != '='; i++) {
		if (d[i] == '+')
			d[i] = '-';
		else if (d[i] == '/')
			d[i] = '_';
	}
	o->len += i;
}

static void
out_buf(struct out *o, char *buf, size_t cap)
{
	o->p = buf;
	o->len = 0;
	o->cap = cap;
	o->overflow = 0;
}

/* A signing key; immutable once made, never freed (see keys). */
struct fkey {
	EVP_PKEY	*pk;
	char		 kid[KID_MAX];
	char		 n[B64_N_MAX];	/* base64url modulus, no leading zero */
	char		 e[16];		/* base64url exponent */
	char		 pem[PEM_MAX];	/* SubjectPublicKeyInfo PEM */
};

/*
 * The key set.  The first key and the spare are made by keys_main() while
 * the fake already listens (RSA key generation takes up to a second, and
 * the suites start the fake often); keys_lock() waits for them.
 */
static struct {
	pthread_mutex_t	 mu;		/* guards everything below */
	pthread_cond_t	 ready_cv;	/* signalled once, when ready is set */
	pthread_mutex_t	 rotate_mu;	/* one rotation at a time */
	int		 ready;
	struct fkey	*all[KEYS_MAX];	/* all[n - 1] signs */
	int		 n;
	int		 jwks_from;	/* all[jwks_from .. n - 1] are served */
	struct fkey	*spare;		/* kid=unknown: never served */
} keys = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER, 0, { NULL }, 0, 0, NULL };

/* Lock the key set once its first keys exist. */
static void
keys_lock(void)
{
	pthread_mutex_lock(&keys.mu);
	while (!keys.ready)
		pthread_cond_wait(&keys.ready_cv, &keys.mu);
}

/* base64url of the key's big-number parameter name into dst. */
static int
key_param_b64(EVP_PKEY *pk, const char *name, char *dst, size_t cap)
{
	unsigned char bin[RSA_BITS / 8 + 8];
	BIGNUM *bn = NULL;
	struct out o;
	int len;

	if (!EVP_PKEY_get_bn_param(pk, name, &bn))
		return -1;
	len = BN_num_bytes(bn);		/* BN_bn2bin: no leading zero byte */
	if (len <= 0 || (size_t)len > sizeof bin) {
		BN_free(bn);
		return -1;
	}
	BN_bn2bin(bn, bin);
	BN_free(bn);
	out_buf(&o, dst, cap);
	ob64url(&o, bin, (size_t)len);
	if (o.overflow)
		return -1;
	dst[o.len] = '\0';
	return 0;
}

/* A new RSA key named kid, or NULL.  Never freed: tokens and threads may
 * still hold it. */
static struct fkey *
key_new(const char *kid)
{
	struct fkey *k = calloc(1, sizeof *k);
	BIO *bio = NULL;
	char *pem;
	long plen;

	if (k == NULL || (k->pk = EVP_RSA_gen(RSA_BITS)) == NULL)
		goto fail;
	snprintf(k->kid, sizeof k->kid, "%s", kid);
	if (key_param_b64(k->pk, OSSL_PKEY_PARAM_RSA_N, k->n, sizeof k->n) ||
	    key_param_b64(k->pk, OSSL_PKEY_PARAM_RSA_E, k->e, sizeof k->e))
		goto fail;
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_PUBKEY(bio, k->pk))
		goto fail;
	plen = BIO_get_mem_data(bio, &pem);
	if (plen <= 0 || (size_t)plen >= sizeof k->pem)
		goto fail;
	memcpy(k->pem, pem, (size_t)plen);
	BIO_free(bio);
	return k;
fail:
	BIO_free(bio);
	if (k != NULL)
		EVP_PKEY_free(k->pk);
	free(k);
	return NULL;
}

/* The signing key (kid NULL), the key named kid, or for "unknown" the
 * spare; NULL when there is none. */
static const struct fkey *
key_pick(const char *kid)
{
	const struct fkey *k = NULL;
	int i;

	keys_lock();
	if (kid != NULL && strcmp(kid, "unknown") == 0)
		k = keys.spare;
	else if (kid == NULL)
		k = keys.all[keys.n - 1];
	for (i = 0; k == NULL && kid != NULL && i < keys.n; i++)
		if (strcmp(keys.all[i]->kid, kid) == 0)
			k = keys.all[i];
	pthread_mutex_unlock(&keys.mu);
	return k;
}

/* Thread: makes the first key and the spare, then marks the set ready. */
static void *
keys_main(void *arg)
{
	struct fkey *first = key_new("fake-key-1");
	struct fkey *spare = key_new("fake-key-unknown");

	(void)arg;
	if (first == NULL || spare == NULL) {
		fprintf(stderr, "fake-kakao: cannot make RSA keys\n");
		_exit(1);
	}
	pthread_mutex_lock(&keys.mu);
	keys.all[0] = first;
	keys.n = 1;
	keys.spare = spare;
	keys.ready = 1;
	pthread_cond_broadcast(&keys.ready_cv);
	pthread_mutex_unlock(&keys.mu);
	return NULL;
}

/*
 * Make the next key and sign with it from now on.  keep: the JWKS also
 * keeps serving the keys it served (the newest JWKS_SERVE_MAX); else it
 * serves only the new one.  Returns 0, or -1 (no key made).
 */
static int
key_rotate(int keep)
{
	char kid[KID_MAX];
	struct fkey *k = NULL;
	int n;

	pthread_mutex_lock(&keys.rotate_mu);
	keys_lock();
	n = keys.n;
	pthread_mutex_unlock(&keys.mu);
	snprintf(kid, sizeof kid, "fake-key-%d", n + 1);
	if (n < KEYS_MAX && (k = key_new(kid)) != NULL) {
		pthread_mutex_lock(&keys.mu);
		keys.all[keys.n++] = k;
		if (!keep)
			keys.jwks_from = keys.n - 1;
		else if (keys.n - keys.jwks_from > JWKS_SERVE_MAX)
			keys.jwks_from = keys.n - JWKS_SERVE_MAX;
		pthread_mutex_unlock(&keys.mu);
	}
	pthread_mutex_unlock(&keys.rotate_mu);
	return k != NULL ? 0 : -1;
}

/* {"keys":[...]}: the served keys, the signing one first. */
static void
jwks_body(struct out *o)
{
	int i;

	keys_lock();
	oputs(o, "{\"keys\":[");
	for (i = keys.n - 1; i >= keys.jwks_from; i--)
		oprintf(o, "%s{\"kid\":\"%s\",\"kty\":\"RSA\",\"alg\":\"RS256\","
		    "\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"}",
		    i == keys.n - 1 ? "" : ",", keys.all[i]->kid,
		    keys.all[i]->n, keys.all[i]->e);
	oputs(o, "]}");
	pthread_mutex_unlock(&keys.mu);
}

/* {"kid":<signing>,"jwks":[<served kids>]}: what /__rotate answers. */
static void
key_state_body(struct out *o)
{
	int i;

	keys_lock();
	oprintf(o, "{\"kid\":\"%s\",\"jwks\":[", keys.all[keys.n - 1]->kid);
	for (i = keys.n - 1; i >= keys.jwks_from; i--)
		oprintf(o, "%s\"%s\"", i == keys.n - 1 ? "" : ",",
		    keys.all[i]->kid);
	oputs(o, "]}");
	pthread_mutex_unlock(&keys.mu);
}

/* An id_token's claims; NULL strings and has_* = 0 are left out. */
struct claims {
	const char	*iss, *aud, *sub, *nonce;
	const char	*nickname, *picture, *email;
	long long	 iat, exp, auth_time;
	int		 has_iat, has_exp, has_auth_time;
	int		 email_verified;	/* -1 left out, else the boolean */
};

/* JSON string content, UTF-8 passed through (a test may want it raw). */
static void
ojson_utf8(struct out *o, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			oprintf(o, "\\%c", ch);
		else if (ch < 0x20)
			oprintf(o, "\\u%04x", ch);
		else
			oputs_n(o, s, 1);
	}
}

static void
claim_str(struct out *o, const char *name, const char *v)
{
	if (v == NULL)
		return;
	oprintf(o, "%s\"%s\":\"", o->len > 1 ? "," : "", name);
	ojson_utf8(o, v);
	oputs(o, "\"");
}

static void
claim_num(struct out *o, const char *name, int has, long long v)
{
	if (has)
		oprintf(o, "%s\"%s\":%lld", o->len > 1 ? "," : "", name, v);
}

static void
claims_json(struct out *o, const struct claims *cl)
{
	oputs(o, "{");
	claim_str(o, "iss", cl->iss);
	claim_str(o, "aud", cl->aud);
	claim_str(o, "sub", cl->sub);
	claim_num(o, "iat", cl->has_iat, cl->iat);
	claim_num(o, "exp", cl->has_exp, cl->exp);
	claim_num(o, "auth_time", cl->has_auth_time, cl->auth_time);
	claim_str(o, "nonce", cl->nonce);
	claim_str(o, "nickname", cl->nickname);
	claim_str(o, "picture", cl->picture);
	claim_str(o, "email", cl->email);
	if (cl->email_verified != -1)
		oprintf(o, "%s\"email_verified\":%s", o->len > 1 ? "," : "",
		    jbool(cl->email_verified));
	oputs(o, "}");
}

/*
 * Append an RS256 JWT with claims cl, signed by k, to o.  Returns 0, or -1
 * when it does not fit or signing fails (o then holds a partial token).
 */
static int
id_token_append(struct out *o, const struct fkey *k, const struct claims *cl)
{
	char hdr[128], *pj = malloc(CLAIMS_MAX);	/* freed here */
	unsigned char sig[SIG_MAX];
	size_t slen = sizeof sig, start = o->len;
	EVP_MD_CTX *md = NULL;
	struct out p;
	int rc = -1, hl;

	if (pj == NULL)
		return -1;
	out_buf(&p, pj, CLAIMS_MAX);
	claims_json(&p, cl);
	hl = snprintf(hdr, sizeof hdr,
	    "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", k->kid);
	ob64url(o, (const unsigned char *)hdr, (size_t)hl);
	oputs(o, ".");
	ob64url(o, (const unsigned char *)pj, p.len);
	if (p.overflow || o->overflow)
		goto done;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pk) != 1 ||
	    EVP_DigestSign(md, sig, &slen,
	    (const unsigned char *)o->p + start, o->len - start) != 1)
		goto done;
	oputs(o, ".");
	ob64url(o, sig, slen);
	rc = o->overflow ? -1 : 0;
done:
	EVP_MD_CTX_free(md);
	free(pj);
	return rc;
}

/* ---- /oauth/token ---- */

/*
 * Codes Kakao has seen: a code works once, whatever its first answer was.
 * SHA-256 tags (the first 8 bytes) in a ring of used_cap slots, the oldest
 * forgotten, chained into USED_MAX buckets for the lookup.
 */
static struct {
	pthread_mutex_t	 mu;
	uint64_t	 tag[USED_MAX];
	int32_t		 next[USED_MAX];	/* bucket chain; -1 ends it */
	int32_t		 head[USED_MAX];	/* first slot of a bucket; -1 */
	size_t		 n, pos;		/* slots held; next (oldest) slot */
} used_codes = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void
used_init(void)
{
	memset(used_codes.head, 0xff, sizeof used_codes.head);
}

/* Record code as used: 1 the first time, 0 when it was seen before. */
static int
used_claim(const char *code)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	uint64_t t;
	size_t b;
	int32_t i, *pp;
	int fresh = 1;

	SHA256((const unsigned char *)code, strlen(code), md);
	memcpy(&t, md, sizeof t);
	b = (size_t)(t & (USED_MAX - 1));

	pthread_mutex_lock(&used_codes.mu);
	for (i = used_codes.head[b]; i != -1; i = used_codes.next[i])
		if (used_codes.tag[i] == t) {
			fresh = 0;
			goto out;
		}
	if (used_codes.n == used_cap) {		/* forget the oldest */
		size_t ob = (size_t)(used_codes.tag[used_codes.pos] &
		    (USED_MAX - 1));

		pp = &used_codes.head[ob];
		while (*pp != (int32_t)used_codes.pos)
			pp = &used_codes.next[*pp];
		*pp = used_codes.next[used_codes.pos];
	} else
		used_codes.n++;
	used_codes.tag[used_codes.pos] = t;
	used_codes.next[used_codes.pos] = used_codes.head[b];
	used_codes.head[b] = (int32_t)used_codes.pos;
	used_codes.pos = (used_codes.pos + 1) % used_cap;
out:
	pthread_mutex_unlock(&used_codes.mu);
	return fresh;
}

enum code_act {
	C_TOKEN,	/* tokens, the body spoilt by the fault column */
	C_OIDC,		/* tokens and an id_token */
	C_KOE,		/* that Kakao error */
	C_STATUS	/* status<code>: HTTP <code>, a kauth error body */
};

struct code_kind {
	const char	*name;
	enum code_act	 act;
	enum fault	 fault;		/* C_TOKEN only */
	int		 status;	/* C_KOE only, and its error: */
	const char	*error, *koe, *desc;	/* desc NULL: "not found" */
};

/* Every code kind; a code matching none is "not found" (KOE320). */
static const struct code_kind code_kinds[] = {
	{ "good",	C_TOKEN, F_NONE, 0, NULL, NULL, NULL },
	{ "oidc",	C_OIDC,	F_NONE, 0, NULL, NULL, NULL },
	{ "koe320",	C_KOE,	F_NONE, 400, "invalid_grant", "KOE320", NULL },
	{ "koe303",	C_KOE,	F_NONE, 400, "invalid_grant", "KOE303",
	  "Redirect URI mismatch." },
	{ "koe006",	C_KOE,	F_NONE, 400, "misconfigured", "KOE006",
	  "invalid redirect uri." },
	{ "koe010",	C_KOE,	F_NONE, 401, "invalid_client", "KOE010",
	  "Bad client credentials" },
	{ "koe101",	C_KOE,	F_NONE, 401, "invalid_client", "KOE101",
	  "Not exist client_id" },
	{ "status",	C_STATUS, F_NONE, 0, NULL, NULL, NULL },	/* status<code> */
	{ "garbage",	C_TOKEN, F_GARBAGE, 0, NULL, NULL, NULL },
	{ "ctlgarbage",	C_TOKEN, F_CTLGARBAGE, 0, NULL, NULL, NULL },
	{ "huge",	C_TOKEN, F_HUGE, 0, NULL, NULL, NULL },
	{ "truncated",	C_TOKEN, F_TRUNCATED, 0, NULL, NULL, NULL },
	{ "trickle",	C_TOKEN, F_TRICKLE, 0, NULL, NULL, NULL },
	{ "hang",	C_TOKEN, F_HANG, 0, NULL, NULL, NULL },
	{ "close",	C_TOKEN, F_CLOSE, 0, NULL, NULL, NULL },
};

struct code {
	const struct code_kind *k;	/* NULL: not in the grammar */
	long long	 id;
	int		 slow_ms;
	int		 status;		/* C_STATUS only */
	char		 challenge[CHALLENGE_MAX]; /* "": no PKCE */
	const char	*nonce;			/* into the code; NULL: none */
};

static int
is_b64url(int ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

/*
 * Parse "[slow<ms>.]<kind>-<id>[.u<tag>][.s<challenge>][.n<nonce>]" into cd.
 * The tag (letters and digits) is ignored: tests use it to make a code
 * unique.  The nonce is the rest of the code, whatever it holds.
 */
static void
parse_code(const char *s, struct code *cd)
{
	const char *dash, *p;
	size_t nlen, i, clen = 0;

	memset(cd, 0, sizeof *cd);
	if (!parse_slow(&s, &cd->slow_ms) || (dash = strchr(s, '-')) == NULL ||
	    (p = parse_id_prefix(dash + 1, &cd->id)) == NULL)
		return;
	if (strncmp(p, ".u", 2) == 0) {		/* a tag making it unique */
		const char *tag = p += 2;

		while (isalnum((unsigned char)*p))
			p++;
		if (p == tag)
			return;
	}
	if (strncmp(p, ".s", 2) == 0) {
		for (p += 2; is_b64url(*p); p++) {
			if (clen + 1 >= sizeof cd->challenge)
				return;
			cd->challenge[clen++] = *p;
		}
		if (clen == 0)
			return;
	}
	if (strncmp(p, ".n", 2) == 0) {		/* the rest is the nonce */
		cd->nonce = p + 2;
		p += strlen(p);
	}
	if (*p != '\0')
		return;
	nlen = (size_t)(dash - s);
	if (nlen >= 6 && strncmp(s, "status", 6) == 0) {
		if ((cd->status = parse_status_kind(s, nlen)) == 0)
			return;
		nlen = 6;
	}
	for (i = 0; i < sizeof code_kinds / sizeof code_kinds[0]; i++)
		if (strlen(code_kinds[i].name) == nlen &&
		    memcmp(code_kinds[i].name, s, nlen) == 0) {
			cd->k = &code_kinds[i];
			return;
		}
}

/* kauth's error shape: {"error":..,"error_description":..,"error_code":..} */
static int
kauth_error(struct conn *c, const struct req *r, int status,
    const char *error, const char *desc, const char *koe)
{
	struct out o;

	out_init(&o, c);
	oprintf(&o, "{\"error\":\"%s\",\"error_description\":\"", error);
	ojson(&o, desc);
	oprintf(&o, "\",\"error_code\":\"%s\"}", koe);
	return respond(c, r, status, JSON_CT, NULL, o.len);
}

/* Kakao's answer to an unknown or used code; like Kakao, it quotes it. */
static int
code_not_found(struct conn *c, const struct req *r, const char *code)
{
	struct out o;

	out_init(&o, c);
	oputs(&o, "{\"error\":\"invalid_grant\",\"error_description\":"
	    "\"authorization code not found for code=");
	ojson(&o, code);
	oputs(&o, "\",\"error_code\":\"KOE320\"}");
	return respond(c, r, 400, JSON_CT, NULL, o.len);
}

/* True when base64url(SHA-256(verifier)) is the challenge (PKCE S256). */
static int
pkce_ok(const char *challenge, const char *verifier)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char b64[64];
	struct out o;

	SHA256((const unsigned char *)verifier, strlen(verifier), md);
	out_buf(&o, b64, sizeof b64);
	ob64url(&o, md, sizeof md);
	b64[o.overflow ? 0 : o.len] = '\0';
	return !o.overflow && strcmp(b64, challenge) == 0;
}

/* The success body; the id_token's claims match kapi's valid-<id>. */
static int
token_body(struct out *o, const struct code *cd, const char *aud)
{
	int oidc = cd->k->act == C_OIDC;
	unsigned long long rnd;
	char sub[24], nick[32], pic[64], mail[48];
	struct claims cl;
	long long now = (long long)time(NULL);

	if (RAND_bytes((unsigned char *)&rnd, sizeof rnd) != 1)
		rnd = (unsigned long long)now_ms();
	oprintf(o, "{\"token_type\":\"bearer\",\"access_token\":\"valid-%lld\","
	    "\"expires_in\":%d,\"refresh_token\":\"refresh-%lld-%016llx\","
	    "\"refresh_token_expires_in\":%d,\"scope\":\"%s\"",
	    cd->id, EXPIRES_IN, cd->id, rnd, REFRESH_EXPIRES, oidc ?
	    "profile_nickname profile_image account_email openid" :
	    "profile_nickname account_email");
	if (oidc) {
		snprintf(sub, sizeof sub, "%lld", cd->id);
		snprintf(nick, sizeof nick, "user%lld", cd->id);
		snprintf(pic, sizeof pic, "http://k.kakaocdn.net/img/%lld.jpg",
		    cd->id);
		snprintf(mail, sizeof mail, "user%lld@example.com", cd->id);
		cl = (struct claims){ .iss = issuer, .aud = aud, .sub = sub,
		    .nonce = cd->nonce, .nickname = nick, .picture = pic,
		    .email = mail, .iat = now, .exp = now + EXPIRES_IN,
		    .auth_time = now, .has_iat = 1, .has_exp = 1,
		    .has_auth_time = 1, .email_verified = -1 };
		oputs(o, ",\"id_token\":\"");
		if (id_token_append(o, key_pick(NULL), &cl) == -1)
			return -1;
		oputs(o, "\"");
	}
	oputs(o, "}");
	return 0;
}

/* Answer a fresh, well-formed code the way its kind says. */
static int
code_answer(struct conn *c, const struct req *r, const struct code *cd,
    const char *code, const char *aud)
{
	const struct code_kind *k = cd->k;
	struct out o;
	int keep, done, s5;

	switch (k->act) {
	case C_KOE:
		if (k->desc == NULL)
			return code_not_found(c, r, code);
		return kauth_error(c, r, k->status, k->error, k->desc, k->koe);
	case C_STATUS:
		s5 = cd->status >= 500;
		return kauth_error(c, r, cd->status,
		    s5 ? "server_error" : "invalid_request",
		    s5 ? "system is under maintenance" : "request refused",
		    s5 ? "KOE003" : "KOE001");
	default:
		break;
	}
	keep = send_early_fault(c, r, k->fault, &done);
	if (done)
		return keep;
	out_init(&o, c);
	if (token_body(&o, cd, aud) == -1)
		return respond_str(c, r, 500, NULL,
		    "{\"msg\":\"fake-kakao: cannot sign\",\"code\":-1}");
	return send_body(c, r, k->fault, &o);
}

/* The form fields /oauth/token reads. */
struct token_form {
	char	grant[CODE_MAX], client_id[CODE_MAX], secret[CODE_MAX];
	char	redirect[CODE_MAX], code[CODE_MAX], verifier[CODE_MAX];
	int	has_secret, has_verifier;
};

/* Fill f from the body; -1 when a value is too long. */
static int
token_form_read(const struct req *r, struct token_form *f)
{
	static const struct { const char *key; size_t off; } fields[] = {
		{ "grant_type", offsetof(struct token_form, grant) },
		{ "client_id", offsetof(struct token_form, client_id) },
		{ "client_secret", offsetof(struct token_form, secret) },
		{ "redirect_uri", offsetof(struct token_form, redirect) },
		{ "code", offsetof(struct token_form, code) },
		{ "code_verifier", offsetof(struct token_form, verifier) },
	};
	int got[sizeof fields / sizeof fields[0]];
	size_t i;

	for (i = 0; i < sizeof fields / sizeof fields[0]; i++)
		if ((got[i] = form_value(r->body, r->blen, fields[i].key,
		    (char *)f + fields[i].off, CODE_MAX)) == -1)
			return -1;
	f->has_secret = got[2];
	f->has_verifier = got[5];
	return 0;
}

/*
 * The checks in order: the request's own (content type, grant, client,
 * secret, redirect_uri: these leave the code unused), then the code is
 * used up, the delay slept, and the code's kind, PKCE and nonce decide.
 */
static int
token_answer(struct conn *c, const struct req *r, struct token_form *f)
{
	struct code cd;
	int fresh;

	if (!is_form(r->ctype))
		return kauth_error(c, r, 400, "invalid_request",
		    "Content-Type must be " FORM_CT, "KOE001");
	if (token_form_read(r, f) == -1)
		return kauth_error(c, r, 400, "invalid_request",
		    "a parameter is too long", "KOE001");
	memcpy(c->note, f->code, strnlen(f->code, LOG_TOKEN_CHARS));
	c->note[strnlen(f->code, LOG_TOKEN_CHARS)] = '\0';
	if (strcmp(f->grant, "authorization_code") != 0)
		return kauth_error(c, r, 400, "unsupported_grant_type",
		    "only authorization_code is faked", "KOE001");
	if (strcmp(f->client_id, rest_key) != 0)
		return kauth_error(c, r, 401, "invalid_client",
		    "Not exist client_id", "KOE101");
	if (client_secret != NULL && (!f->has_secret ||
	    strcmp(f->secret, client_secret) != 0))
		return kauth_error(c, r, 401, "invalid_client",
		    "Bad client credentials", "KOE010");
	if (f->redirect[0] == '\0')
		return kauth_error(c, r, 400, "invalid_request",
		    "redirect_uri is required", "KOE006");

	parse_code(f->code, &cd);
	fresh = f->code[0] != '\0' && used_claim(f->code);
	sleep_ms(delay_ms + cd.slow_ms);
	if (!fresh || cd.k == NULL)
		return code_not_found(c, r, f->code);
	if (cd.challenge[0] != '\0' && (!f->has_verifier ||
	    !pkce_ok(cd.challenge, f->verifier)))
		return kauth_error(c, r, 400, "invalid_grant",
		    "code_verifier does not match code_challenge", "KOE320");
	return code_answer(c, r, &cd, f->code, f->client_id);
}

static int
oauth_token(struct conn *c, const struct req *r)
{
	struct token_form *f = calloc(1, sizeof *f);	/* freed here */
	int keep;

	atomic_fetch_add(&st_token_calls, 1);
	if (f == NULL)
		return respond_str(c, r, 500, NULL,
		    "{\"msg\":\"fake-kakao: out of memory\",\"code\":-1}");
	keep = token_answer(c, r, f);
	free(f);
	return keep;
}

/* ---- the consent page: GET /oauth/authorize ---- */

/*
 * GET /oauth/authorize, as a browser meets Kakao's: with client_id (the -k
 * key), redirect_uri (http:// or https://), response_type=code and
 * optionally state, code_challenge (+ code_challenge_method=S256), nonce
 * and scope, it answers an HTML page asking which test user to be
 * (AUTHZ_USERS, nicknames as kapi's valid-<id>) with a "deny" button.  The
 * page's form comes back here with user=<id> or deny=1 and is redirected
 * (302) to redirect_uri with code=<a code /oauth/token takes: good-<id>, or
 * oidc-<id> for scope openid or a nonce, unique (.u), carrying the
 * challenge (.s) and the nonce (.n)>&state=<state>, or with
 * error=access_denied&error_description=...&state=<state>.  A request
 * failing the checks gets a 400 page and no redirect, as Kakao's KOE
 * pages.  Everything echoed is escaped (HTML, or percent-encoded in URLs).
 */
#define AUTHZ_VALUE_MAX	2048	/* redirect_uri, state: longer is refused */
#define AUTHZ_NONCE_MAX	128
static const long long authz_users[] = { 1001, 1002, 1003 };

enum { A_CLIENT, A_REDIRECT, A_TYPE, A_STATE, A_CHALLENGE, A_METHOD,
    A_NONCE, A_SCOPE, A_USER, A_DENY, A_COUNT };
static const char *const authz_names[A_COUNT] = { "client_id",
    "redirect_uri", "response_type", "state", "code_challenge",
    "code_challenge_method", "nonce", "scope", "user", "deny" };

/* s as HTML text or attribute content; control bytes become '?'. */
static void
ohtml(struct out *o, const char *s)
{
	for (; *s != '\0'; s++)
		switch (*s) {
		case '&': oputs(o, "&amp;"); break;
		case '<': oputs(o, "&lt;"); break;
		case '>': oputs(o, "&gt;"); break;
		case '"': oputs(o, "&quot;"); break;
		case '\'': oputs(o, "&#39;"); break;
		default:
			if ((unsigned char)*s < 0x20 || *s == 0x7f)
				oputs(o, "?");
			else
				oputs_n(o, s, 1);
		}
}

static int
is_unreserved(int ch)
{
	return is_b64url(ch) || ch == '.' || ch == '~';
}

/* s percent-encoded: all but RFC 3986's unreserved characters. */
static void
ourl(struct out *o, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[3];

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (is_unreserved(ch)) {
			oputs_n(o, s, 1);
			continue;
		}
		e[0] = '%';
		e[1] = hex[ch >> 4];
		e[2] = hex[ch & 15];
		oputs_n(o, e, 3);
	}
}

/* NULL when v passes the checks, else why not (shown on the 400 page). */
static const char *
authz_check(char *const *v)
{
	const char *p, *u = v[A_REDIRECT];
	size_t n;

	if (v[A_CLIENT] == NULL || v[A_CLIENT][0] == '\0')
		return "KOE101: client_id is required";
	if (strcmp(v[A_CLIENT], rest_key) != 0)
		return "KOE101: Not exist client_id";
	if (u == NULL || u[0] == '\0')
		return "KOE006: redirect_uri is required";
	if ((strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) ||
	    strlen(u) > AUTHZ_VALUE_MAX || strchr(u, '#') != NULL)
		return "KOE006: invalid redirect uri";
	for (p = u; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return "KOE006: invalid redirect uri";
	if (v[A_TYPE] == NULL || strcmp(v[A_TYPE], "code") != 0)
		return "KOE001: response_type must be code";
	if (v[A_STATE] != NULL && strlen(v[A_STATE]) > AUTHZ_VALUE_MAX)
		return "KOE001: state is too long";
	if (v[A_CHALLENGE] != NULL) {
		n = strlen(v[A_CHALLENGE]);
		if (n < 43 || n >= CHALLENGE_MAX)
			return "KOE001: code_challenge: 43 to 127 characters";
		for (p = v[A_CHALLENGE]; *p != '\0'; p++)
			if (!is_b64url((unsigned char)*p))
				return "KOE001: code_challenge is not base64url";
		if (v[A_METHOD] == NULL || strcmp(v[A_METHOD], "S256") != 0)
			return "KOE001: code_challenge_method must be S256 "
			    "(the fake checks S256 only)";
	} else if (v[A_METHOD] != NULL)
		return "KOE001: code_challenge_method without code_challenge";
	if (v[A_NONCE] != NULL) {
		n = strlen(v[A_NONCE]);
		if (n == 0 || n > AUTHZ_NONCE_MAX)
			return "KOE001: nonce: 1 to 128 characters";
		for (p = v[A_NONCE]; *p != '\0'; p++)
			if (!is_unreserved((unsigned char)*p))
				return "KOE001: nonce: letters, digits and "
				    "-._~ only (the fake puts it in the code)";
	}
	return NULL;
}

/* The consent page (200), or the error page (400) when why is set. */
static int
authz_page(struct conn *c, const struct req *r, int status, const char *why,
    char *const *v)
{
	struct out o;
	size_t i;

	out_init(&o, c);
	oputs(&o, "<!doctype html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width\">"
	    "<link rel=\"icon\" href=\"data:,\">"
	    "<title>fake Kakao \xEB\xA1\x9C\xEA\xB7\xB8\xEC\x9D\xB8 / sign in</title>"
	    "<style>body{font-family:sans-serif;max-width:28em;margin:3em auto;"
	    "padding:0 1em}h1{font-size:1.3em}button{display:block;width:100%;"
	    "margin:.5em 0;padding:.7em;font-size:1em;border:0;border-radius:6px;"
	    "background:#fee500;color:#191919;cursor:pointer}"
	    "button.deny{background:#ddd}.err{color:#b00020}</style></head><body>\n"
	    "<h1>fake Kakao \xEB\xA1\x9C\xEA\xB7\xB8\xEC\x9D\xB8 / sign in "
	    "(test only)</h1>\n");
	if (why != NULL) {
		oputs(&o, "<p class=\"err\" id=\"error\">");
		ohtml(&o, why);
		oputs(&o, "</p>\n</body></html>\n");
	} else {
		oputs(&o, "<p>Which test user do you want to be? / "
		    "\xEC\x96\xB4\xEB\x96\xA4 \xED\x85\x8C\xEC\x8A\xA4\xED\x8A\xB8 "
		    "\xEC\x82\xAC\xEC\x9A\xA9\xEC\x9E\x90\xEB\xA1\x9C "
		    "\xEB\xA1\x9C\xEA\xB7\xB8\xEC\x9D\xB8\xED\x95\xA0\xEA\xB9\x8C"
		    "\xEC\x9A\x94?</p>\n"
		    "<form method=\"get\" action=\"/oauth/authorize\">\n");
		for (i = 0; i < A_USER; i++) {
			if (v[i] == NULL)
				continue;
			oprintf(&o, "<input type=\"hidden\" name=\"%s\" value=\"",
			    authz_names[i]);
			ohtml(&o, v[i]);
			oputs(&o, "\">\n");
		}
		for (i = 0; i < sizeof authz_users / sizeof authz_users[0]; i++)
			oprintf(&o, "<button type=\"submit\" name=\"user\" "
			    "value=\"%lld\" id=\"user-%lld\">user%lld "
			    "(Kakao id %lld)</button>\n", authz_users[i],
			    authz_users[i], authz_users[i], authz_users[i]);
		oputs(&o, "<button type=\"submit\" name=\"deny\" value=\"1\" "
		    "id=\"deny\" class=\"deny\">Deny / \xEB\x8F\x99\xEC\x9D\x98 "
		    "\xEC\x95\x88 \xED\x95\xA8</button>\n</form>\n"
		    "<p>Redirects to: <code>");
		ohtml(&o, v[A_REDIRECT]);
		oputs(&o, "</code></p>\n</body></html>\n");
	}
	if (o.overflow)
		return respond_str(c, r, 500, NULL,
		    "{\"msg\":\"fake-kakao: page too large\",\"code\":-1}");
	return respond(c, r, status, "text/html; charset=utf-8",
	    "Cache-Control: no-store\r\n", o.len);
}

/* 302 to redirect_uri with a code for user id, or access_denied (id 0). */
static int
authz_redirect(struct conn *c, const struct req *r, char *const *v,
    long long id)
{
	size_t cap = 4 * AUTHZ_VALUE_MAX + 1024;
	char *buf = malloc(cap);	/* freed here */
	char code[64 + CHALLENGE_MAX + AUTHZ_NONCE_MAX];
	unsigned long long tag;
	int openid, keep;
	struct out o;

	if (buf == NULL)
		return respond_str(c, r, 500, NULL,
		    "{\"msg\":\"fake-kakao: out of memory\",\"code\":-1}");
	out_buf(&o, buf, cap);
	oputs(&o, "HTTP/1.1 302 Found\r\nServer: fake-kakao\r\nLocation: ");
	oputs(&o, v[A_REDIRECT]);
	oputs(&o, strchr(v[A_REDIRECT], '?') != NULL ? "&" : "?");
	if (id != 0) {
		if (RAND_bytes((unsigned char *)&tag, sizeof tag) != 1)
			tag = (unsigned long long)now_ms();
		openid = v[A_NONCE] != NULL || (v[A_SCOPE] != NULL &&
		    strstr(v[A_SCOPE], "openid") != NULL);
		snprintf(code, sizeof code, "%s-%lld.u%016llx%s%s%s%s",
		    openid ? "oidc" : "good", id, tag,
		    v[A_CHALLENGE] != NULL ? ".s" : "",
		    v[A_CHALLENGE] != NULL ? v[A_CHALLENGE] : "",
		    v[A_NONCE] != NULL ? ".n" : "",
		    v[A_NONCE] != NULL ? v[A_NONCE] : "");
		oputs(&o, "code=");
		ourl(&o, code);
	} else
		oputs(&o, "error=access_denied&error_description="
		    "User%20denied%20access");
	if (v[A_STATE] != NULL) {
		oputs(&o, "&state=");
		ourl(&o, v[A_STATE]);
	}
	oprintf(&o, "\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n"
	    "Cache-Control: no-store\r\n%s\r\n",
	    r->keepalive ? "" : "Connection: close\r\n");
	if (o.overflow) {
		free(buf);
		return respond_str(c, r, 500, NULL,
		    "{\"msg\":\"fake-kakao: redirect too long\",\"code\":-1}");
	}
	c->status = 302;
	keep = send_all(c->fd, buf, o.len) == -1 ? 0 : r->keepalive;
	free(buf);
	return keep;
}

static int
oauth_authorize(struct conn *c, const struct req *r)
{
	char *v[A_COUNT];		/* freed below */
	const char *why;
	long long id = 0;
	size_t i;
	int keep;

	for (i = 0; i < A_COUNT; i++)
		v[i] = query_dup(r, authz_names[i]);
	why = authz_check(v);
	if (why == NULL && v[A_DENY] == NULL && v[A_USER] != NULL) {
		why = "no such test user";
		if (parse_id(v[A_USER], &id))
			for (i = 0; i < sizeof authz_users / sizeof authz_users[0]; i++)
				if (authz_users[i] == id)
					why = NULL;
	}
	if (why != NULL)
		keep = authz_page(c, r, 400, why, v);
	else if (v[A_DENY] != NULL)
		keep = authz_redirect(c, r, v, 0);
	else if (v[A_USER] != NULL)
		keep = authz_redirect(c, r, v, id);
	else
		keep = authz_page(c, r, 200, NULL, v);
	for (i = 0; i < A_COUNT; i++)
		free(v[i]);
	return keep;
}

/* ---- JWKS and the control routes ---- */

static int
jwks(struct conn *c, const struct req *r)
{
	struct out o;

	atomic_fetch_add(&st_jwks_calls, 1);
	sleep_ms(delay_ms);
	if (atomic_load(&jwks_failing))
		return status_error(c, r, 503);
	out_init(&o, c);
	jwks_body(&o);
	return respond(c, r, 200, JSON_CT, NULL, o.len);
}

static int
ctl_bad(struct conn *c, const struct req *r, const char *why)
{
	struct out o;

	out_init(&o, c);
	oputs(&o, "{\"msg\":\"fake-kakao: ");
	ojson(&o, why);
	oputs(&o, "\",\"code\":-2}");
	return respond(c, r, 400, JSON_CT, NULL, o.len);
}

/* POST /__rotate[?keep=1] */
static int
ctl_rotate(struct conn *c, const struct req *r)
{
	int keep = query_bool(r, "keep", 0);
	struct out o;

	if (keep == -1)
		return ctl_bad(c, r, "keep is 0 or 1");
	if (key_rotate(keep) == -1)
		return respond_str(c, r, 500, NULL,
		    "{\"msg\":\"fake-kakao: cannot make another key\",\"code\":-1}");
	out_init(&o, c);
	key_state_body(&o);
	return respond(c, r, 200, JSON_CT, NULL, o.len);
}

/* POST /__jwks?fail=1|0 */
static int
ctl_jwks(struct conn *c, const struct req *r)
{
	int fail = query_bool(r, "fail", -1);

	if (fail == -1)
		return ctl_bad(c, r, "fail is 0 or 1");
	atomic_store(&jwks_failing, fail);
	return respond_str(c, r, 200, NULL,
	    fail ? "{\"fail\":true}" : "{\"fail\":false}");
}

/* A query number: absent keeps *v and *has, empty leaves it out. */
static int
query_num(const char *s, long long *v, int *has)
{
	char *end;

	if (s == NULL)
		return 0;
	if (*s == '\0') {
		*has = 0;
		return 0;
	}
	errno = 0;
	*v = strtoll(s, &end, 10);
	*has = 1;
	return errno == 0 && *end == '\0' ? 0 : -1;
}

/* A query string claim: absent gives dflt, empty leaves it out. */
static const char *
query_claim(const char *s, const char *dflt)
{
	if (s == NULL)
		return dflt;
	return *s == '\0' ? NULL : s;
}

enum { Q_SUB, Q_AUD, Q_ISS, Q_IAT, Q_EXP, Q_AUTH_TIME, Q_NONCE, Q_KID,
    Q_NICKNAME, Q_PICTURE, Q_EMAIL, Q_EMAIL_VERIFIED, Q_COUNT };

/* Fill cl from the query values v (see ctl_id_token); -1 on a bad number. */
static int
id_token_claims(char *const *v, struct claims *cl)
{
	long long now = (long long)time(NULL);

	*cl = (struct claims){ .iat = now, .has_iat = 1,
	    .exp = now + EXPIRES_IN, .has_exp = 1, .email_verified = -1 };
	cl->sub = query_claim(v[Q_SUB], NULL);
	cl->aud = query_claim(v[Q_AUD], rest_key);
	cl->iss = query_claim(v[Q_ISS], issuer);
	cl->nonce = query_claim(v[Q_NONCE], NULL);
	cl->nickname = query_claim(v[Q_NICKNAME], NULL);
	cl->picture = query_claim(v[Q_PICTURE], NULL);
	cl->email = query_claim(v[Q_EMAIL], NULL);
	if (query_num(v[Q_IAT], &cl->iat, &cl->has_iat) == -1 ||
	    query_num(v[Q_EXP], &cl->exp, &cl->has_exp) == -1)
		return -1;
	cl->auth_time = cl->iat;
	cl->has_auth_time = cl->has_iat;
	if (query_num(v[Q_AUTH_TIME], &cl->auth_time, &cl->has_auth_time) == -1)
		return -1;
	if (v[Q_EMAIL_VERIFIED] != NULL) {
		if (strcmp(v[Q_EMAIL_VERIFIED], "true") != 0 &&
		    strcmp(v[Q_EMAIL_VERIFIED], "false") != 0)
			return -1;
		cl->email_verified = v[Q_EMAIL_VERIFIED][0] == 't';
	}
	return 0;
}

/*
 * GET /__id_token?sub=..&aud=..[&iss=..][&iat=..][&exp=..][&auth_time=..]
 * [&nonce=..][&kid=..][&nickname=..][&picture=..][&email=..]
 * [&email_verified=true|false]: a token signed by the current key (kid=
 * another served or retired kid: by that one; kid=unknown: by the spare).
 * Defaults: aud the -k key, iss the -i issuer, iat now, exp now + 21599,
 * auth_time iat; an empty value leaves the claim out.
 */
static int
ctl_id_token(struct conn *c, const struct req *r)
{
	static const char *const names[Q_COUNT] = { "sub", "aud", "iss", "iat",
	    "exp", "auth_time", "nonce", "kid", "nickname", "picture", "email",
	    "email_verified" };
	char *v[Q_COUNT];		/* freed below */
	const struct fkey *k;
	struct claims cl;
	struct out o;
	int i, keep;

	for (i = 0; i < Q_COUNT; i++)
		v[i] = query_dup(r, names[i]);
	k = key_pick(v[Q_KID]);
	out_init(&o, c);
	if (k == NULL)
		keep = ctl_bad(c, r, "no such kid");
	else if (id_token_claims(v, &cl) == -1)
		keep = ctl_bad(c, r, "bad number or boolean");
	else if (id_token_append(&o, k, &cl) == -1)
		keep = ctl_bad(c, r, "claims too large");
	else
		keep = respond(c, r, 200, "text/plain", NULL, o.len);
	for (i = 0; i < Q_COUNT; i++)
		free(v[i]);
	return keep;
}

/* GET /__public.pem[?kid=..]: the signing key's public half. */
static int
ctl_public_pem(struct conn *c, const struct req *r)
{
	char *kid = query_dup(r, "kid");	/* freed below */
	const struct fkey *k = key_pick(kid);
	struct out o;

	free(kid);
	if (k == NULL)
		return ctl_bad(c, r, "no such kid");
	out_init(&o, c);
	oputs(&o, k->pem);
	return respond(c, r, 200, "text/plain", NULL, o.len);
}

/* GET /__unlinked?id=N: N's unlink state and counts. */
static int
ctl_unlinked(struct conn *c, const struct req *r)
{
	char v[32];
	long long id;
	struct user u;
	struct out o;

	if (form_value(r->query, strlen(r->query), "id", v, sizeof v) != 1 ||
	    !parse_id(v, &id))
		return ctl_bad(c, r, "id is a user id");
	u = user_get(id);
	out_init(&o, c);
	oprintf(&o, "{\"id\":%lld,\"unlinked\":%s,\"unlinks\":%u,"
	    "\"logouts\":%u}", id, jbool(u.unlinked), u.unlinks, u.logouts);
	return respond(c, r, 200, JSON_CT, NULL, o.len);
}

/* GET /__admin?fail=1|0|drop: unlink and logout down (503 -7), up, or
 * closing the connection without an answer. */
static int
ctl_admin(struct conn *c, const struct req *r)
{
	static const char *const names[] = { "0", "1", "drop" };
	char v[8];
	size_t i;

	if (form_value(r->query, strlen(r->query), "fail", v, sizeof v) == 1)
		for (i = 0; i < sizeof names / sizeof names[0]; i++)
			if (strcmp(v, names[i]) == 0) {
				atomic_store(&admin_state, (int)i);
				return respond_str(c, r, 200, NULL, i == 0 ?
				    "{\"fail\":false}" : i == 1 ?
				    "{\"fail\":true}" : "{\"fail\":\"drop\"}");
			}
	return ctl_bad(c, r, "fail is 0, 1 or drop");
}

static int
stats(struct conn *c, const struct req *r)
{
	struct out o;

	out_init(&o, c);
	oprintf(&o, "{\"requests\":%llu,\"connections\":%llu,\"open\":%llu,"
	    "\"token_calls\":%llu,\"jwks_calls\":%llu,"
	    "\"unlink_calls\":%llu,\"logout_calls\":%llu}",
	    atomic_load(&st_requests), atomic_load(&st_connections),
	    atomic_load(&st_open), atomic_load(&st_token_calls),
	    atomic_load(&st_jwks_calls), atomic_load(&st_unlink_calls),
	    atomic_load(&st_logout_calls));
	return respond(c, r, 200, JSON_CT, NULL, o.len);
}

/* ---- routing ---- */

enum { M_GET = 1, M_POST = 2 };

static const struct route {
	const char	*path;
	int		 methods;
	int		(*fn)(struct conn *, const struct req *);
} routes[] = {
	{ "/v2/user/me",		M_GET | M_POST,	kapi_me },
	{ "/v1/user/access_token_info",	M_GET,		kapi_info },
	{ "/v1/user/unlink",		M_POST,		kapi_unlink },
	{ "/v1/user/logout",		M_POST,		kapi_logout },
	{ "/oauth/token",		M_POST,		oauth_token },
	{ "/oauth/authorize",		M_GET,		oauth_authorize },
	{ "/.well-known/jwks.json",	M_GET,		jwks },
	{ "/__stats",			M_GET,		stats },
	{ "/__rotate",			M_POST,		ctl_rotate },
	{ "/__jwks",			M_POST,		ctl_jwks },
	{ "/__id_token",		M_GET,		ctl_id_token },
	{ "/__public.pem",		M_GET,		ctl_public_pem },
	{ "/__unlinked",		M_GET,		ctl_unlinked },
	{ "/__admin",			M_GET | M_POST,	ctl_admin },
};

/* Returns 1 to keep the connection open. */
static int
route(struct conn *c, const struct req *r)
{
	int m = strcmp(r->method, "GET") == 0 ? M_GET :
	    strcmp(r->method, "POST") == 0 ? M_POST : 0;
	size_t i;

	for (i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		if (strcmp(r->path, routes[i].path) != 0)
			continue;
		if (m & routes[i].methods)
			return routes[i].fn(c, r);
		return respond_str(c, r, 405,
		    routes[i].methods == M_GET ? "Allow: GET\r\n" :
		    routes[i].methods == M_POST ? "Allow: POST\r\n" :
		    "Allow: GET, POST\r\n",
		    "{\"msg\":\"method not allowed\",\"code\":-2}");
	}
	return respond_str(c, r, 404, NULL,
	    "{\"msg\":\"not found\",\"code\":-2}");
}

/* ---- request reading ---- */

/*
 * Split the head (request line + headers, hlen bytes ending in CRLFCRLF) in
 * place into r.  *clen gets the Content-Length.  Returns 0 or an HTTP error.
 */
static int
parse_head(char *buf, size_t hlen, struct req *r, size_t *clen, int *expect)
{
	char *line = buf, *end = buf + hlen - 2, *nl, *sp, *q;
	int minor;

	memset(r, 0, sizeof *r);
	*clen = 0;
	*expect = 0;

	/* Request line: METHOD SP target SP HTTP/1.x */
	nl = memchr(line, '\n', (size_t)(end - line));
	if (nl == NULL || nl == line || nl[-1] != '\r')
		return 400;
	nl[-1] = '\0';
	if ((sp = strchr(line, ' ')) == NULL)
		return 400;
	*sp++ = '\0';
	r->method = line;
	r->path = sp;
	if ((sp = strchr(sp, ' ')) == NULL)
		return 400;
	*sp++ = '\0';
	if (strncmp(sp, "HTTP/1.", 7) != 0 || (sp[7] != '0' && sp[7] != '1') ||
	    sp[8] != '\0')
		return 400;
	minor = sp[7] - '0';
	r->keepalive = minor == 1;
	r->head = strcmp(r->method, "HEAD") == 0;
	r->query = "";
	if ((q = strchr(r->path, '?')) != NULL) {
		*q = '\0';
		r->query = q + 1;
	}

	for (line = nl + 1; line < end; line = nl + 1) {
		char *name = line, *val;

		nl = memchr(line, '\n', (size_t)(end + 2 - line));
		if (nl == NULL || nl == line || nl[-1] != '\r')
			return 400;
		nl[-1] = '\0';
		if ((val = strchr(name, ':')) == NULL)
			return 400;
		*val++ = '\0';
		while (*val == ' ' || *val == '\t')
			val++;
		for (q = nl - 2; q >= val && (*q == ' ' || *q == '\t'); q--)
			*q = '\0';

		if (strcasecmp(name, "Authorization") == 0)
			r->auth = val;
		else if (strcasecmp(name, "Content-Type") == 0)
			r->ctype = val;
		else if (strcasecmp(name, "Content-Length") == 0) {
			size_t n = 0;

			if (*val == '\0')
				return 400;
			for (q = val; *q; q++) {
				if (*q < '0' || *q > '9')
					return 400;
				if (n <= REQ_BODY_MAX)
					n = n * 10 + (size_t)(*q - '0');
			}
			if (n > REQ_BODY_MAX)
				return 413;
			*clen = n;
		} else if (strcasecmp(name, "Transfer-Encoding") == 0)
			return 501;	/* form bodies come with a length */
		else if (strcasecmp(name, "Connection") == 0) {
			if (strcasestr(val, "close"))
				r->keepalive = 0;
			else if (minor == 0 && strcasestr(val, "keep-alive"))
				r->keepalive = 1;
		} else if (strcasecmp(name, "Expect") == 0)
			*expect = strcasecmp(val, "100-continue") == 0;
	}
	return 0;
}

/*
 * Before closing on an error: closing with unread input makes the kernel
 * send a reset, which can destroy our answer before the client reads it.
 * So half-close and swallow what the client still sends, within limits.
 */
static void
drain(int fd)
{
	long long deadline = now_ms() + DRAIN_MS;
	char scratch[4096];
	size_t total = 0;

	shutdown(fd, SHUT_WR);
	while (total < DRAIN_MAX) {
		long long left = deadline - now_ms();
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return;
		if ((n = recv(fd, scratch, sizeof scratch, 0)) <= 0)
			return;
		total += (size_t)n;
	}
}

/*
 * Read one request into c->in.  Returns the bytes it uses (head + body) with
 * r filled, or 0 when the connection is to be closed (peer gone, timeout,
 * or an error already answered).
 */
static size_t
read_request(struct conn *c, struct req *r)
{
	char *hend;
	size_t hlen, clen, need;
	int expect, err;
	ssize_t n;

	for (;;) {
		size_t scan = c->fill < REQ_HDR_MAX ? c->fill : REQ_HDR_MAX;

		if ((hend = memmem(c->in, scan, "\r\n\r\n", 4)) != NULL)
			break;
		if (c->fill >= REQ_HDR_MAX) {
			err = 431;
			goto fail;
		}
		n = recv(c->fd, c->in + c->fill, REQ_HDR_MAX - c->fill, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		c->fill += (size_t)n;
	}
	hlen = (size_t)(hend - c->in) + 4;
	if ((err = parse_head(c->in, hlen, r, &clen, &expect)) != 0)
		goto fail;

	need = hlen + clen;		/* <= sizeof c->in by the two caps */
	if (expect && c->fill < need &&
	    send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) == -1)
		return 0;
	while (c->fill < need) {
		n = recv(c->fd, c->in + c->fill, sizeof c->in - c->fill, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		c->fill += (size_t)n;
	}
	r->body = c->in + hlen;
	r->blen = clen;
	return need;

fail:
	memset(r, 0, sizeof *r);	/* r->keepalive = 0: close after */
	respond_str(c, r, err, NULL, err == 431 ?
	    "{\"msg\":\"request headers too large\",\"code\":-8}" :
	    err == 413 ? "{\"msg\":\"request body too large\",\"code\":-2}" :
	    "{\"msg\":\"bad request\",\"code\":-2}");
	drain(c->fd);
	return 0;
}

static void
log_request(const struct conn *c, const struct req *r)
{
	const char *tok = bearer(r->auth);

	if (tok == NULL && c->note[0] != '\0')
		tok = c->note;		/* a code's head, never more */
	if (tok == NULL)
		fprintf(stderr, "fake-kakao: %s %s %d -\n", r->method, r->path,
		    c->status);
	else
		fprintf(stderr, "fake-kakao: %s %s %d %.*s\xE2\x80\xA6\n",
		    r->method, r->path, c->status, LOG_TOKEN_CHARS, tok);
}

/* Connection thread: owns c and frees it. */
static void *
conn_main(void *arg)
{
	struct conn *c = arg;
	struct req r;
	size_t used;
	int keep;

	do {
		if ((used = read_request(c, &r)) == 0)
			break;
		atomic_fetch_add_explicit(&st_requests, 1,
		    memory_order_relaxed);
		c->status = 0;
		c->note[0] = '\0';
		keep = route(c, &r);
		if (verbose)
			log_request(c, &r);
		/* Keep pipelined bytes that followed this request. */
		memmove(c->in, c->in + used, c->fill - used);
		c->fill -= used;
	} while (keep);

	close(c->fd);
	free(c);
	atomic_fetch_sub(&st_open, 1);
	return NULL;
}

/* ---- -U: the unlink callback sender ---- */

struct callback {
	const char	*url, *key, *app_id, *user_id, *referrer;
	int		 post;
	char		 host[SEND_HOST_MAX], port[8];
	const char	*path;		/* into url; "" means "/" */
};

/* Splits cb->url, "http://host[:port][/path]", into host, port and path.
 * No user part, no IPv6 literal, nothing a request line cannot carry. */
static int
callback_url(struct callback *cb)
{
	const char *h = cb->url + 7, *e, *p;
	long port = 80;
	size_t n;

	if (strncmp(cb->url, "http://", 7) != 0)
		return -1;
	e = h + strcspn(h, ":/");
	if ((n = (size_t)(e - h)) == 0 || n >= sizeof cb->host ||
	    memchr(h, '@', n) != NULL || memchr(h, '[', n) != NULL)
		return -1;
	memcpy(cb->host, h, n);
	cb->host[n] = '\0';
	p = e;
	if (*p == ':') {
		for (port = 0, p++; *p >= '0' && *p <= '9' && port <= 65535; p++)
			port = port * 10 + (*p - '0');
		if (p == e + 1 || port < 1 || port > 65535)
			return -1;
	}
	if (*p != '\0' && *p != '/')
		return -1;
	for (e = p; *e != '\0'; e++)
		if ((unsigned char)*e <= ' ' || *e == 0x7f || *e == '#')
			return -1;
	snprintf(cb->port, sizeof cb->port, "%ld", port);
	cb->path = p;
	return 0;
}

/* Appends s percent-encoded (all but RFC 3986's unreserved bytes). */
static void
oescape(struct out *o, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' ||
		    ch == '~')
			oputs_n(o, s, 1);
		else
			oprintf(o, "%%%02X", ch);
	}
}

/* The whole request Kakao would send, into o. */
static void
callback_request(struct out *o, const struct callback *cb)
{
	char params[SEND_REQ_MAX / 2];
	struct out q;
	const char *path = cb->path[0] != '\0' ? cb->path : "/";

	out_buf(&q, params, sizeof params);
	oputs(&q, "app_id=");
	oescape(&q, cb->app_id);
	oputs(&q, "&user_id=");
	oescape(&q, cb->user_id);
	oputs(&q, "&referrer_type=");
	oescape(&q, cb->referrer);
	if (q.overflow) {
		o->overflow = 1;
		return;
	}
	if (cb->post)
		oprintf(o, "POST %s HTTP/1.1\r\n", path);
	else
		oprintf(o, "GET %s%s%.*s HTTP/1.1\r\n", path,
		    strchr(path, '?') != NULL ? "&" : "?", (int)q.len, params);
	oprintf(o, "Host: %s:%s\r\nAuthorization: KakaoAK %s\r\n"
	    "User-Agent: fake-kakao-unlink\r\nConnection: close\r\n",
	    cb->host, cb->port, cb->key);
	if (cb->post) {
		oprintf(o, "Content-Type: " FORM_CT "\r\n"
		    "Content-Length: %zu\r\n\r\n", q.len);
		oputs_n(o, params, q.len);
	} else
		oputs(o, "\r\n");
}

/* Waits for events on fd until deadline (now_ms()); 1 when they came. */
static int
wait_fd(int fd, short events, long long deadline)
{
	struct pollfd pfd = { fd, events, 0 };
	long long left;
	int n;

	for (;;) {
		if ((left = deadline - now_ms()) <= 0)
			return 0;
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		return n > 0;
	}
}

/* A connected socket to cb's host and port, or -1. */
static int
callback_connect(const struct callback *cb, long long deadline)
{
	struct addrinfo hints, *res, *ai;
	socklen_t elen = sizeof(int);
	int fd = -1, e = 0;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(cb->host, cb->port, &hints, &res) != 0)
		return -1;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1)
			continue;
		if ((connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) == 0 &&
		    e == 0)))
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* Sends the request, reads the answer's head; its status, 0 for none. */
static int
callback_exchange(int fd, const char *req, size_t len, long long deadline)
{
	char in[REQ_HDR_MAX];
	size_t fill = 0;
	ssize_t n;
	int status = 0;

	while (len > 0) {
		if (!wait_fd(fd, POLLOUT, deadline))
			return 0;
		if ((n = send(fd, req, len, MSG_NOSIGNAL)) < 0 &&
		    errno != EINTR && errno != EAGAIN)
			return 0;
		if (n > 0) {
			req += n;
			len -= (size_t)n;
		}
	}
	/* Up to the end of the head: a receiver that keeps the connection
	 * open anyway does not hold us. */
	while (fill < sizeof in - 1 && memmem(in, fill, "\r\n\r\n", 4) == NULL) {
		if (!wait_fd(fd, POLLIN, deadline))
			break;
		if ((n = recv(fd, in + fill, sizeof in - 1 - fill, 0)) < 0 &&
		    (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		fill += (size_t)n;
	}
	in[fill] = '\0';
	if (sscanf(in, "HTTP/1.%*[01] %3d", &status) != 1 || status < 100 ||
	    status > 999)
		status = 0;
	return status;
}

/* Sends one unlink callback; prints its status (000: none); exits 0 for
 * a 200, 1 otherwise. */
static int
callback_send(struct callback *cb)
{
	char buf[SEND_REQ_MAX];
	long long deadline = now_ms() + SEND_WAIT_MS;
	struct out o;
	int fd, status = 0;

	if (callback_url(cb) == -1) {
		fprintf(stderr, "fake-kakao: -U wants http://host[:port]/path\n");
		return 2;
	}
	out_buf(&o, buf, sizeof buf);
	callback_request(&o, cb);
	if (o.overflow) {
		fprintf(stderr, "fake-kakao: -U: request too long\n");
		return 2;
	}
	if ((fd = callback_connect(cb, deadline)) == -1)
		fprintf(stderr, "fake-kakao: -U: cannot connect to %s:%s\n",
		    cb->host, cb->port);
	else {
		if ((status = callback_exchange(fd, buf, o.len, deadline)) == 0)
			fprintf(stderr, "fake-kakao: -U: no answer within "
			    "%d ms\n", SEND_WAIT_MS);
		close(fd);
	}
	printf("%03d\n", status);
	return status == 200 ? 0 : 1;
}

/* ---- main ---- */

static void
on_signal(int sig)
{
	(void)sig;
	_exit(0);
}

static void
usage(void)
{
	fprintf(stderr, "usage: fake-kakao -p port [-a app_id] [-d ms] "
	    "[-k rest_api_key] [-s client_secret] [-i issuer] [-c used_codes] "
	    "[-K admin_key] [-q | -v]\n"
	    "       fake-kakao -U url [-a admin_key] -A app_id -I user_id "
	    "[-R referrer_type] [-M GET|POST]\n");
	exit(2);
}

static long long
num_arg(const char *s, long long lo, long long hi)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		usage();
	return v;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof sin;
	struct timeval rcv = { IDLE_TIMEOUT_S, 0 }, snd = { SEND_TIMEOUT_S, 0 };
	struct sigaction sa;
	pthread_attr_t attr;
	pthread_t keys_tid;
	struct callback cb = { .key = DEFAULT_ADMIN_KEY,
	    .referrer = DEFAULT_REFERRER };
	const char *a_arg = NULL;
	int port = -1, lfd, one = 1, ch;

	while ((ch = getopt(argc, argv, "p:a:d:k:s:i:c:qvK:U:A:I:R:M:")) != -1) {
		switch (ch) {
		case 'p': port = (int)num_arg(optarg, 0, 65535); break;
		case 'a': a_arg = optarg; break;	/* see below */
		case 'K': admin_key = cb.key = optarg; break;
		case 'U': cb.url = optarg; break;
		case 'A': cb.app_id = optarg; break;
		case 'I': cb.user_id = optarg; break;
		case 'R': cb.referrer = optarg; break;
		case 'M':
			if (strcmp(optarg, "GET") != 0 &&
			    strcmp(optarg, "POST") != 0)
				usage();
			cb.post = optarg[0] == 'P';
			break;
		case 'd': delay_ms = (int)num_arg(optarg, 0, SLOW_MAX_MS); break;
		case 'k': rest_key = optarg; break;
		case 's': client_secret = optarg; break;
		case 'i': issuer = optarg; break;
		case 'c': used_cap = (size_t)num_arg(optarg, 1, USED_MAX); break;
		case 'q': verbose = 0; break;
		case 'v': verbose = 1; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	/* -U sends one callback, where -a is the key Kakao sends (-A the
	 * app id); serving, -a stays the app id it always was. */
	if (cb.url != NULL) {
		if (port >= 0 || cb.app_id == NULL || cb.user_id == NULL)
			usage();
		if (a_arg != NULL)
			cb.key = a_arg;
		return callback_send(&cb);
	}
	if (cb.app_id != NULL || cb.user_id != NULL || port < 0)
		usage();
	if (a_arg != NULL)
		app_id = num_arg(a_arg, 1, LLONG_MAX);
	memset(padding, 'x', sizeof padding);
	used_init();

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		perror("fake-kakao: socket");
		return 1;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    listen(lfd, LISTEN_BACKLOG) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &slen) == -1) {
		perror("fake-kakao: listen");
		return 1;
	}
	printf("fake-kakao listening on 127.0.0.1:%d\n", ntohs(sin.sin_port));
	fflush(stdout);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	if (pthread_create(&keys_tid, &attr, keys_main, NULL) != 0) {
		perror("fake-kakao: pthread_create");
		return 1;
	}

	for (;;) {
		struct conn *c;
		pthread_t tid;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd == -1) {
			if (errno != EINTR && errno != ECONNABORTED)
				sleep_ms(10);	/* EMFILE and friends: back off */
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
		if ((c = malloc(sizeof *c)) == NULL) {	/* freed by conn_main */
			close(fd);
			continue;
		}
		c->fd = fd;
		c->fill = 0;
		c->status = 0;
		atomic_fetch_add(&st_connections, 1);
		atomic_fetch_add(&st_open, 1);
		if (pthread_create(&tid, &attr, conn_main, c) != 0) {
			close(fd);
			free(c);
			atomic_fetch_sub(&st_open, 1);
			sleep_ms(10);
		}
	}
}
