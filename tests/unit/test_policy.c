/*
 * policy.c: the authorisation rules of DESIGN.md 5-6, one row per (caller,
 * session) situation. Identity is matched case-insensitively on username or
 * (trusted) email within an identity domain; the fixture's rows carry no
 * domain (as rows from before migration 0005), the "identity domains" tests
 * do. 403 (who you are) is decided before 409 (what state it is in).
 *
 * The fixture: alice requested a session from template "ci-debug"; paul is an
 * active participant, vera an active viewer, lena a participant who left;
 * ivan, dora (by email) and ian (by email) are invited but have not joined.
 * Approvers are the group sre-leads, the user carol and approver@example.com.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "err.h"
#include "policy.h"
#include "session.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define T0 1800000000LL
#define HOUR 3600LL

/* ---- fixture ---------------------------------------------------------------- */

/* A caller as a table row: up to three groups. */
struct who {
    const char *user, *email;
    const char *g[3];
    int admin;
};

static const struct who ALICE = {"alice", "alice@example.com", {"developers"}, 0};
/* the requester by email under another username, in the approver group */
static const struct who ALICE_BY_EMAIL = {"asmith", "ALICE@Example.COM", {"sre-leads"}, 0};
/* the requester by username in another case, in the approver group */
static const struct who ALICE_UPPER = {"ALICE", NULL, {"sre-leads"}, 0};
static const struct who ALICE_APPROVER = {
    "alice", "alice@example.com", {"developers", "sre-leads"}, 0};
static const struct who PAUL = {"paul", "paul@example.com", {"developers"}, 0};
static const struct who PAUL_BY_EMAIL = {"p.smith", "Paul@Example.com", {0}, 0};
static const struct who VERA = {"vera", "vera@example.com", {"developers"}, 0};
static const struct who LENA = {"lena", "lena@example.com", {"developers"}, 0};
static const struct who IVAN = {"Ivan", NULL, {0}, 0};               /* invited by username */
static const struct who DORA = {"dora", "dora@EXAMPLE.com", {0}, 0}; /* invited by email */
static const struct who IAN = {"ian2", "ian@example.com", {0}, 0};   /* invited by email */
static const struct who BOB = {"bob", "bob@example.com", {"sre-leads"}, 0};  /* approver by group */
static const struct who BOB_CASE = {"bob", NULL, {"ops", "SRE-Leads"}, 0};   /* group, any case */
static const struct who CAROL = {"CAROL", NULL, {0}, 0};                     /* approver by user */
static const struct who XAVIER = {"xavier", "Approver@Example.com", {0}, 0}; /* by email */
static const struct who ROOT = {"root", "root@example.com", {"airlock-admins"}, 1};
static const struct who MALLORY = {"mallory", "mallory@example.com", {"developers"}, 0};
static const struct who NOBODY = {"nobody", NULL, {0}, 0};

static struct principal
mkp(const struct who *w)
{
    struct principal p;
    size_t n = 0;

    while (n < N(w->g) && w->g[n] != NULL)
        n++;
    p.user = w->user;
    p.email = w->email;
    p.domain = NULL;
    p.groups = (char *const *)w->g;
    p.n_groups = n;
    p.admin = w->admin;
    return p;
}

static char *allowed_groups[] = {"developers", "qa-*"};
static char *allowed_users[] = {"frank", "*@contractor.example"};
static char *allowed_agents[] = {"gh/acme/*", "host/db-?"};
static char *appr_groups[] = {"sre-leads"};
static char *appr_users[] = {"carol", "approver@example.com"};
static char *auto_groups[] = {"trusted"};
static char *auto_users[] = {"auto-user"};
static char *auto_agents[] = {"gh/acme/sandbox/*"};

#define SL(a)                                                                                      \
    {                                                                                              \
        (a), N(a)                                                                                  \
    }

/* The main template: approvers, auto-approve, 4h max, 3 renewals, 5 seats. */
static struct tmpl_cfg
tmpl_main(void)
{
    struct tmpl_cfg t;

    memset(&t, 0, sizeof(t));
    t.name = "ci-debug";
    t.allowed.groups = (struct strlist)SL(allowed_groups);
    t.allowed.users = (struct strlist)SL(allowed_users);
    t.allowed.agents = (struct strlist)SL(allowed_agents);
    t.approvers.groups = (struct strlist)SL(appr_groups);
    t.approvers.users = (struct strlist)SL(appr_users);
    t.auto_approve.groups = (struct strlist)SL(auto_groups);
    t.auto_approve.users = (struct strlist)SL(auto_users);
    t.auto_approve.agents = (struct strlist)SL(auto_agents);
    t.max_duration_s = 4 * HOUR;
    t.default_duration_s = HOUR;
    t.allow_renewal = 1;
    t.max_renewals = 3;
    t.sharing_enabled = 1;
    t.max_participants = 5;
    t.read_only_participants = 0;
    return t;
}

static const struct policy_participant fixture_parts[] = {
    {"alice", "alice@example.com", ROLE_OWNER, 1, NULL},
    {"paul", "paul@example.com", ROLE_PARTICIPANT, 1, NULL},
    {"vera", "vera@example.com", ROLE_VIEWER, 1, NULL},
    {"lena", "lena@example.com", ROLE_PARTICIPANT, 0, NULL},
};

static const struct policy_invite fixture_invites[] = {
    {"paul", ROLE_PARTICIPANT},        {"vera", ROLE_VIEWER},
    {"lena", ROLE_PARTICIPANT},        {"ivan", ROLE_PARTICIPANT},
    {"Dora@Example.com", ROLE_VIEWER}, {"ian@example.com", ROLE_PARTICIPANT},
};

/* Active, one hour into a four-hour maximum, no decision recorded. */
static struct policy_session
fixture(const struct tmpl_cfg *t, enum session_state st)
{
    struct policy_session s;

    memset(&s, 0, sizeof(s));
    s.state = st;
    s.tmpl = t;
    s.requested_by = "alice";
    s.requested_by_email = "alice@example.com";
    s.invited = fixture_invites;
    s.n_invited = N(fixture_invites);
    s.participants = fixture_parts;
    s.n_participants = N(fixture_parts);
    s.decided_by = NULL;
    s.renewal_count = 0;
    s.starts_at = T0;
    s.expires_at = T0 + HOUR;
    return s;
}

static const char *
rname(int r)
{
    switch (r) {
    case 0:
        return "0";
    case ERR_FORBIDDEN:
        return "ERR_FORBIDDEN";
    case ERR_CONFLICT:
        return "ERR_CONFLICT";
    default:
        return "other";
    }
}

/* ---- roles ------------------------------------------------------------------- */

static void
test_policy_role_names(void **state)
{
    static const struct {
        enum policy_role r;
        const char *name;
        int parses;
    } cases[] = {
        {ROLE_NONE, "none", 0},
        {ROLE_VIEWER, "viewer", 1},
        {ROLE_PARTICIPANT, "participant", 1},
        {ROLE_OWNER, "owner", 1},
    };
    static const char *const bad[] = {"", "none", "Viewer", "OWNER", "admin", "participants"};
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        enum policy_role back = ROLE_NONE;

        assert_string_equal(policy_role_name(cases[i].r), cases[i].name);
        assert_int_equal(policy_role_parse(cases[i].name, &back),
                         cases[i].parses ? 0 : ERR_INVALID);
        if (cases[i].parses)
            assert_int_equal(back, cases[i].r);
    }
    for (i = 0; i < N(bad); i++) {
        enum policy_role back = ROLE_VIEWER;

        assert_int_equal(policy_role_parse(bad[i], &back), ERR_INVALID);
        assert_int_equal(back, ROLE_VIEWER);
    }
    assert_string_equal(policy_role_name((enum policy_role)99), "none");
}

/* ---- identity ---------------------------------------------------------------- */

