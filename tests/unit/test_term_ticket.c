/*
 * Browser terminal tickets (term_ticket.c): single use, bound to one
 * session, expiring, a bounded table, the caller's identity carried whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"
#include "err.h"
#include "term_ticket.h"

#define T0 1800000000LL

static char *groups[] = {"sre-leads", "ops"};

static struct identity
alice(void)
{
    struct identity id;

    memset(&id, 0, sizeof(id));
    id.issuer_name = "dev";
    id.user = "alice";
    id.email = "alice@example.com";
    id.domain = "dev";
    id.groups = groups;
    id.n_groups = 2;
    id.expires_at = T0 + 3600;
    return id;
}

static void
test_ticket_single_use(void **state)
{
    struct term_tickets *tt = term_tickets_new();
    struct identity a = alice(), got;
    char *t = NULL;
    int ro = -1;
    (void)state;

    assert_int_equal(term_ticket_issue(tt, "ds-aaaaaaaaaa", &a, 0, T0, &t), 0);
    assert_int_equal(strlen(t), 43);
    assert_int_equal(term_ticket_take(tt, t, "ds-aaaaaaaaaa", T0 + 1, &got, &ro), 0);
    assert_int_equal(ro, 0);
    assert_string_equal(got.user, "alice");
    assert_string_equal(got.email, "alice@example.com");
    assert_int_equal(got.n_groups, 2);
    assert_string_equal(got.groups[1], "ops");
    identity_cleanup(&got);
    /* used: gone */
    assert_int_equal(term_ticket_take(tt, t, "ds-aaaaaaaaaa", T0 + 1, &got, &ro), ERR_NOT_FOUND);
    assert_int_equal(ro, 1);
    assert_null(got.user);
    free(t);
    term_tickets_free(tt);
}

static void
test_ticket_bound_and_expiring(void **state)
{
    struct term_tickets *tt = term_tickets_new();
    struct identity a = alice(), got;
    char *t1 = NULL, *t2 = NULL, *t3 = NULL;
    int ro;
    (void)state;

    assert_int_equal(term_ticket_issue(tt, "ds-aaaaaaaaaa", &a, 1, T0, &t1), 0);
    assert_int_equal(term_ticket_issue(tt, "ds-aaaaaaaaaa", &a, 1, T0, &t2), 0);
    assert_int_equal(term_ticket_issue(tt, "ds-aaaaaaaaaa", &a, 1, T0, &t3), 0);
    assert_string_not_equal(t1, t2);
    /* another session's ticket is refused and used up */
    assert_int_equal(term_ticket_take(tt, t1, "ds-bbbbbbbbbb", T0, &got, &ro), ERR_NOT_FOUND);
    assert_int_equal(term_ticket_take(tt, t1, "ds-aaaaaaaaaa", T0, &got, &ro), ERR_NOT_FOUND);
    /* expired at exactly TTL */
    assert_int_equal(term_ticket_take(tt, t2, "ds-aaaaaaaaaa", T0 + TERM_TICKET_TTL_S, &got, &ro),
                     ERR_NOT_FOUND);
    /* one second before: fine, and read-only as issued */
    assert_int_equal(
        term_ticket_take(tt, t3, "ds-aaaaaaaaaa", T0 + TERM_TICKET_TTL_S - 1, &got, &ro), 0);
    assert_int_equal(ro, 1);
    identity_cleanup(&got);
    /* a guess */
    assert_int_equal(term_ticket_take(tt, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                      "ds-aaaaaaaaaa", T0, &got, &ro),
                     ERR_NOT_FOUND);
    free(t1);
    free(t2);
    free(t3);
    term_tickets_free(tt);
}

static void
test_ticket_table_is_bounded(void **state)
{
    struct term_tickets *tt = term_tickets_new();
    struct identity a = alice();
    char *t = NULL;
    (void)state;

    for (int i = 0; i < TERM_TICKET_MAX; i++) {
        assert_int_equal(term_ticket_issue(tt, "ds-aaaaaaaaaa", &a, 1, T0, &t), 0);
        free(t);
    }
    assert_int_equal(term_ticket_issue(tt, "ds-aaaaaaaaaa", &a, 1, T0, &t), ERR_TOO_MANY);
    assert_null(t);
    /* expired tickets make room */
    assert_int_equal(term_ticket_issue(tt, "ds-aaaaaaaaaa", &a, 1, T0 + TERM_TICKET_TTL_S, &t), 0);
    free(t);
    term_tickets_free(tt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticket_single_use),
        cmocka_unit_test(test_ticket_bound_and_expiring),
        cmocka_unit_test(test_ticket_table_is_bounded),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
