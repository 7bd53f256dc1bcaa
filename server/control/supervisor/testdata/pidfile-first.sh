# As its first action copies its pidfile to $2 — the daemon's $1, or,
# when $1 is a directory, its own run's $1/$3.PID.run — then sleeps $4 s.
if [ -d "$1" ]; then p="$1/$3.$$.run"; else p="$1"; fi
cat "$p" > "$2" 2>&1
sleep "$4"
