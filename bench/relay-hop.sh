#!/usr/bin/env bash
# The relay hop alone against socat (bench/relay-bench.c): bulk MB/s, the
# hop's CPU per GiB, and one-byte echo latency, several alternating rounds.
#
#   bench/relay-hop.sh [MB per bulk run, default 2048] [echo rounds, default 3000] [rounds, default 3]
#
# Builds into a temporary directory with explicit cc lines (no other module
# needed), prints each round and a ratio line per metric.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MB=${1:-2048}
ECHO=${2:-3000}
ROUNDS=${3:-3}
WORK=$(mktemp -d /tmp/airlock-relay-hop.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$ROOT"
cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Ibackend/common -Ibackend/server \
    -o "$WORK/relay-bench" bench/relay-bench.c backend/server/relay.c \
    backend/server/relay_splice.c backend/common/wsframe.c backend/common/util.c \
    backend/common/xmalloc.c backend/common/log.c backend/common/err.c \
    $(pkg-config --cflags --libs jansson libcurl openssl) -lwslay -lpthread
: >"$WORK/out"
for _ in $(seq "$ROUNDS"); do
    for m in socat relay; do "$WORK/relay-bench" "$m" "$MB" "$ECHO" | tee -a "$WORK/out"; done
done
# best bulk, lowest CPU, median-of-rounds latency
awk '
    { split($1, a, "_"); who = a[1]; key = substr($1, length(who) + 2); v = $2 + 0
      if (key == "bulk_MBps") { if (v > bulk[who]) bulk[who] = v }
      else if (key == "hop_cpu_ms_per_GiB") { if (!(who in cpu) || v < cpu[who]) cpu[who] = v }
      else { lat[who, key] = lat[who, key] " " v } }
    function med(s,   n, x, i, j, t) { n = split(s, x, " ")
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
      return x[int((n + 1) / 2)] }
    END {
      printf("relay-hop bulk: relay %d MB/s, socat %d MB/s = %.2fx socat\n", bulk["relay"], bulk["socat"], bulk["relay"] / bulk["socat"])
      printf("relay-hop cpu: relay %d ms/GiB, socat %d ms/GiB = %.2fx socat\n", cpu["relay"], cpu["socat"], cpu["relay"] / cpu["socat"])
      printf("relay-hop echo p50: relay %s us, socat %s us\n", med(lat["relay", "echo_p50_us"]), med(lat["socat", "echo_p50_us"]))
      printf("relay-hop echo p99: relay %s us, socat %s us (median of rounds)\n", med(lat["relay", "echo_p99_us"]), med(lat["socat", "echo_p99_us"]))
    }' "$WORK/out"
