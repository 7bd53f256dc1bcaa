#!/bin/sh
# Writes to stdout and stderr, exits 3.
echo "to stdout"
echo "to stderr" >&2
exit 3
