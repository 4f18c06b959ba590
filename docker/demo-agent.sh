#!/bin/sh
# The demo host agent of compose.yaml: get a token for Keycloak's service account
# "service-account-airlock-demo-agent" (group "ops", which airlock.yaml lets register host
# agents), then run `airlock agent`. The token is used once, for the registration; the agent
# then authenticates with its own credential. It reaches airlock through $AIRLOCK_TOKEN,
# which the agent removes from the environment of the shells it starts.
set -eu

token_url=${KEYCLOAK_TOKEN_URL:-http://localhost:8081/realms/airlock/protocol/openid-connect/token}
i=0
until resp=$(curl -fsS --max-time 5 -d grant_type=client_credentials \
                  -d client_id="${OIDC_CLIENT_ID:?}" -d client_secret="${OIDC_CLIENT_SECRET:?}" \
                  "$token_url" 2>/dev/null); do
    i=$((i + 1))
    [ "$i" -lt 60 ] || { echo "demo-agent: no token from $token_url" >&2; exit 3; }
    sleep 2
done
AIRLOCK_TOKEN=$(printf '%s\n' "$resp" | sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')
[ -n "$AIRLOCK_TOKEN" ] || { echo "demo-agent: no access_token from $token_url" >&2; exit 3; }
export AIRLOCK_TOKEN

# The host key lives on a volume, so the key participants pinned survives a re-creation.
mkdir -p "$HOME/.airlock"
exec airlock agent --name "${AGENT_NAME:-demo}" --label env=demo --label runtime=docker \
    --host-key "$HOME/.airlock/host_ed25519"
