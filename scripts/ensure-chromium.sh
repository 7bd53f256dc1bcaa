#!/bin/sh
# ensure-chromium.sh — make sure Debian's chromium is installed for the
# console's browser tests (server/ui: TestBrowser*, driven by chromedp),
# which `make test` runs. Installs it with apt-get when missing and root;
# otherwise says how. Under CI (CI set) a missing chromium is an error,
# so the browser tests never silently skip there (they fail too).
set -u
for b in "${TERMD_CHROMIUM:-}" chromium chromium-browser google-chrome; do
	[ -n "$b" ] && command -v "$b" >/dev/null 2>&1 && exit 0
done
APT_LIMIT=${APT_LIMIT:-600} # seconds apt-get may take (chromium is large)
fail() {
	echo "ensure-chromium: $*" >&2
	if [ -n "${CI:-}" ]; then exit 1; fi
	echo "ensure-chromium: the console's browser tests will be skipped" >&2
	exit 0
}
[ "$(id -u)" = 0 ] || fail "chromium is not installed and installing it needs root: apt-get install chromium"
command -v apt-get >/dev/null 2>&1 || fail "chromium is not installed and apt-get is not available"
echo "== installing chromium (Debian package) for the console's browser tests" >&2
timeout "$APT_LIMIT" apt-get install -y chromium >/dev/null ||
	{ timeout "$APT_LIMIT" apt-get update >/dev/null && timeout "$APT_LIMIT" apt-get install -y chromium >/dev/null; } ||
	fail "apt-get install chromium failed"
command -v chromium >/dev/null 2>&1 || fail "chromium still not found after apt-get"
