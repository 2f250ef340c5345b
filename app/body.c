/*
 * body.c: the request-body parser (see body.h).
 *
 * Owns the grammar of the bodies front ends post: form-urlencoded pairs
 * and JSON objects of strings, with their limits (MAX_BODY,
 * MAX_BODY_FIELDS, MAX_FIELD_NAME, MAX_FIELD_VALUE) and the rules every
 * decoded field obeys (a name of [A-Za-z0-9_.-], a value of valid UTF-8
 * with no control byte, no name twice). Knows no route and no field's
 * meaning: the handlers look up what they need. Must not log, read or
 * allocate beyond the call: a refusal's reason goes into the detail (by
 * field number, never a name or a value, which may be a code or a token)
 * and Jansson's tree is freed before body_parse() returns (its copies of
 * the strings are freed unwiped: Jansson's free() gets no size, and a
 * wiping allocator would be process-wide, not this module's to set).
 * Thread-safe by construction: no globals, the caller owns the output.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "body.h"

#define FORM_TYPE	"application/x-www-form-urlencoded"
#define JSON_TYPE	"application/json"

/* ---- Content-Type ---- */

static const char *
skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* True when the n bytes at p are "charset=utf-8", the value optionally
 * quoted, the name and value in any case. */
static bool
charset_utf8(const char *p, size_t n)
{
	static const char name[] = "charset=";
	size_t		  nl = sizeof(name) - 1;

	if (n < nl || strncasecmp(p, name, nl) != 0)
		return false;
	p += nl;
	n -= nl;
	if (n == 7 && p[0] == '"' && p[6] == '"') {
		p++;
		n -= 2;
	}
	return n == 5 && strncasecmp(p, "utf-8", 5) == 0;
}

/* Checks the parameters after the media type: each one empty or
 * charset=utf-8, the charset at most once. */
static int
content_type_params(const char *p, struct kl_error *err)
{
	const char	*end;
	size_t		 n;
	bool		 seen = false;

	while (*(p = skip_ows(p)) != '\0') {
		if (*p != ';')
			return kl_fail(err, KL_BAD_REQUEST,
			    "content type: junk after the media type");
		p = skip_ows(p + 1);
		end = p + strcspn(p, ";");
		for (n = (size_t)(end - p); n > 0 &&
		    (p[n - 1] == ' ' || p[n - 1] == '\t'); n--)
			;
		if (n > 0) {
			if (seen || !charset_utf8(p, n))
				return kl_fail(err, KL_BAD_REQUEST,
				    "content type: parameter other than "
				    "one charset=utf-8");
			seen = true;
		}
		p = end;
	}
	return 0;
}

int
body_content_type(const char *content_type, enum body_type *type,
    struct kl_error *err)
{
	const char	*p;
	size_t		 n;
	enum body_type	 t;

	if (content_type == NULL || content_type[0] == '\0')
		return kl_fail(err, KL_BAD_REQUEST, "no content type");
	p = skip_ows(content_type);
	n = strcspn(p, " \t;");
	if (n == sizeof(FORM_TYPE) - 1 && strncasecmp(p, FORM_TYPE, n) == 0)
		t = BODY_TYPE_FORM;
	else if (n == sizeof(JSON_TYPE) - 1 &&
	    strncasecmp(p, JSON_TYPE, n) == 0)
		t = BODY_TYPE_JSON;
	else
		return kl_fail(err, KL_BAD_REQUEST,
		    "content type neither form nor JSON");
	if (content_type_params(p + n, err) == -1)
		return -1;
	*type = t;
	return 0;
}

/* ---- the rules every field obeys ---- */

