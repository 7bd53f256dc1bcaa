#!/bin/sh
# Logs numbered lines quickly, forever.
i=0
while :; do
	echo "log line $i ............................................"
	i=$((i+1))
	sleep 0.002
done
