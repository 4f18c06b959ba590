#!/usr/bin/env bash
# End-to-end for the person's verbs (issue 10 items 5-6), run by tests/e2e/run: a real
# airlockd, an `airlock agent`, the real OpenSSH client. request, approve, reject, renew,
# terminate, invite, events: success, refusal (the server's message, exit 1), --json, usage
# (2), unreachable (3); "did you mean" for unknown names; sessions --state in any case; the
# paste-ready join line (host key pinned in it); the token cache across two users.
# Same environment as tests/e2e/run (AIRLOCKD, AIRLOCK, E2E_KEEP). Prints "N passed, N failed".
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
e2e_setup airlock-cli
need_tools ssh ssh-keygen tmux curl jq ss
need_binaries

server_port
cat >"$TMP/airlock.yaml" <<'EOF2'
approvalTimeout: 1h
agentGracePeriod: 5m
auth:
  dev: true
  agentRegistrars: { groups: [ops] }
templates:
  - name: ci-debug
    allowed: { groups: [developers], agents: ["*"] }
    approvers: { groups: [sre] }
    constraints: { maxDuration: 2h, defaultDuration: 1h, allowRenewal: true, maxRenewals: 2 }
    allowedOperations: { shell: true, exec: true, sftp: false, portForward: false }
EOF2
start_airlockd || airlockd_failed
export AIRLOCK_SERVER=$URL
CAROL=$(dev_token carol '["sre"]')
BOB=$(dev_token bob '["developers"]')
al() { "$AIRLOCK" "$@"; } # the CLI as whoever is logged in

# ------------------------------------------------------------------ identities
al login --dev --user erin --groups ops 2>/dev/null
check "erin logs in" test $? = 0
HP=127.0.0.1-$PORT
check "erin's token is cached per server and user, mode 0600" \
    test "$(stat -c %a "$HOME/.config/airlock/tokens/$HP/users/erin" 2>&1)" = 600
check "  ... in 0700 directories" \
    test "$(stat -c %a "$HOME/.config/airlock/tokens" "$HOME/.config/airlock/tokens/$HP" | sort -u)" = 700
LISTEN=$(free_port)
al agent --name demo --run-dir "$TMP/run" --listen "127.0.0.1:$LISTEN" \
    >"$TMP/logs/agent.out" 2>"$TMP/logs/agent.err" &
track AGENT_PID
TMUX_SOCKS+=("$TMP/run/tmux.sock")
online() { api GET /api/v1/agents/demo "$BOB" && jq -e .online <<<"$BODY" >/dev/null; }
check "erin's agent comes online" until_true 20 online

al login --dev --user alice --email alice@example.com --groups developers 2>/dev/null
out=$(al whoami)
check "whoami shows alice after her login" grep -q '^user: *alice$' <<<"$out"
check "  ... with the issuer, the expiry and the server" \
    bash -c "grep -q '^issuer: ' <<<'$out' && grep -q '^expires: .*in ' <<<'$out' && grep -q '^server: *$URL$' <<<'$out'"
check "  ... and lists both cached identities" grep -q '^cached: *alice (active), erin$' <<<"$out"
check "whoami --json" test "$(al whoami --json | jq -r '.user + " " + .server')" = "alice $URL"
# The agent restarts (as a service would) while alice is the active identity.
kill "$AGENT_PID"
until_true 10 exited "$AGENT_PID"
offline() { ! online; }
until_true 10 offline
check "the agent remembers whom it ran as" \
    test "$(cat "$HOME/.config/airlock/tokens/$HP/agents/demo" 2>&1)" = erin
al agent --name demo --run-dir "$TMP/run" --listen "127.0.0.1:$LISTEN" \
    >"$TMP/logs/agent2.out" 2>"$TMP/logs/agent2.err" &
track AGENT_PID
check "after alice's login the agent restarts as erin (no --as: it remembered, token still cached)" until_true 20 online
check "  ... and alice stays the active identity" grep -q '^user: *alice$' <<<"$(al whoami)"

