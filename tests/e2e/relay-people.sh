#!/usr/bin/env bash
# End-to-end for issue 12's people and clock, with real ssh, tmux and the relay:
#   - the shared shell's tmux status line shows the time left, and a session with less than
#     10 minutes left shows every attached client a warning (display-message);
#   - the owner removes a participant live: their ssh closes within a second, with the reason;
#   - the owner demotes a participant: their read-write connection closes, the next one is a
#     viewer's (no exec); promotes a viewer: the open connection stays, the next one writes.
#
#   tests/e2e/relay-people.sh           AIRLOCKD/AIRLOCK default to build/airlockd, build/airlock
#
# Servers listen on 127.0.0.1 on ports picked here and are killed by PID on exit; everything
# runs with a temporary HOME. Prints "N passed, N failed".
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
e2e_setup airlock-people-e2e
mkdir -p "$TMP/keys"
need_tools ssh ssh-keygen tmux script curl jq ss
need_binaries

server_port
# 9m: the session starts inside the 10-minute warning, so the warning comes at once
cat >"$TMP/airlock.yaml" <<'EOF'
auth:
  dev: true
  agentRegistrars: { groups: [ops] }
templates:
  - name: people
    allowed: { groups: [developers] }
    constraints: { maxDuration: 2h, defaultDuration: 9m, minDuration: 1m }
    terminalSharing: { enabled: true, provider: tmux, maxParticipants: 5 }
    allowedOperations: { shell: true, exec: true, sftp: false, portForward: false }
EOF
start_airlockd || airlockd_failed
ok "airlockd starts"

ALICE=$(dev_token alice '["developers","ops"]')
API_TOKEN=$ALICE
for u in alice bob carol dave; do
    printf -v "TOK_$u" '%s' "$(dev_token "$u" '["developers"]')"
    ssh-keygen -q -t ed25519 -N '' -C "$u@e2e" -f "$TMP/keys/$u"
done
TOK_alice=$ALICE

# the agent registers as alice (ops), from the cached token
printf '%s\n' "$ALICE" >"$TMP/alice.tok"
"$AIRLOCK" --server "$URL" login --token-file "$TMP/alice.tok" 2>"$TMP/logs/login.err"
"$AIRLOCK" --server "$URL" agent --name e2e-people --run-dir "$TMP/run" \
    >"$TMP/logs/agent.out" 2>"$TMP/logs/agent.err" &
track AGENT_PID
SOCK=$TMP/run/tmux.sock
TMUX_SOCKS+=("$SOCK")
online() { api GET /api/v1/agents/e2e-people "$ALICE" && jq -e .online <<<"$BODY" >/dev/null; }
check "the agent comes online" until_true 20 online
api POST /api/v1/debug-sessions "$ALICE" \
    '{"template":"people","agent":"e2e-people","invitedParticipants":["bob","carol"]}'
NAME=$(jq -r .name <<<"$BODY")
check "a 9-minute session becomes Active" until_true 15 state_is "$NAME" Active
state_is "$NAME" Active || finish
api POST "/api/v1/debug-sessions/$NAME/invite" "$ALICE" '{"users":["dave"],"role":"viewer"}'

# join NAME USER: sets TICKET_<user> and the host key pin $TMP/kh.<name>
join() {
    local tv=TOK_$2
    api POST "/api/v1/debug-sessions/$1/join" "${!tv}" \
        "$(jq -cn --arg k "$(cat "$TMP/keys/$2.pub")" '{sshPublicKey:$k}')"
    [ "$CODE" = 200 ] || return 1
    printf -v "TICKET_$2" '%s' "$(jq -r .attach.ticket <<<"$BODY")"
    jq -r .attach.knownHostsLine <<<"$BODY" >"$TMP/kh.$1"
}
# sshs NAME USER [COMMAND...]: ssh through `airlock proxy` and the relay, host key pinned
sshs() {
    local name=$1 user=$2 tv
    shift 2
    tv=TICKET_$user
    relay_ssh "$TMP/keys/$user" "$TMP/kh.$name" "${!tv:-none}" "$name" "$@"
}
# shell_start TAG NAME USER: an interactive ssh -tt under script(1) (type_in TAG TEXT)
shell_start() {
    local tv=TICKET_$3
    relay_opts "$TMP/keys/$3" "$TMP/kh.$2" "${!tv:-none}"
    term_start "$1" "ssh -tt ${RELAY_OPTS[*]@Q} '$2'"
}
status_right() { tmux -S "$SOCK" show-options -v -t "=$NAME:" status-right 2>/dev/null; }
status_shows_left() { status_right | grep -Eq '^airlock: [0-9]m[0-9][0-9]s left'; }
status_changed() { [ "$(status_right)" != "$1" ]; }
clients() { tmux -S "$SOCK" list-clients -t "=$NAME" 2>/dev/null | wc -l; }
clients_ge() { [ "$(clients)" -ge "$1" ]; }
part_role() {
    session_field "$NAME" ".status.participants[] | select(.user == \"$1\" and .leftAt == null) | .role"
}
exec_prints() { [ "$(sshs "$NAME" "$1" "$2" 2>/dev/null)" = "$3" ]; } # USER COMMAND OUTPUT

