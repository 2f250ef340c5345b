/*
 * fake_kakao: a fake of Kakao's user API (kapi.kakao.com: /v2/user/me,
 * /v1/user/access_token_info) and of its token endpoint (kauth.kakao.com:
 * /oauth/token), for tests and benchmarks.  Plain HTTP/1.1 with keep-alive
 * on 127.0.0.1.  Wire formats follow /work/shared/kakao-api.md.
 *
 * The bearer token alone selects the behaviour.  A token is "<kind>-<id>"
 * with optional "slow<ms>." prefixes: "valid-42" is a full profile for user
 * 42, "status503-1" a maintenance error, "slow1500.valid-42" the full profile
 * 1.5 s late.  The kinds[] table lists every kind.  At /oauth/token the code
 * "good-<id>" exchanges for the access token "valid-<id>".
 *
 * Threads: the main thread accepts; every connection gets a detached thread
 * with a small stack and one heap buffer, so a slow, hanging or trickling
 * answer never holds up another connection.  The counters are atomics;
 * everything else is per connection or read-only once listening.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

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
#define CODE_MAX	256		/* longest /oauth/token form value we keep */
#define LOG_TOKEN_CHARS	4		/* -v never prints more of a token */
#define DEFAULT_APP_ID	424242LL
#define FOREIGN_APP_ID	999999LL
#define EXPIRES_IN	21599
#define REFRESH_EXPIRES	5183999
#define CONNECTED_AT	"2021-08-18T08:54:05Z"
#define JSON_CT		"application/json;charset=UTF-8"
#define INVALID_TOKEN	"{\"msg\":\"this access token does not exist\",\"code\":-401}"

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
	const char	*auth;		/* Authorization value, or NULL */
	const char	*body;
	size_t		 blen;
	int		 keepalive;
	int		 head;		/* HEAD: headers only */
};

struct conn {
	int	 fd;
	int	 status;		/* last answer, for -v; 0 = none */
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

static atomic_ullong	st_requests, st_connections, st_open;

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

/* Parse a decimal id 1..LLONG_MAX filling the whole of s. */
static int
parse_id(const char *s, long long *id)
{
	long long v = 0;

	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		if (v > (LLONG_MAX - (*s - '0')) / 10)
			return 0;
		v = v * 10 + (*s - '0');
	}
	*id = v;
	return v >= 1;
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

/* ---- tokens and bodies ---- */

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
	while (strncmp(s, "slow", 4) == 0 && s[4] >= '0' && s[4] <= '9') {
		long ms = 0;

		for (s += 4; *s >= '0' && *s <= '9'; s++)
			if (ms <= SLOW_MAX_MS)
				ms = ms * 10 + (*s - '0');
		if (*s++ != '.')
			return;
		t->slow_ms += ms > SLOW_MAX_MS ? SLOW_MAX_MS : (int)ms;
		if (t->slow_ms > SLOW_MAX_MS)
			t->slow_ms = SLOW_MAX_MS;
	}
	if ((dash = strchr(s, '-')) == NULL || !parse_id(dash + 1, &t->id))
		return;
	nlen = (size_t)(dash - s);

