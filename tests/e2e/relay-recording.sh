#!/usr/bin/env bash
# End-to-end for session recordings (docs/recording.md): `airlock agent` records the shared
# tmux terminal of a recorded session and uploads it to airlockd as it goes; a participant
# types over the real OpenSSH client through the relay; the .cast served by airlockd is parsed
# and holds the typed commands and their output in order; the digest in the audit events
# verifies (`airlock verify-recording`), and one flipped byte in the stored file makes
# verification fail. A required recording that cannot start keeps anything from starting.
#
#   tests/e2e/relay-recording.sh        AIRLOCKD/AIRLOCK default to build/airlockd, build/airlock
#
# Servers listen on 127.0.0.1 on ports picked here and are killed by PID on exit; everything
# runs with a temporary HOME. Prints "N passed, N failed".
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
e2e_setup airlock-rec-e2e
need_tools ssh ssh-keygen tmux script curl jq ss
need_binaries

server_port
cat >"$TMP/airlock.yaml" <<'EOF'
auth:
  dev: true
  agentRegistrars: { groups: [ops] }
templates:
  - name: recorded
    allowed: { groups: [developers] }
    constraints: { maxDuration: 2h, defaultDuration: 1h }
    terminalSharing: { enabled: true, provider: tmux, maxParticipants: 3 }
    allowedOperations: { shell: true, exec: true, sftp: true, portForward: false }
    recording: { enabled: true, required: true }
EOF
start_airlockd || airlockd_failed
ok "airlockd starts"

"$AIRLOCK" --server "$URL" login --dev --user alice --groups developers,ops 2>"$TMP/logs/login.err"
TOKEN=$(cat "$HOME/.config/airlock/tokens/127.0.0.1-$PORT/users/alice") # per server and user (cli-verbs.sh)
API_TOKEN=$TOKEN # session_field, state_is
BOB=$(dev_token bob '["developers"]')

RUN=$TMP/run
SOCK=$RUN/tmux.sock
TMUX_SOCKS+=("$SOCK")
"$AIRLOCK" --server "$URL" agent --name rec-host --run-dir "$RUN" \
    >"$TMP/logs/agent.out" 2>"$TMP/logs/agent.err" &
track AGENT_PID
online() { api GET /api/v1/agents/rec-host "$TOKEN" && jq -e .online <<<"$BODY" >/dev/null; }
check "the agent comes online" until_true 20 online
api POST /api/v1/debug-sessions "$TOKEN" '{"template":"recorded","agent":"rec-host","reason":"recording e2e"}'
NAME=$(jq -r .name <<<"$BODY")
check "a recorded session becomes Active" until_true 15 state_is "$NAME" Active
state_is "$NAME" Active || finish
rec_state_is() { [ "$(session_field "$1" .status.recording.state)" = "$2" ]; }
check "the agent starts the recording at activation (status.recording.state)" \
    until_true 15 rec_state_is "$NAME" recording
check "  ... and the tmux session exists before anyone joins" tmux_has "$SOCK" "$NAME"
check "the FIFO in the run directory is the agent's own (0600)" \
    test "$(stat -c %a "$RUN/rec-$NAME.fifo" 2>/dev/null)" = 600

# ------------------------------------------------------------------ a participant types
mkdir -p "$HOME/.ssh"
ssh-keygen -q -t ed25519 -N '' -C alice@e2e -f "$HOME/.ssh/id_ed25519"
"$AIRLOCK" join "$NAME" --print >"$TMP/line" 2>"$TMP/logs/join.err"
TICKET=$(sed -n "s/.*--ticket \([^' ]*\).*/\1/p" "$TMP/line")
KH=$HOME/.config/airlock/known_hosts
relay_opts "$HOME/.ssh/id_ed25519" "$KH" "$TICKET"
term_start a "ssh -tt ${RELAY_OPTS[*]@Q} '$NAME'"
check "the shell's first line says the session is recorded" \
    until_true 20 log_has a "airlock: this session is recorded"
status_rec() { tmux -S "$SOCK" show-options -t "=$NAME:" status-left 2>/dev/null | grep -q REC; }
check "tmux's status line says so too" status_rec
type_in a 'echo first-$((40+2))'
until_true 10 pane_has "$SOCK" "$NAME" first-42
type_in a 'printf "second-%s\n" café'
until_true 10 pane_has "$SOCK" "$NAME" second-café
type_in a 'echo third-$((7*7))'
check "three commands run in the shared pane" until_true 10 pane_has "$SOCK" "$NAME" third-49

# An exec is refused: nothing may run outside the recorded terminal of a required recording.
out=$(relay_ssh "$HOME/.ssh/id_ed25519" "$KH" "$TICKET" "$NAME" 'echo outside' 2>&1)
rc=$?
echo "      ssh said: $(head -2 <<<"$out" | tr '\n' ' ')"
refused() { [ $rc != 0 ] && ! grep -qx outside <<<"$out"; }
check "exec in a session with a required recording is refused" refused

