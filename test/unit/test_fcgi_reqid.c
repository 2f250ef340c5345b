/*
 * test_fcgi_reqid.c: request ids (app/fcgi_reqid.c): a front's plain id
 * is kept, anything else is replaced, and made ids do not repeat.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fcgi_reqid.h"

static void
test_front_id_kept(void **state)
{
	struct fcgi_reqid	g;
	char			out[FCGI_REQID_SIZE], max[MAX_REQUEST_ID + 1];

	(void)state;
	fcgi_reqid_init(&g);
	assert_string_equal(fcgi_reqid_pick(&g, "f3a9-01", 1, out), "f3a9-01");
	assert_string_equal(fcgi_reqid_pick(&g, "Root=1-5e3f:a+b/c=@_.", 1,
	    out), "Root=1-5e3f:a+b/c=@_.");
	memset(max, 'a', MAX_REQUEST_ID);
	max[MAX_REQUEST_ID] = '\0';
	assert_string_equal(fcgi_reqid_pick(&g, max, 1, out), max);
	/* Nothing was made for them. */
	assert_int_equal(g.next, 0);
}

static void
test_front_id_replaced(void **state)
{
	static const char	*bad[] = { "", " ", "a b", "a\"b", "a\\b",
	    "a\nb", "a;b", "<script>", "\xed\x95\x9c", "a,b" };
	struct fcgi_reqid	 g;
	char			 out[FCGI_REQID_SIZE], big[MAX_REQUEST_ID + 2];
	size_t			 i;

	(void)state;
	fcgi_reqid_init(&g);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fcgi_reqid_pick(&g, bad[i], 1, out);
		assert_int_equal(strlen(out), FCGI_REQID_MADE_LEN);
		assert_true(fcgi_reqid_valid(out));
	}
	memset(big, 'a', MAX_REQUEST_ID + 1);
	big[MAX_REQUEST_ID + 1] = '\0';
	assert_int_equal(strlen(fcgi_reqid_pick(&g, big, 1, out)),
	    FCGI_REQID_MADE_LEN);
	/* Absent, or sent twice (which one would we believe?). */
	assert_int_equal(strlen(fcgi_reqid_pick(&g, NULL, 0, out)),
	    FCGI_REQID_MADE_LEN);
	assert_int_equal(strlen(fcgi_reqid_pick(&g, "abc", 2, out)),
	    FCGI_REQID_MADE_LEN);
	assert_int_equal(g.next, 13);
}

static void
test_made_ids_differ(void **state)
{
	struct fcgi_reqid	a, b;
	char			x[FCGI_REQID_SIZE], y[FCGI_REQID_SIZE];
	int			i;

	(void)state;
	fcgi_reqid_init(&a);
	fcgi_reqid_init(&b);
	/* Two threads: different prefixes. */
	assert_true(a.prefix != b.prefix);
	fcgi_reqid_pick(&a, NULL, 0, x);
	for (i = 0; i < 1000; i++) {
		fcgi_reqid_pick(&a, NULL, 0, y);
		assert_string_not_equal(x, y);
		memcpy(x, y, sizeof(x));
	}
	fcgi_reqid_pick(&b, NULL, 0, y);
	assert_string_not_equal(x, y);
	assert_int_equal(strspn(y, "0123456789abcdef"), FCGI_REQID_MADE_LEN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_front_id_kept),
		cmocka_unit_test(test_front_id_replaced),
		cmocka_unit_test(test_made_ids_differ),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