# ------------------------------------------------------------------ request
al request --template ci-debg --agent demo >/dev/null 2>"$TMP/logs/r1.err"
rc=$?
check "request with a mistyped template exits 1" test $rc = 1
check "  ... with the server's error" grep -q "unknown template 'ci-debg'" "$TMP/logs/r1.err"
check "  ... and a suggestion" grep -q 'did you mean: ci-debug?' "$TMP/logs/r1.err"
al request --template ci-debug --agent dmo >/dev/null 2>"$TMP/logs/r2.err"
check "request with a mistyped agent suggests the agent" grep -q 'did you mean: demo?' "$TMP/logs/r2.err"
al request --agent demo >/dev/null 2>&1
check "request without --template is a usage error (2)" test $? = 2
NAME=$(al request --template ci-debug --agent demo --duration 30m --reason "e2e cli" \
    --invite bob 2>"$TMP/logs/r3.err")
check "request prints the new session's name" grep -qE '^ds-[a-z0-9]{10}$' <<<"$NAME"
check "  ... and its state on stderr" grep -q "PendingApproval" "$TMP/logs/r3.err"
API_TOKEN=$CAROL
check "  ... with the reason and the invitee" \
    test "$(session_field "$NAME" '.spec.reason + " " + .spec.invitedParticipants[0]')" = "e2e cli bob"

# ------------------------------------------------------------------ approve, sessions
al approve "$NAME" 2>"$TMP/logs/a1.err"
rc=$?
check "alice (no approver) cannot approve (exit 1, the server's message)" \
    sh -c "test $rc = 1 && grep -q 'airlock: approve: you are not an approver' '$TMP/logs/a1.err'"
out=$(AIRLOCK_TOKEN=$CAROL al approve "$NAME" --reason "go ahead" --json)
check "carol approves (--json: the session)" test "$(jq -r .status.approval.approvedBy <<<"$out")" = carol
check "the session becomes Active" until_true 15 state_is "$NAME" Active
AIRLOCK_TOKEN=$CAROL al approve "$NAME" >/dev/null 2>"$TMP/logs/a2.err"
check "a second decision is refused (1)" test $? = 1
check "sessions --state active (lower case) lists it" \
    test "$(al sessions --state active --json | jq -r '.sessions[0].name')" = "$NAME"
al sessions --state actve >/dev/null 2>"$TMP/logs/s1.err"
rc=$?
check "sessions --state with a mistake exits 2 and lists the valid states" \
    sh -c "test $rc = 2 && grep -q 'Pending PendingApproval Active Expired Terminated Failed' '$TMP/logs/s1.err'"

# ------------------------------------------------------------------ invite, renew
check "invite adds dave" sh -c "'$AIRLOCK' invite '$NAME' dave --role viewer >/dev/null"
check "  ... as the server records" \
    sh -c "'$AIRLOCK' invite '$NAME' erin --json | jq -e '.spec.invitedParticipants | index(\"dave\")' >/dev/null"
AIRLOCK_TOKEN=$BOB al invite "$NAME" mallory >/dev/null 2>"$TMP/logs/i1.err"
check "bob (not the owner) cannot invite (1)" test $? = 1
al invite "$NAME" >/dev/null 2>&1
check "invite without users is a usage error (2)" test $? = 2
out=$(al renew "$NAME" --for 30m)
check "renew prints the new expiry and count" grep -q "^$NAME: Active, expires in .* (renewals 1/2)$" <<<"$out"
al renew "$NAME" --for 99h >/dev/null 2>"$TMP/logs/n1.err"
rc=$?
check "renew past maxDuration is refused (1) with the server's reason" \
    sh -c "test $rc = 1 && grep -q 'airlock: renew: .*maxDuration' '$TMP/logs/n1.err'"
