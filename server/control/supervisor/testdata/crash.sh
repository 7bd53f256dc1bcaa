#!/bin/sh
# Exits 7 at once.
echo "crashing"
exit 7
