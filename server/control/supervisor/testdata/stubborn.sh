#!/bin/sh
# Ignores SIGTERM, and so does its child sleep (an ignored signal stays
# ignored across exec). $1: file that gets the child's pid.
trap '' TERM
sleep 600 &
echo $! > "$1"
wait