static void
test_policy_same_person(void **state)
{
    static const struct {
        const struct who *p;
        const char *user, *email;
        int want;
    } cases[] = {
        {&ALICE, "alice", NULL, 1},
        {&ALICE, "ALICE", NULL, 1},
        {&ALICE, NULL, "Alice@Example.com", 1},
        {&ALICE, "someone-else", "alice@example.com", 1},
        {&ALICE_BY_EMAIL, "alice", "alice@example.com", 1},
        {&ALICE_BY_EMAIL, "alice", NULL, 0},
        {&ALICE_UPPER, "alice", "alice@example.com", 1},
        {&ALICE, "alic", "alice@example.co", 0},
        {&ALICE, "alice2", NULL, 0},
        {&ALICE, NULL, NULL, 0},
        {&NOBODY, "nobody", NULL, 1},
        {&NOBODY, NULL, "nobody@example.com", 0},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        struct principal p = mkp(cases[i].p);

        if (policy_same_person(&p, cases[i].user, cases[i].email, NULL) != cases[i].want)
            fail_msg("row %zu: same_person(%s, %s, %s) want %d", i, p.user,
                     cases[i].user ? cases[i].user : "NULL",
                     cases[i].email ? cases[i].email : "NULL", cases[i].want);
    }
}

static void
test_policy_is_admin(void **state)
{
    static char *admin_groups[] = {"airlock-admins"};
    static char *admin_users[] = {"root", "boss@example.com"};
    static const struct {
        struct who w;
        int want;
    } cases[] = {
        {{"x", NULL, {"airlock-admins"}, 0}, 1},
        {{"x", NULL, {"dev", "AIRLOCK-ADMINS"}, 0}, 1},
        {{"root", NULL, {0}, 0}, 1},
        {{"Root", NULL, {0}, 0}, 1},
        {{"y", "BOSS@example.com", {0}, 0}, 1},
        {{"boss", "boss@example.org", {0}, 0}, 0},
        {{"x", NULL, {"airlock-admin"}, 0}, 0},
        {{"rooter", NULL, {0}, 0}, 0},
    };
    struct config cfg;
    size_t i;
    (void)state;

    memset(&cfg, 0, sizeof(cfg));
    cfg.admins.groups = (struct strlist)SL(admin_groups);
    cfg.admins.users = (struct strlist)SL(admin_users);
    for (i = 0; i < N(cases); i++) {
        struct principal p = mkp(&cases[i].w);

        if (policy_is_admin(&cfg, &p) != cases[i].want)
            fail_msg("row %zu (%s): is_admin want %d", i, p.user, cases[i].want);
    }
}

/* ---- templates ----------------------------------------------------------------- */

static void
test_policy_template_usable(void **state)
{
    static const struct {
        struct who w;
        int want;
    } cases[] = {
        {{"x", NULL, {"developers"}, 0}, 1},        /* group */
        {{"x", NULL, {"ops", "Developers"}, 0}, 1}, /* group, any case, not the first */
        {{"x", NULL, {"QA-team"}, 0}, 1},           /* group glob */
        {{"x", NULL, {"qa"}, 0}, 0},                /* "qa-*" needs the dash */
        {{"frank", NULL, {0}, 0}, 1},               /* user */
        {{"FRANK", NULL, {0}, 0}, 1},               /* user, any case */
        {{"f", "frank", {0}, 0}, 1},                /* the entry names the email */
        {{"frankie", NULL, {0}, 0}, 0},
        {{"c1", "c1@Contractor.Example", {0}, 0}, 1}, /* email glob */
        {{"c1", "c1@contractor.example.com", {0}, 0}, 0},
        {{"mallory", "mallory@example.com", {"ops"}, 0}, 0},
        {{"mallory", NULL, {0}, 0}, 0},
        {{"root", NULL, {0}, 1}, 1}, /* admins always may */
    };
    struct tmpl_cfg t = tmpl_main(), closed;
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        struct principal p = mkp(&cases[i].w);

        if (policy_template_usable(&t, &p) != cases[i].want)
            fail_msg("row %zu (%s): usable want %d", i, p.user, cases[i].want);
    }
    /* a template that names nobody is for admins only */
    memset(&closed, 0, sizeof(closed));
    {
        struct principal dev = mkp(&MALLORY), root = mkp(&ROOT);

        assert_int_equal(policy_template_usable(&closed, &dev), 0);
        assert_int_equal(policy_template_usable(&closed, &root), 1);
    }
}

static void
test_policy_template_allows_agent(void **state)
{
    static const struct {
        const char *agent;
        int want;
    } cases[] = {
        {"gh/acme/web/42-1", 1}, /* '*' crosses '/' */
        {"gh/acme/x", 1},
        {"gh/acme/", 1},
        {"gh/acme", 0},
        {"gh/other/web/1-1", 0},
        {"GH/acme/web/1-1", 0}, /* agent names are case-sensitive */
        {"gh/ACME/web/1-1", 0},
        {"host/db-1", 1},
        {"host/db-10", 0},
        {"host/db-", 0},
        {"", 0},
    };
    struct tmpl_cfg t = tmpl_main(), any = tmpl_main();
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++)
        if (policy_template_allows_agent(&t, cases[i].agent) != cases[i].want)
            fail_msg("allows_agent(\"%s\") want %d", cases[i].agent, cases[i].want);
    /* no allowed.agents: any agent */
    any.allowed.agents = (struct strlist){NULL, 0};
    assert_int_equal(policy_template_allows_agent(&any, "gh/other/web/1-1"), 1);
    assert_int_equal(policy_template_allows_agent(&any, "anything/at/all"), 1);
}

static void
test_policy_approval_required(void **state)
{
    static char *only_user[] = {"carol"};
    static const struct who TRUSTED = {"t", NULL, {"trusted"}, 0};
    static const struct who TRUSTED_CASE = {"t", NULL, {"x", "TRUSTED"}, 0};
    static const struct who AUTO_USER = {"Auto-User", NULL, {0}, 0};
    static const struct who AUTO_USER_MAIL = {"au", "auto-user", {0}, 0};
    enum { MAIN, NO_APPROVERS, USERS_ONLY, GROUPS_ONLY, NO_AUTO };
    static const struct {
        const char *name;
        int tmpl;
        const struct who *p; /* NULL: the agent's own request */
        const char *agent;
        int want;
    } cases[] = {
        {"plain developer needs approval", MAIN, &ALICE, "gh/acme/web/1-1", 1},
        {"auto-approve group", MAIN, &TRUSTED, "gh/acme/web/1-1", 0},
        {"auto-approve group, any case", MAIN, &TRUSTED_CASE, "gh/acme/web/1-1", 0},
        {"auto-approve user", MAIN, &AUTO_USER, "gh/acme/web/1-1", 0},
        {"auto-approve user by email", MAIN, &AUTO_USER_MAIL, "gh/acme/web/1-1", 0},
        {"auto-approve agent glob", MAIN, &ALICE, "gh/acme/sandbox/7-1", 0},
        {"auto-approve agent glob crosses '/'", MAIN, &ALICE, "gh/acme/sandbox/deep/7-1", 0},
        {"agent glob is case-sensitive", MAIN, &ALICE, "gh/acme/Sandbox/7-1", 1},
        {"agent glob needs the prefix", MAIN, &ALICE, "gh/acme/sandbox", 1},
        {"agent request, sandbox", MAIN, NULL, "gh/acme/sandbox/7-1", 0},
        {"agent request, not sandbox", MAIN, NULL, "gh/acme/web/7-1", 1},
        {"no agent named", MAIN, &ALICE, NULL, 1},
        {"approver group alone is not auto-approve", MAIN, &BOB, "gh/acme/web/1-1", 1},
        {"approverless template: auto", NO_APPROVERS, &ALICE, "gh/acme/web/1-1", 0},
        {"approverless template, agent request", NO_APPROVERS, NULL, "gh/acme/web/1-1", 0},
        {"approver users only", USERS_ONLY, &ALICE, "gh/acme/web/1-1", 1},
        {"approver groups only", GROUPS_ONLY, &ALICE, "gh/acme/web/1-1", 1},
        {"no autoApproveFor", NO_AUTO, &TRUSTED, "gh/acme/sandbox/1", 1},
    };
    struct tmpl_cfg t[5];
    size_t i;
    (void)state;

    t[MAIN] = tmpl_main();
    t[NO_APPROVERS] = tmpl_main();
    t[NO_APPROVERS].approvers.groups = (struct strlist){NULL, 0};
    t[NO_APPROVERS].approvers.users = (struct strlist){NULL, 0};
    t[USERS_ONLY] = tmpl_main();
    t[USERS_ONLY].approvers.groups = (struct strlist){NULL, 0};
    t[USERS_ONLY].approvers.users = (struct strlist)SL(only_user);
    t[USERS_ONLY].auto_approve = (struct subjects){{NULL, 0}, {NULL, 0}, {NULL, 0}};
    t[GROUPS_ONLY] = tmpl_main();
    t[GROUPS_ONLY].approvers.users = (struct strlist){NULL, 0};
    t[GROUPS_ONLY].auto_approve = (struct subjects){{NULL, 0}, {NULL, 0}, {NULL, 0}};
    t[NO_AUTO] = tmpl_main();
    t[NO_AUTO].auto_approve = (struct subjects){{NULL, 0}, {NULL, 0}, {NULL, 0}};

    assert_int_equal(policy_template_approverless(&t[MAIN]), 0);
    assert_int_equal(policy_template_approverless(&t[NO_APPROVERS]), 1);
    assert_int_equal(policy_template_approverless(&t[USERS_ONLY]), 0);
    assert_int_equal(policy_template_approverless(&t[GROUPS_ONLY]), 0);
    for (i = 0; i < N(cases); i++) {
        struct principal p;
        int got;

        if (cases[i].p != NULL)
            p = mkp(cases[i].p);
        got = policy_approval_required(&t[cases[i].tmpl], cases[i].p ? &p : NULL, cases[i].agent);
        if (got != cases[i].want)
            fail_msg("%s: approval_required want %d, got %d", cases[i].name, cases[i].want, got);
    }
}

