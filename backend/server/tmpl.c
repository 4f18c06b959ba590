#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "err.h"
#include "tmpl.h"
#include "xmalloc.h"

json_t *
strlist_to_json(const struct strlist *l)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < l->n; i++)
        json_array_append_new(a, json_string(l->v[i]));
    return a;
}

void
strlist_from_json(const json_t *a, struct strlist *l)
{
    size_t i, n = json_is_array(a) ? json_array_size(a) : 0;

    l->v = NULL;
    l->n = 0;
    if (n == 0)
        return;
    l->v = xcalloc(n, sizeof(char *));
    for (i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(a, i));

        if (s != NULL)
            l->v[l->n++] = xstrdup(s);
    }
}

void
strlist_cleanup(struct strlist *l)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static json_t *
dur_json(int64_t s)
{
    char buf[32];

    if (s <= 0)
        return json_null();
    duration_format(s, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *
subjects_json(const struct subjects *s)
{
    return json_pack("{s:o, s:o, s:o}", "groups", strlist_to_json(&s->groups), "users",
                     strlist_to_json(&s->users), "agents", strlist_to_json(&s->agents));
}

json_t *
tmpl_to_json(const struct tmpl_cfg *t)
{
    json_t *appr = json_pack("{s:o, s:o, s:o}", "groups", strlist_to_json(&t->approvers.groups),
                             "users", strlist_to_json(&t->approvers.users), "autoApproveFor",
                             subjects_json(&t->auto_approve));

    json_t *auto_ext = t->auto_step_s > 0
                           ? json_pack("{s:o, s:o}", "step", dur_json(t->auto_step_s), "maxTotal",
                                       dur_json(t->auto_max_total_s))
                           : json_null();

    return json_pack(
        "{s:s, s:s, s:s, s:o, s:o, s:{s:o, s:o, s:o, s:b, s:i, s:o, s:s, s:o, s:o},"
        " s:{s:b, s:s, s:i, s:b, s:b}, s:{s:b, s:b, s:b, s:b}, s:{s:b, s:i, s:i}, s:{s:b},"
        " s:{s:b, s:b, s:i}}",
        "name", t->name, "displayName", t->display_name ? t->display_name : t->name, "description",
        t->description ? t->description : "", "allowed", subjects_json(&t->allowed), "approvers",
        appr, "constraints", "maxDuration", dur_json(t->max_duration_s), "defaultDuration",
        dur_json(t->default_duration_s), "minDuration", dur_json(t->min_duration_s), "allowRenewal",
        t->allow_renewal, "maxRenewals", t->max_renewals, "claimDeadline",
        dur_json(t->claim_deadline_s), "clockStartsAt",
        t->clock_first_connect ? "firstConnect" : "activation", "idleTimeout",
        dur_json(t->idle_timeout_s), "autoExtend", auto_ext, "terminalSharing", "enabled",
        t->sharing_enabled, "provider", "tmux", "maxParticipants", t->max_participants,
        "readOnlyParticipants", t->read_only_participants, "browser", t->sharing_browser,
        "allowedOperations", "shell", t->op_shell, "exec", t->op_exec, "sftp", t->op_sftp,
        "portForward", t->op_port_forward, "requestReason", "mandatory", t->reason_mandatory,
        "minLength", t->reason_min_len, "maxLength", t->reason_max_len, "approvalReason",
        "mandatoryForRejection", t->reject_reason_mandatory, "recording", "enabled", t->rec_enabled,
        "required", t->rec_required, "maxMiB", t->rec_max_mib);
}

static void
subjects_from(const json_t *o, struct subjects *s)
{
    strlist_from_json(json_object_get(o, "groups"), &s->groups);
    strlist_from_json(json_object_get(o, "users"), &s->users);
    strlist_from_json(json_object_get(o, "agents"), &s->agents);
}

static int64_t
dur_from(const json_t *v)
{
    int64_t s = 0;

    if (json_is_string(v) && duration_parse(json_string_value(v), &s) == 0)
        return s;
    return 0;
}

static char *
str_from(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));

    return s ? xstrdup(s) : NULL;
}

