#!/usr/bin/env bash
# bench-peer.sh — termd against the peer baseline, Debian's mosquitto (MQTT
# 3.1.1), and the bare gnet floor, on the same machine with the same load
# generator, RUNS times (default 3). Each run starts all three servers
# fresh and drives each with the same termload scenarios back to back:
#
#   idle        19,000 terminals (two generator processes), held IDLE_S
#   connect     19,000 new terminals at 512 in flight, then a 3 s settle
#   heartbeat   10,000 × 1/s for HB_S
#   heartbeat10 10,000 × 10/s for HB_S (many frames per wakeup)
#   saturate    (not by default) 10,000, rate raised until it falls behind
#
# At the end `termload peer-table` prints the comparison (medians of the
# runs with ranges; termd's ratio to each peer taken run by run) and, with
# DOCS set (default docs/performance.md), writes it between the
# bench-peer markers there: the table in the docs is this command's
# output.
#
# mosquitto: installed with apt-get if missing (needs root), started on
# 127.0.0.1:1883 with a temporary config. It is sampled through /proc
# (-server-pid): it has no /metrics. Its open-file limit is the one it
# inherits, 20,000 on the reference machine, which cannot be raised
# there; 19,000 terminals fit under it. Its listen backlog is fixed at
# 100 (termd's follows net.core.somaxconn), which shows in the connect
# storm as SYN retries: that is the broker as shipped.
#
# termd: `bin/termd -dev` with a fresh temporary data dir each run (so
# every connect storm meets new devices, as a fleet's first connect
# does); the ports of ADDR and ADMIN must be free (stop `make run`).
#
# floor: `termload floor`, a bare gnet server answering CONNECT and
# PINGREQ with no state and no checks, on 127.0.0.1:$FLOOR_PORT: what any
# gnet server pays on this machine (FLOOR=0 skips it).
#
# Neither server gives all its memory back after a scenario, so
# "bytes/terminal" is a clean comparison for the first scenario of a run
# (idle) only; later ones start from the previous peak.
#
# All traffic stays on 127.0.0.0/8. Settings (environment): RUNS, IDLE_S,
# HB_S, MQTT_PORT, FLOOR_PORT, FLOOR, ADDR, ADMIN, OUT, DOCS (empty: do
# not write the docs), SCENARIOS (subset of: idle connect heartbeat
# heartbeat10 saturate), EXTRA (more termload flags for every run),
# RUN_LIMIT.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

TERMLOAD=${TERMLOAD:-bin/termload}
TERMD=${TERMD:-bin/termd}
MQTT_PORT=${MQTT_PORT:-1883}
FLOOR_PORT=${FLOOR_PORT:-1884}
FLOOR=${FLOOR:-1}
ADDR=${ADDR:-127.0.0.1:7000}
ADMIN=${ADMIN:-127.0.0.1:7080}
OUT=${OUT:-var/bench/peer}
SCENARIOS=${SCENARIOS:-"idle connect heartbeat heartbeat10"}
RUNS=${RUNS:-3}
IDLE_S=${IDLE_S:-30}
HB_S=${HB_S:-30}
DOCS=${DOCS-docs/performance.md}
EXTRA=${EXTRA:-}
RUN_LIMIT=${RUN_LIMIT:-15m}
DRAIN_LIMIT_S=${DRAIN_LIMIT_S:-90}
APT_LIMIT=${APT_LIMIT:-300}

