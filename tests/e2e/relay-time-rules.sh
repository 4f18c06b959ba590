#!/usr/bin/env bash
# Issue 12 end to end: `airlock wait` + the real ssh client through `airlock proxy` and the relay
# + tmux, with a template's time rules in seconds:
#   - claimDeadline: nobody connects -> Expired "nobody connected within 4s"; wait exits 0;
#   - firstConnect + autoExtend: the clock starts at bob's first connection; while he types the
#     session is extended by airlock (renewed, auto) up to maxTotal, then it expires; presence
#     (connections, connectedSince, lastInputAt) shows while he is connected; the events record
#     ticket_issued, connected and disconnected with the seconds;
#   - idleTimeout: bob connects, types once, stops -> Expired "no input for 8s", his ssh ends.
# Run by tests/e2e/run (relay-*.sh); alone: tests/e2e/relay-time-rules.sh. Prints "N passed, N failed".
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
e2e_setup airlock-rules
mkdir -p "$TMP/keys"
need_tools ssh ssh-keygen tmux script curl jq ss
need_binaries

server_port
cat >"$TMP/airlock.yaml" <<'EOF'
approvalTimeout: 1h
agentGracePeriod: 5m
auth:
  dev: true
  agentRegistrars: { groups: [ci] }
templates:
  - name: claim
    allowed: { groups: [ci, developers] }
    constraints: { maxDuration: 1h, defaultDuration: 1h, claimDeadline: 4s }
  - name: typing
    allowed: { groups: [ci, developers] }
    constraints: { maxDuration: 1h, defaultDuration: 12s, claimDeadline: 2m, clockStartsAt: firstConnect,
                   autoExtend: { step: 10s, maxTotal: 26s } }
  - name: idle
    allowed: { groups: [ci, developers] }
    constraints: { maxDuration: 1h, defaultDuration: 1h, idleTimeout: 8s }
EOF
start_airlockd || airlockd_failed
ALICE=$(dev_token alice '["ci","developers"]')
BOB=$(dev_token bob '["developers"]')
API_TOKEN=$ALICE
printf '%s\n' "$ALICE" >"$TMP/alice.tok"
ssh-keygen -q -t ed25519 -N '' -C bob@e2e -f "$TMP/keys/bob"
name_from_box() { grep -o 'debug session ds-[a-z0-9]*' "$1" | head -1 | cut -d' ' -f3; }
box_has_name() { [ -n "$(name_from_box "$1")" ]; }
events() { api GET "/api/v1/debug-sessions/$1/events" "$ALICE" && printf '%s' "$BODY"; }
# has_event NAME JQ-FILTER: true when some event matches (re-evaluated on every try)
has_event() { events "$1" | jq -e "[.events[] | select($2)] | length > 0" >/dev/null; }
bob_field() { session_field "$1" "(.status.participants[] | select(.user == \"bob\") | $2)"; }
bob_connected() { [ "$(bob_field "$1" .connections)" = 1 ]; }

# start_wait TAG TEMPLATE: `airlock wait` in the background; sets NAME and WAIT_PID
start_wait() {
    local run=$TMP/run-$1
    TMUX_SOCKS+=("$run/tmux.sock")
    "$AIRLOCK" --server "$URL" wait --name "ci/rules-$1" --template "$2" --invite bob \
        --reason "e2e: $1" --token-file "$TMP/alice.tok" --run-dir "$run" \
        >"$TMP/logs/wait-$1.out" 2>"$TMP/logs/wait-$1.err" &
    track WAIT_PID
    until_true 30 box_has_name "$TMP/logs/wait-$1.out"
    NAME=$(name_from_box "$TMP/logs/wait-$1.out")
    SOCK=$run/tmux.sock
    until_true 30 state_is "$NAME" Active
}
# bob_join NAME: a ticket and the host key pin for bob
bob_join() {
    api POST "/api/v1/debug-sessions/$1/join" "$BOB" \
        "$(jq -cn --arg k "$(cat "$TMP/keys/bob.pub")" '{sshPublicKey:$k}')"
    TICKET=$(jq -r .attach.ticket <<<"$BODY")
    jq -r .attach.knownHostsLine <<<"$BODY" >"$TMP/kh.$1"
}
# bob_shell TAG NAME: bob's interactive ssh -tt under script(1) (type_in TAG TEXT)
bob_shell() {
    relay_opts "$TMP/keys/bob" "$TMP/kh.$2" "$TICKET"
    term_start "$1" "ssh -tt ${RELAY_OPTS[*]@Q} '$2'"
}

