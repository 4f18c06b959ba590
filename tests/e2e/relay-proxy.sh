#!/usr/bin/env bash
# End-to-end for the person's side of the tunnel: `airlock login --dev`,
# `sessions`, `join` (known_hosts pin, the ssh line, ssh itself) and `proxy`
# through airlockd's relay to an `airlock agent`, with the real OpenSSH
# client. Also bulk data both ways (byte-identical) and, with RELAY_E2E_BENCH=1,
# throughput against the same ssh through a socat relay to the agent's
# --listen port.
#
#   tests/e2e/relay-proxy.sh            AIRLOCKD/AIRLOCK default to build/airlockd, build/airlock
#   RELAY_E2E_MB=200 RELAY_E2E_BENCH=1 tests/e2e/relay-proxy.sh
#
# Servers listen on 127.0.0.1 on ports picked here and are killed by PID on
# exit; everything runs with a temporary HOME. Prints "N passed, N failed".
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
e2e_setup airlock-relay-e2e
MB=${RELAY_E2E_MB:-50}
need_tools ssh ssh-keygen tmux script curl jq ss sha256sum
need_binaries

server_port
cat >"$TMP/airlock.yaml" <<'EOF'
auth:
  dev: true
  agentRegistrars: { groups: [ops] }
templates:
  - name: sandbox
    allowed: { groups: [developers] }
    constraints: { maxDuration: 2h, defaultDuration: 1h }
    terminalSharing: { enabled: true, provider: tmux, maxParticipants: 2 }
    allowedOperations: { shell: true, exec: true, sftp: true, portForward: false }
EOF
start_airlockd || airlockd_failed
ok "airlockd starts"

# ------------------------------------------------------------------ login
"$AIRLOCK" --server "$URL" login --dev --user alice --email alice@example.com \
    --groups developers,ops 2>"$TMP/logs/login.err"
check "login --dev exits 0" test $? = 0
TOKFILE=$HOME/.config/airlock/tokens/127.0.0.1-$PORT/users/alice # per server and user (cli-verbs.sh)
check "the token is cached with mode 0600" test "$(stat -c %a "$TOKFILE")" = 600
check "  ... in a 0700 directory" test "$(stat -c %a "$HOME/.config/airlock")" = 700
TOKEN=$(cat "$TOKFILE")
API_TOKEN=$TOKEN # session_field, state_is
check "  ... and the server accepts it" \
    test "$(curl -s -H "Authorization: Bearer $TOKEN" "$URL/api/v1/me" | jq -r .user)" = alice
"$AIRLOCK" --server "$URL" login --dev >/dev/null 2>&1
check "login --dev without --user is a usage error (2)" test $? = 2
"$AIRLOCK" --server "http://127.0.0.1:1" login --dev --user x >/dev/null 2>&1
check "login to a server that is not there exits 3" test $? = 3
"$AIRLOCK" login >/dev/null 2>"$TMP/logs/login2.err"
check "plain login on a dev server exits 1 and says to use --dev (URL saved by login)" \
    grep -q -- '--dev' "$TMP/logs/login2.err"
printf '%s\n' "$TOKEN" >"$TMP/tok"
"$AIRLOCK" --server "$URL" login --token-file "$TMP/tok" 2>"$TMP/logs/login3.err"
check "login --token-file copies a token and says whose it is" grep -q 'as alice' "$TMP/logs/login3.err"
echo garbage >"$TMP/badtok"
"$AIRLOCK" --server "$URL" login --token-file "$TMP/badtok" >/dev/null 2>&1
check "login --token-file with a token the server refuses exits 1" test $? = 1
check "  ... and keeps the good cached token" test "$(cat "$TOKFILE")" = "$TOKEN"

# ------------------------------------------------------------------ agent + session
LISTEN=$(free_port)
"$AIRLOCK" --server "$URL" agent --name e2e-host --run-dir "$TMP/run" --listen "127.0.0.1:$LISTEN" \
    >"$TMP/logs/agent.out" 2>"$TMP/logs/agent.err" &
track AGENT_PID
TMUX_SOCKS+=("$TMP/run/tmux.sock")
online() { api GET /api/v1/agents/e2e-host "$TOKEN" && jq -e .online <<<"$BODY" >/dev/null; }
check "the agent comes online" until_true 20 online
api POST /api/v1/debug-sessions "$TOKEN" '{"template":"sandbox","agent":"e2e-host","reason":"relay e2e"}'
NAME=$(jq -r .name <<<"$BODY")
check "a session is created" test -n "$NAME" -a "$NAME" != null
check "it becomes Active" until_true 15 state_is "$NAME" Active
state_is "$NAME" Active || finish

