# Shared set-up for the end-to-end scripts (tests/e2e/run, tests/e2e/relay-*.sh).
# Sourced, never run:
#
#   . "$(dirname "$0")/lib.sh"
#   e2e_setup airlock-e2e             # TMP, HOME, traps, PASS/FAIL, AIRLOCKD/AIRLOCK
#   need_tools ssh curl jq ss; need_binaries
#   server_port                       # PORT, URL
#   cat >"$TMP/airlock.yaml" <<EOF ... EOF
#   start_airlockd || airlockd_failed
#   check "it works" until_true 10 some_predicate
#   finish                            # prints "N passed, N failed", exits 1 on a failure
#
# Every server listens on 127.0.0.1 on a port free_port picked, every process
# started is recorded in PIDS (track) and killed by PID on exit, and everything
# runs with a temporary HOME (root's start-up files run pyenv and can hang).
# Functions that run ssh read TMP, URL and AIRLOCK; those are set here.
# shellcheck shell=bash disable=SC2034  # the variables set here are read by the scripts

# e2e_setup PREFIX: resolves AIRLOCKD/AIRLOCK (default build/airlockd, build/airlock;
# relative paths are taken from the repository root ROOT), makes TMP
# (/tmp/PREFIX.XXXXXX) with TMP/home as HOME and TMP/logs, clears the variables
# that would steer airlock or ssh from outside, puts airlock on PATH, zeroes the
# counters and installs the traps (cleanup on exit; SIGPIPE ignored, so a
# keystroke FIFO whose reader died does not kill the runner).
e2e_setup() {
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    AIRLOCKD=${AIRLOCKD:-$ROOT/build/airlockd}
    AIRLOCK=${AIRLOCK:-$ROOT/build/airlock}
    case $AIRLOCKD in /*) ;; *) AIRLOCKD=$ROOT/$AIRLOCKD ;; esac
    case $AIRLOCK in /*) ;; *) AIRLOCK=$ROOT/$AIRLOCK ;; esac
    PASS=0
    FAIL=0
    PIDS=()
    TMUX_SOCKS=()
    TMP=$(mktemp -d "/tmp/$1.XXXXXX")
    export HOME=$TMP/home
    mkdir -p "$HOME" "$TMP/logs"
    unset SSH_AUTH_SOCK TMUX TMUX_PANE AIRLOCK_SOCK AIRLOCK_SESSION AIRLOCK_CONN AIRLOCK_SERVER \
        AIRLOCK_TOKEN AIRLOCK_OIDC_SCOPE ACTIONS_ID_TOKEN_REQUEST_URL ACTIONS_ID_TOKEN_REQUEST_TOKEN CI
    export SHELL=/bin/bash
    PATH="$(dirname "$AIRLOCK"):$PATH"
    export PATH
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    trap '' PIPE
}

# cleanup: the EXIT trap. SIGTERM to every PID in PIDS, SIGKILL to what is
# still there once they have all exited or 5 s have passed, kills the tmux
# servers in TMUX_SOCKS, removes TMP (kept, and named, with E2E_KEEP=1).
cleanup() {
    local p s
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    until_true 5 all_exited "${PIDS[@]}"
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    for s in "${TMUX_SOCKS[@]}"; do [ -S "$s" ] && tmux -S "$s" kill-server 2>/dev/null; done
    if [ "${E2E_KEEP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}

# track [VAR]: right after `cmd &`, records $! for cleanup (and in VAR).
track() {
    PIDS+=("$!")
    [ $# -gt 0 ] && printf -v "$1" '%s' "$!"
    return 0
}

# ok DESC: counts a pass and prints "ok    DESC".
ok() {
    PASS=$((PASS + 1))
    echo "ok    $1"
}

# bad DESC [DETAIL]: counts a failure and prints "FAIL  DESC" (and DETAIL below it).
bad() {
    FAIL=$((FAIL + 1))
    echo "FAIL  $1"
    [ $# -gt 1 ] && echo "      $2"
}

# check DESC CMD...: passes when CMD succeeds.
check() {
    local d=$1
    shift
    if "$@"; then ok "$d"; else bad "$d" "command: $*"; fi
}

# until_true SECONDS CMD...: polls CMD every 0.2 s. CMD is run again on every try,
# so it must be a command or predicate function: `until_true 10 test "$(f)" = x`
# evaluates f once. This is how the e2e scripts wait: for an event (CMD turning
# true), with SECONDS only as the deadline.
until_true() {
    local n=$(($1 * 5))
    shift
    while [ $n -gt 0 ]; do
        "$@" && return 0
        sleep 0.2 # the poll interval: CMD is the event
        n=$((n - 1))
    done
    return 1
}

# exited PID: true once PID is gone.
exited() { ! kill -0 "$1" 2>/dev/null; }
# all_exited PID...: true once every PID is gone.
all_exited() {
    local p
    for p in "$@"; do kill -0 "$p" 2>/dev/null && return 1; done
    return 0
}

# finish: prints a blank line and the closing "N passed, N failed", then exits
# (status 1 when anything failed).
finish() {
    echo
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" = 0 ]
    exit
}

# need_tools TOOL...: stops with "0 passed, 1 failed" when a tool is missing.
need_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "missing tool: $tool"; echo "0 passed, 1 failed"; exit 1; }
    done
}

# need_binaries: stops with "0 passed, 1 failed" when AIRLOCKD or AIRLOCK is not built.
need_binaries() {
    [ -x "$AIRLOCKD" ] || { echo "no $AIRLOCKD (make bin)"; echo "0 passed, 1 failed"; exit 1; }
    [ -x "$AIRLOCK" ] || { echo "no $AIRLOCK (make bin)"; echo "0 passed, 1 failed"; exit 1; }
}

# free_port: prints a TCP port in 20000-31999 that no socket uses and that
# no earlier free_port of this run handed out (they are listed in TMP/ports).
free_port() {
    local p
    while :; do
        # below the kernel's ephemeral range (32768-60999), so no outgoing
        # connection can be holding it; any socket on it (any state) rules it out
        p=$((20000 + RANDOM % 12000))
        grep -qx "$p" "$TMP/ports" 2>/dev/null && continue
        ss -Htan "sport = :$p" 2>/dev/null | grep -q . || { echo "$p" >>"$TMP/ports"; echo "$p"; return; }
    done
}

# server_port: picks airlockd's PORT and sets URL=http://127.0.0.1:PORT.
server_port() {
    PORT=$(free_port)
    URL=http://127.0.0.1:$PORT
}

# start_airlockd: starts `airlockd --dev` on 127.0.0.1:PORT with TMP/airlock.yaml
# and TMP/data (output appended to TMP/logs/airlockd.log, so a restart keeps the
# first run's), sets SERVER_PID, and waits up to 10 s for /healthz.
start_airlockd() {
    mkdir -p "$TMP/data"
    "$AIRLOCKD" --dev --config "$TMP/airlock.yaml" --data-dir "$TMP/data" \
        --listen "127.0.0.1:$PORT" >>"$TMP/logs/airlockd.log" 2>&1 &
    track SERVER_PID
    until_true 10 curl -sf -o /dev/null "$URL/healthz"
}

# airlockd_failed: counts "airlockd starts" as failed, with the log's tail, and finishes.
airlockd_failed() {
    bad "airlockd starts" "$(tail -5 "$TMP/logs/airlockd.log")"
    finish
}

# api METHOD PATH TOKEN [BODY]: a request to URL with a bearer token (and a JSON
# body); sets CODE (the HTTP status) and BODY (the response).
CODE=
BODY=
api() {
    local out
    if [ $# -ge 4 ]; then
        out=$(curl -s -w '\n%{http_code}' -X "$1" -H "Authorization: Bearer $3" \
            -H 'Content-Type: application/json' --data "$4" "$URL$2")
    else
        out=$(curl -s -w '\n%{http_code}' -X "$1" -H "Authorization: Bearer $3" "$URL$2")
    fi
    CODE=${out##*$'\n'}
    BODY=${out%$'\n'*}
}

# dev_token USER GROUPS-JSON: prints a token minted by airlockd's dev endpoint.
dev_token() {
    curl -s -X POST -H 'Content-Type: application/json' \
        --data "{\"user\":\"$1\",\"groups\":$2}" "$URL/api/v1/dev/token" | jq -r .token
}

# session_field NAME JQ: prints JQ of debug session NAME, read with API_TOKEN.
API_TOKEN=
session_field() {
    api GET "/api/v1/debug-sessions/$1" "$API_TOKEN"
    jq -r "$2" <<<"$BODY"
}

# state_is NAME STATE: true when session NAME is in STATE (a predicate for until_true).
state_is() { [ "$(session_field "$1" .status.state)" = "$2" ]; }

# relay_opts KEY KNOWN_HOSTS [TICKET]: sets RELAY_OPTS, the options for ssh, sftp
# and scp through `airlock proxy` and the relay: no config file, no prompts, only
# KEY offered, the host key pinned in KNOWN_HOSTS, the ticket as the bearer
# (without one, proxy uses the cached token).
relay_opts() {
    RELAY_OPTS=(-F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes
        -o UserKnownHostsFile="$2" -o LogLevel=ERROR -o ConnectTimeout=30 -i "$1"
        -o ProxyCommand="$AIRLOCK --server $URL proxy %n${3:+ --ticket $3}")
}

# relay_ssh KEY KNOWN_HOSTS TICKET HOST [ARGS...]: the real ssh client with relay_opts
# (an empty TICKET: the cached token).
relay_ssh() {
    relay_opts "$1" "$2" "$3"
    shift 3
    # shellcheck disable=SC2029  # the command is meant to expand here
    ssh "${RELAY_OPTS[@]}" "$@"
}

# fn_env: the shell functions and the variables the ssh helpers read (TMP, URL,
# AIRLOCK, TICKET_*), as text for a child `bash -c`.
fn_env() {
    declare -f
    # shellcheck disable=SC2086  # variable names
    declare -p TMP URL AIRLOCK ${!TICKET_*}
}

# with_timeout SECONDS CMD...: CMD (a shell function too) under timeout(1), in a
# child bash that has the functions and variables of fn_env.
with_timeout() {
    local secs=$1
    shift
    timeout "$secs" bash -c "$(fn_env)"$'\n''"$@"' with_timeout "$@"
}

# term_start TAG COMMAND: runs the shell COMMAND under script(1) as an interactive
# terminal: output to TMP/logs/TAG.log, keystrokes from the FIFO TMP/TAG.in
# (write end: fd SHELL_FD_TAG, see type_in). Sets SHELL_PID_TAG.
term_start() {
    local tag=$1 fd
    mkfifo "$TMP/$tag.in"
    script -qfec "$2" "$TMP/logs/$tag.log" <"$TMP/$tag.in" >/dev/null 2>&1 &
    track "SHELL_PID_$tag"
    exec {fd}>"$TMP/$tag.in"
    printf -v "SHELL_FD_$tag" '%s' "$fd"
}

# type_in TAG TEXT: types TEXT and Enter into term_start's terminal TAG.
type_in() {
    local fdv=SHELL_FD_$1
    printf '%s\r' "$2" 1>&"${!fdv}" 2>/dev/null
}

# type_end TAG: closes the keystroke FIFO of terminal TAG.
type_end() {
    local fdv=SHELL_FD_$1 fd
    fd=${!fdv}
    exec {fd}>&-
}

# pane SOCK NAME: prints tmux session NAME's pane (history included) on socket SOCK.
pane() {
    tmux -S "$1" capture-pane -p -J -S - -t "$2" 2>/dev/null
}

# pane_has SOCK NAME TEXT: true when the pane shows TEXT.
pane_has() { pane "$1" "$2" | grep -qF -- "$3"; }

# tmux_has SOCK NAME: true while the tmux server on SOCK has session NAME.
tmux_has() { tmux -S "$1" has-session -t "$2" 2>/dev/null; }

# log_has TAG TEXT: true when TMP/logs/TAG.log contains TEXT.
log_has() { grep -qF -- "$2" "$TMP/logs/$1.log" 2>/dev/null; }