static bool
name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* Length of the valid UTF-8 character at p (n > 0 bytes left), or 0 when
 * it is not one: a stray continuation byte, a cut sequence, an overlong
 * form, a surrogate or a value above U+10FFFF. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	size_t	len, i;
	uint8_t	lo = 0x80, hi = 0xbf;	/* range of the second byte */

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (p[0] == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		if (p[0] == 0xf0)
			lo = 0x90;	/* overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else
		return 0;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* Checks field i (numbered from 1 in details), already decoded into
 * out->store: the name and value rules, then duplicates. */
static int
field_check(const struct body_fields *out, int i, struct kl_error *err)
{
	const struct body_field	*f = &out->field[i];
	const unsigned char	*v = (const unsigned char *)f->value;
	size_t			 nl = strlen(f->name), k, c;
	int			 j;

	if (nl == 0)
		return kl_fail(err, KL_BAD_REQUEST, "field %d: empty name",
		    i + 1);
	if (nl > MAX_FIELD_NAME)
		return kl_fail(err, KL_BAD_REQUEST,
		    "field %d: name too long (%zu bytes, at most %d)", i + 1,
		    nl, MAX_FIELD_NAME);
	for (k = 0; k < nl; k++)
		if (!name_char((unsigned char)f->name[k]))
			return kl_fail(err, KL_BAD_REQUEST,
			    "field %d: bad character in name", i + 1);
	if (f->value_len > MAX_FIELD_VALUE)
		return kl_fail(err, KL_BAD_REQUEST,
		    "field %d: value too long (%zu bytes, at most %d)", i + 1,
		    f->value_len, MAX_FIELD_VALUE);
	for (k = 0; k < f->value_len; k += c) {
		if (v[k] < 0x20 || v[k] == 0x7f)
			return kl_fail(err, KL_BAD_REQUEST,
			    "field %d: control byte in value", i + 1);
		if ((c = utf8_len(v + k, f->value_len - k)) == 0)
			return kl_fail(err, KL_BAD_REQUEST,
			    "field %d: invalid UTF-8 in value", i + 1);
	}
	for (j = 0; j < i; j++)
		if (strcmp(out->field[j].name, f->name) == 0)
			return kl_fail(err, KL_BAD_REQUEST,
			    "field %d: duplicate name (of field %d)", i + 1,
			    j + 1);
	return 0;
}

/* Reserves n bytes and a NUL in the store; NULL when they do not fit
 * (never for a body of at most MAX_BODY bytes, see BODY_STORE). */
static char *
store_take(struct body_fields *out, size_t n)
{
	char	*p;

	if (n >= sizeof(out->store) - out->used)
		return NULL;
	p = out->store + out->used;
	out->used += n + 1;
	p[n] = '\0';
	return p;
}

/* ---- form-urlencoded ---- */

static int
hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes the n bytes at s ('+' a space, %HH a byte) into the store as
 * the name or value (what) of field i; *dst is the decoded string, *len
 * its length (a %00 makes it longer than strlen: field_check refuses it).
 * Returns 0, or -1 when an escape is bad. */
static int
form_decode(struct body_fields *out, const char *s, size_t n,
    const char **dst, size_t *len, int i, const char *what,
    struct kl_error *err)
{
	const unsigned char	*p = (const unsigned char *)s;
	char			*d;
	size_t			 k, m = 0;
	int			 hi, lo;

	if ((d = store_take(out, n)) == NULL)
		return kl_fail(err, KL_BAD_REQUEST,
		    "field %d: body too large to decode", i + 1);
	for (k = 0; k < n; k++) {
		if (p[k] == '+')
			d[m++] = ' ';
		else if (p[k] != '%')
			d[m++] = (char)p[k];
		else if (n - k < 3 || (hi = hex_digit(p[k + 1])) < 0 ||
		    (lo = hex_digit(p[k + 2])) < 0)
			return kl_fail(err, KL_BAD_REQUEST,
			    "field %d: bad percent escape in %s", i + 1, what);
		else {
			d[m++] = (char)(hi << 4 | lo);
			k += 2;
		}
	}
	d[m] = '\0';
	out->used -= n - m;	/* give back what decoding saved */
	*dst = d;
	*len = m;
	return 0;
}

/* One pair "name=value" of n > 0 bytes at s, as field out->count. */
static int
form_pair(struct body_fields *out, const char *s, size_t n,
    struct kl_error *err)
{
	struct body_field	*f = &out->field[out->count];
	const char		*eq;
	size_t			 nl;
	int			 i = out->count;

	if ((eq = memchr(s, '=', n)) == NULL)
		return kl_fail(err, KL_BAD_REQUEST, "field %d: no '='", i + 1);
	if (form_decode(out, s, (size_t)(eq - s), &f->name, &nl, i, "name",
	    err) == -1)
		return -1;
	if (strlen(f->name) != nl)
		return kl_fail(err, KL_BAD_REQUEST,
		    "field %d: bad character in name", i + 1);
	eq++;
	if (form_decode(out, eq, n - (size_t)(eq - s), &f->value,
	    &f->value_len, i, "value", err) == -1)
		return -1;
	out->count++;
	return field_check(out, i, err);
}

static int
form_parse(const char *body, size_t len, struct body_fields *out,
    struct kl_error *err)
{
	const char	*p = body, *end = body + len, *amp;
	size_t		 n;

	if (len == 0)
		return 0;
	for (;;) {
		amp = memchr(p, '&', (size_t)(end - p));
		n = (size_t)((amp != NULL ? amp : end) - p);
		if (out->count == MAX_BODY_FIELDS)
			return kl_fail(err, KL_BAD_REQUEST,
			    "too many fields (at most %d)", MAX_BODY_FIELDS);
		if (n == 0)
			return kl_fail(err, KL_BAD_REQUEST,
			    "field %d: empty pair", out->count + 1);
		if (form_pair(out, p, n, err) == -1)
			return -1;
		if (amp == NULL)
			return 0;
		p = amp + 1;
	}
}

/* ---- JSON ---- */

/* Copies the n bytes at s into the store; NULL when they do not fit. */
static const char *
store_copy(struct body_fields *out, const char *s, size_t n)
{
	char	*dst;

	if ((dst = store_take(out, n)) != NULL)
		memcpy(dst, s, n);
	return dst;
}

/* Member key: value as field out->count. */
static int
json_member(struct body_fields *out, const char *key, json_t *value,
    struct kl_error *err)
{
	struct body_field	*f = &out->field[out->count];
	const char		*s;
	size_t			 n;
	int			 i = out->count;

	if (!json_is_string(value))
		return kl_fail(err, KL_BAD_REQUEST,
		    "field %d: value not a string", i + 1);
	s = json_string_value(value);
	n = json_string_length(value);
	if (memchr(s, '\0', n) != NULL)	/* Jansson refuses it: defence */
		return kl_fail(err, KL_BAD_REQUEST,
		    "field %d: control byte in value", i + 1);
	if ((f->name = store_copy(out, key, strlen(key))) == NULL ||
	    (f->value = store_copy(out, s, n)) == NULL)
		return kl_fail(err, KL_BAD_REQUEST,
		    "field %d: body too large to decode", i + 1);
	f->value_len = n;
	out->count++;
	return field_check(out, i, err);
}

static int
json_fields(json_t *root, struct body_fields *out, struct kl_error *err)
{
	const char	*key;
	json_t		*value;

	if (!json_is_object(root))
		return kl_fail(err, KL_BAD_REQUEST, "JSON body not an object");
	if (json_object_size(root) > MAX_BODY_FIELDS)
		return kl_fail(err, KL_BAD_REQUEST,
		    "too many fields (%zu, at most %d)",
		    json_object_size(root), MAX_BODY_FIELDS);
	json_object_foreach(root, key, value)
		if (json_member(out, key, value, err) == -1)
			return -1;
	return 0;
}

/* Why Jansson refused a body, in our words: its own message quotes the
 * input ("near '...'"), which may be a code or a token. */
static const char *
json_reason(const json_error_t *jerr)
{
	switch (json_error_code(jerr)) {
	case json_error_duplicate_key:
		return "duplicate name";
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return "NUL (\\u0000) in a string";
	case json_error_invalid_utf8:
		return "invalid UTF-8";
	case json_error_premature_end_of_input:
		return "truncated";
	case json_error_end_of_input_expected:
		return "trailing bytes after the object";
	case json_error_stack_overflow:
		return "nested too deep";
	case json_error_numeric_overflow:
		return "number out of range";
	case json_error_out_of_memory:
		return "out of memory";
	default:
		return "syntax error";
	}
}

static int
json_parse(const char *body, size_t len, struct body_fields *out,
    struct kl_error *err)
{
	json_t		*root;
	json_error_t	 jerr;
	int		 rc;

	if (len == 0)
		return kl_fail(err, KL_BAD_REQUEST, "empty JSON body");
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return kl_fail(err, KL_BAD_REQUEST,
		    "bad JSON: %s at byte %d", json_reason(&jerr),
		    jerr.position);
	rc = json_fields(root, out, err);
	json_decref(root);
	return rc;
}

/* ---- the interface ---- */

int
body_parse(const char *content_type, const char *body, size_t len,
    struct body_fields *out, struct kl_error *err)
{
	enum body_type	type;
	int		rc;

	out->count = 0;
	out->used = 0;
	if (body_content_type(content_type, &type, err) == -1)
		rc = -1;
	else if (len > MAX_BODY)
		rc = kl_fail(err, KL_BAD_REQUEST,
		    "body too long (%zu bytes, at most %d)", len, MAX_BODY);
	else if (body == NULL && len > 0)
		rc = kl_fail(err, KL_BAD_REQUEST, "no body bytes");
	else if (type == BODY_TYPE_FORM)
		rc = form_parse(body, len, out, err);
	else
		rc = json_parse(body, len, out, err);
	if (rc == -1)
		body_wipe(out);	/* also what an earlier parse left */
	return rc;
}

const char *
body_get(const struct body_fields *f, const char *name)
{
	int	i;

	if (f == NULL || name == NULL)
		return NULL;
	for (i = 0; i < f->count; i++)
		if (strcmp(f->field[i].name, name) == 0)
			return f->field[i].value;
	return NULL;
}

void
body_wipe(struct body_fields *f)
{
	if (f == NULL)
		return;
	explicit_bzero(f, sizeof(*f));
}
