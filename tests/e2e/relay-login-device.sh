#!/usr/bin/env bash
# `airlock login` without options: the OIDC device flow (RFC 8628) against a
# small fake identity provider (python3, on 127.0.0.1) that answers discovery,
# device authorization and the token endpoint: "authorization_pending" first,
# then "slow_down", then tokens. The tokens it hands out are dev tokens minted
# by airlockd itself (the server runs with auth.dev and also names the fake
# issuer, whose uiClientId /api/v1/config returns), so airlockd accepts them.
# The access token is opaque on purpose: the CLI must fall back to the ID token.
# A second provider run denies the request.
#
#   tests/e2e/relay-login-device.sh     AIRLOCKD/AIRLOCK default to build/airlockd, build/airlock
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
e2e_setup airlock-login-e2e
need_tools python3 curl jq ss
need_binaries

server_port
IDP_PORT=$(free_port)
IDP=http://127.0.0.1:$IDP_PORT
cat >"$TMP/airlock.yaml" <<EOF
auth:
  dev: true
  issuers:
    - name: fake
      issuer: $IDP
      audience: airlock
      uiClientId: airlock-cli-test
      uiScopes: [openid, profile, email, groups]
templates:
  - name: sandbox
    allowed: { groups: [developers] }
    constraints: { maxDuration: 1h }
EOF

# The fake provider: MODE=ok or deny; records what it was sent in $TMP/idp.log.
cat >"$TMP/idp.py" <<'EOF'
import json, os, sys, urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
port, mode, token_file, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
base = "http://127.0.0.1:%d" % port
polls = {"n": 0}
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/.well-known/openid-configuration":
            self.reply(200, {"issuer": base, "jwks_uri": base + "/jwks",
                             "device_authorization_endpoint": base + "/device",
                             "token_endpoint": base + "/token"})
        elif self.path == "/jwks":
            self.reply(200, {"keys": []})
        else:
            self.reply(404, {"error": "not_found"})
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        with open(log, "a") as f:
            f.write("%s %s\n" % (self.path, json.dumps(form, sort_keys=True)))
        if self.path == "/device":
            self.reply(200, {"device_code": "dev-code-1", "user_code": "WDJB-MJHT",
                             "verification_uri": base + "/activate",
                             "verification_uri_complete": base + "/activate?user_code=WDJB-MJHT",
                             "expires_in": 60, "interval": 1})
        elif self.path == "/token":
            polls["n"] += 1
            if mode == "deny":
                self.reply(400, {"error": "access_denied"})
            elif polls["n"] == 1:
                self.reply(400, {"error": "authorization_pending"})
            elif polls["n"] == 2:
                self.reply(400, {"error": "slow_down"})
            else:
                tok = open(token_file).read().strip()
                self.reply(200, {"access_token": "opaque-not-a-jwt", "token_type": "Bearer",
                                 "id_token": tok, "expires_in": 3600})
        else:
            self.reply(404, {"error": "not_found"})
HTTPServer(("127.0.0.1", port), H).serve_forever()
EOF

start_idp() { # MODE
    python3 "$TMP/idp.py" "$IDP_PORT" "$1" "$TMP/minted" "$TMP/idp.log" 2>>"$TMP/logs/idp.err" &
    track IDP_PID
    until_true 10 curl -sf -o /dev/null "$IDP/.well-known/openid-configuration"
}
start_idp ok || { bad "the fake identity provider starts" "$(tail -3 "$TMP/logs/idp.err")"; finish; }
start_airlockd || airlockd_failed
ok "airlockd and the fake provider start"
check "/api/v1/config names the fake issuer and its client id" \
    test "$(curl -s "$URL/api/v1/config" | jq -r '.oidc.issuer + " " + .oidc.clientId')" = "$IDP airlock-cli-test"

dev_token dora '["developers"]' >"$TMP/minted"

start=$(date +%s)
"$AIRLOCK" --server "$URL" login >"$TMP/logs/login.out" 2>"$TMP/logs/login.err"
rc=$?
took=$(($(date +%s) - start))
check "login (device flow) exits 0" test $rc = 0
check "  ... after showing the verification URL and code" \
    sh -c "grep -q '$IDP/activate' '$TMP/logs/login.err' && grep -q 'WDJB-MJHT' '$TMP/logs/login.err'"
check "  ... and saying who is logged in" grep -q 'as dora' "$TMP/logs/login.err"
check "  ... it waited through authorization_pending and slow_down (>= 1 + 1 + 6 s)" test "$took" -ge 8
TOKFILE=$HOME/.config/airlock/tokens/127.0.0.1-$PORT/users/dora # per server and user (cli-verbs.sh)
check "the ID token was cached (the access token was not a JWT)" \
    test "$(cat "$TOKFILE")" = "$(cat "$TMP/minted")"
check "the device request carried the client id" \
    sh -c "grep '^/device ' '$TMP/idp.log' | grep -q '\"client_id\": \[\"airlock-cli-test\"\]'"
check "  ... and the issuer's uiScopes from /api/v1/config" \
    sh -c "grep '^/device ' '$TMP/idp.log' | grep -q '\"scope\": \[\"openid profile email groups\"\]'"
check "the token request used the device_code grant" \
    grep -q 'urn:ietf:params:oauth:grant-type:device_code' "$TMP/idp.log"
check "sessions works with the new login" sh -c "'$AIRLOCK' sessions --json >/dev/null"

kill "$IDP_PID"
wait "$IDP_PID" 2>/dev/null
start_idp deny || bad "the provider restarts"
cp "$TOKFILE" "$TMP/before"
"$AIRLOCK" --server "$URL" login >/dev/null 2>"$TMP/logs/deny.err"
rc=$?
check "a denied device login exits 1" test $rc = 1
check "  ... saying it was denied" grep -q 'denied' "$TMP/logs/deny.err"
check "  ... and leaves the cached token alone" cmp -s "$TMP/before" "$TOKFILE"
kill "$IDP_PID"
wait "$IDP_PID" 2>/dev/null
"$AIRLOCK" --server "$URL" login >/dev/null 2>"$TMP/logs/noidp.err"
check "an unreachable provider exits 3" test $? = 3
finish
