#!/usr/bin/env bash
# Regenerates every app icon the bundlers need from the one source image.
set -euo pipefail
cd "$(dirname "$0")/.."
npx --prefix ui tauri icon icons/source.svg -o icons
rm -rf icons/android icons/ios  # desktop only
