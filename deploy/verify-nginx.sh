#!/usr/bin/env bash
# Runs deploy/nginx-airlock.conf in front of a real airlockd and checks what airlock needs
# from a TLS-terminating proxy, end to end:
#
#   deploy/verify-nginx.sh [BUILD_DIR]      (default: build; needs `make bin` first)
#
# The configuration is used as it is, with only its ports, certificate paths, log path and
# upstream rewritten for loopback (a throw-away self-signed certificate). airlockd runs in
# dev mode with publicUrl = the nginx URL, so that agents get their control URL through
# nginx. Checked: `nginx -t`; the redirect to https; the API and UI through TLS; /metrics;
# an agent whose name contains '/' (sent as %2F) opens its control channel through nginx;
# ssh through `airlock proxy` -> nginx -> airlockd -> nginx -> agent (connect and tunnel
# WebSockets); airlockd restarted behind nginx: exit status 0, the agent reconnects and ssh
# works again; query strings (join tickets) stay out of the access log.
# Needs: nginx (Debian: nginx or nginx-light), openssl, ssh, jq, curl, tmux.
# Everything listens on 127.0.0.1 on ports picked here; every process is killed by PID.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
for t in nginx openssl ssh ssh-keygen jq curl tmux ss; do
    command -v "$t" >/dev/null || { echo "verify-nginx: $t is not installed" >&2; exit 2; }
done
[ -x "$build/airlockd" ] && [ -x "$build/airlock" ] || { echo "verify-nginx: run make bin first" >&2; exit 2; }

work=$(mktemp -d /tmp/airlock-nginx.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    [ -f "$work/nginx.pid" ] && kill -QUIT "$(cat "$work/nginx.pid")" 2>/dev/null
    sleep 0.5
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
free_port() {
    local p
    for p in $(shuf -i 20000-60000 -n 100); do
        ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
    return 1
}
wait_for() { # seconds command...
    local n=$(( $1 * 10 )); shift
    while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.1; n=$((n - 1)); done
    return 1
}

up=$(free_port) tls=$(free_port) plain=$(free_port)
B=https://127.0.0.1:$tls
export HOME=$work/home AIRLOCK_SERVER=$B AIRLOCK_CA_FILE=$work/ssl/fullchain.pem
mkdir -p "$HOME" "$work/ssl" "$work/logs" "$work/tmp"
chmod 777 "$work/tmp"
C=(--cacert "$AIRLOCK_CA_FILE" -s)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$work/ssl/privkey.pem" -out "$work/ssl/fullchain.pem" 2>/dev/null
sed -e "s#listen 80;#listen 127.0.0.1:$plain;#" -e '/listen \[::\]/d' \
    -e "s#listen 443 ssl;#listen 127.0.0.1:$tls ssl;#" -e "s#/etc/ssl/airlock/#$work/ssl/#" \
    -e "s#server 127.0.0.1:8080;#server 127.0.0.1:$up;#" \
    -e "s#/var/log/nginx/airlock.access.log#$work/logs/airlock.access.log#" \
    "$root/deploy/nginx-airlock.conf" > "$work/airlock.conf"
cat > "$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log info;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    access_log $work/logs/access.log;
    client_body_temp_path $work/tmp/body;
    proxy_temp_path $work/tmp/proxy;
    fastcgi_temp_path $work/tmp/fcgi;
    uwsgi_temp_path $work/tmp/uwsgi;
    scgi_temp_path $work/tmp/scgi;
    include $work/airlock.conf;
}
EOF
check "nginx -t accepts deploy/nginx-airlock.conf" nginx -q -t -p "$work" -c "$work/nginx.conf"
nginx -p "$work" -c "$work/nginx.conf" || { echo "verify-nginx: nginx did not start" >&2; exit 1; }

