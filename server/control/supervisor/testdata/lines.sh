#!/bin/sh
# Prints $1 numbered lines.
i=0
while [ "$i" -lt "$1" ]; do
	echo "line $i"
	i=$((i+1))
done