static void
test_policy_is_approver(void **state)
{
    static const struct {
        const struct who *p;
        int want;
    } cases[] = {
        {&BOB, 1},     {&BOB_CASE, 1}, {&CAROL, 1},  {&XAVIER, 1},      {&ALICE, 0},
        {&MALLORY, 0}, {&ROOT, 0},     {&NOBODY, 0}, {&ALICE_UPPER, 1},
    };
    struct tmpl_cfg t = tmpl_main(), none = tmpl_main();
    size_t i;
    (void)state;

    none.approvers.groups = (struct strlist){NULL, 0};
    none.approvers.users = (struct strlist){NULL, 0};
    for (i = 0; i < N(cases); i++) {
        struct principal p = mkp(cases[i].p);

        if (policy_is_approver(&t, &p) != cases[i].want)
            fail_msg("row %zu (%s): is_approver want %d", i, p.user, cases[i].want);
        assert_int_equal(policy_is_approver(&none, &p), 0);
    }
}

/* ---- approve / reject ------------------------------------------------------------- */

static void
test_policy_decide(void **state)
{
    static const struct {
        const char *name;
        enum session_state st;
        const char *decided_by;
        int approverless;
        const struct who *p;
        int want_r;
    } cases[] = {
        {"approver by group", SESSION_PENDING_APPROVAL, NULL, 0, &BOB, 0},
        {"approver by group, any case", SESSION_PENDING_APPROVAL, NULL, 0, &BOB_CASE, 0},
        {"approver by user, any case", SESSION_PENDING_APPROVAL, NULL, 0, &CAROL, 0},
        {"approver by email", SESSION_PENDING_APPROVAL, NULL, 0, &XAVIER, 0},
        {"not an approver", SESSION_PENDING_APPROVAL, NULL, 0, &MALLORY, ERR_FORBIDDEN},
        {"participant is not an approver", SESSION_PENDING_APPROVAL, NULL, 0, &PAUL, ERR_FORBIDDEN},
        {"admin is not an approver", SESSION_PENDING_APPROVAL, NULL, 0, &ROOT, ERR_FORBIDDEN},
        {"requester not in approvers", SESSION_PENDING_APPROVAL, NULL, 0, &ALICE, ERR_FORBIDDEN},
        /* nobody decides their own request, even in the approver group */
        {"requester in approver group", SESSION_PENDING_APPROVAL, NULL, 0, &ALICE_APPROVER,
         ERR_FORBIDDEN},
        {"requester by email, other username", SESSION_PENDING_APPROVAL, NULL, 0, &ALICE_BY_EMAIL,
         ERR_FORBIDDEN},
        {"requester by username, other case", SESSION_PENDING_APPROVAL, NULL, 0, &ALICE_UPPER,
         ERR_FORBIDDEN},
        /* a decision is final */
        {"already decided by another", SESSION_PENDING_APPROVAL, "carol", 0, &BOB, ERR_CONFLICT},
        {"already decided by the same", SESSION_PENDING_APPROVAL, "bob", 0, &BOB, ERR_CONFLICT},
        {"approved and waiting for agent", SESSION_PENDING, "carol", 0, &BOB, ERR_CONFLICT},
        {"rejected", SESSION_TERMINATED, "carol", 0, &BOB, ERR_CONFLICT},
        /* wrong state */
        {"Pending (auto-approved)", SESSION_PENDING, NULL, 0, &BOB, ERR_CONFLICT},
        {"Active", SESSION_ACTIVE, NULL, 0, &BOB, ERR_CONFLICT},
        {"Expired", SESSION_EXPIRED, NULL, 0, &BOB, ERR_CONFLICT},
        {"Terminated", SESSION_TERMINATED, NULL, 0, &BOB, ERR_CONFLICT},
        {"Failed (timed out)", SESSION_FAILED, NULL, 0, &BOB, ERR_CONFLICT},
        /* 403 before 409 */
        {"stranger, already decided", SESSION_PENDING_APPROVAL, "carol", 0, &MALLORY,
         ERR_FORBIDDEN},
        {"stranger, Active", SESSION_ACTIVE, NULL, 0, &MALLORY, ERR_FORBIDDEN},
        {"stranger, Expired", SESSION_EXPIRED, NULL, 0, &MALLORY, ERR_FORBIDDEN},
        {"requester, already decided", SESSION_PENDING_APPROVAL, "carol", 0, &ALICE_APPROVER,
         ERR_FORBIDDEN},
        {"requester by email, Active", SESSION_ACTIVE, NULL, 0, &ALICE_BY_EMAIL, ERR_FORBIDDEN},
        /* an approverless template: nobody can approve */
        {"approverless: group member", SESSION_PENDING_APPROVAL, NULL, 1, &BOB, ERR_FORBIDDEN},
        {"approverless: named user", SESSION_PENDING_APPROVAL, NULL, 1, &CAROL, ERR_FORBIDDEN},
        {"approverless: admin", SESSION_PENDING_APPROVAL, NULL, 1, &ROOT, ERR_FORBIDDEN},
    };
    struct tmpl_cfg t = tmpl_main(), none = tmpl_main();
    size_t i;
    int n_bad = 0;
    (void)state;

    none.approvers.groups = (struct strlist){NULL, 0};
    none.approvers.users = (struct strlist){NULL, 0};
    for (i = 0; i < N(cases); i++) {
        struct policy_session s = fixture(cases[i].approverless ? &none : &t, cases[i].st);
        struct principal p = mkp(cases[i].p);
        const char *why = NULL;
        int r;

        s.decided_by = cases[i].decided_by;
        r = policy_check_decide(&s, &p, &why);
        if (r != cases[i].want_r) {
            print_error("decide: %s: want %s, got %s (%s)\n", cases[i].name, rname(cases[i].want_r),
                        rname(r), why ? why : "");
            n_bad++;
        } else if (r != 0 && (why == NULL || *why == '\0')) {
            print_error("decide: %s: refused without a reason\n", cases[i].name);
            n_bad++;
        }
    }
    assert_int_equal(n_bad, 0);
}

/* ---- visibility ---------------------------------------------------------------------- */

static void
test_policy_can_see(void **state)
{
    static const struct {
        const char *name;
        const char *decided_by;
        const struct who *p;
        int want;
    } cases[] = {
        {"requester", NULL, &ALICE, 1},
        {"requester by email, other username", NULL, &ALICE_BY_EMAIL, 1},
        {"requester, other case", NULL, &ALICE_UPPER, 1},
        {"active participant", NULL, &PAUL, 1},
        {"participant by email", NULL, &PAUL_BY_EMAIL, 1},
        {"viewer", NULL, &VERA, 1},
        {"participant who left", NULL, &LENA, 1},
        {"invitee by username, other case", NULL, &IVAN, 1},
        {"invitee by email, other case", NULL, &DORA, 1},
        {"invitee by email, other username", NULL, &IAN, 1},
        {"approver by group", NULL, &BOB, 1},
        {"approver by user", NULL, &CAROL, 1},
        {"approver by email", NULL, &XAVIER, 1},
        {"admin", NULL, &ROOT, 1},
        {"stranger", NULL, &MALLORY, 0},
        {"stranger without email", NULL, &NOBODY, 0},
        {"recorded decider", "nobody", &NOBODY, 1},
        {"recorded decider, other case", "NoBody", &NOBODY, 1},
        {"someone else decided", "carol", &MALLORY, 0},
    };
    struct tmpl_cfg t = tmpl_main();
    size_t i;
    int n_bad = 0;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        struct policy_session s = fixture(&t, SESSION_ACTIVE);
        struct principal p = mkp(cases[i].p);
        int got;

        s.decided_by = cases[i].decided_by;
        got = policy_can_see(&s, &p);
        if (got != cases[i].want) {
            print_error("can_see: %s: want %d, got %d\n", cases[i].name, cases[i].want, got);
            n_bad++;
        }
    }
    assert_int_equal(n_bad, 0);
}