int
tmpl_from_json(const json_t *o, struct tmpl_cfg *t)
{
    const json_t *c, *ts, *ops, *rr, *appr, *rec;

    memset(t, 0, sizeof(*t));
    if (!json_is_object(o) || !json_is_string(json_object_get(o, "name")))
        return ERR_INVALID;
    t->name = str_from(o, "name");
    t->display_name = str_from(o, "displayName");
    t->description = str_from(o, "description");
    subjects_from(json_object_get(o, "allowed"), &t->allowed);
    appr = json_object_get(o, "approvers");
    strlist_from_json(json_object_get(appr, "groups"), &t->approvers.groups);
    strlist_from_json(json_object_get(appr, "users"), &t->approvers.users);
    subjects_from(json_object_get(appr, "autoApproveFor"), &t->auto_approve);
    c = json_object_get(o, "constraints");
    t->max_duration_s = dur_from(json_object_get(c, "maxDuration"));
    t->default_duration_s = dur_from(json_object_get(c, "defaultDuration"));
    t->min_duration_s = dur_from(json_object_get(c, "minDuration"));
    t->allow_renewal = json_is_true(json_object_get(c, "allowRenewal"));
    t->max_renewals = (int)json_integer_value(json_object_get(c, "maxRenewals"));
    t->claim_deadline_s = dur_from(json_object_get(c, "claimDeadline"));
    t->clock_first_connect =
        json_is_string(json_object_get(c, "clockStartsAt")) &&
        strcmp(json_string_value(json_object_get(c, "clockStartsAt")), "firstConnect") == 0;
    t->idle_timeout_s = dur_from(json_object_get(c, "idleTimeout"));
    t->auto_step_s = dur_from(json_object_get(json_object_get(c, "autoExtend"), "step"));
    t->auto_max_total_s = dur_from(json_object_get(json_object_get(c, "autoExtend"), "maxTotal"));
    ts = json_object_get(o, "terminalSharing");
    t->sharing_enabled = json_is_true(json_object_get(ts, "enabled"));
    t->max_participants = (int)json_integer_value(json_object_get(ts, "maxParticipants"));
    t->read_only_participants = json_is_true(json_object_get(ts, "readOnlyParticipants"));
    /* absent in snapshots taken before the browser terminal: on, the default */
    t->sharing_browser = !json_is_false(json_object_get(ts, "browser"));
    ops = json_object_get(o, "allowedOperations");
    t->op_shell = json_is_true(json_object_get(ops, "shell"));
    t->op_exec = json_is_true(json_object_get(ops, "exec"));
    t->op_sftp = json_is_true(json_object_get(ops, "sftp"));
    t->op_port_forward = json_is_true(json_object_get(ops, "portForward"));
    rr = json_object_get(o, "requestReason");
    t->reason_mandatory = json_is_true(json_object_get(rr, "mandatory"));
    t->reason_min_len = (int)json_integer_value(json_object_get(rr, "minLength"));
    t->reason_max_len = (int)json_integer_value(json_object_get(rr, "maxLength"));
    t->reject_reason_mandatory = json_is_true(
        json_object_get(json_object_get(o, "approvalReason"), "mandatoryForRejection"));
    /* Snapshots from before recording existed have no "recording": off. */
    rec = json_object_get(o, "recording");
    t->rec_enabled = json_is_true(json_object_get(rec, "enabled"));
    t->rec_required = json_is_true(json_object_get(rec, "required"));
    t->rec_max_mib = rec != NULL ? (int)json_integer_value(json_object_get(rec, "maxMiB"))
                                 : TMPL_REC_MAX_MIB_DEFAULT;
    return 0;
}

void
subjects_cleanup(struct subjects *s)
{
    strlist_cleanup(&s->groups);
    strlist_cleanup(&s->users);
    strlist_cleanup(&s->agents);
}

void
tmpl_cleanup(struct tmpl_cfg *t)
{
    free(t->name);
    free(t->display_name);
    free(t->description);
    subjects_cleanup(&t->allowed);
    subjects_cleanup(&t->approvers);
    subjects_cleanup(&t->auto_approve);
    memset(t, 0, sizeof(*t));
}
