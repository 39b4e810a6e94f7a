#!/usr/bin/env bash
# Writes a PNG of a running WildBot dashboard, rendered by headless Chromium.
#
#   tools/dashboard-screenshot.sh [URL] [OUT.png]
#
# URL defaults to http://127.0.0.1:8080/ (add ?token=... for a remote dashboard), OUT to
# dashboard.png. Needs Debian's chromium (apt-get install chromium) or $CHROMIUM.
set -euo pipefail
url=${1:-http://127.0.0.1:8080/}
out=$(realpath -m "${2:-dashboard.png}")
chrome=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
if [ -z "$chrome" ]; then
    echo "error: Chromium not found: apt-get install chromium, or set CHROMIUM" >&2
    exit 2
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$out"
# The background-networking flags keep Chromium from calling Google (offline boxes refuse it);
# the virtual time budget lets the page fetch /api/status and render before the shot.
"$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --window-size=1280,1700 \
    --virtual-time-budget=3000 --screenshot="$out" "$url" >/dev/null 2>&1 || true
if [ ! -s "$out" ]; then
    echo "error: Chromium wrote no screenshot of $url" >&2
    exit 1
fi
echo "$out"
