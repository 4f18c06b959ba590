#!/usr/bin/env bash
# The README's five-minute tour, run as printed (issue 10 item 6), so the README cannot drift:
# the sh block between <!-- tour:begin --> and <!-- tour:end --> in README.md runs against a
# fresh airlockd started the way `make run` starts it (docs/examples/airlock.yaml, --dev), with
# only the port (8080 → a free one) and the agent's log file changed. Run by tests/e2e/run; same
# environment (AIRLOCKD, AIRLOCK, E2E_KEEP). Prints "N passed, N failed".
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
e2e_setup airlock-tour
need_tools ssh ssh-keygen tmux curl ss setsid timeout
need_binaries

server_port
cp "$ROOT/docs/examples/airlock.yaml" "$TMP/airlock.yaml"
start_airlockd || airlockd_failed

# The block, as the README prints it.
sed -n '/<!-- tour:begin -->/,/<!-- tour:end -->/p' "$ROOT/README.md" | sed '1,2d;$d' | sed '$d' \
    >"$TMP/tour.block"
check "the README has the tour block" grep -q '^airlock ' "$TMP/tour.block"
check "  ... and it uses no curl or jq" sh -c "! grep -qE '(^|[^-])\\b(curl|jq)\\b' '$TMP/tour.block'"
sed -e "s|127.0.0.1:8080|127.0.0.1:$PORT|g" -e "s|/tmp/airlock-agent.log|$TMP/logs/agent.log|g" \
    "$TMP/tour.block" >"$TMP/tour.sh"
# $PWD/build is the checkout's build directory in the README: here, the binaries under test.
mkdir -p "$TMP/checkout"
ln -s "$(dirname "$AIRLOCK")" "$TMP/checkout/build"

# Its own process group, so whatever it leaves running is stopped by PID (its group) below.
(cd "$TMP/checkout" && exec setsid timeout 300 bash "$TMP/tour.sh") \
    >"$TMP/logs/tour.out" 2>"$TMP/logs/tour.err" &
track TOUR_PID
wait "$TOUR_PID"
rc=$?
kill -- -"$TOUR_PID" 2>/dev/null
check "the tour runs to its end with status 0" test $rc = 0
[ $rc = 0 ] || echo "      stderr: $(tail -5 "$TMP/logs/tour.err")"
out=$TMP/logs/tour.out
err=$TMP/logs/tour.err
check "whoami shows alice" grep -q '^user: *alice$' "$out"
check "the request with a typo gets a suggestion" grep -q 'did you mean: ci-debug?' "$err"
check "alice's own approval is refused with the server's message" grep -q '^airlock: approve: ' "$err"
check "the printed join line pins the host key" grep -q "KnownHostsCommand='/bin/echo ds-" "$out"
check "the joined command ran in the session" grep -q '^hello from ' "$out"
check "renew extended the session" grep -q '^ds-[a-z0-9]*: Active, expires in .* (renewals 1/3)$' "$out"
check "events shows the approval and the renewal" \
    sh -c "grep -q ' approved ' '$out' && grep -q ' renewed ' '$out'"
check "the session ends Terminated" grep -q '^ds-[a-z0-9]*: Terminated' "$out"
check "the agent was stopped by the tour's last line" \
    sh -c "grep -q 'registered as agent demo' '$TMP/logs/agent.log' && ! kill -0 -- -$TOUR_PID 2>/dev/null"

finish
