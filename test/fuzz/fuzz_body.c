/*
 * fuzz_body.c: the bytes, as a front end's POST body, go to body_parse()
 * (app/body.c). The first byte picks the Content-Type from a table (form
 * and JSON in several spellings, and some refused ones); a first byte of
 * 0xff instead takes the Content-Type from the input, up to the first
 * newline, so body_content_type() is fuzzed too. The rest is the body.
 *
 * Beyond "does not crash" it asserts: on failure the status is
 * KL_BAD_REQUEST, the detail is NUL-terminated and the output is all zero
 * (wiped). On success: count is 0..MAX_BODY_FIELDS (0 for an empty form
 * body; a form body has exactly one field per '&' plus one); every name is
 * 1..MAX_FIELD_NAME bytes of [A-Za-z0-9_.-], and no two are equal; every
 * value lies inside the store, is NUL-terminated with value_len ==
 * strlen(value) <= MAX_FIELD_VALUE, is valid UTF-8 (no overlong form,
 * surrogate or value above U+10FFFF, checked independently here) with no
 * byte below 0x20 and no 0x7f; body_get() finds each value by its name.
 * A JSON body accepted is also accepted by Jansson alone, with the same
 * members and values.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "body.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FORM	"application/x-www-form-urlencoded"
#define JSON	"application/json"

static const char *const types[] = {
	FORM, JSON,
	FORM "; charset=utf-8", JSON "; charset=UTF-8",
	"Application/JSON ; charset=\"utf-8\"", "APPLICATION/X-WWW-FORM-URLENCODED;",
	"text/plain", NULL, "", JSON "; charset=latin-1",
};

/* Checks the UTF-8 of n bytes at p (written apart from app/body.c). */
static bool
utf8_ok(const unsigned char *p, size_t n)
{
	size_t		i = 0, len, k;
	uint32_t	c, min;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0)
			len = 2, c = p[i] & 0x1f, min = 0x80;
		else if ((p[i] & 0xf0) == 0xe0)
			len = 3, c = p[i] & 0x0f, min = 0x800;
		else if ((p[i] & 0xf8) == 0xf0)
			len = 4, c = p[i] & 0x07, min = 0x10000;
		else
			return false;
		if (n - i < len)
			return false;
		for (k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			c = c << 6 | (p[i + k] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static bool
in_store(const struct body_fields *f, const char *s, size_t n)
{
	return s >= f->store && s + n < f->store + f->used &&
	    f->used <= sizeof(f->store);
}

static void
check_field(const struct body_fields *f, int i)
{
	const struct body_field	*x = &f->field[i];
	size_t			 nl, k;
	unsigned char		 c;
	int			 j;

	assert(x->name != NULL && x->value != NULL);
	nl = strlen(x->name);
	assert(in_store(f, x->name, nl));
	assert(nl >= 1 && nl <= MAX_FIELD_NAME);
	for (k = 0; k < nl; k++) {
		c = (unsigned char)x->name[k];
		assert((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-');
	}
	assert(in_store(f, x->value, x->value_len));
	assert(x->value[x->value_len] == '\0');
	assert(strlen(x->value) == x->value_len);
	assert(x->value_len <= MAX_FIELD_VALUE);
	for (k = 0; k < x->value_len; k++) {
		c = (unsigned char)x->value[k];
		assert(c >= 0x20 && c != 0x7f);
	}
	assert(utf8_ok((const unsigned char *)x->value, x->value_len));
	for (j = 0; j < i; j++)
		assert(strcmp(f->field[j].name, x->name) != 0);
	assert(body_get(f, x->name) == x->value);
}

/* Jansson alone sees the same members. */
static void
check_json(const struct body_fields *f, const char *body, size_t len)
{
	json_t	*root, *v;
	int	 i;

	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	assert(root != NULL && json_is_object(root));
	assert(json_object_size(root) == (size_t)f->count);
	for (i = 0; i < f->count; i++) {
		v = json_object_get(root, f->field[i].name);
		assert(json_is_string(v));
		assert(json_string_length(v) == f->field[i].value_len);
		assert(memcmp(json_string_value(v), f->field[i].value,
		    f->field[i].value_len) == 0);
	}
	json_decref(root);
}

static void
check_form(const struct body_fields *f, const char *body, size_t len)
{
	size_t	amps = 0, k;

	for (k = 0; k < len; k++)
		amps += body[k] == '&';
	assert(f->count == (len == 0 ? 0 : (int)amps + 1));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct body_fields	 zero;
	static struct body_fields	 f;	/* 16 KB: not on the stack */
	struct kl_error			 err;
	enum body_type			 type;
	const char			*ct, *body, *nl;
	char				*own = NULL, *copy;
	size_t				 len;
	int				 i, rc;

	if (size == 0)
		return 0;
	body = (const char *)data + 1;
	len = size - 1;
	if (data[0] == 0xff) {
		nl = memchr(body, '\n', len);
		if (nl == NULL)
			return 0;
		own = strndup(body, (size_t)(nl - body));	/* stops at a NUL */
		assert(own != NULL);
		ct = own;
		len -= (size_t)(nl + 1 - body);
		body = nl + 1;
	} else
		ct = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	/* Exactly len bytes on the heap, so an over-read shows. */
	copy = malloc(len ? len : 1);
	assert(copy != NULL);
	if (len > 0)
		memcpy(copy, body, len);

	memset(&f, 0xa5, sizeof(f));	/* whatever an earlier use left */
	kl_error_clear(&err);
	rc = body_parse(ct, copy, len, &f, &err);
	if (rc == -1) {
		assert(err.status == KL_BAD_REQUEST);
		assert(memchr(err.detail, '\0', sizeof(err.detail)) != NULL);
		assert(err.detail[0] != '\0');
		assert(memcmp(&f, &zero, sizeof(f)) == 0);
	} else {
		assert(rc == 0);
		assert(body_content_type(ct, &type, &err) == 0);
		assert(len <= MAX_BODY);
		assert(f.count >= 0 && f.count <= MAX_BODY_FIELDS);
		for (i = 0; i < f.count; i++)
			check_field(&f, i);
		if (type == BODY_TYPE_JSON)
			check_json(&f, copy, len);
		else
			check_form(&f, copy, len);
		assert(body_get(&f, "") == NULL);
		body_wipe(&f);
		assert(memcmp(&f, &zero, sizeof(f)) == 0);
	}
	/* A Content-Type accepted names one of the two media types. */
	if (body_content_type(ct, &type, &err) == 0)
		assert(strncasecmp(ct + strspn(ct, " \t"),
		    type == BODY_TYPE_FORM ? FORM : JSON,
		    strlen(type == BODY_TYPE_FORM ? FORM : JSON)) == 0);
	free(copy);
	free(own);
	return 0;
}