# Chunks arrive while the session goes on (not only at the end).
cast() { curl -sf -H "Authorization: Bearer $1" "$URL/api/v1/debug-sessions/$NAME/recording"; }
has_third() { cast "$TOKEN" | grep -q third-49; }
check "the recording reaches airlockd while the session is still Active" until_true 15 has_third
check "  ... a person who may not see the session gets 404" \
    test "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BOB" \
        "$URL/api/v1/debug-sessions/$NAME/recording")" = 404

type_in a exit
type_end a
api POST "/api/v1/debug-sessions/$NAME/terminate" "$TOKEN" '{}'
check "the owner ends the session" test "$CODE" = 200
check "the agent sends its last chunk: the recording is finished" \
    until_true 15 rec_state_is "$NAME" finished

# ------------------------------------------------------------------ the .cast
curl -sf -H "Authorization: Bearer $TOKEN" -D "$TMP/cast.h" \
    "$URL/api/v1/debug-sessions/$NAME/recording" >"$TMP/rec.cast"
check "GET …/recording serves application/x-asciicast" \
    grep -qi '^content-type: application/x-asciicast' "$TMP/cast.h"
check "line 1 is an asciicast v2 header with the pane's size" \
    jq -e '.version == 2 and .width > 0 and .height > 0' <(head -1 "$TMP/rec.cast") >/dev/null
events_ok() {
    tail -n +2 "$TMP/rec.cast" | jq -se 'all(.[]; length == 3 and (.[0]|type) == "number"
        and (.[1] == "o" or .[1] == "r") and (.[2]|type) == "string")
        and ([.[][0]] == ([.[][0]] | sort))' >/dev/null
}
check "every other line is an event [t, code, data], t never decreasing" events_ok
tail -n +2 "$TMP/rec.cast" | jq -rj 'select(.[1] == "o") | .[2]' >"$TMP/rec.out"
at() { grep -ob -- "$1" "$TMP/rec.out" | head -1 | cut -d: -f1; }
order_ok() {
    local a b c
    a=$(at first-42) b=$(at second-café) c=$(at third-49)
    [ -n "$a" ] && [ -n "$b" ] && [ -n "$c" ] && [ "$a" -lt "$b" ] && [ "$b" -lt "$c" ]
}
check "the three commands' output is in the recording, in order (UTF-8 intact)" order_ok
check "  ... and so are the typed commands (the shell's echo)" grep -qF 'echo third-$((7*7))' "$TMP/rec.out"

# ------------------------------------------------------------------ the digest
api GET "/api/v1/debug-sessions/$NAME/events" "$TOKEN"
DIGEST=$(jq -r '.events[] | select(.type == "recording_finished") | .data.sha256' <<<"$BODY")
check "recording_finished carries the digest" test "${#DIGEST}" = 64
out=$("$AIRLOCK" verify-recording "$NAME" 2>&1)
rc=$?
check "airlock verify-recording says intact (exit 0)" test "$rc:$(grep -c intact <<<"$out")" = 0:1
check "  ... with the audit event's digest" grep -qF "$DIGEST" <<<"$out"
FILE=$TMP/data/recordings/$NAME.cast
check "the stored file is 0600" test "$(stat -c %a "$FILE")" = 600
# flip the lowest bit of the byte in the middle of the stored file
off=$(($(stat -c %s "$FILE") / 2))
byte=$(od -An -tu1 -j "$off" -N1 "$FILE" | tr -d ' ')
printf "\\$(printf '%03o' $((byte ^ 1)))" | dd of="$FILE" bs=1 seek="$off" count=1 conv=notrunc status=none
out=$("$AIRLOCK" verify-recording "$NAME" 2>&1)
rc=$?
check "after one flipped byte verify-recording says altered (exit 1)" \
    test "$rc:$(grep -c altered <<<"$out")" = 1:1
check "  ... and so does status.recording.integrity" \
    test "$(session_field "$NAME" .status.recording.integrity)" = altered

# ------------------------------------------------------------------ a recording that cannot start
# The FIFO's path is taken by a directory while the agent is held: the recording cannot start,
# and the required recording fails the session, with the reason, before anyone could join.
kill -STOP "$AGENT_PID"
api POST /api/v1/debug-sessions "$TOKEN" '{"template":"recorded","agent":"rec-host","reason":"recording e2e 2"}'
NAME2=$(jq -r .name <<<"$BODY")
check "a second recorded session is created" test -n "$NAME2" -a "$NAME2" != null
mkdir -p "$RUN/rec-$NAME2.fifo/x"
kill -CONT "$AGENT_PID"
check "a required recording that cannot start fails the session" until_true 20 state_is "$NAME2" Failed
check "  ... with the reason" grep -q 'recording failed' <<<"$(session_field "$NAME2" .status.message)"

kill -TERM "$AGENT_PID" 2>/dev/null
check "airlock agent stops on SIGTERM" until_true 10 exited "$AGENT_PID"
finish
