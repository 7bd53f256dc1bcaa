#!/bin/sh
# A stand-in oneshot: "syncs" the store given as its argument, prints a
# report on stdout and a warning on stderr, and exits 3 (3 prices changed).
store=${1:-0001}
echo "price-sync: store $store"
sleep 1
echo "price-sync: 3 prices changed"
echo "price-sync: warning: item 4711 has no barcode" >&2
exit 3