al renew "$NAME" --until x >/dev/null 2>&1
check "renew with an unknown option is a usage error (2)" test $? = 2

# ------------------------------------------------------------------ join: the paste-ready line
mkdir -p "$HOME/.ssh"
ssh-keygen -q -t ed25519 -N '' -C alice@e2e -f "$HOME/.ssh/id_ed25519"
line=$(al join "$NAME" --print 2>/dev/null)
check "the join line pins the host key itself" grep -q "KnownHostsCommand='/bin/echo $NAME ssh-ed25519 " <<<"$line"
# (ssh finds ~/.ssh through the passwd entry, not $HOME: -i names the test's default key)
KEY=$HOME/.ssh/id_ed25519
out=$(bash -c "$line -o BatchMode=yes -i '$KEY' 'echo pasted-line-works'" 2>"$TMP/logs/paste.err")
check "the line, pasted as printed, runs a command with the key checked" test "$out" = pasted-line-works
bad_line=$(sed 's|/bin/echo \([^ ]*\) ssh-ed25519 [^'"'"']*|/bin/echo \1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMnD0d3fA6R2Tq7bU6nQ5uJdGk2O8pYV0cXk3bWz8x1a|' <<<"$line")
bash -c "$bad_line -o BatchMode=yes -i '$KEY' true" >/dev/null 2>"$TMP/logs/paste-bad.err"
rc=$?
check "  ... and with another key in it, ssh refuses the host" \
    sh -c "test $rc = 255 && grep -q 'Host key verification failed' '$TMP/logs/paste-bad.err'"
out=$(al join "$NAME" -- echo joined-with-a-command 2>"$TMP/logs/join.err")
check "airlock join NAME -- COMMAND runs it with the same pin" test "$out" = joined-with-a-command

# ------------------------------------------------------------------ events, terminate, reject
out=$(al events "$NAME")
check "events prints the audit trail" \
    bash -c "grep -q ' created ' <<<'$out' && grep -q ' approved ' <<<'$out' && grep -q ' renewed ' <<<'$out'"
check "events --json is the server's list" \
    test "$(al events "$NAME" --json | jq -r '[.events[].type] | index("invited") != null')" = true
AIRLOCK_TOKEN=$BOB al terminate "$NAME" >/dev/null 2>&1
check "bob (participant) cannot terminate (1)" test $? = 1
out=$(al terminate "$NAME" --reason done)
check "alice terminates" grep -q "^$NAME: Terminated" <<<"$out"
al terminate "$NAME" >/dev/null 2>"$TMP/logs/t2.err"
rc=$?
check "terminating again is refused (1) with the server's message" \
    sh -c "test $rc = 1 && grep -q 'airlock: terminate: ..' '$TMP/logs/t2.err'"
N2=$(al request --template ci-debug --agent demo 2>/dev/null)
out=$(AIRLOCK_TOKEN=$CAROL al reject "$N2" --reason "not now" --json)
check "carol rejects a request with a reason" \
    test "$(jq -r '.status.state + " " + .status.approval.reason' <<<"$out")" = "Terminated not now"
al events ds-aaaaaaaaaa >/dev/null 2>"$TMP/logs/e404.err"
rc=$?
check "events of an unknown session: exit 1, 'not found'" \
    sh -c "test $rc = 1 && grep -q 'not found' '$TMP/logs/e404.err'"
al approve >/dev/null 2>&1
check "approve without a name is a usage error (2)" test $? = 2
AIRLOCK_TOKEN=$BOB al --server http://127.0.0.1:1 events "$NAME" >/dev/null 2>&1
check "a server that is not there: exit 3" test $? = 3

# ------------------------------------------------------------------ the old token file
rm -rf "$HOME/.config/airlock/tokens"
printf '%s\n' "$BOB" >"$HOME/.config/airlock/token"
check "the old single token file is still read" grep -q '^user: *bob$' <<<"$(al whoami)"

finish
