#!/bin/sh
# Records when it started in $1 (unix ns), runs a moment, fails.
date +%s%N >> "$1"
sleep 0.05
exit 2