/*
 * Invitations are usernames or emails (DESIGN.md 6), not patterns: an owner
 * inviting "*" or "*@example.com" must not open the session to everyone.
 * (The store's list filter compares invitations literally, too.)
 */
static void
test_policy_invites_are_literal(void **state)
{
    static const struct policy_invite wild[] = {
        {"*", ROLE_PARTICIPANT},
        {"*@example.com", ROLE_PARTICIPANT},
        {"mall?ry", ROLE_PARTICIPANT},
        {"[m]allory", ROLE_PARTICIPANT},
    };
    struct tmpl_cfg t = tmpl_main();
    size_t i;
    int n_bad = 0;
    (void)state;

    for (i = 0; i < N(wild); i++) {
        struct policy_session s = fixture(&t, SESSION_ACTIVE);
        struct principal p = mkp(&MALLORY);
        enum policy_role granted = ROLE_NONE;
        const char *why = NULL;
        int r;

        s.invited = &wild[i];
        s.n_invited = 1;
        if (policy_can_see(&s, &p)) {
            print_error("invite \"%s\": mallory can see the session\n", wild[i].who);
            n_bad++;
        }
        if (policy_max_role(&s, &p) != ROLE_NONE) {
            print_error("invite \"%s\": mallory may join as %s\n", wild[i].who,
                        policy_role_name(policy_max_role(&s, &p)));
            n_bad++;
        }
        r = policy_check_join(&s, &p, ROLE_NONE, &granted, &why);
        if (r != ERR_FORBIDDEN) {
            print_error("invite \"%s\": join gave %s (granted %s)\n", wild[i].who, rname(r),
                        policy_role_name(granted));
            n_bad++;
        }
    }
    assert_int_equal(n_bad, 0);
}

/* ---- join ------------------------------------------------------------------------------ */

static void
test_policy_max_role(void **state)
{
    static const struct {
        const char *name;
        int read_only;
        const struct who *p;
        enum policy_role want;
    } cases[] = {
        {"owner", 0, &ALICE, ROLE_OWNER},
        {"owner by email", 0, &ALICE_BY_EMAIL, ROLE_OWNER},
        {"owner, read-only template", 1, &ALICE, ROLE_OWNER},
        {"invited participant", 0, &PAUL, ROLE_PARTICIPANT},
        {"invited participant, by email", 0, &IAN, ROLE_PARTICIPANT},
        {"invited by username, other case", 0, &IVAN, ROLE_PARTICIPANT},
        {"invited viewer", 0, &VERA, ROLE_VIEWER},
        {"invited viewer, by email", 0, &DORA, ROLE_VIEWER},
        {"readOnlyParticipants downgrades", 1, &PAUL, ROLE_VIEWER},
        {"readOnlyParticipants downgrades, by email", 1, &IAN, ROLE_VIEWER},
        {"readOnlyParticipants, viewer stays viewer", 1, &VERA, ROLE_VIEWER},
        {"left participant, still invited", 0, &LENA, ROLE_PARTICIPANT},
        {"approver watches", 0, &BOB, ROLE_VIEWER},
        {"approver by user watches", 0, &CAROL, ROLE_VIEWER},
        {"admin watches", 0, &ROOT, ROLE_VIEWER},
        {"stranger", 0, &MALLORY, ROLE_NONE},
        {"stranger without email", 0, &NOBODY, ROLE_NONE},
    };
    struct tmpl_cfg t = tmpl_main(), ro = tmpl_main();
    size_t i;
    int n_bad = 0;
    (void)state;

    ro.read_only_participants = 1;
    for (i = 0; i < N(cases); i++) {
        struct policy_session s = fixture(cases[i].read_only ? &ro : &t, SESSION_ACTIVE);
        struct principal p = mkp(cases[i].p);
        enum policy_role got = policy_max_role(&s, &p);

        if (got != cases[i].want) {
            print_error("max_role: %s: want %s, got %s\n", cases[i].name,
                        policy_role_name(cases[i].want), policy_role_name(got));
            n_bad++;
        }
    }
    assert_int_equal(n_bad, 0);
}

static void
test_policy_join_roles(void **state)
{
    static const struct {
        const char *name;
        int read_only;
        enum session_state st;
        const struct who *p;
        enum policy_role want;
        int want_r;
        enum policy_role granted;
    } cases[] = {
        {"owner, highest", 0, SESSION_ACTIVE, &ALICE, ROLE_NONE, 0, ROLE_OWNER},
        {"owner as viewer", 0, SESSION_ACTIVE, &ALICE, ROLE_VIEWER, 0, ROLE_VIEWER},
        {"owner as participant", 0, SESSION_ACTIVE, &ALICE, ROLE_PARTICIPANT, 0, ROLE_PARTICIPANT},
        {"owner by email", 0, SESSION_ACTIVE, &ALICE_BY_EMAIL, ROLE_NONE, 0, ROLE_OWNER},
        {"invitee, highest", 0, SESSION_ACTIVE, &IVAN, ROLE_NONE, 0, ROLE_PARTICIPANT},
        {"invitee as viewer", 0, SESSION_ACTIVE, &IVAN, ROLE_VIEWER, 0, ROLE_VIEWER},
        {"invitee as participant", 0, SESSION_ACTIVE, &IVAN, ROLE_PARTICIPANT, 0, ROLE_PARTICIPANT},
        {"viewer invitee, highest", 0, SESSION_ACTIVE, &DORA, ROLE_NONE, 0, ROLE_VIEWER},
        {"viewer invitee asks participant", 0, SESSION_ACTIVE, &DORA, ROLE_PARTICIPANT,
         ERR_FORBIDDEN, ROLE_NONE},
        {"read-only: invitee, highest", 1, SESSION_ACTIVE, &IVAN, ROLE_NONE, 0, ROLE_VIEWER},
        {"read-only: invitee asks participant", 1, SESSION_ACTIVE, &IVAN, ROLE_PARTICIPANT,
         ERR_FORBIDDEN, ROLE_NONE},
        {"read-only: owner keeps owner", 1, SESSION_ACTIVE, &ALICE, ROLE_NONE, 0, ROLE_OWNER},
        {"approver, highest", 0, SESSION_ACTIVE, &BOB, ROLE_NONE, 0, ROLE_VIEWER},
        {"approver asks participant", 0, SESSION_ACTIVE, &BOB, ROLE_PARTICIPANT, ERR_FORBIDDEN,
         ROLE_NONE},
        {"admin, highest", 0, SESSION_ACTIVE, &ROOT, ROLE_NONE, 0, ROLE_VIEWER},
        {"admin asks participant", 0, SESSION_ACTIVE, &ROOT, ROLE_PARTICIPANT, ERR_FORBIDDEN,
         ROLE_NONE},
        {"stranger", 0, SESSION_ACTIVE, &MALLORY, ROLE_NONE, ERR_FORBIDDEN, ROLE_NONE},
        {"stranger as viewer", 0, SESSION_ACTIVE, &MALLORY, ROLE_VIEWER, ERR_FORBIDDEN, ROLE_NONE},
        {"rejoin after leaving", 0, SESSION_ACTIVE, &LENA, ROLE_NONE, 0, ROLE_PARTICIPANT},
        /* ended: 409, but a stranger still gets 403 first */
        {"owner, Expired", 0, SESSION_EXPIRED, &ALICE, ROLE_NONE, ERR_CONFLICT, ROLE_NONE},
        {"invitee, Terminated", 0, SESSION_TERMINATED, &IVAN, ROLE_NONE, ERR_CONFLICT, ROLE_NONE},
        {"admin, Failed", 0, SESSION_FAILED, &ROOT, ROLE_NONE, ERR_CONFLICT, ROLE_NONE},
        {"stranger, Expired", 0, SESSION_EXPIRED, &MALLORY, ROLE_NONE, ERR_FORBIDDEN, ROLE_NONE},
        {"escalation, Expired", 0, SESSION_EXPIRED, &DORA, ROLE_PARTICIPANT, ERR_FORBIDDEN,
         ROLE_NONE},
    };
    struct tmpl_cfg t = tmpl_main(), ro = tmpl_main();
    size_t i;
    int n_bad = 0;
    (void)state;

    ro.read_only_participants = 1;
    for (i = 0; i < N(cases); i++) {
        struct policy_session s = fixture(cases[i].read_only ? &ro : &t, cases[i].st);
        struct principal p = mkp(cases[i].p);
        enum policy_role granted = ROLE_OWNER; /* poison */
        const char *why = NULL;
        int r = policy_check_join(&s, &p, cases[i].want, &granted, &why);

        if (r != cases[i].want_r || granted != cases[i].granted) {
            print_error("join: %s: want %s/%s, got %s/%s (%s)\n", cases[i].name,
                        rname(cases[i].want_r), policy_role_name(cases[i].granted), rname(r),
                        policy_role_name(granted), why ? why : "");
            n_bad++;
        }
    }
    assert_int_equal(n_bad, 0);
}

