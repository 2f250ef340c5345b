/*
 * body.h: the request-body parser (app/body.c).
 *
 * Turns a front end's POST body, application/x-www-form-urlencoded or a
 * JSON object of strings, into at most MAX_BODY_FIELDS decoded name/value
 * pairs. A pure module: no I/O, no globals, no allocation that outlives a
 * call, so any number of threads may parse at once, each into its own
 * struct body_fields.
 */
#ifndef KL_BODY_H
#define KL_BODY_H

#include <stddef.h>

#include "kl_error.h"
#include "kl_limits.h"

enum body_type { BODY_TYPE_FORM = 1, BODY_TYPE_JSON };

/* name and value point into the store of the struct body_fields that holds
 * them; both are NUL-terminated, and value_len == strlen(value). */
struct body_field {
	const char	*name;
	const char	*value;
	size_t		 value_len;
};

/* Decoding never grows a field (a form pair "n=v" of k bytes holds at most
 * k - 1 decoded bytes, a JSON member at most its quoted bytes), so the
 * decoded bytes of a MAX_BODY body and a NUL after each name and value fit
 * in BODY_STORE. */
#define BODY_STORE	(MAX_BODY + 2 * MAX_BODY_FIELDS)

/* A value the caller owns (about MAX_BODY + 400 bytes: fine on a worker's
 * stack or in its context). Not to be copied by value: the fields point
 * into store. body_parse() fills it; body_wipe() clears it. */
struct body_fields {
	int			count;
	struct body_field	field[MAX_BODY_FIELDS];
	char			store[BODY_STORE];	/* decoded, NUL-terminated */
	size_t			used;
};

/* Which parser a Content-Type asks for: "application/x-www-form-urlencoded"
 * or "application/json", case-insensitive, optionally followed by
 * parameters after ';' (spaces and tabs around the ';' allowed, empty
 * parameters ignored) of which only charset=utf-8 (any case, optionally
 * quoted, at most once) is accepted. NULL, empty or anything else: -1 with
 * KL_BAD_REQUEST. */
int		 body_content_type(const char *content_type,
		    enum body_type *type, struct kl_error *err);

/* Parses body (len bytes, not necessarily NUL-terminated; NULL when len is
 * 0) as content_type says into out. Returns 0, or -1 with KL_BAD_REQUEST
 * and the reason in the detail ("field 3: bad percent escape"), never a
 * name or value; out is then wiped and holds no field. Fields keep the
 * body's order; unknown names are kept. Jansson's tree of a JSON body is
 * freed before the call returns. */
int		 body_parse(const char *content_type, const char *body,
		    size_t len, struct body_fields *out, struct kl_error *err);

/* The value of the field called name (case-sensitive), or NULL when absent
 * (or f or name is NULL). The pointer lives as long as f's contents. */
const char	*body_get(const struct body_fields *f, const char *name);

/* Wipes the decoded bytes (codes, verifiers and tokens pass through here)
 * and leaves f holding no field. f may be NULL. */
void		 body_wipe(struct body_fields *f);

#endif
