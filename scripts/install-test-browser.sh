#!/usr/bin/env bash
# The browser the web page's end-to-end tests drive (tests/test_web_browser.py): Debian's
# `chromium`, launched by Playwright for Python through its executable path. `playwright install`
# downloads browser builds of its own and cannot work on a machine without the internet; the
# distribution's package can. Idempotent: does nothing when `chromium` is already on PATH.
#
# Where it cannot install (not root, no apt-get) it says so; under CI (CI set) that is an error,
# elsewhere the browser tests then skip with the same reason and the rest of the suite runs.
set -euo pipefail

cannot() {
    echo "install-test-browser: $1" >&2
    if [ -n "${CI:-}" ]; then
        exit 1
    fi
    echo "install-test-browser: the browser tests will be skipped" >&2
    exit 0
}

if command -v chromium >/dev/null 2>&1; then
    echo "install-test-browser: $(command -v chromium) is already installed"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    cannot "no apt-get here: install Chromium with this system's package manager so that \
'chromium' is on PATH"
fi
if [ "$(id -u)" -ne 0 ]; then
    cannot "installing Chromium needs root: run 'sudo apt-get update && sudo apt-get install \
-y chromium', or this script as root"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium fonts-dejavu-core
echo "install-test-browser: installed $(command -v chromium)"
