#!/bin/sh
# A daemon that keeps its args ($1: a marker) in its command line.
sleep 600 &
wait
