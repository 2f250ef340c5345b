/*
 * kakao_reject.c: the tokens Kakao refused lately (see kakao_reject.h).
 *
 * Owns a fixed table of buckets, each KAKAO_REJECT_WAYS entries under its
 * own mutex; a token's tag (SipHash-2-4, 128-bit output, under the cache's
 * random key: a keyed PRF made for hash tables fed by an adversary, about
 * 0.3 us a token where HMAC-SHA256 took 4) chooses the bucket. Never
 * stores or logs a token; knows nothing of HTTP, curl or the store.
 * Thread-safe: every entry is read and written under its bucket's lock;
 * the keyed MAC context is made once, before any thread sees it, and only
 * copied after (EVP_MAC_CTX_dup reads it).
 */
#include <sys/random.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kakao_reject.h"
#include "kl_clock.h"

#define REJECT_KEY_LEN	16	/* SipHash's key */

struct reject_entry {
	unsigned char	 tag[KAKAO_REJECT_TAG];
	long long	 expires;	/* 0: empty */
	enum kl_status	 status;
};

struct reject_bucket {
	pthread_mutex_t		lock;
	struct reject_entry	way[KAKAO_REJECT_WAYS];
};

struct kakao_reject {
	EVP_MAC_CTX		*mac;		/* keyed; copied per tag */
	kakao_reject_clock	 clock;
	int			 ttl_s;
	size_t			 nbuckets;
	struct reject_bucket	*bucket;
};

struct kakao_reject *
kakao_reject_new(size_t slots, int ttl_s, kakao_reject_clock clock,
    struct kl_error *err)
{
	struct kakao_reject	*rc;
	unsigned char		 key[REJECT_KEY_LEN];
	size_t			 i, got = 0, tag_len = KAKAO_REJECT_TAG;
	ssize_t			 n;
	EVP_MAC			*sip;
	OSSL_PARAM		 params[2];

	if (slots == 0 || slots % KAKAO_REJECT_WAYS != 0 || ttl_s <= 0) {
		kl_fail(err, KL_INTERNAL, "reject cache: bad size or ttl");
		return NULL;
	}
	if ((rc = calloc(1, sizeof(*rc))) == NULL ||
	    (rc->bucket = calloc(slots / KAKAO_REJECT_WAYS,
	    sizeof(*rc->bucket))) == NULL) {
		free(rc);
		kl_fail(err, KL_INTERNAL, "reject cache: out of memory");
		return NULL;
	}
	rc->nbuckets = slots / KAKAO_REJECT_WAYS;
	rc->ttl_s = ttl_s;
	rc->clock = clock != NULL ? clock : kl_mono_seconds;
	while (got < sizeof(key)) {
		n = getrandom(key + got, sizeof(key) - got, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			kl_fail(err, KL_INTERNAL, "reject cache: getrandom: %s",
			    strerror(errno));
			goto fail;
		}
		got += (size_t)n;
	}
	params[0] = OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &tag_len);
	params[1] = OSSL_PARAM_construct_end();
	sip = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	rc->mac = sip != NULL ? EVP_MAC_CTX_new(sip) : NULL;
	EVP_MAC_free(sip);		/* the context holds its own reference */
	if (rc->mac == NULL ||
	    EVP_MAC_init(rc->mac, key, sizeof(key), params) != 1) {
		kl_fail(err, KL_INTERNAL, "reject cache: no SipHash in OpenSSL");
		goto fail;
	}
	OPENSSL_cleanse(key, sizeof(key));
	for (i = 0; i < rc->nbuckets; i++)
		pthread_mutex_init(&rc->bucket[i].lock, NULL);
	return rc;
fail:
	OPENSSL_cleanse(key, sizeof(key));
	EVP_MAC_CTX_free(rc->mac);
	free(rc->bucket);
	free(rc);
	return NULL;
}

void
kakao_reject_free(struct kakao_reject *rc)
{
	size_t	i;

	if (rc == NULL)
		return;
	for (i = 0; i < rc->nbuckets; i++)
		pthread_mutex_destroy(&rc->bucket[i].lock);
	EVP_MAC_CTX_free(rc->mac);	/* OpenSSL clears the key */
	free(rc->bucket);
	free(rc);
}

