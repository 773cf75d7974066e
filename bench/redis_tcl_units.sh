#!/usr/bin/env bash
# Run Redis's own Tcl test units in external-server mode against a real
# redis-server and against a WaveKV node, and report ok/err per unit side by
# side (a table on stdout, JSON in $OUT_JSON). A report, not a test: it exits 0
# whatever the units say. Results and how to read them: docs/RESP.md,
# "Redis's own test units".
#
#   bench/redis_tcl_units.sh /path/to/redis-source      (or REDIS_SRC=...)
#
# It downloads nothing. Get a Redis source tree whose tag matches the
# redis-server you run (Debian 12: 7.0.15), e.g.
#   git clone --depth 1 --branch 7.0.15 https://github.com/redis/redis /tmp/redis-src
# Needs: redis-server (apt-get install redis-server), tclsh 8.5+, python3,
# timeout, and a built build/wavekv.
#
# Environment:
#   WAVEKV        the binary (default: build/wavekv)
#   REDIS_SERVER  (default: redis-server)
#   REDIS_PORT    TCP port for redis-server (default 16390). Redis cannot bind
#                 port 0 and tell us which port it got (`port 0` turns TCP
#                 off), and the Tcl runner needs TCP, so redis-server gets a
#                 fixed port. Keep it clear of the runner's own ports
#                 (21079-21110 for its test server). WaveKV binds port 0 and
#                 the script reads the port from its ready file.
#   UNITS         (default: "unit/type/string unit/expire unit/keyspace unit/pubsub")
#   SERVERS       (default: "redis wavekv")
#   TEST_TIMEOUT  seconds one test may go without progress (default 60):
#                 the runner's --timeout; it then prints the test in progress
#                 and ends the unit (a test waiting for a reply that never
#                 comes would otherwise wait forever)
#   UNIT_TIMEOUT  seconds per runtest (default 900), a backstop: a unit that
#                 runs longer is killed and reported as timed out
#   RUNTEST_ARGS  runner options (default: "--singledb --durable", see below)
#   OUT_JSON      (default: build/redis_tcl_units.json)
#   KEEP_LOGS=1   keep the work directory (runner output per unit and server)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REDIS_SRC=${1:-${REDIS_SRC:-}}
if [[ -z "$REDIS_SRC" || ! -f "$REDIS_SRC/tests/test_helper.tcl" ]]; then
    echo "usage: $0 REDIS_SOURCE_TREE   (or REDIS_SRC=...)" >&2
    echo "  a Redis source tree with tests/test_helper.tcl, matching redis-server's version:" >&2
    echo "  git clone --depth 1 --branch 7.0.15 https://github.com/redis/redis /tmp/redis-src" >&2
    exit 2
fi
REDIS_SRC=$(cd "$REDIS_SRC" && pwd)
WAVEKV=${WAVEKV:-$ROOT/build/wavekv}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
REDIS_PORT=${REDIS_PORT:-16390}
UNITS=${UNITS:-unit/type/string unit/expire unit/keyspace unit/pubsub}
SERVERS=${SERVERS:-redis wavekv}
TEST_TIMEOUT=${TEST_TIMEOUT:-60}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-900}
# --singledb: WaveKV has only database 0, and the runner SELECTs 9 unless told
#   otherwise; both servers get it so they run the same tests.
# --durable: an error that is not an assertion (an unknown command, say)
#   fails that one test instead of ending the whole unit, so one missing
#   command does not hide every test after it.
RUNTEST_ARGS=${RUNTEST_ARGS:---singledb --durable}
OUT_JSON=${OUT_JSON:-$ROOT/build/redis_tcl_units.json}

for tool in "$REDIS_SERVER" tclsh python3 timeout; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done
[[ -x "$WAVEKV" ]] || { echo "missing: $WAVEKV (build it first)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/redis_tcl_units.XXXXXX")
SERVER_PID=""
stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
cleanup() {
    stop_server
    if [[ "${KEEP_LOGS:-0}" == 1 ]]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# The runner works from the source tree's root and writes into tests/tmp, so
# it runs from a copy of tests/ (the source tree stays untouched). One change
# to the copy: the runner's per-block setup sends FUNCTION FLUSH and, when that
# fails, ends the unit before its first test. WaveKV has no functions, so the
# copy ignores that reply; with redis-server it succeeds either way.
mkdir -p "$WORK/runner"
cp -R "$REDIS_SRC/tests" "$WORK/runner/tests"
sed -i 's/^\([[:space:]]*\)r function flush$/\1catch {r function flush}/' "$WORK/runner/tests/support/server.tcl"
grep -q 'catch {r function flush}' "$WORK/runner/tests/support/server.tcl" ||
    echo "note: no 'r function flush' line found in tests/support/server.tcl (other Redis version?)" >&2

wait_tcp() {  # wait until HOST PORT accepts a connection
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listening on $1:$2" >&2
    return 1
}

# Start a fresh server (new data directory) for one unit; sets SERVER_PID and PORT.
start_server() {  # SERVER DIR
    local dir=$2
    mkdir -p "$dir"
    case $1 in
    redis)
        # A server already on the port would be tested in place of ours.
        if (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; then
            echo "port $REDIS_PORT is already in use; set REDIS_PORT" >&2
            return 1
        fi
        # As Redis's own tests/assets/default.conf: DEBUG allowed, keyspace
        # events KEA; no snapshots or AOF.
        "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --enable-debug-command yes --notify-keyspace-events KEA \
            --dir "$dir" --daemonize no >"$dir/server.log" 2>&1 &
        SERVER_PID=$!
        PORT=$REDIS_PORT
        ;;
    wavekv)
        # No --users-file: loopback clients are admin, as with a Redis
        # without passwords. Keyspace events KEA, as Redis's test config.
        "$WAVEKV" serve --data-dir "$dir/data" --listen 127.0.0.1:0 --resp 127.0.0.1:0 \
            --http '' --resp-notify-keyspace-events KEA \
            --ready-file "$dir/ready.json" >"$dir/server.log" 2>&1 &
        SERVER_PID=$!
        for _ in $(seq 100); do [[ -s "$dir/ready.json" ]] && break; sleep 0.1; done
        PORT=$(sed -n 's/.*"resp":"[^"]*:\([0-9]*\)".*/\1/p' "$dir/ready.json" 2>/dev/null || true)
        [[ -n "$PORT" ]] || { echo "wavekv wrote no ready file; log:" >&2; cat "$dir/server.log" >&2; return 1; }
        ;;
    esac
    wait_tcp 127.0.0.1 "$PORT"
}

