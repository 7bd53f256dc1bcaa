#!/usr/bin/env bash
# bench-load.sh — termload's standard set against a termd the user started
# with `make run` (TGP 127.0.0.1:7000, admin 127.0.0.1:7080, fleet secret
# in ./var/fleet-secret), sized for the reference machine (2 vCPU, open-file
# limit 20,000 per process: 19,000 terminals need two generator processes).
#
# Each run saves ./var/bench/<name>.json and its charts under
# ./var/bench/plots/<name>/; the table of all of them is printed at the end
# (`bin/termload report FILE...` prints it again later).
#
# termd's per-connection frame limit (server.frame_rate 50/s, burst 100) is
# above this set: the fixed-rate runs send 1 request a second per terminal,
# and -saturate stops at -max-rate, 40/s (termd saturates at a few per
# terminal on this machine), so no request here is answered RATE_LIMITED.
#
# Settings (environment): ADDR, ADMIN, DATA (termd's data dir, for the
# secret), OUT, SCENARIOS (a subset of the names below, in order), EXTRA
# (more termload flags for every run).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

TERMLOAD=${TERMLOAD:-bin/termload}
ADDR=${ADDR:-127.0.0.1:7000}
ADMIN=${ADMIN:-127.0.0.1:7080}
DATA=${DATA:-var}
OUT=${OUT:-var/bench}
SCENARIOS=${SCENARIOS:-"idle heartbeat saturate connect mixed churn"}
EXTRA=${EXTRA:-}
# Upper bound of one termload run, whatever its own duration: a run that
# hangs is stopped and the set goes on without it.
RUN_LIMIT=${RUN_LIMIT:-15m}
# Upper bound of the wait for the previous run's connections to go.
DRAIN_LIMIT_S=${DRAIN_LIMIT_S:-90}

# shellcheck source=loadtest/scripts/lib.sh
. "$root/loadtest/scripts/lib.sh"
trap stop_started EXIT
trap 'exit 130' INT TERM

[ -x "$TERMLOAD" ] || die "$TERMLOAD not built (make build)"
curl -fsS --max-time 2 "http://$ADMIN/healthz" >/dev/null ||
	die "no termd answering on http://$ADMIN/healthz: start it with \`make run\` in another shell"
[ -s "$DATA/fleet-secret" ] || die "$DATA/fleet-secret missing: is termd running with -dev from $root?"

port=${ADDR##*:}
metrics="http://$ADMIN/metrics"
# Connections to termd that are not ours (a simulator, a test fleet):
# between runs, wait until only those remain.
others=$(established "$port")
mkdir -p "$OUT/plots"
files=()

# bench NAME FLAGS...: one termload run against termd, after the previous
# run's terminals have gone.
bench() {
	local name=$1
	shift
	wait_drained "$port" "$others" "$DRAIN_LIMIT_S"
	echo "== $name: termload $*" >&2
	# shellcheck disable=SC2086 # EXTRA is a list of flags
	if run_bounded "$RUN_LIMIT" "$TERMLOAD" -proto tgp -addr "$ADDR" -data "$DATA" -metrics "$metrics" -src auto \
		-json "$OUT/$name.json" -plot "$OUT/plots/$name" "$@" $EXTRA; then
		files+=("$OUT/$name.json")
	else
		echo "== $name failed (exit $?); going on" >&2
	fi
}

# -rate is per terminal per second (churn: events per second in all);
# -concurrency is per process, so 256 × 2 processes = 512 connects in
# flight; -saturate steps the rate from 1/s up to -max-rate (40/s per
# terminal, under termd's 50 frames/s limit) and needs more than the
# default -timeout (-duration + 2 min) for its ~14 steps of 10 s.
for s in $SCENARIOS; do
	case $s in
	idle) bench idle -scenario idle -n 19000 -procs 2 -duration 60s ;;
	heartbeat) bench heartbeat -scenario heartbeat -n 10000 -rate 1 -duration 60s ;;
	saturate) bench saturate -scenario heartbeat -n 10000 -rate 1 -saturate -timeout 10m ;;
	connect) bench connect -scenario connect -n 19000 -procs 2 -concurrency 256 -duration 60s ;;
	mixed) bench mixed -scenario mixed -n 10000 -rate 1 -duration 60s ;;
	churn) bench churn -scenario churn -n 10000 -rate 100 -duration 60s ;;
	*) die "unknown scenario $s" ;;
	esac
done

[ ${#files[@]} -gt 0 ] || die "no run succeeded"
echo
"$TERMLOAD" report "${files[@]}"