/* maxParticipants counts every active participant (owner and viewers too), never the joiner. */
static void
test_policy_join_capacity(void **state)
{
    /* who is in the session: a = active, l = left; o/p/v = owner/participant/viewer */
    static const struct policy_participant O = {"alice", "alice@example.com", ROLE_OWNER, 1, NULL};
    static const struct policy_participant Ol = {"alice", "alice@example.com", ROLE_OWNER, 0, NULL};
    static const struct policy_participant P1 = {"paul", "paul@example.com", ROLE_PARTICIPANT, 1, NULL};
    static const struct policy_participant P1l = {"paul", "paul@example.com", ROLE_PARTICIPANT, 0, NULL};
    static const struct policy_participant V1 = {"vera", "vera@example.com", ROLE_VIEWER, 1, NULL};
    static const struct policy_participant A1 = {"bob", "bob@example.com", ROLE_VIEWER, 1, NULL};
    static const struct policy_participant IVANa = {"ivan", NULL, ROLE_PARTICIPANT, 1, NULL};
    static const struct policy_participant IANa = {"ian2", "ian@example.com", ROLE_PARTICIPANT, 1, NULL};
    /* not static: rows copy the participants above */
    const struct {
        const char *name;
        int max, sharing;
        struct policy_participant in[4];
        size_t n_in;
        const struct who *p;
        int want_r;
    } cases[] = {
        {"empty, max 1", 1, 1, {{0}}, 0, &ALICE, 0},
        {"owner in, max 1: invitee refused", 1, 1, {O}, 1, &IVAN, ERR_CONFLICT},
        {"owner in, max 2: invitee joins", 2, 1, {O}, 1, &IVAN, 0},
        {"owner left, max 1: invitee joins", 1, 1, {Ol}, 1, &IVAN, 0},
        {"owner re-joins while active, max 1", 1, 1, {O}, 1, &ALICE, 0},
        {"owner by email re-joins, max 1", 1, 1, {O}, 1, &ALICE_BY_EMAIL, 0},
        {"3 active of 3 (owner, participant, viewer): refused",
         3,
         1,
         {O, P1, V1},
         3,
         &IVAN,
         ERR_CONFLICT},
        {"3 active of 4: joins", 4, 1, {O, P1, V1}, 3, &IVAN, 0},
        {"2 active + 1 left of 3: joins", 3, 1, {O, P1l, V1}, 3, &IVAN, 0},
        {"viewers count: 2 viewers + owner of 3", 3, 1, {O, V1, A1}, 3, &IVAN, ERR_CONFLICT},
        {"approver watching counts too", 2, 1, {O, A1}, 2, &DORA, ERR_CONFLICT},
        {"full, re-joiner by username not counted", 3, 1, {O, P1, IVANa}, 3, &IVAN, 0},
        {"full, re-joiner by email not counted", 3, 1, {O, P1, IANa}, 3, &IAN, 0},
        {"full, another re-joiner refused", 3, 1, {O, P1, IANa}, 3, &IVAN, ERR_CONFLICT},
        {"full, approver refused", 3, 1, {O, P1, V1}, 3, &BOB, ERR_CONFLICT},
        {"full, admin refused", 3, 1, {O, P1, V1}, 3, &ROOT, ERR_CONFLICT},
        {"full, stranger gets 403", 3, 1, {O, P1, V1}, 3, &MALLORY, ERR_FORBIDDEN},
        /* sharing disabled: one person at a time */
        {"no sharing, empty", 5, 0, {{0}}, 0, &ALICE, 0},
        {"no sharing, owner in: invitee refused", 5, 0, {O}, 1, &IVAN, ERR_CONFLICT},
        {"no sharing, owner re-joins", 5, 0, {O}, 1, &ALICE, 0},
        {"no sharing, owner left: invitee joins", 5, 0, {Ol}, 1, &IVAN, 0},
    };
    size_t i;
    int n_bad = 0;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        struct tmpl_cfg t = tmpl_main();
        struct policy_session s;
        struct principal p = mkp(cases[i].p);
        enum policy_role granted = ROLE_OWNER;
        const char *why = NULL;
        int r;

        t.max_participants = cases[i].max;
        t.sharing_enabled = cases[i].sharing;
        s = fixture(&t, SESSION_ACTIVE);
        s.participants = cases[i].in;
        s.n_participants = cases[i].n_in;
        r = policy_check_join(&s, &p, ROLE_NONE, &granted, &why);
        if (r != cases[i].want_r || (r != 0 && granted != ROLE_NONE) ||
            (r == 0 && granted == ROLE_NONE)) {
            print_error("capacity: %s: want %s, got %s granted %s (%s)\n", cases[i].name,
                        rname(cases[i].want_r), rname(r), policy_role_name(granted),
                        why ? why : "");
            n_bad++;
        }
    }
    assert_int_equal(n_bad, 0);
}

/* ---- leave ------------------------------------------------------------------------------- */

static void
test_policy_leave(void **state)
{
    static const struct {
        const char *name;
        enum session_state st;
        const struct who *p;
        int want_r;
    } cases[] = {
        {"active owner", SESSION_ACTIVE, &ALICE, 0},
        {"active participant", SESSION_ACTIVE, &PAUL, 0},
        {"active participant by email", SESSION_ACTIVE, &PAUL_BY_EMAIL, 0},
        {"active viewer", SESSION_ACTIVE, &VERA, 0},
        {"already left", SESSION_ACTIVE, &LENA, ERR_CONFLICT},
        {"invited, never joined", SESSION_ACTIVE, &IVAN, ERR_CONFLICT},
        {"approver, never joined", SESSION_ACTIVE, &BOB, ERR_CONFLICT},
    };
    struct tmpl_cfg t = tmpl_main();
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        struct policy_session s = fixture(&t, cases[i].st);
        struct principal p = mkp(cases[i].p);
        const char *why = NULL;
        int r = policy_check_leave(&s, &p, &why);

        if (r != cases[i].want_r)
            fail_msg("leave: %s: want %s, got %s", cases[i].name, rname(cases[i].want_r), rname(r));
    }
}

/* ---- browser terminal ------------------------------------------------------------------- */

