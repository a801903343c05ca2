#!/usr/bin/env bash
# Installs everything the console, the server and the tests need, and nothing
# twice: each step checks first, so a second run takes a few seconds.
# Needs: a Debian 12 machine with the Rust toolchain (rustup), Node.js and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian packages: WebKitGTK and friends for Tauri, Xvfb/dbus/gnome-keyring/dunst
# for the end-to-end suite (faketime to set the console's clock back),
# Chromium for the server's browser test, gsettings and GNOME's proxy schema
# for the desktop-proxy test, PostgreSQL and nginx for the server's second
# backend and its replicas (the tests start their own, never the system's).
DEB_PACKAGES=(
  libwebkit2gtk-4.1-dev build-essential curl wget file libssl-dev
  libayatana-appindicator3-dev librsvg2-dev libxdo-dev pkg-config
  xvfb xauth imagemagick webkit2gtk-driver dbus-x11 gnome-keyring
  libsecret-tools dunst x11-utils xdotool keyutils chromium chromium-driver
  faketime libglib2.0-bin gsettings-desktop-schemas
  postgresql nginx
)
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

# Rust components used by the checks.
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    log "adding rustup component $component"
    rustup component add "$component"
  fi
done

# tauri-driver bridges WebDriver to WebKitWebDriver for the end-to-end suite.
if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/tauri-driver" ]; then
  log "installing tauri-driver (about 30 s)"
  cargo install tauri-driver --version "^2" --locked --quiet
else
  log "tauri-driver present"
fi

# cargo-fuzz runs the fuzz targets in fuzz/ (scripts/fuzz.sh, and briefly
# in scripts/test.sh) on the stable toolchain.
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz (about 1 minute)"
  cargo install cargo-fuzz --version "^0.13" --locked --quiet
else
  log "cargo-fuzz present"
fi

# Frontend packages, from the committed lock file.
if [ ! -f ui/node_modules/.package-lock.json ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
  # `npm install` with the committed lock file: `npm ci` refuses this lock
  # here, since the registry mirror omits other platforms' optional packages.
  log "installing npm packages"
  (cd ui && npm install --no-audit --no-fund --loglevel=error)
else
  log "npm packages present"
fi

# openid-client 6, the third-party DPoP client of the server's interop test
# (crates/license-server/tests/interop_dpop.rs runs `npm ci` itself when this
# was skipped; installing here makes npm problems show at setup time).
dpop=crates/license-server/tests/interop_dpop
if [ ! -f "$dpop/node_modules/.package-lock.json" ] || [ "$dpop/package-lock.json" -nt "$dpop/node_modules/.package-lock.json" ]; then
  log "installing npm packages for the DPoP interop test"
  (cd "$dpop" && npm ci --no-audit --no-fund --loglevel=error)
else
  log "DPoP interop npm packages present"
fi
