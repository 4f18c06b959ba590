#!/bin/sh
# Online backup of airlockd's SQLite database, for a host where airlockd runs as a process
# you can signal (systemd, docker from the host). See docs/deployment.md, "Backups".
#
#   airlock-backup.sh [-p PID] DATA_DIR OUTPUT.db
#
# airlockd opens airlock.db in EXCLUSIVE locking mode, so `sqlite3 airlock.db .backup` cannot
# read it while airlockd runs ("database is locked"), and copying the files of a running
# server can pair an airlock.db and an airlock.db-wal from different moments. Instead this
# script stops airlockd's threads with SIGSTOP for the moment it takes to copy airlock.db and
# airlock.db-wal (milliseconds for a database of a few MB), lets it go on with SIGCONT, then
# checks the copy (PRAGMA integrity_check) and writes it out as one file with sqlite3 .backup.
# The copy is what a power cut at that instant would have left, and SQLite recovers from
# that by design (WAL, synchronous=FULL).
#
# PID: -p PID, else the MainPID of the systemd unit airlockd.service. Without a running
# airlockd the files are copied as they are. Needs sqlite3 (Debian package sqlite3).
# Do not point -p at PID 1 of a container from inside it: the kernel ignores SIGSTOP sent to
# a namespace's init from within, so nothing would be frozen. Run it on the host instead.
set -eu

usage() { echo "usage: $0 [-p PID] DATA_DIR OUTPUT.db" >&2; exit 2; }
pid=
while getopts p: o; do
    case $o in
    p) pid=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 2 ] || usage
data=$1 out=$2
[ -f "$data/airlock.db" ] || { echo "$0: no $data/airlock.db" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "$0: sqlite3 is not installed" >&2; exit 1; }
if [ -z "$pid" ] && command -v systemctl >/dev/null; then
    pid=$(systemctl show -p MainPID --value airlockd.service 2>/dev/null || true)
    [ "$pid" != 0 ] || pid=
fi

# The copy goes next to the output first, so that the freeze lasts only as long as a
# local cp, never as long as a slow or remote destination.
tmp=$(mktemp -d "$(dirname "$out")/.airlock-backup.XXXXXX")
frozen=
cleanup() {
    [ -z "$frozen" ] || kill -CONT "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -STOP "$pid"
    frozen=1
fi
cp "$data/airlock.db" "$tmp/airlock.db"
if [ -f "$data/airlock.db-wal" ]; then cp "$data/airlock.db-wal" "$tmp/airlock.db-wal"; fi
if [ -n "$frozen" ]; then
    kill -CONT "$pid"
    frozen=
fi

# Opening the copy replays its WAL (the same recovery as after a crash).
check=$(sqlite3 "$tmp/airlock.db" "PRAGMA integrity_check;")
if [ "$check" != ok ]; then
    echo "$0: the copy failed the integrity check: $check" >&2
    exit 1
fi
rm -f "$out.tmp"
sqlite3 "$tmp/airlock.db" ".backup '$out.tmp'"
mv "$out.tmp" "$out"
echo "$0: $out: schema version $(sqlite3 "$out" 'PRAGMA user_version;'), $(sqlite3 "$out" 'SELECT count(*) FROM sessions;') sessions"
