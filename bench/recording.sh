#!/usr/bin/env bash
# The recording benchmark (docs/recording.md), `bench/run BUILD rec`: the shared terminal's
# bulk output with recording on against recording off, measured in the same run. One airlockd,
# one `airlock agent`, two sessions (template plain, template recorded); in each a participant is
# attached through the relay (the real ssh client under script(1)) while the pane prints
# BENCH_REC_MB MiB of text, and the time is taken from the command's start to its end, signalled
# by `tmux wait-for` (an event, no polling). Rounds interleave the two paths; the best counts.
#
#   bench/recording.sh BUILD        (bench/run BUILD rec runs it)
#   BENCH_REC_MB [32]  BENCH_REC_ROUNDS [3]
#
# Prints both rates and their ratio against the target (>= 0.9x).
set -u
BUILD=$(cd "$1" && pwd)
MB=${BENCH_REC_MB:-32}
ROUNDS=${BENCH_REC_ROUNDS:-3}
AIRLOCKD=$BUILD/airlockd
AIRLOCK=$BUILD/airlock
export AIRLOCKD AIRLOCK
# shellcheck source=../tests/e2e/lib.sh
. "$(dirname "$0")/../tests/e2e/lib.sh"
e2e_setup airlock-bench-rec
need_tools ssh ssh-keygen tmux script curl jq ss

server_port
cat >"$TMP/airlock.yaml" <<'EOF'
auth:
  dev: true
  agentRegistrars: { groups: [ops] }
limits: { connectionsPerClient: 0, requestsPerSecond: 0, sessionsPerUser: 0 }
templates:
  - name: plain
    allowed: { groups: [developers] }
  - name: recorded
    allowed: { groups: [developers] }
    recording: { enabled: true, required: false, maxMiB: 4096 }
EOF
start_airlockd || { echo "rec: SKIPPED: airlockd does not start"; exit 1; }
"$AIRLOCK" --server "$URL" login --dev --user alice --groups developers,ops 2>/dev/null
TOKEN=$(cat "$HOME/.config/airlock/token")
API_TOKEN=$TOKEN
SOCK=$TMP/run/tmux.sock
TMUX_SOCKS+=("$SOCK")
"$AIRLOCK" --server "$URL" agent --name bench-rec --run-dir "$TMP/run" >"$TMP/logs/agent.out" 2>"$TMP/logs/agent.err" &
track
online() { api GET /api/v1/agents/bench-rec "$TOKEN" && jq -e .online <<<"$BODY" >/dev/null; }
until_true 20 online || { echo "rec: SKIPPED: the agent does not come online"; exit 1; }
mkdir -p "$HOME/.ssh"
ssh-keygen -q -t ed25519 -N '' -f "$HOME/.ssh/id_ed25519"

declare -A NAME
for t in plain recorded; do
    api POST /api/v1/debug-sessions "$TOKEN" "{\"template\":\"$t\",\"agent\":\"bench-rec\"}"
    NAME[$t]=$(jq -r .name <<<"$BODY")
    until_true 15 state_is "${NAME[$t]}" Active || { echo "rec: SKIPPED: session $t not Active"; exit 1; }
    line=$("$AIRLOCK" join "${NAME[$t]}" --print 2>/dev/null)
    ticket=$(sed -n "s/.*--ticket \([^' ]*\).*/\1/p" <<<"$line")
    relay_opts "$HOME/.ssh/id_ed25519" "$HOME/.config/airlock/known_hosts" "$ticket"
    term_start "$t" "ssh -tt ${RELAY_OPTS[*]@Q} '${NAME[$t]}'"
    until_true 20 tmux_has "$SOCK" "${NAME[$t]}"
    until_true 20 sh -c "[ \$(tmux -S '$SOCK' list-clients -t '=${NAME[$t]}' | wc -l) -ge 1 ]"
done
rec_live() { [ "$(session_field "${NAME[recorded]}" .status.recording.state)" = recording ]; }
until_true 15 rec_live || { echo "rec: SKIPPED: the recording does not start"; exit 1; }

# one_run TEMPLATE: seconds for MB MiB of text through the pane, attached through the relay
one_run() {
    local n=${NAME[$1]} t0 t1
    t0=$(date +%s.%N)
    tmux -S "$SOCK" send-keys -t "=$n:" "yes airlock-recording-bench-0123456789 | head -c $((MB << 20)); tmux wait-for -S done-$n" Enter
    timeout 300 tmux -S "$SOCK" wait-for "done-$n"
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
declare -A BEST
BEST[plain]=999999
BEST[recorded]=999999
for ((i = 0; i < ROUNDS; i++)); do
    for t in plain recorded; do
        s=$(one_run "$t")
        BEST[$t]=$(echo "if ($s < ${BEST[$t]}) $s else ${BEST[$t]}" | bc -l)
    done
done
rate() { echo "$MB / $1" | bc -l | cut -c1-6; }
off=$(rate "${BEST[plain]}")
on=$(rate "${BEST[recorded]}")
ratio=$(echo "${BEST[plain]} / ${BEST[recorded]}" | bc -l | cut -c1-5)
verdict=$(echo "$ratio >= 0.9" | bc -l)
echo "recording: shared-terminal bulk output ($MB MiB, an ssh participant attached through the relay, best of $ROUNDS)"
echo "  recording off: $off MiB/s"
echo "  recording on:  $on MiB/s   ratio ${ratio}x [target >= 0.9x: $([ "$verdict" = 1 ] && echo PASS || echo MISS)]"
until_true 30 sh -c "[ \$(curl -s -H 'Authorization: Bearer $TOKEN' '$URL/api/v1/debug-sessions/${NAME[recorded]}' | jq .status.recording.bytes) -gt $((MB << 20)) ]" &&
    echo "  recorded bytes: $(session_field "${NAME[recorded]}" .status.recording.bytes) (the output, escaped as asciicast)" ||
    echo "  recorded bytes: $(session_field "${NAME[recorded]}" .status.recording.bytes) (behind after 30 s)"
for t in plain recorded; do type_end "$t"; done
exit 0