for u in alice bob carol dave; do join "$NAME" "$u" || bad "$u joins" "$CODE $BODY"; done
check "owner, two participants and a viewer join" \
    test -n "${TICKET_alice:-}" -a -n "${TICKET_bob:-}" -a -n "${TICKET_carol:-}" -a -n "${TICKET_dave:-}"

# ---------------------------------------------------------------- the clock in the shell
shell_start a "$NAME" alice
check "alice's shell attaches" until_true 20 clients_ge 1
check "the tmux status line shows the time left (under 10 minutes: m and s)" until_true 10 status_shows_left
echo "      status-right: $(status_right)"
check "the 10-minute warning reaches alice's terminal" \
    until_true 10 log_has a "airlock: the session ends in "
check "the status line counts down" until_true 5 status_changed "$(status_right)"

# ---------------------------------------------------------------- live removal
shell_start b "$NAME" bob
check "bob's shell attaches" until_true 20 clients_ge 2
t0=$(date +%s%N)
api DELETE "/api/v1/debug-sessions/$NAME/participants/bob" "$ALICE"
check "alice removes bob (200)" test "$CODE" = 200
check "bob's ssh closes within 1 s" until_true 1 exited "$SHELL_PID_b"
t1=$(date +%s%N)
echo "      seen closed $(((t1 - t0) / 1000000)) ms after the DELETE was sent (curl and the 0.2 s poll included)"
check "  ... and bob's terminal says why" until_true 5 log_has b "you were removed from the session"
sshs "$NAME" bob true >/dev/null 2>&1
check "bob cannot connect again" test $? = 255
check "alice's shell is still attached" kill -0 "$SHELL_PID_a"

# ---------------------------------------------------------------- demotion
shell_start c "$NAME" carol
check "carol's shell attaches" until_true 20 clients_ge 2
check "carol (participant) may exec" exec_prints carol 'echo carol-$((2*3))' carol-6
api POST "/api/v1/debug-sessions/$NAME/participants/carol" "$ALICE" '{"role":"viewer"}'
check "alice demotes carol (200)" test "$CODE" = 200
check "carol's read-write shell closes within 1 s" until_true 1 exited "$SHELL_PID_c"
check "  ... saying why" until_true 5 log_has c "your role is now viewer"
if exec_prints carol 'echo carol-again' carol-again; then bad "carol's next connection is a viewer's: no exec"; else
    ok "carol's next connection is a viewer's: no exec"
fi

# ---------------------------------------------------------------- promotion
shell_start d "$NAME" dave
check "dave's read-only shell attaches" until_true 20 clients_ge 2
if exec_prints dave 'echo dave-$((3*3))' dave-9; then bad "dave (viewer) may not exec"; else
    ok "dave (viewer) may not exec"
fi
api POST "/api/v1/debug-sessions/$NAME/participants/dave" "$ALICE" '{"role":"participant"}'
check "alice promotes dave (200)" test "$CODE" = 200
check "  ... the server lists him as participant" test "$(part_role dave)" = participant
# the agent learns it from the control channel, so the first try may still be refused
check "dave's next connection writes (exec runs)" until_true 5 exec_prints dave 'echo dave-$((3*3))' dave-9
check "  ... and his open read-only shell stayed" kill -0 "$SHELL_PID_d"
api GET "/api/v1/debug-sessions/$NAME/events" "$ALICE"
check "events record the removal and both role changes" test "$(jq -c \
    '[.events[] | select(.type == "role_changed" or .type == "removed") | .type]' <<<"$BODY")" = \
    '["removed","role_changed","role_changed"]'

finish
