/*
 * kl_limits.h: every fixed limit of kakao-login, in one place.
 *
 * Buffers sized by these constants are checked for truncation wherever they
 * are filled; input longer than a limit is refused, never silently cut,
 * except display strings from Kakao (nickname), which are cut on a UTF-8
 * character boundary.
 */
#ifndef KL_LIMITS_H
#define KL_LIMITS_H

/* Front side (what nginx / lighttpd hand us). */
#define MAX_AUTH_HEADER      4096	/* whole Authorization value */
#define MAX_KAKAO_TOKEN      1024	/* the token after "Bearer " */
#define MAX_BODY            16384	/* request body; larger is 413 */
#define MAX_PATH_LEN         1024	/* DOCUMENT_URI / SCRIPT_NAME */
#define MAX_FCGI_PARAM      65535	/* a FastCGI param's name or value */
#define MAX_REQUEST_ID         64	/* a front's X-Request-Id; longer: ours */

/* FastCGI (app/fcgi_guard.c). nginx and lighttpd send a whole buffered
 * request at once: ~20 params of a few KB (their header limits are 32 KB
 * and 8 KB), then the body they have read already. */
#define MAX_FCGI_PARAMS       512	/* name-value pairs in one request */
#define MAX_FCGI_PARAMS_BYTES (128 * 1024)	/* PARAMS content, in all */
#define FCGI_GET_VALUES_MAX    48	/* 3 names of 13-15 bytes + lengths */
#define FCGI_GUARD_FDS       4096	/* connections above this fd: refused */
#define FCGI_IO_TIMEOUT_S      10	/* a peer not reading our answer */
#define FCGI_REQUEST_DEADLINE_MS 5000	/* from accept (or, on a kept
					   connection, its first byte) to the
					   whole request */