start_airlockd() {
    "$build/airlockd" --dev --config "$root/docs/examples/airlock.yaml" --data-dir "$work/data" \
        --listen "127.0.0.1:$up" --public-url "$B" --ui-dir "$root/frontend/dist" \
        --log-format json >> "$work/airlockd.log" 2>&1 &
    apid=$!
    pids+=("$apid")
    wait_for 10 curl "${C[@]}" -f -o /dev/null "$B/readyz"
}
check "airlockd answers through nginx (TLS)" start_airlockd
check "http:// redirects to https://" \
    test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$plain/x")" = 301
check "GET /api/v1/config through nginx" \
    test "$(curl "${C[@]}" "$B/api/v1/config" | jq -r .publicUrl)" = "$B"
check "/metrics through nginx from loopback" \
    bash -c "curl ${C[*]} '$B/metrics' | grep -q '^airlock_agents_online'"
code=$(curl "${C[@]}" -o /dev/null -w '%{http_code}' "$B/debug-sessions/ds-aaaaaaaaaa")
check "UI route through nginx (index.html, or 404 'UI not built')" \
    bash -c "[ '$code' = 200 ] || [ '$code' = 404 ]"

online() { [ "$(curl "${C[@]}" "$B/metrics" | awk '/^airlock_agents_online/{print $2}')" = "${1:-1}" ]; }
"$build/airlock" login --dev --user erin --groups ops >/dev/null 2>&1
"$build/airlock" agent --name ops/verify-1 --run-dir "$work/run" > "$work/agent.log" 2>&1 &
agent=$!
pids+=("$agent")
check "agent 'ops/verify-1' (%2F in the URL) opens its control channel through nginx" wait_for 15 online 1

tok() { curl "${C[@]}" -X POST "$B/api/v1/dev/token" \
    -d "{\"user\":\"$1\",\"email\":\"$1@example.com\",\"groups\":[\"$2\"]}" | jq -r .token; }
ALICE=$(tok alice developers)
ssh-keygen -q -t ed25519 -N '' -f "$work/alice" </dev/null
name=$(curl "${C[@]}" -X POST "$B/api/v1/debug-sessions" -H "Authorization: Bearer $ALICE" \
    -d '{"template":"sandbox","agent":"ops/verify-1","requestedDuration":"30m"}' | jq -r .name)
state() { [ "$(curl "${C[@]}" "$B/api/v1/debug-sessions/$name" -H "Authorization: Bearer $ALICE" \
    | jq -r .status.state)" = Active ]; }
check "session $name is Active" wait_for 10 state

ssh_through() {
    local j t out
    j=$(curl "${C[@]}" -X POST "$B/api/v1/debug-sessions/$name/join" -H "Authorization: Bearer $ALICE" \
        -d "{\"sshPublicKey\":\"$(cat "$work/alice.pub")\"}")
    t=$(jq -r .attach.ticket <<<"$j")
    jq -r .attach.knownHostsLine <<<"$j" > "$work/known_hosts"
    out=$(timeout 30 ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i "$work/alice" \
        -o UserKnownHostsFile="$work/known_hosts" \
        -o ProxyCommand="$build/airlock proxy %n --ticket $t" "$name" \
        'echo "via-nginx $AIRLOCK_SESSION"; head -c 1048576 /dev/zero | wc -c' 2>>"$work/ssh.err")
    [ "$out" = "via-nginx $name
1048576" ]
}
check "ssh exec + 1 MiB through nginx (connect and tunnel WebSockets)" ssh_through

kill -TERM "$apid"
wait "$apid"
check "airlockd exits 0 on SIGTERM (drain)" test $? -eq 0
check "airlockd restarts on the same data directory" start_airlockd
check "the agent reconnects through nginx by itself" wait_for 40 online 1
check "the session is still Active after the restart" state
check "ssh works again after the restart" ssh_through

curl "${C[@]}" -o /dev/null "$B/api/v1/debug-sessions/$name/connect?ticket=SECRET-TICKET-VALUE"
check "query strings (tickets) are not in the access log" \
    bash -c "sleep 0.3; ! grep -q SECRET-TICKET-VALUE '$work/logs/airlock.access.log'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
