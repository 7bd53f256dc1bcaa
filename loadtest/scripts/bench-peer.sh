#!/usr/bin/env bash
# bench-peer.sh — termd against the peer baseline, Debian's mosquitto (MQTT
# 3.1.1), on the same machine with the same load generator: idle 19,000
# (two generator processes), heartbeat 10,000 × 1/s for 60 s, heartbeat
# -saturate, connect storm 19,000 at 512 in flight. Each scenario runs
# against mosquitto, then termd, back to back; a side-by-side table with
# termd ÷ mosquitto ratios is printed per scenario at the end.
#
# mosquitto: installed with apt-get if missing (needs root), started on
# 127.0.0.1:1883 with a temporary config and stopped at the end. It is
# sampled through /proc (-server-pid): it has no /metrics. Its open-file
# limit is the one it inherits, 20,000 on the reference machine, which
# cannot be raised there; 19,000 terminals fit under it. Its listen
# backlog is fixed at 100 (termd's follows net.core.somaxconn), which shows
# in the connect storm as SYN retries: that is the broker as shipped.
#
# Neither server gives memory back after a run, so "bytes/terminal" is a
# clean comparison for the first scenario (idle) only; later ones start
# from the previous peak.
#
# termd: the one `make run` started if it answers on 127.0.0.1:7080, else
# this script starts `bin/termd -dev` with a temporary data dir and stops
# it at the end.
#
# floor: `termload floor`, a bare gnet server answering CONNECT and
# PINGREQ with no state and no checks, on 127.0.0.1:$FLOOR_PORT: what any
# gnet server pays on this machine, measured in the same run (FLOOR=0
# skips it).
#
# All traffic stays on 127.0.0.0/8. Settings (environment): MQTT_PORT,
# FLOOR_PORT, FLOOR, ADDR, ADMIN, DATA, OUT, SCENARIOS (subset of: idle
# heartbeat saturate connect), EXTRA (more termload flags for every run),
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
DATA=${DATA:-var}
OUT=${OUT:-var/bench/peer}
SCENARIOS=${SCENARIOS:-"idle heartbeat saturate connect"}
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
start_bg mosquitto -c "$tmp/mosquitto.conf"
mosq_pid=$last_pid
wait_listening "$MQTT_PORT" "$mosq_pid" 10 || {
	cat "$tmp/mosquitto.log" >&2
	die "mosquitto did not start"
}
echo "== $(mosquitto -h 2>&1 | head -n 1 || true), pid $mosq_pid, 127.0.0.1:$MQTT_PORT, open files $(ulimit -n)" >&2

# --- floor: bare gnet ---------------------------------------------------
floor_pid=""
if [ "$FLOOR" = 1 ]; then
	! listening "$FLOOR_PORT" || die "port $FLOOR_PORT is taken (FLOOR_PORT=..., or FLOOR=0 to skip the floor)"
	start_bg "$TERMLOAD" floor -listen "127.0.0.1:$FLOOR_PORT" 2>"$tmp/floor.log"
	floor_pid=$last_pid
	wait_listening "$FLOOR_PORT" "$floor_pid" 10 || {
		cat "$tmp/floor.log" >&2
		die "termload floor did not start"
	}
	echo "== floor: bare gnet responder, pid $floor_pid, 127.0.0.1:$FLOOR_PORT" >&2
fi

# --- termd -------------------------------------------------------------
tgp_port=${ADDR##*:}
if curl -fsS --max-time 2 "http://$ADMIN/healthz" >/dev/null 2>&1; then
	echo "== termd: using the one running on $ADDR" >&2
	[ -s "$DATA/fleet-secret" ] || die "$DATA/fleet-secret missing: is termd running with -dev from $root?"
else
	[ -x "$TERMD" ] || die "$TERMD not built (make build)"
	! listening "$tgp_port" || die "port $tgp_port is taken but termd's admin API does not answer on $ADMIN"
	DATA=$tmp/termd
	start_bg "$TERMD" -dev -data "$DATA" -listen "$ADDR" -admin "$ADMIN" >"$tmp/termd.log" 2>&1
	echo "== termd: started bin/termd -dev (pid $last_pid, data $DATA)" >&2
	wait_listening "$tgp_port" "$last_pid" 15 || {
		cat "$tmp/termd.log" >&2
		die "termd did not start"
	}
fi

mqtt_others=$(established "$MQTT_PORT")
floor_others=$(established "$FLOOR_PORT")
tgp_others=$(established "$tgp_port")
mkdir -p "$OUT/plots"

# bench TARGET NAME FLAGS...: one termload run against mosquitto or termd.
bench() {
	local target=$1 name=$2 port others
	shift 2
	local flags=()
	if [ "$target" = mosquitto ]; then
		port=$MQTT_PORT others=$mqtt_others
		flags=(-proto mqtt -addr "127.0.0.1:$MQTT_PORT" -metrics off -server-pid "$mosq_pid")
	elif [ "$target" = floor ]; then
		port=$FLOOR_PORT others=$floor_others
		flags=(-proto mqtt -addr "127.0.0.1:$FLOOR_PORT" -metrics off -server-pid "$floor_pid")
	else
		port=$tgp_port others=$tgp_others
		flags=(-proto tgp -addr "$ADDR" -data "$DATA" -metrics "http://$ADMIN/metrics")
	fi
	wait_drained "$port" "$others" "$DRAIN_LIMIT_S"
	echo "== $name against $target: termload ${flags[*]} $*" >&2
	# shellcheck disable=SC2086 # EXTRA is a list of flags
	run_bounded "$RUN_LIMIT" "$TERMLOAD" "${flags[@]}" -src auto \
		-json "$OUT/$target-$name.json" -plot "$OUT/plots/$target-$name" "$@" $EXTRA ||
		echo "== $name against $target failed (exit $?); going on" >&2
}

# -rate is per terminal per second; -concurrency is per process, so
# 256 × 2 processes = 512 connects in flight; -saturate needs more than
# the default -timeout for its steps. See bench-load.sh.
for s in $SCENARIOS; do
	case $s in
	idle) args=(-scenario idle -n 19000 -procs 2 -duration 60s) ;;
	heartbeat) args=(-scenario heartbeat -n 10000 -rate 1 -duration 60s) ;;
	saturate) args=(-scenario heartbeat -n 10000 -rate 1 -saturate -timeout 10m) ;;
	connect) args=(-scenario connect -n 19000 -procs 2 -concurrency 256 -duration 60s) ;;
	*) die "unknown scenario $s" ;;
	esac
	rm -f "$OUT/mosquitto-$s.json" "$OUT/termd-$s.json" "$OUT/floor-$s.json"
	bench mosquitto "$s" "${args[@]}"
	bench termd "$s" "${args[@]}"
	if [ -n "$floor_pid" ]; then
		bench floor "$s" "${args[@]}"
	fi
done

stop_pid "$mosq_pid"
echo "== mosquitto stopped; the end of its log (errors and warnings):" >&2
tail -n 20 "$tmp/mosquitto.log" >&2

for s in $SCENARIOS; do
	for peer in mosquitto floor; do
		a=$OUT/termd-$s.json b=$OUT/$peer-$s.json
		[ "$peer" = mosquitto ] || [ -n "$floor_pid" ] || continue
		echo
		echo "=== $s: [1] termd vs [2] $peer"
		if [ -s "$a" ] && [ -s "$b" ]; then
			"$TERMLOAD" report "$a" "$b"
		else
			echo "(a run is missing: $([ -s "$a" ] || echo "$a ")$([ -s "$b" ] || echo "$b"))"
		fi
	done
done