out=$("$AIRLOCK" sessions)
check "sessions prints a table with the session" grep -q "^$NAME *Active *sandbox *e2e-host *alice *in " <<<"$out"
check "  ... under the header" grep -q '^NAME *STATE *TEMPLATE *AGENT *REQUESTER *EXPIRES$' <<<"$out"
check "sessions --json --state Active --mine" \
    test "$("$AIRLOCK" sessions --json --state Active --mine | jq -r '.sessions[0].name')" = "$NAME"
check "sessions --state Expired lists nothing" \
    test "$("$AIRLOCK" sessions --json --state Expired | jq '.sessions | length')" = 0

# ------------------------------------------------------------------ join
mkdir -p "$HOME/.ssh"
ssh-keygen -q -t ed25519 -N '' -C alice@e2e -f "$HOME/.ssh/id_ed25519"
line=$("$AIRLOCK" join "$NAME" --print 2>"$TMP/logs/join.err")
check "join --print prints the ssh line" grep -q "^ssh .*ProxyCommand=.*proxy %n --ticket .* $NAME\$" <<<"$line"
KH=$HOME/.config/airlock/known_hosts
check "join pins the host key under the session's name" grep -q "^$NAME ssh-ed25519 " "$KH"
line=$("$AIRLOCK" join "$NAME" --print 2>/dev/null) # a new join: the earlier ticket is gone
check "joining again replaces the pin instead of adding one" test "$(grep -c "^$NAME " "$KH")" = 1
"$AIRLOCK" join ds-nonexistent --print >/dev/null 2>"$TMP/logs/join404.err"
rc=$?
check "join of an unknown session exits 1 with the server's message" \
    sh -c "test $rc = 1 && grep -q 'not found' '$TMP/logs/join404.err'"
"$AIRLOCK" join >/dev/null 2>&1
check "join without a name is a usage error (2)" test $? = 2