void
kakao_reject_tag(const struct kakao_reject *rc, const char *token,
    size_t len, unsigned char tag[KAKAO_REJECT_TAG])
{
	EVP_MAC_CTX	*c;
	size_t		 n = 0;

	/* A copy per call: the threads share rc->mac and never write it. */
	if ((c = EVP_MAC_CTX_dup(rc->mac)) == NULL ||
	    EVP_MAC_update(c, (const unsigned char *)token, len) != 1 ||
	    EVP_MAC_final(c, tag, &n, KAKAO_REJECT_TAG) != 1 ||
	    n != KAKAO_REJECT_TAG)
		/* Out of memory: an all-zero tag is never looked up or
		 * stored, so the token is simply not remembered. */
		memset(tag, 0, KAKAO_REJECT_TAG);
	EVP_MAC_CTX_free(c);
}

static struct reject_bucket *
bucket_of(struct kakao_reject *rc, const unsigned char *tag)
{
	uint32_t	h;

	memcpy(&h, tag, sizeof(h));
	return &rc->bucket[h % rc->nbuckets];
}

static bool
tag_is_zero(const unsigned char *tag)
{
	size_t	i;

	for (i = 0; i < KAKAO_REJECT_TAG; i++)
		if (tag[i] != 0)
			return false;
	return true;
}

bool
kakao_reject_check(struct kakao_reject *rc, const char *token, size_t len,
    enum kl_status *status)
{
	struct reject_bucket	*b;
	unsigned char		 tag[KAKAO_REJECT_TAG];
	long long		 now;
	bool			 hit = false;
	int			 i;

	if (rc == NULL)
		return false;
	kakao_reject_tag(rc, token, len, tag);
	if (tag_is_zero(tag))
		return false;
	now = rc->clock();
	b = bucket_of(rc, tag);
	pthread_mutex_lock(&b->lock);
	for (i = 0; i < KAKAO_REJECT_WAYS && !hit; i++)
		if (b->way[i].expires > now &&
		    memcmp(b->way[i].tag, tag, sizeof(tag)) == 0) {
			*status = b->way[i].status;
			hit = true;
		}
	pthread_mutex_unlock(&b->lock);
	return hit;
}

void
kakao_reject_remember(struct kakao_reject *rc, const char *token,
    size_t len, enum kl_status status)
{
	struct reject_bucket	*b;
	struct reject_entry	*e = NULL;
	unsigned char		 tag[KAKAO_REJECT_TAG];
	long long		 now;
	int			 i;

	if (rc == NULL)
		return;
	kakao_reject_tag(rc, token, len, tag);
	if (tag_is_zero(tag))
		return;
	now = rc->clock();
	b = bucket_of(rc, tag);
	pthread_mutex_lock(&b->lock);
	/* The same token again, else a free or expired way, else the way
	 * that expires first. */
	for (i = 0; i < KAKAO_REJECT_WAYS; i++)
		if (b->way[i].expires > now &&
		    memcmp(b->way[i].tag, tag, sizeof(tag)) == 0) {
			e = &b->way[i];
			break;
		}
	for (i = 0; e == NULL && i < KAKAO_REJECT_WAYS; i++)
		if (b->way[i].expires <= now)
			e = &b->way[i];
	if (e == NULL) {
		e = &b->way[0];
		for (i = 1; i < KAKAO_REJECT_WAYS; i++)
			if (b->way[i].expires < e->expires)
				e = &b->way[i];
	}
	memcpy(e->tag, tag, sizeof(tag));
	e->expires = now + rc->ttl_s;
	e->status = status;
	pthread_mutex_unlock(&b->lock);
}

size_t
kakao_reject_count(struct kakao_reject *rc)
{
	long long	now;
	size_t		i, n = 0;
	int		w;

	if (rc == NULL)
		return 0;
	now = rc->clock();
	for (i = 0; i < rc->nbuckets; i++) {
		pthread_mutex_lock(&rc->bucket[i].lock);
		for (w = 0; w < KAKAO_REJECT_WAYS; w++)
			if (rc->bucket[i].way[w].expires > now)
				n++;
		pthread_mutex_unlock(&rc->bucket[i].lock);
	}
	return n;
}
