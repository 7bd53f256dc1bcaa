#!/bin/sh
# A stand-in daemon: it runs until stopped and logs a line every 5 s
# (termd writes its output to <data>/services/demo-spooler.log).
trap 'echo "spooler: SIGTERM, draining"; exit 0' TERM
echo "spooler: started (pid $$)"
while :; do
	sleep 5 &
	wait $!
	echo "spooler: $(date '+%H:%M:%S') queue empty"
done
