#!/bin/sh
# The GitHub Action's logic (action.yml at the repository root runs it; docs/ci.md).
# Inputs come as INPUT_* variables:
#   INPUT_SERVER (required)  the airlock server's URL
#   INPUT_TEMPLATE, INPUT_DURATION, INPUT_REASON, INPUT_TIMEOUT, INPUT_EXIT_CODE,
#   INPUT_INVITE (users, separated by spaces or commas), INPUT_AUDIENCE (default airlock)
# Steps: check the inputs (before any download), download the agent bundle this server serves,
# check it against its .sha256, install tmux when it is missing, run `airlock wait` with the
# job's OIDC token. `airlock wait` writes the join command, the known_hosts line and the UI link
# to $GITHUB_STEP_SUMMARY, and reprints its box in the log while CI is set.
# Exit codes: 2 a bad input, 1 a failed download, checksum or set-up, else airlock wait's own.
set -eu

fail() { echo "airlock-action: $*" >&2; exit 1; }
bad_input() { echo "airlock-action: input '$1': $2" >&2; exit 2; }

# duration_ok D: the syntax airlock accepts (duration.c): units d, h, m, s in that order, each at
# most once, not zero, at most 365d.
duration_ok() {
    echo "$1" | grep -Eq '^([0-9]{1,6}d)?([0-9]{1,6}h)?([0-9]{1,6}m)?([0-9]{1,6}s)?$' || return 1
    [ -n "$1" ] || return 1
    secs=0
    rest=$1
    for unit in d:86400 h:3600 m:60 s:1; do
        u=${unit%%:*} mult=${unit#*:}
        case $rest in
        *"$u"*)
            n=$(echo "${rest%%"$u"*}" | sed 's/^0*//; s/^$/0/') # no octal
            rest=${rest#*"$u"}
            secs=$((secs + n * mult))
            ;;
        esac
    done
    [ "$secs" -gt 0 ] && [ "$secs" -le $((365 * 86400)) ]
}

server=${INPUT_SERVER:-}
server=${server%/}
case $server in
http://?* | https://?*) ;;
'') bad_input server "required: the airlock server's URL (https://airlock.example.com)" ;;
*) bad_input server "'$server' is not an http:// or https:// URL" ;;
esac
case $server in *[[:space:]\"\'\\]*) bad_input server "'$server' is not a URL" ;; esac
if [ -n "${INPUT_DURATION:-}" ] && ! duration_ok "$INPUT_DURATION"; then
    bad_input duration "'$INPUT_DURATION' is not a duration (90s, 30m, 1h30m, 2d)"
fi
if [ -n "${INPUT_TIMEOUT:-}" ] && ! duration_ok "$INPUT_TIMEOUT"; then
    bad_input timeout "'$INPUT_TIMEOUT' is not a duration (90s, 30m, 1h30m, 2d)"
fi
if [ -n "${INPUT_EXIT_CODE:-}" ]; then
    if ! echo "$INPUT_EXIT_CODE" | grep -Eq '^[0-9]{1,3}$' || [ "$INPUT_EXIT_CODE" -gt 255 ]; then
        bad_input exit-code "'$INPUT_EXIT_CODE' is not a number from 0 to 255"
    fi
fi
if [ -z "${ACTIONS_ID_TOKEN_REQUEST_URL:-}" ] || [ -z "${ACTIONS_ID_TOKEN_REQUEST_TOKEN:-}" ]; then
    fail "no OIDC token for this job: give the job 'permissions: id-token: write'"
fi

# ---- download and check the agent this server serves
name="airlock-linux-amd64.tar.gz"
dir=${RUNNER_TEMP:-${TMPDIR:-/tmp}}/airlock-agent
rm -rf "$dir"
mkdir -p "$dir"
fetch() { # URL FILE
    if command -v curl >/dev/null 2>&1; then
        curl -fsS --retry 3 --retry-connrefused -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$2" "$1"
    else
        fail "neither curl nor wget is installed"
    fi
}
fetch "$server/download/$name.sha256" "$dir/$name.sha256" ||
    fail "cannot download $server/download/$name.sha256 (is the server reachable, and was 'make dist' run on it?)"
fetch "$server/download/$name" "$dir/$name" ||
    fail "cannot download $server/download/$name"
want=$(sed -n "s/^\([0-9a-f]\{64\}\)  $name\$/\1/p" "$dir/$name.sha256")
[ -n "$want" ] || fail "$server/download/$name.sha256 is not a sha256sum line for $name"
if command -v sha256sum >/dev/null 2>&1; then
    got=$(sha256sum "$dir/$name" | cut -d' ' -f1)
else
    got=$(openssl dgst -sha256 -r "$dir/$name" | cut -d' ' -f1)
fi
[ "$got" = "$want" ] ||
    fail "checksum mismatch for $server/download/$name: expected $want, got $got (a truncated or tampered download); not running it"
tar -xzf "$dir/$name" -C "$dir" || fail "cannot unpack $name"
airlock=$dir/airlock/airlock
version=$("$airlock" --version) || fail "the downloaded agent does not run on this machine"
echo "airlock-action: $version from $server (sha256 $got)"

# ---- tmux, which the shared terminal needs (and sftp-server for sftp, when apt-get can add it)
need=
command -v tmux >/dev/null 2>&1 || need=tmux
if [ -n "$need" ] || [ ! -x /usr/lib/openssh/sftp-server ]; then
    sudo=
    [ "$(id -u)" = 0 ] || sudo=sudo
    if command -v apt-get >/dev/null 2>&1; then
        [ -x /usr/lib/openssh/sftp-server ] || need="$need openssh-sftp-server"
        echo "airlock-action: installing$need (apt-get)"
        # shellcheck disable=SC2086 # need is a list of package names
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null 2>&1 ||
            { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null; } ||
            echo "airlock-action: apt-get could not install$need" >&2
    elif [ -n "$need" ] && command -v apk >/dev/null 2>&1; then
        $sudo apk add --no-cache tmux >/dev/null || fail "cannot install tmux with apk"
    elif [ -n "$need" ]; then
        fail "tmux is missing and there is no apt-get or apk to install it"
    fi
    command -v tmux >/dev/null 2>&1 || fail "tmux is missing and could not be installed"
    [ -x /usr/lib/openssh/sftp-server ] || echo "airlock-action: no sftp-server: sftp into the session will not work" >&2
fi

# ---- airlock wait, with the job's OIDC token
set -- --server "$server" wait --github-audience "${INPUT_AUDIENCE:-airlock}"
[ -z "${INPUT_TEMPLATE:-}" ] || set -- "$@" --template "$INPUT_TEMPLATE"
[ -z "${INPUT_DURATION:-}" ] || set -- "$@" --duration "$INPUT_DURATION"
[ -z "${INPUT_REASON:-}" ] || set -- "$@" --reason "$INPUT_REASON"
[ -z "${INPUT_TIMEOUT:-}" ] || set -- "$@" --timeout "$INPUT_TIMEOUT"
[ -z "${INPUT_EXIT_CODE:-}" ] || set -- "$@" --exit-code "$INPUT_EXIT_CODE"
for user in $(echo "${INPUT_INVITE:-}" | tr ',' ' '); do
    set -- "$@" --invite "$user"
done
exec "$airlock" "$@"