	/* status<code>: three digits, 400..599 */
	if (nlen == 9 && strncmp(s, "status", 6) == 0) {
		int code = 0;

		for (i = 6; i < 9; i++) {
			if (s[i] < '0' || s[i] > '9')
				return;
			code = code * 10 + (s[i] - '0');
		}
		if (code < 400 || code > 599)
			return;
		t->status = code;
		s = "status";
		nlen = 6;
	} else if (nlen == 6 && strncmp(s, "status", 6) == 0)
		return;

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

static int
kapi(struct conn *c, const struct req *r, enum endpoint ep)
{
	const char *token = bearer(r->auth);
	struct tok t;
	struct out o;

	memset(&t, 0, sizeof t);
	if (token != NULL)
		parse_token(token, &t);
	sleep_ms(delay_ms + t.slow_ms);

	if (t.k == NULL || t.k->fault == F_INVALID)
		return invalid_token(c, r);
	switch (t.k->fault) {
	case F_STATUS:
		return status_error(c, r, t.status);
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
		break;
	}

	out_init(&o, c);
	if (ep == EP_ME)
		profile_body(&o, t.k, t.id);
	else
		info_body(&o, t.k, t.id);
	if (o.overflow)
		return respond_str(c, r, 500, NULL,
		    "{\"msg\":\"fake-kakao: body too big\",\"code\":-1}");

	switch (t.k->fault) {
	case F_HUGE:
		return send_huge(c, r, o.p, o.len);
	case F_TRUNCATED:
		send_truncated(c, o.p, o.len);
		return 0;
	case F_TRICKLE:
		send_trickle(c, o.p, o.len);
		return 0;
	default:
		return respond(c, r, 200, JSON_CT, NULL, o.len);
	}
}

/*
 * Copy the url-decoded value of key from an x-www-form-urlencoded body into
 * dst (truncated to cap - 1).  Returns 1 when the key is present.
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
			return 1;
		}
		p = amp ? amp + 1 : end;
	}
	dst[0] = '\0';
	return 0;
}

static int
oauth_token(struct conn *c, const struct req *r)
{
	char grant[CODE_MAX], code[CODE_MAX];
	long long id;
	struct out o;

	form_value(r->body, r->blen, "grant_type", grant, sizeof grant);
	form_value(r->body, r->blen, "code", code, sizeof code);
	out_init(&o, c);
	if (strcmp(grant, "authorization_code") != 0) {
		oputs(&o, "{\"error\":\"unsupported_grant_type\","
		    "\"error_description\":\"only authorization_code is faked\"}");
		return respond(c, r, 400, JSON_CT, NULL, o.len);
	}
	if (strncmp(code, "good-", 5) == 0 && parse_id(code + 5, &id)) {
		oprintf(&o, "{\"token_type\":\"bearer\",\"access_token\":\"valid-%lld\","
		    "\"expires_in\":%d,\"refresh_token\":\"refresh-%lld\","
		    "\"refresh_token_expires_in\":%d,"
		    "\"scope\":\"profile_nickname account_email\"}",
		    id, EXPIRES_IN, id, REFRESH_EXPIRES);
		return respond(c, r, 200, JSON_CT, NULL, o.len);
	}
	oputs(&o, "{\"error\":\"invalid_grant\",\"error_description\":"
	    "\"authorization code not found for code=");
	ojson(&o, code);
	oputs(&o, "\",\"error_code\":\"KOE320\"}");
	return respond(c, r, 400, JSON_CT, NULL, o.len);
}

static int
stats(struct conn *c, const struct req *r)
{
	struct out o;

	out_init(&o, c);
	oprintf(&o, "{\"requests\":%llu,\"connections\":%llu,\"open\":%llu}",
	    atomic_load(&st_requests), atomic_load(&st_connections),
	    atomic_load(&st_open));
	return respond(c, r, 200, JSON_CT, NULL, o.len);
}

/* Returns 1 to keep the connection open. */
static int
route(struct conn *c, const struct req *r)
{
	const char *m = r->method, *p = r->path;
	int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;
	const char *allowed;

	if (strcmp(p, "/v2/user/me") == 0) {
		if (get || post)
			return kapi(c, r, EP_ME);
		allowed = "Allow: GET, POST\r\n";
	} else if (strcmp(p, "/v1/user/access_token_info") == 0) {
		if (get)
			return kapi(c, r, EP_INFO);
		allowed = "Allow: GET\r\n";
	} else if (strcmp(p, "/oauth/token") == 0) {
		if (post)
			return oauth_token(c, r);
		allowed = "Allow: POST\r\n";
	} else if (strcmp(p, "/__stats") == 0) {
		if (get)
			return stats(c, r);
		allowed = "Allow: GET\r\n";
	} else
		return respond_str(c, r, 404, NULL,
		    "{\"msg\":\"not found\",\"code\":-2}");
	return respond_str(c, r, 405, allowed,
	    "{\"msg\":\"method not allowed\",\"code\":-2}");
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
	if ((q = strchr(r->path, '?')) != NULL)
		*q = '\0';

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
	fprintf(stderr, "usage: fake-kakao -p port [-a app_id] [-d ms] [-q | -v]\n");
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
	int port = -1, lfd, one = 1, ch;

	while ((ch = getopt(argc, argv, "p:a:d:qv")) != -1) {
		switch (ch) {
		case 'p': port = (int)num_arg(optarg, 0, 65535); break;
		case 'a': app_id = num_arg(optarg, 1, LLONG_MAX); break;
		case 'd': delay_ms = (int)num_arg(optarg, 0, SLOW_MAX_MS); break;
		case 'q': verbose = 0; break;
		case 'v': verbose = 1; break;
		default: usage();
		}
	}
	if (port < 0 || optind != argc)
		usage();
	memset(padding, 'x', sizeof padding);

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