# shellcheck source=loadtest/scripts/lib.sh
. "$root/loadtest/scripts/lib.sh"
tmp=""
cleanup() {
	stop_started
	if [ -n "$tmp" ]; then
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$TERMLOAD" ] || die "$TERMLOAD not built (make build)"

# --- mosquitto ---------------------------------------------------------
if ! command -v mosquitto >/dev/null; then
	[ "$(id -u)" = 0 ] || die "mosquitto is not installed and installing it needs root: apt-get install mosquitto"
	echo "== installing mosquitto (Debian package)" >&2
	export DEBIAN_FRONTEND=noninteractive
	timeout "$APT_LIMIT" apt-get install -y mosquitto ||
		{ timeout "$APT_LIMIT" apt-get update && timeout "$APT_LIMIT" apt-get install -y mosquitto; } ||
		die "apt-get install mosquitto failed"
fi
# The package's own service may have started on 1883 (systemd hosts).
! listening "$MQTT_PORT" || die "port $MQTT_PORT is taken (a system mosquitto? systemctl stop mosquitto)"
[ "$FLOOR" != 1 ] || ! listening "$FLOOR_PORT" || die "port $FLOOR_PORT is taken (FLOOR_PORT=..., or FLOOR=0 to skip the floor)"
tgp_port=${ADDR##*:}
! listening "$tgp_port" || die "port $tgp_port is taken (stop \`make run\`: each run starts a fresh termd)"
[ -x "$TERMD" ] || die "$TERMD not built (make build)"

tmp=$(mktemp -d /tmp/bench-peer.XXXXXX)
chmod 755 "$tmp" # mosquitto drops root for its own user, which must reach the log
cat >"$tmp/mosquitto.conf" <<EOF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
# No cap on clients (the default); the open-file limit is the real one.
max_connections -1
persistence false
# termload asks for a 600 s keepalive; accept anything up to MQTT's max.
max_keepalive 65535
# Answer each PINGREQ at once, as termd (gnet) does: Nagle plus the
# client's delayed ACK would add up to 40 ms to pipelined pings.
set_tcp_nodelay true
# Errors and warnings only: the default (notice) writes two lines per
# connection, 38,000 lines for one 19,000 ramp, CPU charged to the broker.
log_dest file $tmp/mosquitto.log
log_type error
log_type warning
EOF
touch "$tmp/mosquitto.log"
if id mosquitto >/dev/null 2>&1; then
	chown mosquitto "$tmp/mosquitto.log"
fi
mosq_version=$(mosquitto -h 2>&1 | head -n 1 | sed 's/ (build.*//' || true)

# start_servers: fresh mosquitto, floor and termd for one run.
start_servers() {
	start_bg mosquitto -c "$tmp/mosquitto.conf"
	mosq_pid=$last_pid
	wait_listening "$MQTT_PORT" "$mosq_pid" 10 || {
		cat "$tmp/mosquitto.log" >&2
		die "mosquitto did not start"
	}
	echo "== $mosq_version, pid $mosq_pid, 127.0.0.1:$MQTT_PORT, open files $(ulimit -n)" >&2
	floor_pid=""
	if [ "$FLOOR" = 1 ]; then
		start_bg "$TERMLOAD" floor -listen "127.0.0.1:$FLOOR_PORT" 2>"$tmp/floor.log"
		floor_pid=$last_pid
		wait_listening "$FLOOR_PORT" "$floor_pid" 10 || {
			cat "$tmp/floor.log" >&2
			die "termload floor did not start"
		}
		echo "== floor: bare gnet responder, pid $floor_pid, 127.0.0.1:$FLOOR_PORT" >&2
	fi
	DATA=$tmp/termd-$run
	start_bg "$TERMD" -dev -data "$DATA" -listen "$ADDR" -admin "$ADMIN" >"$tmp/termd-$run.log" 2>&1
	termd_pid=$last_pid
	wait_listening "$tgp_port" "$termd_pid" 15 || {
		cat "$tmp/termd-$run.log" >&2
		die "termd did not start"
	}
	echo "== termd: $TERMD -dev, pid $termd_pid, data $DATA" >&2
	# Let each come to rest (startup garbage returned) before a baseline.
	sleep 3
}

# stop_servers: the run's servers, and what mosquitto logged.
stop_servers() {
	stop_pid "$termd_pid"
	[ -z "$floor_pid" ] || stop_pid "$floor_pid"
	stop_pid "$mosq_pid"
	if [ -s "$tmp/mosquitto.log" ]; then
		echo "== mosquitto's log (errors and warnings):" >&2
		tail -n 20 "$tmp/mosquitto.log" >&2
		: >"$tmp/mosquitto.log"
	fi
}

# bench TARGET NAME FLAGS...: one termload run against mosquitto, the
# floor or termd, into $dir.
bench() {
	local target=$1 name=$2 port
	shift 2
	local flags=()
	if [ "$target" = mosquitto ]; then
		port=$MQTT_PORT
		flags=(-proto mqtt -addr "127.0.0.1:$MQTT_PORT" -metrics off -server-pid "$mosq_pid")
	elif [ "$target" = floor ]; then
		port=$FLOOR_PORT
		flags=(-proto mqtt -addr "127.0.0.1:$FLOOR_PORT" -metrics off -server-pid "$floor_pid")
	else
		port=$tgp_port
		flags=(-proto tgp -addr "$ADDR" -data "$DATA" -metrics "http://$ADMIN/metrics")
	fi
	wait_drained "$port" 0 "$DRAIN_LIMIT_S"
	echo "== run $run/$RUNS: $name against $target: termload ${flags[*]} $*" >&2
	# shellcheck disable=SC2086 # EXTRA is a list of flags
	run_bounded "$RUN_LIMIT" "$TERMLOAD" "${flags[@]}" -src auto -quiet \
		-json "$dir/$target-$name.json" -plot "$dir/plots/$target-$name" "$@" $EXTRA ||
		echo "== $name against $target failed (exit $?); going on" >&2
}

# -rate is per terminal per second; -concurrency is per process, so
# 256 × 2 processes = 512 connects in flight; -saturate needs more than
# the default -timeout for its steps. See bench-load.sh.
dirs=()
for run in $(seq 1 "$RUNS"); do
	dir=$OUT/run$run
	rm -rf "$dir"
	mkdir -p "$dir/plots"
	dirs+=("$dir")
	start_servers
	for s in $SCENARIOS; do
		case $s in
		idle) args=(-scenario idle -n 19000 -procs 2 -duration "${IDLE_S}s") ;;
		connect) args=(-scenario connect -n 19000 -procs 2 -concurrency 256 -duration 60s -settle 3s) ;;
		heartbeat) args=(-scenario heartbeat -n 10000 -rate 1 -duration "${HB_S}s") ;;
		heartbeat10) args=(-scenario heartbeat -n 10000 -rate 10 -duration "${HB_S}s") ;;
		saturate) args=(-scenario heartbeat -n 10000 -rate 1 -saturate -timeout 10m) ;;
		*) die "unknown scenario $s" ;;
		esac
		bench mosquitto "$s" "${args[@]}"
		bench termd "$s" "${args[@]}"
		if [ -n "$floor_pid" ]; then
			bench floor "$s" "${args[@]}"
		fi
	done
	stop_servers
	for s in $SCENARIOS; do
		a=$dir/termd-$s.json b=$dir/mosquitto-$s.json
		if [ -s "$a" ] && [ -s "$b" ]; then
			"$TERMLOAD" report "$a" "$b" >"$dir/report-$s.txt" || true
		fi
	done
done

dirty=$(git diff --quiet HEAD 2>/dev/null || echo " with uncommitted changes")
note="$RUNS run$([ "$RUNS" = 1 ] || echo s) of \`make bench-peer\` on $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty; $mosq_version; $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'))."
echo
docs_flag=()
if [ -n "$DOCS" ]; then
	docs_flag=(-docs "$DOCS")
fi
"$TERMLOAD" peer-table "${docs_flag[@]}" -note "$note" "${dirs[@]}"
echo "(every run's JSON, side-by-side reports and charts: $OUT/run*/$([ -z "$DOCS" ] || echo "; the table is written to $DOCS"))" >&2