static void
test_policy_terminal(void **state)
{
    enum { ANY = POLICY_TERM_ANY, RW = POLICY_TERM_RW, RO = POLICY_TERM_RO };
    static const struct {
        const char *name;
        enum session_state st;
        const struct who *p;
        int want, shell, browser;
        int want_r, want_ro;
    } cases[] = {
        {"owner types", SESSION_ACTIVE, &ALICE, ANY, 1, 1, 0, 0},
        {"owner asks to type", SESSION_ACTIVE, &ALICE, RW, 1, 1, 0, 0},
        {"owner chooses to watch", SESSION_ACTIVE, &ALICE, RO, 1, 1, 0, 1},
        {"participant types", SESSION_ACTIVE, &PAUL, ANY, 1, 1, 0, 0},
        {"participant by email types", SESSION_ACTIVE, &PAUL_BY_EMAIL, ANY, 1, 1, 0, 0},
        {"viewer watches", SESSION_ACTIVE, &VERA, ANY, 1, 1, 0, 1},
        {"viewer may not type", SESSION_ACTIVE, &VERA, RW, 1, 1, ERR_FORBIDDEN, 1},
        {"left participant watches", SESSION_ACTIVE, &LENA, ANY, 1, 1, 0, 1},
        {"invitee who never joined watches", SESSION_ACTIVE, &IVAN, ANY, 1, 1, 0, 1},
        {"approver watches", SESSION_ACTIVE, &BOB, ANY, 1, 1, 0, 1},
        {"approver may not type", SESSION_ACTIVE, &BOB, RW, 1, 1, ERR_FORBIDDEN, 1},
        {"admin watches", SESSION_ACTIVE, &ROOT, ANY, 1, 1, 0, 1},
        {"no shell: the owner watches", SESSION_ACTIVE, &ALICE, ANY, 0, 1, 0, 1},
        {"no shell: the owner may not type", SESSION_ACTIVE, &ALICE, RW, 0, 1, ERR_FORBIDDEN, 1},
        {"browser off", SESSION_ACTIVE, &ALICE, ANY, 1, 0, ERR_FORBIDDEN, 1},
        {"browser off for watchers too", SESSION_ACTIVE, &BOB, RO, 1, 0, ERR_FORBIDDEN, 1},
        {"not yet active", SESSION_PENDING, &ALICE, ANY, 1, 1, ERR_CONFLICT, 1},
        {"expired", SESSION_EXPIRED, &BOB, ANY, 1, 1, ERR_CONFLICT, 1},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        struct tmpl_cfg t = tmpl_main();
        struct policy_session s;
        struct principal p = mkp(cases[i].p);
        const char *why = NULL;
        int ro = -1, r;

        t.op_shell = cases[i].shell;
        t.sharing_browser = cases[i].browser;
        s = fixture(&t, cases[i].st);
        r = policy_check_terminal(&s, &p, cases[i].want, &ro, &why);
        if (r != cases[i].want_r || ro != cases[i].want_ro)
            fail_msg("terminal: %s: want %s ro=%d, got %s ro=%d", cases[i].name,
                     rname(cases[i].want_r), cases[i].want_ro, rname(r), ro);
        if (r != 0 && why == NULL)
            fail_msg("terminal: %s: no reason", cases[i].name);
    }
}

/* ---- renew ------------------------------------------------------------------------------- */

static void
test_policy_renew(void **state)
{
    enum { MAIN, OFF, ZERO };
    static const struct {
        const char *name;
        int tmpl;
        enum session_state st;
        int renewal_count;
        int64_t expires_at; /* starts_at is T0; maxDuration 4h */
        int64_t extend;
        const struct who *p;
        int want_r;
    } cases[] = {
        {"owner", MAIN, SESSION_ACTIVE, 0, T0 + HOUR, 1800, &ALICE, 0},
        {"owner by email", MAIN, SESSION_ACTIVE, 0, T0 + HOUR, 1800, &ALICE_BY_EMAIL, 0},
        {"active participant", MAIN, SESSION_ACTIVE, 0, T0 + HOUR, 1800, &PAUL, 0},
        {"active participant by email", MAIN, SESSION_ACTIVE, 0, T0 + HOUR, 1800, &PAUL_BY_EMAIL,
         0},
        {"viewer refused", MAIN, SESSION_ACTIVE, 0, T0 + HOUR, 1800, &VERA, ERR_FORBIDDEN},
        {"participant who left refused", MAIN, SESSION_ACTIVE, 0, T0 + HOUR, 1800, &LENA,
         ERR_FORBIDDEN},
        {"invitee not joined refused", MAIN, SESSION_ACTIVE, 0, T0 + HOUR, 1800, &IVAN,
         ERR_FORBIDDEN},
        {"approver refused", MAIN, SESSION_ACTIVE, 0, T0 + HOUR, 1800, &BOB, ERR_FORBIDDEN},
        {"stranger refused", MAIN, SESSION_ACTIVE, 0, T0 + HOUR, 1800, &MALLORY, ERR_FORBIDDEN},
        /* renewals off, maxRenewals */
        {"renewals off", OFF, SESSION_ACTIVE, 0, T0 + HOUR, 1800, &ALICE, ERR_FORBIDDEN},
        {"count 2 of 3", MAIN, SESSION_ACTIVE, 2, T0 + HOUR, 1800, &ALICE, 0},
        {"count 3 of 3", MAIN, SESSION_ACTIVE, 3, T0 + HOUR, 1800, &ALICE, ERR_FORBIDDEN},
        {"count 4 of 3", MAIN, SESSION_ACTIVE, 4, T0 + HOUR, 1800, &ALICE, ERR_FORBIDDEN},
        {"maxRenewals 0", ZERO, SESSION_ACTIVE, 0, T0 + HOUR, 1800, &ALICE, ERR_FORBIDDEN},
        {"maxRenewals 0, participant", ZERO, SESSION_ACTIVE, 0, T0 + HOUR, 1800, &PAUL,
         ERR_FORBIDDEN},
        /* startsAt + maxDuration: exactly at it is fine, one second past is not */
        {"up to maxDuration", MAIN, SESSION_ACTIVE, 0, T0 + HOUR, 3 * HOUR, &ALICE, 0},
        {"one second past maxDuration", MAIN, SESSION_ACTIVE, 0, T0 + HOUR, 3 * HOUR + 1, &ALICE,
         ERR_FORBIDDEN},
        {"after renewals, up to max", MAIN, SESSION_ACTIVE, 2, T0 + 3 * HOUR + 1800, 1800, &PAUL,
         0},
        {"after renewals, past max", MAIN, SESSION_ACTIVE, 2, T0 + 3 * HOUR + 1800, 1801, &PAUL,
         ERR_FORBIDDEN},
        {"already at max", MAIN, SESSION_ACTIVE, 1, T0 + 4 * HOUR, 1, &ALICE, ERR_FORBIDDEN},
        /* state */
        {"Pending", MAIN, SESSION_PENDING, 0, 0, 1800, &ALICE, ERR_CONFLICT},
        {"PendingApproval", MAIN, SESSION_PENDING_APPROVAL, 0, 0, 1800, &ALICE, ERR_CONFLICT},
        {"Expired", MAIN, SESSION_EXPIRED, 0, T0 + HOUR, 1800, &ALICE, ERR_CONFLICT},
        {"Terminated", MAIN, SESSION_TERMINATED, 0, T0 + HOUR, 1800, &PAUL, ERR_CONFLICT},
        {"Failed", MAIN, SESSION_FAILED, 0, T0 + HOUR, 1800, &ALICE, ERR_CONFLICT},
        /* 403 before 409 */
        {"viewer, Expired", MAIN, SESSION_EXPIRED, 0, T0 + HOUR, 1800, &VERA, ERR_FORBIDDEN},
        {"stranger, Terminated", MAIN, SESSION_TERMINATED, 0, T0 + HOUR, 1800, &MALLORY,
         ERR_FORBIDDEN},
    };
    struct tmpl_cfg t[3];
    size_t i;
    int n_bad = 0;
    (void)state;

    t[MAIN] = tmpl_main();
    t[OFF] = tmpl_main();
    t[OFF].allow_renewal = 0;
    t[ZERO] = tmpl_main();
    t[ZERO].max_renewals = 0;
    for (i = 0; i < N(cases); i++) {
        struct policy_session s = fixture(&t[cases[i].tmpl], cases[i].st);
        struct principal p = mkp(cases[i].p);
        int64_t new_exp = -1;
        const char *why = NULL;
        int r;

        s.renewal_count = cases[i].renewal_count;
        s.expires_at = cases[i].expires_at;
        if (cases[i].st == SESSION_PENDING || cases[i].st == SESSION_PENDING_APPROVAL)
            s.starts_at = 0; /* the clock has not started */
        r = policy_check_renew(&s, &p, cases[i].extend, &new_exp, &why);
        if (r != cases[i].want_r) {
            print_error("renew: %s: want %s, got %s (%s)\n", cases[i].name, rname(cases[i].want_r),
                        rname(r), why ? why : "");
            n_bad++;
        } else if (r == 0 && new_exp != cases[i].expires_at + cases[i].extend) {
            print_error("renew: %s: new expiry %lld, want %lld\n", cases[i].name,
                        (long long)new_exp, (long long)(cases[i].expires_at + cases[i].extend));
            n_bad++;
        } else if (r != 0 && new_exp != 0) {
            print_error("renew: %s: new expiry set on refusal\n", cases[i].name);
            n_bad++;
        }
    }
    assert_int_equal(n_bad, 0);
}

