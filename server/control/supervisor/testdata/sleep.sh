#!/bin/sh
# Runs for $1 seconds, then says so.
sleep "$1"
echo "slept $1"
