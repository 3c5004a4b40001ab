#!/usr/bin/env bash
# Install whatever raftplane needs that is missing (Debian bookworm, as root).
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      libraft-dev libuv1-dev libsqlite3-dev libprotobuf-c-dev protobuf-c-compiler
      libh2o-dev libssl-dev libjansson-dev libcmocka-dev
      libcurl4-openssl-dev libyaml-dev  # raftplanectl
      sqlite3  # the backup test opens a backup with the sqlite3 command
      python3 curl procps iproute2 nftables
      faketime  # the clock-jump test (libfaketime)
      e2fsprogs mount  # the disk-failure test (mkfs.ext4, e2fsck, losetup)
      clang-14 libclang-rt-14-dev  # the fuzz build: clang and its libFuzzer runtime
      clang-format-14  # the format check (tests/arch, cmake/Format.cmake)
      chromium)  # the dashboard's browser tests (tests/ui), headless
missing=()
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)  # tests/ui: playwright-core
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# tests/ui: playwright-core from npm at the version of package-lock.json; it
# drives the chromium above and downloads no browser of its own
uit=$(cd "$(dirname "$0")/.." && pwd)/tests/ui
want=$(sed -n '/"node_modules\/playwright-core"/,/}/s/.*"version": "\([^"]*\)".*/\1/p' "$uit/package-lock.json")
have=$(sed -n 's/^  "version": "\([^"]*\)".*/\1/p' "$uit/node_modules/playwright-core/package.json" 2>/dev/null || true)
if [ -z "$want" ] || [ "$want" != "$have" ]; then
  echo "installing playwright-core $want in tests/ui (npm ci)"
  (cd "$uit" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