# The printed line, run with a command: the proxy, the relay and the pin work together.
TICKET=$(sed -n "s/.*--ticket \([^' ]*\).*/\1/p" <<<"$line")
sshp() { # ssh through `airlock proxy` with the printed line's key, pin and ticket, then args
    relay_ssh "$HOME/.ssh/id_ed25519" "$KH" "$TICKET" "$NAME" "$@"
}
# ssh expands ~ from the passwd entry, not $HOME: point the line at the test's HOME.
run_line=${line% "$NAME"}
run_line=${run_line//\~/$HOME}
out=$(eval "$run_line -F /dev/null -o BatchMode=yes -i '$HOME/.ssh/id_ed25519' $NAME \
    'echo printed-line-works; exit 5'" 2>"$TMP/logs/line.err")
rc=$?
check "the printed line runs a command through the relay (output and exit status)" \
    test "$out" = printed-line-works -a $rc = 5
[ -s "$TMP/logs/line.err" ] && echo "      stderr: $(head -2 "$TMP/logs/line.err")"

# Bulk, both ways, byte-identical.
head -c $((MB << 20)) /dev/urandom >"$TMP/blob"
SUM=$(sha256sum <"$TMP/blob" | cut -d' ' -f1)
t0=$(date +%s.%N)
got=$(sshp 'sha256sum' <"$TMP/blob" 2>"$TMP/logs/up.err" | cut -d' ' -f1)
t1=$(date +%s.%N)
check "$MB MiB up through the relay arrive intact" test "$got" = "$SUM"
sshp "cat '$TMP/blob'" 2>"$TMP/logs/down.err" >"$TMP/blob.down"
t2=$(date +%s.%N)
check "$MB MiB down through the relay arrive intact" cmp -s "$TMP/blob" "$TMP/blob.down"
echo "      up $(echo "$MB / ($t1 - $t0)" | bc -l | cut -c1-6) MiB/s, down $(echo "$MB / ($t2 - $t1)" | bc -l | cut -c1-6) MiB/s"

# Stats: the relay counted the bytes.
check "/metrics counts relayed bytes" \
    sh -c "curl -s '$URL/metrics' | awk '/^airlock_relay_bytes_total/ {s += \$2} END {exit !(s > $((2 * MB << 20)))}'"

# An interactive shell through `airlock join` itself (exec ssh), driven by script(1).
term_start shell "'$AIRLOCK' join '$NAME'"
SOCK=$TMP/run/tmux.sock
until_true 20 tmux_has "$SOCK" "$NAME"
type_in shell 'echo joined-$((6*7))'
check "join runs ssh into the session's tmux; keystrokes arrive" until_true 15 pane_has "$SOCK" "$NAME" joined-42
check "  ... and the output comes back through the relay" \
    until_true 10 log_has shell joined-42
type_in shell exit
type_end shell

# ------------------------------------------------------------------ proxy refusals
"$AIRLOCK" --server "$URL" proxy "$NAME" --ticket not-a-ticket </dev/null >/dev/null 2>"$TMP/logs/p401.err"
rc=$?
check "proxy with a bad ticket exits 1 with the server's message" \
    sh -c "test $rc = 1 && grep -qi 'ticket' '$TMP/logs/p401.err'"
"$AIRLOCK" --server "$URL" proxy ds-nonexistent </dev/null >/dev/null 2>"$TMP/logs/p404.err"
check "proxy to an unknown session exits 1 (404)" test $? = 1
"$AIRLOCK" --server "http://127.0.0.1:1" proxy "$NAME" --ticket x </dev/null >/dev/null 2>&1
check "proxy to a server that is not there exits 3" test $? = 3
"$AIRLOCK" proxy >/dev/null 2>&1
check "proxy without a name is a usage error (2)" test $? = 2
# Without --ticket the cached token (a JWT) is the bearer.
out=$(relay_ssh "$HOME/.ssh/id_ed25519" "$KH" "" "$NAME" 'echo via-token' 2>&1)
check "proxy without --ticket uses the cached token" test "$out" = via-token

# ------------------------------------------------------------------ bench (optional)
if [ "${RELAY_E2E_BENCH:-0}" = 1 ] && command -v socat >/dev/null; then
    SPORT=$(free_port)
    socat -b 262144 "TCP-LISTEN:$SPORT,reuseaddr,fork,nodelay" "TCP:127.0.0.1:$LISTEN,nodelay" \
        2>/dev/null &
    track
    until_true 5 sh -c "ss -Htln 'sport = :$SPORT' | grep -q ."
    # The same ssh, straight to the agent's --listen port through socat.
    sshs() {
        ssh -F /dev/null -o BatchMode=yes -o LogLevel=ERROR -o IdentitiesOnly=yes \
            -i "$HOME/.ssh/id_ed25519" -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no \
            -o ProxyCommand="socat - TCP:127.0.0.1:$SPORT,nodelay" "$NAME" "$@"
    }
    # `airlock join` above made a new ticket: take a fresh one.
    line=$("$AIRLOCK" join "$NAME" --print 2>/dev/null)
    TICKET=$(sed -n "s/.*--ticket \([^' ]*\).*/\1/p" <<<"$line")
    best() { # CMD...: best wall time of 3 runs, in seconds
        local b=999 i s e
        for i in 1 2 3; do
            s=$(date +%s.%N)
            "$@" >/dev/null 2>&1 || { bad "bench run failed: $*"; return; }
            e=$(date +%s.%N)
            b=$(echo "if ($e - $s < $b) $e - $s else $b" | bc -l)
        done
        echo "$b"
    }
    up() { "$1" 'cat >/dev/null' <"$TMP/blob"; } # SSH-FUNCTION
    up_relay=$(best up sshp)
    up_socat=$(best up sshs)
    down_relay=$(best sshp "cat $TMP/blob")
    down_socat=$(best sshs "cat $TMP/blob")
    printf 'bench: %s MiB up:   airlock %.0f MiB/s, socat %.0f MiB/s, ratio %.2f\n' "$MB" \
        "$(echo "$MB / $up_relay" | bc -l)" "$(echo "$MB / $up_socat" | bc -l)" \
        "$(echo "$up_socat / $up_relay" | bc -l)"
    printf 'bench: %s MiB down: airlock %.0f MiB/s, socat %.0f MiB/s, ratio %.2f\n' "$MB" \
        "$(echo "$MB / $down_relay" | bc -l)" "$(echo "$MB / $down_socat" | bc -l)" \
        "$(echo "$down_socat / $down_relay" | bc -l)"
fi

finish