/* ---- terminate ----------------------------------------------------------------------------- */

static void
test_policy_terminate(void **state)
{
    static const struct {
        const char *name;
        enum session_state st;
        const struct who *p;
        int as_participant;
        int want_r;
    } cases[] = {
        {"owner, Active", SESSION_ACTIVE, &ALICE, 0, 0},
        {"owner withdraws, Pending", SESSION_PENDING, &ALICE, 0, 0},
        {"owner withdraws, PendingApproval", SESSION_PENDING_APPROVAL, &ALICE, 0, 0},
        {"owner by email", SESSION_ACTIVE, &ALICE_BY_EMAIL, 0, 0},
        {"owner by username, other case", SESSION_ACTIVE, &ALICE_UPPER, 0, 0},
        {"admin", SESSION_ACTIVE, &ROOT, 0, 0},
        {"admin, PendingApproval", SESSION_PENDING_APPROVAL, &ROOT, 0, 0},
        {"approver by group", SESSION_ACTIVE, &BOB, 0, 0},
        {"approver by user", SESSION_ACTIVE, &CAROL, 0, 0},
        {"approver by email", SESSION_PENDING_APPROVAL, &XAVIER, 0, 0},
        {"participant via API", SESSION_ACTIVE, &PAUL, 0, ERR_FORBIDDEN},
        {"participant via airlock resume", SESSION_ACTIVE, &PAUL, 1, 0},
        {"participant by email via resume", SESSION_ACTIVE, &PAUL_BY_EMAIL, 1, 0},
        {"viewer via API", SESSION_ACTIVE, &VERA, 0, ERR_FORBIDDEN},
        {"viewer via resume", SESSION_ACTIVE, &VERA, 1, ERR_FORBIDDEN},
        {"participant who left, via resume", SESSION_ACTIVE, &LENA, 1, ERR_FORBIDDEN},
        {"invitee not joined, via resume", SESSION_ACTIVE, &IVAN, 1, ERR_FORBIDDEN},
        {"stranger", SESSION_ACTIVE, &MALLORY, 0, ERR_FORBIDDEN},
        {"stranger via resume", SESSION_ACTIVE, &MALLORY, 1, ERR_FORBIDDEN},
        /* ended: 409 for those who may, 403 for the others */
        {"owner, Expired", SESSION_EXPIRED, &ALICE, 0, ERR_CONFLICT},
        {"owner, Terminated", SESSION_TERMINATED, &ALICE, 0, ERR_CONFLICT},
        {"admin, Failed", SESSION_FAILED, &ROOT, 0, ERR_CONFLICT},
        {"approver, Expired", SESSION_EXPIRED, &BOB, 0, ERR_CONFLICT},
        {"participant resume, Expired", SESSION_EXPIRED, &PAUL, 1, ERR_CONFLICT},
        {"stranger, Expired", SESSION_EXPIRED, &MALLORY, 0, ERR_FORBIDDEN},
        {"viewer, Terminated", SESSION_TERMINATED, &VERA, 1, ERR_FORBIDDEN},
    };
    struct tmpl_cfg t = tmpl_main();
    size_t i;
    int n_bad = 0;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        struct policy_session s = fixture(&t, cases[i].st);
        struct principal p = mkp(cases[i].p);
        const char *why = NULL;
        int r = policy_check_terminate(&s, &p, cases[i].as_participant, &why);

        if (r != cases[i].want_r) {
            print_error("terminate: %s: want %s, got %s (%s)\n", cases[i].name,
                        rname(cases[i].want_r), rname(r), why ? why : "");
            n_bad++;
        }
    }
    assert_int_equal(n_bad, 0);
}

/* ---- invite --------------------------------------------------------------------------------- */

static void
test_policy_invite(void **state)
{
    static const struct {
        const char *name;
        enum session_state st;
        const struct who *p;
        int want_r;
    } cases[] = {
        {"owner, Active", SESSION_ACTIVE, &ALICE, 0},
        {"owner, Pending", SESSION_PENDING, &ALICE, 0},
        {"owner, PendingApproval", SESSION_PENDING_APPROVAL, &ALICE, 0},
        {"owner by email", SESSION_ACTIVE, &ALICE_BY_EMAIL, 0},
        {"participant", SESSION_ACTIVE, &PAUL, ERR_FORBIDDEN},
        {"viewer", SESSION_ACTIVE, &VERA, ERR_FORBIDDEN},
        {"invitee", SESSION_ACTIVE, &IVAN, ERR_FORBIDDEN},
        {"approver", SESSION_ACTIVE, &BOB, ERR_FORBIDDEN},
        {"admin", SESSION_ACTIVE, &ROOT, ERR_FORBIDDEN},
        {"stranger", SESSION_ACTIVE, &MALLORY, ERR_FORBIDDEN},
        {"owner, Expired", SESSION_EXPIRED, &ALICE, ERR_CONFLICT},
        {"owner, Failed", SESSION_FAILED, &ALICE, ERR_CONFLICT},
        {"participant, Expired", SESSION_EXPIRED, &PAUL, ERR_FORBIDDEN},
    };
    struct tmpl_cfg t = tmpl_main();
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        struct policy_session s = fixture(&t, cases[i].st);
        struct principal p = mkp(cases[i].p);
        const char *why = NULL;
        int r = policy_check_invite(&s, &p, &why);

        if (r != cases[i].want_r)
            fail_msg("invite: %s: want %s, got %s", cases[i].name, rname(cases[i].want_r),
                     rname(r));
    }
}

/* Changing a role or removing someone: the owner or an admin, never the owner's row. */
static void
test_policy_manage(void **state)
{
    static const struct policy_participant owner = {"alice", NULL, ROLE_OWNER, 1, NULL};
    static const struct policy_participant paul = {"paul", NULL, ROLE_PARTICIPANT, 1, NULL};
    static const struct {
        const char *name;
        enum session_state st;
        const struct who *p;
        const struct policy_participant *target;
        enum policy_role to;
        int read_only, want_r;
    } cases[] = {
        {"owner demotes", SESSION_ACTIVE, &ALICE, &paul, ROLE_VIEWER, 0, 0},
        {"owner by email removes", SESSION_ACTIVE, &ALICE_BY_EMAIL, &paul, ROLE_NONE, 0, 0},
        {"owner, invitee only", SESSION_PENDING, &ALICE, NULL, ROLE_VIEWER, 0, 0},
        {"admin promotes", SESSION_ACTIVE, &ROOT, &paul, ROLE_PARTICIPANT, 0, 0},
        {"participant", SESSION_ACTIVE, &PAUL, &paul, ROLE_NONE, 0, ERR_FORBIDDEN},
        {"viewer promotes", SESSION_ACTIVE, &VERA, NULL, ROLE_PARTICIPANT, 0, ERR_FORBIDDEN},
        {"approver", SESSION_ACTIVE, &BOB, &paul, ROLE_VIEWER, 0, ERR_FORBIDDEN},
        {"stranger", SESSION_ACTIVE, &MALLORY, &paul, ROLE_NONE, 0, ERR_FORBIDDEN},
        {"owner's own row", SESSION_ACTIVE, &ALICE, &owner, ROLE_VIEWER, 0, ERR_CONFLICT},
        {"admin removes owner", SESSION_ACTIVE, &ROOT, &owner, ROLE_NONE, 0, ERR_CONFLICT},
        {"ended", SESSION_EXPIRED, &ALICE, &paul, ROLE_VIEWER, 0, ERR_CONFLICT},
        {"made owner", SESSION_ACTIVE, &ALICE, &paul, ROLE_OWNER, 0, ERR_INVALID},
        {"read-only template", SESSION_ACTIVE, &ALICE, &paul, ROLE_PARTICIPANT, 1, ERR_FORBIDDEN},
        {"read-only, demote", SESSION_ACTIVE, &ALICE, &paul, ROLE_VIEWER, 1, 0},
    };
    struct tmpl_cfg t = tmpl_main();
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        struct policy_session s;
        struct principal p = mkp(cases[i].p);
        const char *why = NULL;
        int r;

        t.read_only_participants = cases[i].read_only;
        s = fixture(&t, cases[i].st);
        r = policy_check_manage(&s, &p, cases[i].target, cases[i].to, &why);
        if (r != cases[i].want_r)
            fail_msg("manage: %s: want %s, got %s", cases[i].name, rname(cases[i].want_r),
                     rname(r));
        if (r != 0 && why == NULL)
            fail_msg("manage: %s: no reason", cases[i].name);
    }
}

