# lib.sh — helpers for bench-load.sh and bench-peer.sh (sourced, not run).
# Every wait here is bounded; every process started is remembered and
# stopped by stop_started (the scripts' EXIT trap).

started=() # pids this script started, oldest first

die() {
	echo "error: $*" >&2
	exit 1
}

# start_bg CMD...: run CMD in the background and remember it; its pid is
# in $last_pid.
start_bg() {
	"$@" &
	last_pid=$!
	started+=("$last_pid")
}

# forget PID: PID has ended; stop_started need not stop it.
forget() {
	local keep=() p
	for p in "${started[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	started=("${keep[@]}")
}

# stop PID: TERM, up to 10 s to exit, then KILL.
stop_pid() {
	local pid=$1 deadline=$((SECONDS + 10))
	kill -TERM "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
		sleep 0.2
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	forget "$pid"
}

# stop_started stops what this script started, newest first.
stop_started() {
	local i
	for ((i = ${#started[@]} - 1; i >= 0; i--)); do
		stop_pid "${started[i]}"
	done
}

# run_bounded LIMIT CMD...: run CMD for at most LIMIT (timeout(1) syntax:
# 90s, 15m), in the background so a signal to the script can stop it;
# returns CMD's status (124 if it ran out of time). timeout(1) puts CMD in
# its own process group and signals the whole group, so worker processes
# CMD started are stopped with it.
run_bounded() {
	local limit=$1 pid rc=0
	shift
	timeout -k 30 "$limit" "$@" &
	pid=$!
	started+=("$pid")
	wait "$pid" || rc=$?
	forget "$pid"
	return "$rc"
}

# established PORT: how many established TCP connections the server on
# local PORT holds.
established() {
	ss -Htn state established "( sport = :$1 )" 2>/dev/null | wc -l
}

# wait_drained PORT LEFT LIMIT_S: wait until at most LEFT connections to
# PORT remain (the previous run's terminals have gone), LIMIT_S at most.
wait_drained() {
	local port=$1 left=$2 deadline=$((SECONDS + $3)) n
	while n=$(established "$port") && [ "$n" -gt "$left" ]; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "warning: $n connections to :$port still open after $3 s; going on" >&2
			return 0
		fi
		sleep 1
	done
}

# listening PORT: whether something listens on 127.0.0.1:PORT.
listening() {
	[ -n "$(ss -Hltn "( sport = :$1 )" 2>/dev/null)" ]
}

# wait_listening PORT PID LIMIT_S: wait until PID listens on PORT; fail if
# PID exits or LIMIT_S pass first.
wait_listening() {
	local port=$1 pid=$2 deadline=$((SECONDS + $3))
	until listening "$port"; do
		kill -0 "$pid" 2>/dev/null || return 1
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}