# Run every unit against every server, each on a fresh server.
: >"$WORK/runs.tsv"
for unit in $UNITS; do
    for server in $SERVERS; do
        name=${unit//\//_}.$server
        start_server "$server" "$WORK/$name"
        echo "== $unit on $server (port $PORT)" >&2
        rc=0
        # TERM=dumb: no colour codes in the output we parse.
        # shellcheck disable=SC2086  # RUNTEST_ARGS is a list of options
        (cd "$WORK/runner" && TERM=dumb timeout "$UNIT_TIMEOUT" tclsh tests/test_helper.tcl \
            --host 127.0.0.1 --port "$PORT" --timeout "$TEST_TIMEOUT" $RUNTEST_ARGS --single "$unit") \
            >"$WORK/$name.out" 2>&1 || rc=$?
        stop_server
        printf '%s\t%s\t%s\t%s\n' "$unit" "$server" "$rc" "$WORK/$name.out" >>"$WORK/runs.tsv"
    done
done

# Count what the runner printed: [ok]: name, [err]: name (then details),
# [ignore]: name (skipped by tags, e.g. external:skip), [skip]: name,
# [exception]: (the unit ended there), [TIMEOUT]: followed by
# "sockN => (IN PROGRESS) name" (the test that hung; the unit ended there).
# "done" is the runner's "[1/1 done]: unit" line: without it the unit did not
# finish.
mkdir -p "$(dirname "$OUT_JSON")"
python3 - "$WORK/runs.tsv" "$OUT_JSON" "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "$("$REDIS_SERVER" --version)" "$REDIS_SRC" "$RUNTEST_ARGS" "$TEST_TIMEOUT" <<'EOF'
import json, re, sys, datetime
runs_tsv, out_json, commit, redis_version, redis_src, runtest_args, test_timeout = sys.argv[1:]
status_re = re.compile(r'^\[(ok|err|ignore|skip|exception)\]: ?(.*)$')
results = []
for line in open(runs_tsv):
    unit, server, rc, path = line.rstrip('\n').split('\t')
    lines = open(path, errors='replace').read().splitlines()
    counts = {'ok': 0, 'err': 0, 'ignore': 0, 'skip': 0, 'exception': 0}
    failures, last = [], None
    for i, l in enumerate(lines):
        m = status_re.match(l)
        if not m:
            continue
        status, rest = m.groups()
        counts[status] += 1
        name = re.sub(r' \(\d+ ms\)$', '', rest)
        if status in ('ok', 'err'):
            last = name
        if status in ('err', 'exception'):
            # The runner cuts the first 10 characters of a non-assertion
            # error ("assertion:" is 10 long); the next line, the Tcl error
            # info, starts with the whole message, so prefer it.
            detail = lines[i + 1] if i + 1 < len(lines) else ''
            if i + 2 < len(lines) and detail and lines[i + 2].endswith(detail):
                detail = lines[i + 2]
            failures.append({'status': status, 'test': re.sub(r' in tests/\S+$', '', name),
                             'error': detail.strip()[:300]})
    done = any(re.match(r'^\[\d+/\d+ done\]: ', l) for l in lines)
    hung = next((m.group(1) for m in (re.search(r'=> \(IN PROGRESS\) (.*)$', l) for l in lines) if m), None)
    results.append({'unit': unit, 'server': server, 'ok': counts['ok'], 'err': counts['err'],
                    'skipped': counts['ignore'] + counts['skip'], 'exception': counts['exception'],
                    'finished': done, 'hung_in': hung, 'timed_out': rc == '124',
                    'runner_exit': int(rc), 'last_test': last, 'failures': failures})
json.dump({'measured': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
           'wavekv_commit': commit, 'redis_server': redis_version, 'redis_src': redis_src,
           'runtest_args': runtest_args, 'test_timeout_s': int(test_timeout), 'results': results},
          open(out_json, 'w'), indent=2)
print(f"{'unit':<18} {'server':<7} {'ok':>4} {'err':>4} {'skipped':>7}  ended")
for r in results:
    ended = (f"hung in: {r['hung_in']}" if r['hung_in'] else
             f"killed after {r['last_test']}" if r['timed_out'] else
             'finished' if r['finished'] else f"aborted after: {r['last_test']}")
    print(f"{r['unit']:<18} {r['server']:<7} {r['ok']:>4} {r['err']:>4} {r['skipped']:>7}  {ended}")
print(f"JSON: {out_json}")
EOF