/* ---- identity domains (DESIGN.md 5: a person is their username within their issuer) ---- */

/* The fixture as recorded with domains: alice and her participants of "corp". */
static const struct policy_participant domain_parts[] = {
    {"alice", "alice@example.com", ROLE_OWNER, 1, "corp"},
    {"paul", "paul@example.com", ROLE_PARTICIPANT, 1, "corp"},
    {"vera", NULL, ROLE_VIEWER, 1, "corp"},
};

static struct policy_session
domain_fixture(const struct tmpl_cfg *t, enum session_state st)
{
    struct policy_session s = fixture(t, st);

    s.requested_by_domain = "corp";
    s.participants = domain_parts;
    s.n_participants = N(domain_parts);
    return s;
}

static struct principal
mkpd(const struct who *w, const char *domain)
{
    struct principal p = mkp(w);

    p.domain = domain;
    return p;
}

static void
test_policy_same_person_domains(void **state)
{
    static const struct {
        const struct who *p;
        const char *pdom;
        const char *user, *email, *domain;
        int want;
    } cases[] = {
        {&ALICE, "corp", "alice", NULL, "corp", 1},
        {&ALICE, "CORP", "ALICE", NULL, "corp", 1},          /* domains match in any case */
        {&ALICE, "partner", "alice", NULL, "corp", 0},       /* same name, other issuer */
        {&ALICE, "partner", NULL, "alice@example.com", "corp", 0}, /* email does not merge */
        {&ALICE, "partner", "alice", NULL, NULL, 1},         /* old row: any domain */
        {&ALICE, NULL, "alice", NULL, "corp", 1},            /* principal without a domain */
        {&NOBODY, "corp", NULL, "nobody@example.com", "corp", 0},
    };
    size_t i;
    (void)state;

    for (i = 0; i < N(cases); i++) {
        struct principal p = mkpd(cases[i].p, cases[i].pdom);

        if (policy_same_person(&p, cases[i].user, cases[i].email, cases[i].domain) !=
            cases[i].want)
            fail_msg("row %zu: same_person(%s@%s) want %d", i, p.user,
                     cases[i].pdom ? cases[i].pdom : "NULL", cases[i].want);
    }
}

/* A same-named user of another issuer is not the owner, a participant or an invitee. */
static void
test_policy_domain_owner(void **state)
{
    struct tmpl_cfg t = tmpl_main();
    struct policy_session s = domain_fixture(&t, SESSION_ACTIVE);
    static const struct who ALICE_PLAIN = {"alice", NULL, {0}, 0};
    static const struct who PAUL_PLAIN = {"paul", NULL, {0}, 0};
    struct principal owner = mkpd(&ALICE, "corp"), upper = mkpd(&ALICE_UPPER, "corp");
    struct principal other = mkpd(&ALICE_PLAIN, "partner");
    struct principal paul = mkpd(&PAUL, "corp"), paul2 = mkpd(&PAUL_PLAIN, "partner");
    struct principal ivan = mkpd(&IVAN, "corp"), ivan2 = mkpd(&IVAN, "partner");
    struct principal dora2 = mkpd(&DORA, "partner");
    const char *why = NULL;
    enum policy_role granted = ROLE_NONE;
    int64_t ne = 0;
    (void)state;

    assert_int_equal(policy_max_role(&s, &owner), ROLE_OWNER);
    assert_int_equal(policy_max_role(&s, &upper), ROLE_OWNER);
    assert_int_equal(policy_max_role(&s, &other), ROLE_NONE);
    assert_int_equal(policy_can_see(&s, &other), 0);
    assert_int_equal(policy_check_join(&s, &other, ROLE_NONE, &granted, &why), ERR_FORBIDDEN);
    assert_int_equal(policy_check_invite(&s, &other, &why), ERR_FORBIDDEN);
    assert_int_equal(policy_check_terminate(&s, &other, 0, &why), ERR_FORBIDDEN);
    /* participants are matched in their domain too */
    assert_int_equal(policy_check_renew(&s, &paul, HOUR, &ne, &why), 0);
    assert_int_equal(policy_check_renew(&s, &paul2, HOUR, &ne, &why), ERR_FORBIDDEN);
    assert_int_equal(policy_check_leave(&s, &paul2, &why), ERR_CONFLICT);
    assert_int_equal(policy_check_terminate(&s, &paul2, 1, &why), ERR_FORBIDDEN);
    /* an invitation by username names the owner's domain; by email, any domain */
    assert_int_equal(policy_max_role(&s, &ivan), ROLE_PARTICIPANT);
    assert_int_equal(policy_max_role(&s, &ivan2), ROLE_NONE);
    assert_int_equal(policy_max_role(&s, &dora2), ROLE_VIEWER);
}

/* Self-approval is refused on every name the approver can be matched by, in any domain. */
static void
test_policy_domain_self_approval(void **state)
{
    struct tmpl_cfg t = tmpl_main();
    struct policy_session s = domain_fixture(&t, SESSION_PENDING_APPROVAL);
    static const struct who ALICE_OTHER = {"alice", NULL, {"sre-leads"}, 0};
    static const struct who ALICE_MAIL = {"a.smith", "alice@example.com", {"sre-leads"}, 0};
    struct principal same = mkpd(&ALICE_APPROVER, "corp");
    struct principal other = mkpd(&ALICE_OTHER, "partner");
    struct principal mail = mkpd(&ALICE_MAIL, "partner");
    struct principal bob = mkpd(&BOB, "partner");
    const char *why = NULL;
    (void)state;

    assert_int_equal(policy_check_decide(&s, &same, &why), ERR_FORBIDDEN);
    assert_int_equal(policy_check_decide(&s, &other, &why), ERR_FORBIDDEN);
    assert_string_equal(why, "you cannot approve or reject your own request");
    assert_int_equal(policy_check_decide(&s, &mail, &why), ERR_FORBIDDEN);
    assert_int_equal(policy_check_decide(&s, &bob, &why), 0);
}

/* A recorded decision names its approver in the approver's domain (migration 0006). */
static void
test_policy_domain_decider(void **state)
{
    struct tmpl_cfg t = tmpl_main();
    struct policy_session s = domain_fixture(&t, SESSION_TERMINATED);
    struct principal same = mkpd(&NOBODY, "corp"), upper = mkpd(&NOBODY, "CORP");
    struct principal other = mkpd(&NOBODY, "partner"), legacy_p = mkpd(&NOBODY, NULL);
    (void)state;

    s.decided_by = "nobody";
    s.decided_by_domain = "corp";
    assert_int_equal(policy_can_see(&s, &same), 1);
    assert_int_equal(policy_can_see(&s, &upper), 1);
    assert_int_equal(policy_can_see(&s, &other), 0); /* same username, another issuer */
    assert_int_equal(policy_can_see(&s, &legacy_p), 1);
    s.decided_by_domain = NULL; /* decided before 0006: any domain */
    assert_int_equal(policy_can_see(&s, &other), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_role_names),
        cmocka_unit_test(test_policy_same_person),
        cmocka_unit_test(test_policy_is_admin),
        cmocka_unit_test(test_policy_template_usable),
        cmocka_unit_test(test_policy_template_allows_agent),
        cmocka_unit_test(test_policy_approval_required),
        cmocka_unit_test(test_policy_is_approver),
        cmocka_unit_test(test_policy_decide),
        cmocka_unit_test(test_policy_can_see),
        cmocka_unit_test(test_policy_invites_are_literal),
        cmocka_unit_test(test_policy_max_role),
        cmocka_unit_test(test_policy_join_roles),
        cmocka_unit_test(test_policy_join_capacity),
        cmocka_unit_test(test_policy_leave),
        cmocka_unit_test(test_policy_terminal),
        cmocka_unit_test(test_policy_renew),
        cmocka_unit_test(test_policy_terminate),
        cmocka_unit_test(test_policy_invite),
        cmocka_unit_test(test_policy_same_person_domains),
        cmocka_unit_test(test_policy_domain_owner),
        cmocka_unit_test(test_policy_manage),
        cmocka_unit_test(test_policy_domain_self_approval),
        cmocka_unit_test(test_policy_domain_decider),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