#define FCGI_UNREAD_MAX  (64 * 1024)	/* a body not needed for the answer:
					   read and dropped up to this, so a
					   kept connection stays kept
					   (twice the fronts' 32 KB) */
#define FCGI_KEPT_MAX         512	/* idle kept connections per process */
#define FCGI_DRAIN_QUIET_MS   200	/* at stop: kept connections served
					   until none has had a request for
					   this long (app/fcgi_conn.c) */
#define FCGI_DRAIN_MAX_MS    2000	/* ... and no longer than this */

/* Kakao side. */
#define MAX_KAKAO_BODY     (256 * 1024)	/* larger answers are unusable */
#define KAKAO_BUF_KEEP      (16 * 1024)	/* answer buffer kept between calls */
#define MAX_URL_LEN          1024	/* configured base URLs, image URLs */
#define KAKAO_REJECT_SLOTS   4096	/* rejected tokens remembered per process */
#define KAKAO_REJECT_WAYS       8	/* entries per bucket; one lock each */
#define KAKAO_REJECT_TTL_S     60	/* a rejected token answered from memory */
#define KAKAO_REJECT_TAG       16	/* bytes of keyed hash kept per token */
#define KAKAO_BUSY_WAIT_MS    200	/* wait for a Kakao call slot, then 503 */
#define KAKAO_SPARE_DIV        32	/* default cap: threads less 1 in 32 */
#define KAKAO_FUTILE_WAIT_MS 1000	/* after a slot wait timed out: half wait */

/* Request bodies (app/body.c): form or JSON objects of strings. */
#define MAX_BODY_FIELDS        16	/* fields in one body; more is 400 */
#define MAX_FIELD_NAME         64	/* bytes of a field name, decoded */
#define MAX_FIELD_VALUE      8192	/* bytes of a field value, decoded */

/* Code flow and OpenID Connect. */
#define MAX_CODE              512	/* an authorization code */
#define MAX_CODE_VERIFIER     128	/* RFC 7636: 43 to 128 characters */
#define MIN_CODE_VERIFIER      43
#define MAX_NONCE             256
#define MAX_ID_TOKEN         8192	/* a whole id_token */
#define MAX_APP_KEY           128	/* a Kakao app key (REST, native, JS) */
#define MAX_NATIVE_APP_KEYS     8	/* kakao_native_app_keys entries */
#define MAX_REDIRECT_URIS      16	/* redirect_uris entries */
#define MAX_ALLOWED_ORIGINS     8	/* allowed_origins entries */
#define MAX_ORIGIN_LEN        256	/* one origin, scheme://host[:port] */
#define MAX_REPL_PEERS          8	/* repl_peers entries */
#define MAX_REPL_HOST         256	/* a replication site's host name */
#define DEFAULT_REPL_PRIORITY 100	/* repl_priority */
#define DEFAULT_REPL_ACK_TIMEOUT_MS 1000	/* repl_ack_timeout_ms */
#define REPL_MSG_THREADS       12	/* repmgr message threads: replication messages and forwarded writes */
#define REPL_HEARTBEAT_SEND_US  250000	/* the master's heartbeat */
#define REPL_HEARTBEAT_MONITOR_US 1500000	/* no heartbeat this long: the master is gone */
#define REPL_CONNECTION_RETRY_US 500000	/* reconnect to a lost site */
#define REPL_ELECTION_RETRY_US  1000000	/* a failed election is tried again */
#define STORE_ROLE_CACHE_MS   100	/* store_role() reads the engine this often */
#define STORE_FWD_OLD_CHANNELS 64	/* replaced master channels kept until the end */
#define FWD_MAX              8192	/* a forwarded write, or its reply, bytes */
#define FWD_EXTRA_MS         1000	/* a forward waits repl_ack_timeout_ms + this */
#define FWD_APPLIED_WAIT_MS  1000	/* a forwarded write's answer waits this
					   long for this site to apply it
					   (read your writes); then answers */
#define FWD_POSITION_TIMEOUT_MS 1000	/* kakao-login-admin group asks each site this long */
#define REPL_REMOVE_CONNECT_MS 3000	/* group remove: a site connected within this is running */
#define MAX_COOKIE_LINE       512	/* one Set-Cookie value we write */
#define CORS_MAX_AGE_S        600	/* how long a preflight's answer holds */
#define MAX_CLIENT_SECRET     256	/* kakao_client_secret_file bytes */
#define MIN_CLIENT_SECRET       8
#define CODE_REPLAY_WINDOW_S   60	/* a code posted again gets the first answer */
#define CODE_PENDING_MAX_S     10	/* an exchange claimed longer ago: abandoned */
#define CODE_POLL_MS           20	/* a duplicate waits on the first this often */
#define CODE_SWEEP_BATCH      256	/* expired code records removed per pass */
#define CODE_SWEEP_SCAN  (8 * CODE_SWEEP_BATCH)	/* code records one pass reads */
#define STORE_TAG_LEN          32	/* keyed hash of a code or verifier */
#define JWKS_MAX_KEYS          16	/* keys kept from one JWKS */
#define MAX_JWK_KID           128
#define JWKS_REFETCH_S         60	/* an unknown kid refetches at most this often */
#define JWKS_RETRY_EMPTY_S     10	/* with no keys at all: retry this often */
#define JWK_MIN_RSA_BITS     2048	/* smaller keys in a JWKS are skipped */
#define JWK_MAX_RSA_BITS     8192	/* larger ones too */
#define OIDC_AUD_SHOWN          6	/* characters of an audience a log shows */
#define OIDC_EXP_SHOWN_S    86400	/* older expiries logged without their age */
#define MAX_TAG_PURPOSE        47	/* bytes of a token_tag() purpose */
#define DEFAULT_OIDC_CLOCK_SKEW 120	/* seconds of exp / iat slack */
#define MAX_OIDC_CLOCK_SKEW   600

/* Sessions (issue 10): refresh families, logout, deletion, unlink. */
#define REFRESH_TOKEN_BYTES    32	/* random bits of a refresh token: 256 */
#define REFRESH_TOKEN_LEN      43	/* its base64url spelling, no padding */
#define STORE_SID_LEN          16	/* a session (refresh family) id, bytes */
#define SID_HEX_LEN            32	/* its spelling in the sid claim */
#define DEFAULT_REFRESH_TTL  (30L * 86400)	/* a family's whole life */
#define DEFAULT_REFRESH_IDLE_TTL (14L * 86400)	/* unused this long: gone */
#define MAX_REFRESH_TTL     (365L * 86400)
#define DEFAULT_REFRESH_REUSE_WINDOW 10	/* s: a rotated token still gets its successor */
#define MAX_REFRESH_REUSE_WINDOW 300
#define MAX_REFRESH_CANDIDATES MAX_JWT_KEYS	/* tags tried per refresh: one per key */
#define SESSION_SWEEP_BATCH   256	/* expired or revoked families removed per pass */
#define SESSION_SWEEP_SCAN (8 * SESSION_SWEEP_BATCH)	/* families one pass reads */
/* Token records one sweep transaction deletes at most: a family keeps
 * every token it had (an old one coming back is a reuse), so one may hold
 * thousands; one that does not fit is finished by the next pass. */
#define SESSION_SWEEP_TOKENS (2 * SESSION_SWEEP_BATCH)
#define SESSION_REVOKED_KEEP_S 86400	/* a revoked family is kept this long (REFRESH_REUSED, logs) */
#define MAX_USER_SESSIONS    1024	/* families revoked per logout-all transaction */
#define UNLINK_FIRST_RETRY_S   30	/* a queued unlink is first retried after this */
#define UNLINK_MAX_RETRY_S   3600	/* retries back off up to this */
#define UNLINK_BATCH            8	/* queued unlinks sent per pass (once a second) */
#define MAX_ADMIN_KEY         128	/* kakao_admin_key_file bytes */
#define MIN_ADMIN_KEY          16
#define MAX_UNLINK_PARAM       64	/* app_id, user_id, referrer_type of a callback */

/* User record. */
#define MAX_NICKNAME          256	/* bytes, UTF-8, cut at a char boundary */
#define MAX_EMAIL             320	/* RFC 5321: 64 + 1 + 255 */
#define MAX_PROFILE_IMAGE    MAX_URL_LEN

/* Token issuing. */
#define MIN_JWT_SECRET         32	/* bytes; shorter secrets refuse to start */
#define MAX_JWT_SECRET       4096
#define MAX_ISSUER            256
#define JWT_SIG_MAX            48	/* decoded signature bytes read (HS256: 32) */
#define MAX_JWT_KEYS            8	/* keys in jwt_secret_file; the first signs */
#define MAX_JWT_KID            64	/* a key id: letters, digits, '.', '_', '-' */
#define MAX_JWT_KEY_FILE  (64 * 1024)	/* jwt_secret_file bytes; 8 keyed lines of 4096-byte keys fit */

/* Configuration. */
#define MAX_CONFIG_LINE      4096
#define MAX_CONFIG_PATH      1024
#define MAX_THREADS           256
#define DEFAULT_THREADS       128	/* logins in flight per process */
#define DEFAULT_JWT_TTL      3600
#define DEFAULT_UPSTREAM_TIMEOUT_MS         3000
#define DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS 1000

/* Store. */
#define STORE_MAX_RETRIES       8	/* deadlock retries per transaction */
#define STORE_MAX_ACTIVE        2	/* transactions in flight per process */
/* A site of a group: a commit waits for the replicas' acknowledgements
 * (a network round trip, not the CPU), and the master's replication
 * process runs every forwarded write: more may be in flight. */
#define STORE_MAX_ACTIVE_REPL  16
#define STORE_SEQ_CACHE        16	/* user ids a process reserves at once: one id mark write each */
#define STORE_MARK_WAIT_MS   3000	/* an open waits this long on another's id mark lock */
#define STORE_CACHE_BYTES    (16 * 1024 * 1024)
#define STORE_LOCK_TIMEOUT_US  500000	/* a lock wait longer than this fails */
#define STORE_OPEN_RETRY_MS  1000	/* a failed open of the environment, tried again */
#define STORE_DBS_RETRY_MS     50	/* a group's site: its databases, tried again */
/* A store call in flight this long: the process restarts. Within the 10 s
 * the README promises; the longest call that is not stuck, a transaction
 * through all its retries of 0.5 s lock waits, takes about 4 s. */
#define STORE_STUCK_MS       8000
/* Berkeley DB 5.3 blocks a commit up to 10 x the ack time-out on a site's
 * full output queue (a stopped, not dead, site) before it marks the
 * connection congested; a call queued at the gate behind two such commits
 * waits three of them. A site of a group waits that, plus the extra,
 * before it calls a store call stuck (store_stuck_limit_ms). */
#define REPL_QUEUE_BLOCKS      10
#define REPL_STUCK_EPISODES     3
#define REPL_STUCK_EXTRA_MS  2000
/* A process that could not listen on repl_site waits this long before it
 * restarts (store_repl_start): multiwatch (-t 1000) gives up on a child
 * that keeps dying within a second of its start. */
#define REPL_LISTEN_RESTART_MS 1200
/* Log files a site of a group keeps beyond those its own recovery needs
 * (store_repl_log_trim), so that a replica that lagged (stopped, slow,
 * restarting) catches up from the master's log instead of needing a new
 * copy of every database: 8 x 10 MB files, minutes of full load. */
#define REPL_LOG_KEEP_FILES     8
/* How often it looks (log_archive lists db_home and reads the last
 * checkpoint): files are 10 MB, a few seconds late is nothing. */
#define REPL_LOG_TRIM_S        10
#define STORE_BUSY_SLOTS   (MAX_THREADS + 16)	/* threads the stuck-call watch follows at once */
#define STORE_MAX_LOCKS     50000	/* lock table of the environment, locks and objects */

/* Health (app/handlers_health.c, app/store_probe.c). A readiness answer
 * rests on a write the store proved at most this long ago: a storm of
 * probes costs each process one small write (and one flush) per period. */
#define READYZ_CACHE_MS      1000
/* Metrics (app/metrics.c). */
#define METRICS_MAX_ROUTES     32	/* route slots in the shared region, "other" included */
#define METRICS_TEXT_MAX  (64 * 1024)	/* bytes of one /metrics answer */
#define METRICS_OPEN_TRIES      4	/* replaced regions raced before giving up */
/* The admin tool. */
#define ADMIN_BATCH            64	/* users read per short transaction */
#define STORE_TOOL_TXN_PRIORITY 0	/* the admin tool's, below the default 100 */
#define ADMIN_IMPORT_LINE   16384	/* users import: bytes of one JSON line */
#define ADMIN_IMPORT_MAX_ID 1000000000000ULL	/* users import: highest user id */
#define ADMIN_SESSIONS_MAX   4096	/* sessions list: families shown */
#define ADMIN_LIST_DEFAULT    100	/* users list without --limit */
#define ADMIN_LIST_MAX    1000000	/* users list --limit at most */

/* Errors and logs. */
#define MAX_ERROR_DETAIL      256
#define MAX_LOG_LINE         2048
#define LOG_METHOD_FIELD       64	/* bytes of the escaped method logged */
#define LOG_PATH_FIELD        512	/* bytes of the escaped path logged */
#define LOG_ID_FIELD  (MAX_REQUEST_ID * 4 + 1)	/* request id, client address */

#endif
