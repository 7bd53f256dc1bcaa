#!/bin/sh
# ensure-haproxy.sh — make sure Debian's haproxy is installed for the PROXY
# protocol integration test (server: TestBehindHAProxy), which `make test`
# runs. Installs it with apt-get when missing and root; otherwise says
# how. Under CI (CI=true) a missing haproxy is an error, so the test never
# silently skips there.
set -u
command -v haproxy >/dev/null 2>&1 && exit 0
APT_LIMIT=${APT_LIMIT:-300} # seconds apt-get may take
fail() {
	echo "ensure-haproxy: $*" >&2
	if [ "${CI:-}" = true ]; then exit 1; fi
	echo "ensure-haproxy: TestBehindHAProxy will be skipped" >&2
	exit 0
}
[ "$(id -u)" = 0 ] || fail "haproxy is not installed and installing it needs root: apt-get install haproxy"
command -v apt-get >/dev/null 2>&1 || fail "haproxy is not installed and apt-get is not available"
echo "== installing haproxy (Debian package) for the PROXY protocol test" >&2
timeout "$APT_LIMIT" apt-get install -y haproxy >/dev/null ||
	{ timeout "$APT_LIMIT" apt-get update >/dev/null && timeout "$APT_LIMIT" apt-get install -y haproxy >/dev/null; } ||
	fail "apt-get install haproxy failed"
command -v haproxy >/dev/null 2>&1 || fail "haproxy still not found after apt-get"
