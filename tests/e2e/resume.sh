#!/usr/bin/env bash
# `airlock resume` alone, N times in a row (default 20): the check to run under load
# (issue 8). Not one of the suites tests/e2e/run runs (those are relay-*.sh); run it by hand:
#
#   stress-ng --cpu 2 & tests/e2e/resume.sh 20; kill %1
#
# Each round: `airlock wait` registers a session (auto-approved), bob joins and runs
# `ssh … airlock resume`, which must exit 0 (its status crosses the agent's and the relay's
# teardown of that very connection), the session must be Terminated and `wait` must exit 0.
# Same environment as tests/e2e/run (AIRLOCKD, AIRLOCK, E2E_KEEP). Prints "N passed, N failed".
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
e2e_setup airlock-resume
ROUNDS=${1:-20}
mkdir -p "$TMP/keys"
need_tools ssh ssh-keygen curl jq ss
need_binaries

server_port
cat >"$TMP/airlock.yaml" <<'EOF'
approvalTimeout: 1h
agentGracePeriod: 5m
auth:
  dev: true
  agentRegistrars: { groups: [ci] }
templates:
  - name: ci-debug
    allowed: { groups: [ci, developers] }
    constraints: { maxDuration: 2h, defaultDuration: 1h }
    terminalSharing: { enabled: true, provider: tmux, maxParticipants: 5 }
    allowedOperations: { shell: true, exec: true, sftp: false, portForward: false }
EOF
start_airlockd || airlockd_failed
ALICE=$(dev_token alice '["ci","developers"]')
BOB=$(dev_token bob '["developers"]')
API_TOKEN=$ALICE
printf '%s\n' "$ALICE" >"$TMP/alice.tok"
ssh-keygen -q -t ed25519 -N '' -C bob@e2e -f "$TMP/keys/bob"
name_from_box() { grep -o 'debug session ds-[a-z0-9]*' "$1" | head -1 | cut -d' ' -f3; }
box_has_name() { [ -n "$(name_from_box "$1")" ]; }

for i in $(seq 1 "$ROUNDS"); do
    run=$TMP/run$i
    TMUX_SOCKS+=("$run/tmux.sock")
    "$AIRLOCK" --server "$URL" wait --name "ci/resume-$i" --template ci-debug --invite bob \
        --reason "e2e: resume round $i" --token-file "$TMP/alice.tok" --run-dir "$run" \
        >"$TMP/logs/wait$i.out" 2>"$TMP/logs/wait$i.err" &
    track WAIT_PID
    until_true 30 box_has_name "$TMP/logs/wait$i.out"
    NAME=$(name_from_box "$TMP/logs/wait$i.out")
    if [ -z "$NAME" ] || ! until_true 30 state_is "$NAME" Active; then
        bad "round $i: the session becomes Active" "$(tail -3 "$TMP/logs/wait$i.err")"
        continue
    fi
    api POST "/api/v1/debug-sessions/$NAME/join" "$BOB" \
        "$(jq -cn --arg k "$(cat "$TMP/keys/bob.pub")" '{sshPublicKey:$k}')"
    TICKET=$(jq -r .attach.ticket <<<"$BODY")
    jq -r .attach.knownHostsLine <<<"$BODY" >"$TMP/kh.$NAME"
    out=$(relay_ssh "$TMP/keys/bob" "$TMP/kh.$NAME" "$TICKET" "$NAME" 'airlock resume' 2>&1)
    rc=$?
    check "round $i: airlock resume succeeds" test $rc = 0
    [ $rc = 0 ] || echo "      (status $rc: $out)"
    check "round $i: the session is Terminated" until_true 10 state_is "$NAME" Terminated
    check "round $i: airlock wait exits" until_true 30 exited "$WAIT_PID"
    wait "$WAIT_PID"
    check "round $i:   ... with status 0" test $? = 0
done

finish