# ---------------------------------------------------------------- claimDeadline
start_wait claim claim
check "claim: the session is Active" state_is "$NAME" Active
check "claim: nobody connects -> Expired" until_true 15 state_is "$NAME" Expired
check "  ... with the message" test "$(session_field "$NAME" .status.message)" = "nobody connected within 4s"
check "  ... recorded as airlock's, reason claim_deadline" \
    has_event "$NAME" '.type == "expired" and .actor == "airlock" and .data.reason == "claim_deadline"'
check "  ... and airlock wait exits" until_true 15 exited "$WAIT_PID"
wait "$WAIT_PID"
check "  ... with status 0" test $? = 0

# ---------------------------------------------------------------- firstConnect + autoExtend
start_wait typing typing
T_NAME=$NAME
bob_join "$T_NAME"
check "typing: a ticket is ticket_issued, not a join" \
    has_event "$T_NAME" '.type == "ticket_issued" and .actor == "bob" and .data.role == "participant"'
check "  ... and bob is not shown as connected" test "$(bob_field "$T_NAME" .firstConnectedAt)" = null
bob_shell t "$T_NAME"
check "typing: bob's connection shows in the session (connections 1)" until_true 30 bob_connected "$T_NAME"
check "  ... with connectedSince and firstConnectedAt" \
    test "$(bob_field "$T_NAME" .connectedSince)" != null -a "$(bob_field "$T_NAME" .firstConnectedAt)" != null
check "  ... the clock starts at the first connection" \
    test "$(session_field "$T_NAME" .status.startsAt)" = "$(bob_field "$T_NAME" .firstConnectedAt)"
check "  ... a connected event (bob, participant)" \
    has_event "$T_NAME" '.type == "connected" and .actor == "bob" and .data.role == "participant"'
START=$(session_field "$T_NAME" .status.startsAt)
# bob types once a second until the session ends (the cadence of a person typing)
i=0
while state_is "$T_NAME" Active && [ $i -lt 60 ]; do
    type_in t "echo tick-$i"
    i=$((i + 1))
    sleep 1 # a timer is right: it is the typing cadence, not a wait for an event
    if [ $i = 8 ]; then
        check "typing: lastInputAt shows while bob types" test "$(bob_field "$T_NAME" .lastInputAt)" != null
    fi
done
check "typing: the session ended after bob typed for a while" state_is "$T_NAME" Expired
EXP=$(session_field "$T_NAME" .status.expiresAt)
check "  ... extended up to startsAt + maxTotal (26s)" \
    test $(($(date -d "$EXP" +%s) - $(date -d "$START" +%s))) = 26
check "  ... by airlock, automatically (renewed, auto: true)" \
    has_event "$T_NAME" '.type == "renewed" and .actor == "airlock" and .data.auto == true'
check "  ... renewalCount untouched" test "$(session_field "$T_NAME" .status.renewalCount)" = 0
check "  ... expired at the end of its duration" \
    has_event "$T_NAME" '.type == "expired" and .data.reason == "duration"'
check "  ... bob's disconnection is recorded with its seconds" \
    until_true 10 has_event "$T_NAME" '.type == "disconnected" and .actor == "bob" and .data.seconds >= 20'
check "  ... bob's ssh ends" until_true 20 exited "$SHELL_PID_t"
type_end t
check "  ... airlock wait exits" until_true 20 exited "$WAIT_PID"

# ---------------------------------------------------------------- idleTimeout
start_wait idle idle
I_NAME=$NAME
bob_join "$I_NAME"
bob_shell i "$I_NAME"
check "idle: bob connects" until_true 30 bob_connected "$I_NAME"
type_in i 'echo only-once'
check "idle: what he typed runs" until_true 10 pane_has "$SOCK" "$I_NAME" only-once
check "idle: no input for 8s ends it" until_true 30 state_is "$I_NAME" Expired
check "  ... with the message" test "$(session_field "$I_NAME" .status.message)" = "no input for 8s"
check "  ... recorded as airlock's, reason idle" \
    has_event "$I_NAME" '.type == "expired" and .actor == "airlock" and .data.reason == "idle"'
check "  ... not before 8s after his input" \
    test "$(events "$I_NAME" | jq '[.events[] | select(.type == "expired")][0].at as $e
        | [.events[] | select(.type == "connected")][0].at as $c
        | ($e | fromdate) - ($c | fromdate) >= 8')" = true
check "  ... bob's ssh ends" until_true 20 exited "$SHELL_PID_i"
check "  ... and his disconnection is recorded" \
    until_true 10 has_event "$I_NAME" '.type == "disconnected" and .actor == "bob"'
type_end i
check "  ... airlock wait exits" until_true 20 exited "$WAIT_PID"

finish
