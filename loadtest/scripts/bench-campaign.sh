#!/usr/bin/env bash
# The campaign scenario's targets (docs/performance.md "Upgrade scheduling"):
# a fresh termd -dev with three clusters of two nodes (100 upgrades per 5 s
# slot each: 600 per slot), a published release and campaign of
# termload-app whose window opens WAIT seconds from now and lasts LEN
# seconds, then termload -scenario campaign; then the overbooking check
# against storage (campaign progress: reservations per node and slot).
#
#   bench-campaign.sh OUT [N] [RATE] [KILL_AFTER]
#
# KILL_AFTER (seconds, optional): kill -9 termd that long after termload
# starts, restart it on the same data, and run a second burst.
# Binaries from BIN (default /tmp/b13: go build -o /tmp/b13/ ./cmd/...).
set -euo pipefail
OUT=${1:?usage: bench-campaign.sh OUT [N] [RATE] [KILL_AFTER]}
N=${2:-10000}
RATE=${3:-1}
KILL_AFTER=${4:-}
BIN=${BIN:-/tmp/b13}
WAIT=${WAIT:-40}
LEN=${LEN:-100}
TGP=${TGP:-127.0.0.1:7130}
ADMIN=${ADMIN:-127.0.0.1:7131}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DATA=$OUT/var
rm -rf "$DATA"
cfg=$OUT/sched.toml
{
	printf '[schedule]\nslot_length = "5s"\n'
	for c in "lon 51.5 -0.1" "rom 41.9 12.5" "sto 59.3 18.1"; do
		set -- $c
		printf '[[schedule.clusters]]\nid = "%s"\nlat = %s\nlon = %s\n' "$1" "$2" "$3"
	done
	for c in lon rom sto; do
		for i in 1 2; do
			printf '[[schedule.nodes]]\nid = "%s-%s"\ncluster = "%s"\nurl = "https://%s%s.example"\nsecret = "0123456789abcdef-%s%s"\ncapacity = 100\n' \
				"$c" "$i" "$c" "$c" "$i" "$c" "$i"
		done
	done
} >"$cfg"
start_termd() {
	"$BIN/termd" -dev -data "$DATA" -config "$cfg" -listen "$TGP" -admin "$ADMIN" >>"$OUT/termd.log" 2>&1 &
	echo $! >"$OUT/termd.pid"
	for _ in $(seq 50); do
		curl -sf "http://$ADMIN/metrics" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "termd did not start" >&2
	return 1
}
start_termd
tc() { "$BIN/termctl" --addr "http://$ADMIN" --data "$DATA" "$@"; }
rel=$(tc release create --app termload-app --version 2.0.0 --url https://dl.example/x.bin \
	--sha256 "$(printf 'ab%.0s' $(seq 32))" --size 1048576 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
tc release publish "$rel" >/dev/null
from=$(date -u -d "+$WAIT sec" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u -d "+$((WAIT + LEN)) sec" +%Y-%m-%dT%H:%M:%SZ)
camp=$(tc campaign create --release "$rel" --window "$from/$to" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
tc campaign publish "$camp" >/dev/null
echo "release $rel campaign $camp window $from/$to" | tee "$OUT/setup.txt"
load() { # $1: run name
	curl -s "http://$ADMIN/metrics" >"$OUT/$1.metrics-before"
	"$BIN/termload" -scenario campaign -n "$N" -procs "${PROCS:-2}" ${EXTRA:-} -rate "$RATE" -duration $((WAIT + LEN + 30))s -campaign-hb 5s \
		-addr "$TGP" -metrics "http://$ADMIN/metrics" -data "$DATA" -json "$OUT/$1.json" -quiet >"$OUT/$1.txt" 2>"$OUT/$1.err" || true
	curl -s "http://$ADMIN/metrics" >"$OUT/$1.metrics-after" || true
}
# PROFILE=SECONDS: a server CPU profile of SECONDS from PROFILE_DELAY
# (default 0) seconds into the run (/debug/pprof/profile on the admin
# port, with DATA/admin-token); PROFILE_KIND=trace takes an execution
# trace instead (go tool trace -pprof=sched termd.trace).
profile() {
	[ -n "${PROFILE:-}" ] || return 0
	sleep "${PROFILE_DELAY:-0}"
	kind=${PROFILE_KIND:-profile}
	curl -s -H "Authorization: Bearer $(cat "$DATA/admin-token")" \
		"http://$ADMIN/debug/pprof/$kind?seconds=$PROFILE" -o "$OUT/termd.${kind/profile/prof}" || true
}
if [ -n "$KILL_AFTER" ]; then
	load burst1 &
	lp=$!
	sleep "$KILL_AFTER"
	kill -9 "$(cat "$OUT/termd.pid")"
	echo "killed termd at $(date -u +%T.%N)" | tee -a "$OUT/setup.txt"
	wait $lp
	start_termd
	tc campaign progress "$camp" --json >"$OUT/progress-after-kill.json"
	load burst2
else
	profile &
	pp=$!
	load run
	wait $pp
fi
tc campaign progress "$camp" --json >"$OUT/progress.json"
check() { # $1: a campaign progress JSON file
	python3 - "$1" 100 <<'PY'
import json, sys
p = json.load(open(sys.argv[1])); cap = int(sys.argv[2])
# A reservation holds capacity unless released before its slot (up to
# date, lapsed); missed ones held it until their slot ended.
held = [s["reserved"] - s["up_to_date"] - s["lapsed"] for s in p["slots"]]
print(sys.argv[1], "totals", p["totals"])
print("slots", len(held), "max held", max(held, default=0), "capacity", cap, "over capacity", sum(h > cap for h in held))
PY
}
[ ! -f "$OUT/progress-after-kill.json" ] || check "$OUT/progress-after-kill.json"
check "$OUT/progress.json"
kill "$(cat "$OUT/termd.pid")"
