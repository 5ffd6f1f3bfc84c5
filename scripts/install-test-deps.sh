#!/usr/bin/env bash
# Installs what the test suite runs for real: a PostgreSQL server, Chromium
# and ffmpeg. As root it installs the missing Debian packages; otherwise it
# says what to install and fails.
set -euo pipefail

missing=()
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	missing+=(postgresql)
fi
if ! command -v chromium >/dev/null 2>&1; then
	missing+=(chromium)
fi
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
	missing+=(ffmpeg)
fi

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "The tests need these Debian packages: ${missing[*]}" >&2
	echo "Install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi

echo "Installing ${missing[*]} for the tests..."
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
