/*
 * store.h: the user store, on a transactional Berkeley DB 5.3 environment
 * shared by every process of the service.
 *
 * One struct store per process, opened before the threads start and closed
 * after they stop; all its functions may be called from any thread.
 */
#ifndef KL_STORE_H
#define KL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "kl_error.h"
#include "kl_limits.h"

enum store_user_status {
	STORE_USER_ACTIVE = 0,
	STORE_USER_UNLINKED = 1
};

struct store_user {
	uint64_t		 user_id;	/* ours; never reused */
	int64_t			 kakao_id;	/* Kakao's, per app */
	char			 nickname[MAX_NICKNAME + 1];	/* "": none */
	char			 email[MAX_EMAIL + 1];		/* "": none */
	bool			 email_verified;
	char			 profile_image[MAX_PROFILE_IMAGE + 1];
	enum store_user_status	 status;
	time_t			 created, updated, last_login;
	uint64_t		 login_count;
};

/* What a login learned about the user from Kakao. */
struct store_login {
	int64_t		 kakao_id;
	const char	*nickname;	/* NULL: unknown, keep what we have */
	const char	*email;		/* NULL: unknown */
	bool		 email_verified;
	const char	*profile_image;	/* NULL: unknown */
};

struct store;

/* Opens (creating if needed) the environment in home and the databases.
 * On success *out is owned by the caller and freed by store_close(). */
int	store_open(struct store **out, const char *home,
	    enum config_durability durability, struct kl_error *err);
void	store_close(struct store *st);

/* Creates the user on a first login or updates it, counting the login, in
 * one transaction. Fills *user with the record as stored. */
int	store_user_login(struct store *st, const struct store_login *in,
	    time_t now, struct store_user *user, struct kl_error *err);

/* Looks a user up by Kakao id. Returns 0 when found, -1 with KL_NOT_FOUND
 * when absent, -1 with KL_STORE_FAILED on trouble. */
int	store_user_get(struct store *st, int64_t kakao_id,
	    struct store_user *user, struct kl_error *err);

/* Checkpoints (so old log files can go). Called about once a second by
 * one thread; also how an idle process notices that another one ran
 * recovery. Returns -1 on failure. */
int	store_maintain(struct store *st, struct kl_error *err);

/* True once Berkeley DB said the environment needs recovery. */
bool	store_needs_restart(const struct store *st);

/* Record encoding, exposed for tests and the fuzz target. encode returns
 * the length written (at most STORE_RECORD_MAX) or -1. */
#define STORE_RECORD_MAX	(52 + 3 * 2 + MAX_NICKNAME + MAX_EMAIL + \
				 MAX_PROFILE_IMAGE)
int	store_record_encode(const struct store_user *u, unsigned char *buf,
	    size_t size);
int	store_record_decode(const unsigned char *buf, size_t len,
	    struct store_user *u);

#endif
