#!/bin/sh
# Prints each argument in brackets.
for a in "$@"; do
	printf '[%s]' "$a"
done
