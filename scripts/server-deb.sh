#!/usr/bin/env bash
# Builds the Debian package of the license server, then checks it.
#
#   scripts/server-deb.sh [--release]        build, package, check
#   scripts/server-deb.sh --check-only PATH  check an existing .deb
#
# Without cargo-deb: the files are staged in a directory and packed with
# `dpkg-deb --build --root-owner-group`. The package is written to
# <cargo target dir>/debian/license-server_<version>_<arch>.deb and holds
#   /usr/bin/license-server                       (stripped, as dh_strip does)
#   /lib/systemd/system/license-server.service    (hardened, not enabled)
#   /etc/license-server/license-server.env        (conffile: the settings)
#   /usr/share/doc/license-server/{README.md,README.Debian,copyright}
#     (README.Debian is packaging/license-server/README.md: install, init, backups)
# with packaging/license-server/{postinst,prerm,postrm}. Without --release the
# debug build is packaged (what scripts/test.sh checks, building nothing in
# release mode); a package to ship is built with --release.
#
# The check (both modes), failing with a non-zero exit on any error:
#   - dpkg-deb --info: the control fields and the conffile list;
#   - dpkg-deb --contents: every path above, owned by root, the binary 0755;
#   - dpkg-deb -x into a throwaway root: the maintainer scripts parse (sh -n),
#     `usr/bin/license-server --help` runs and `--version` is the package's,
#     every LICENSE_SERVER_* variable of `serve --help` is in the env file, and
#     the extracted binary serves (init + serve with the shipped env file on a
#     free loopback port, /healthz answers 200, SIGINT stops it);
#   - systemd-analyze verify of the unit in that root, and the exposure score of
#     `systemd-analyze security --offline` (both skipped with a message when
#     this systemd-analyze lacks the options);
#   - as root: dpkg -i into a second throwaway root (its own dpkg database,
#     maintainer scripts run chrootless with DPKG_ROOT, so they touch nothing
#     here), then remove (the data is kept) and purge (data and conffile go).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PKG=license-server
SRC=packaging/license-server
MAINTAINER=${DEB_MAINTAINER:-License Console maintainers <maintainers@licenseconsole.example>}

usage() {
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
  echo "server-deb: $*" >&2
  exit 1
}

profile=debug
check_only=
while [ $# -gt 0 ]; do
  case $1 in
    --release) profile=release ;;
    --check-only)
      [ $# -ge 2 ] || die "--check-only needs the path of a .deb"
      check_only=$2
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

for tool in dpkg dpkg-deb; do
  command -v "$tool" >/dev/null || die "$tool is missing (Debian's dpkg package)"
done

# Every temporary directory is made under one, removed at exit.
tmp_root=$(mktemp -d "${TMPDIR:-/tmp}/server-deb.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp_root"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
new_tmp() {
  mktemp -d "$tmp_root/XXXXXX"
}

# --- build -------------------------------------------------------------------

build_deb() {
  local cargo_flags=(--locked -p "$PKG")
  [ "$profile" = release ] && cargo_flags+=(--release)
  echo "== cargo build ${cargo_flags[*]}"
  cargo build "${cargo_flags[@]}"

  local meta target_dir version arch
  meta=$(cargo metadata --locked --no-deps --format-version 1)
  target_dir=$(printf '%s' "$meta" | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  version=$(printf '%s' "$meta" | python3 -c '
import json, sys
pkgs = [p for p in json.load(sys.stdin)["packages"] if p["name"] == "license-server"]
print(pkgs[0]["version"])')
  [ -n "$version" ] || die "no version for $PKG in cargo metadata"
  arch=$(dpkg --print-architecture)

  local bin="$target_dir/$profile/$PKG"
  [ -x "$bin" ] || die "no binary at $bin"

  # dpkg-shlibdeps wants debian/control and the binary under debian/<package>/:
  # the staged root is that directory.
  local work="$target_dir/debian/build"
  local stage="$work/debian/$PKG"
  rm -rf "$work"
  mkdir -p "$stage"
  (
    umask 022
    cd "$stage"
    mkdir -p DEBIAN usr/bin lib/systemd/system etc/license-server usr/share/doc/$PKG
    install -m 0755 "$bin" usr/bin/$PKG
    if command -v strip >/dev/null; then
      strip --strip-unneeded --remove-section=.comment --remove-section=.note usr/bin/$PKG
    fi
    install -m 0644 "$ROOT/$SRC/$PKG.service" lib/systemd/system/$PKG.service
    install -m 0600 "$ROOT/$SRC/$PKG.env" etc/license-server/$PKG.env
    install -m 0644 "$ROOT/crates/license-server/README.md" usr/share/doc/$PKG/README.md
    install -m 0644 "$ROOT/$SRC/README.md" usr/share/doc/$PKG/README.Debian
    cat >usr/share/doc/$PKG/copyright <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: $PKG
Comment: The license server of the License Console. The binary links
 statically the Rust crates listed in the source tree's Cargo.lock, each
 under the license its own metadata states.

Files: *
Copyright: The License Console authors
License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License"); you may not
 use this file except in compliance with the License.
 .
 On Debian systems, the full text of the Apache License, Version 2.0 can be
 found in the file /usr/share/common-licenses/Apache-2.0.
EOF
    chmod 0644 usr/share/doc/$PKG/copyright
    for script in postinst prerm postrm; do
      install -m 0755 "$ROOT/$SRC/$script" DEBIAN/$script
    done
    echo "/etc/license-server/$PKG.env" >DEBIAN/conffiles
    chmod 0644 DEBIAN/conffiles
  )

  local depends=
  if command -v dpkg-shlibdeps >/dev/null; then
    printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$PKG" "$PKG" >"$work/debian/control"
    depends=$(cd "$work" && dpkg-shlibdeps -O "debian/$PKG/usr/bin/$PKG" | sed -n 's/^shlibs:Depends=//p')
  else
    echo "dpkg-shlibdeps not found (dpkg-dev): Depends is libc6"
  fi
  [ -n "$depends" ] || depends=libc6

  local installed_size
  installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
  cat >"$stage/DEBIAN/control" <<EOF
Package: $PKG
Version: $version
Architecture: $arch
Maintainer: $MAINTAINER
Installed-Size: $installed_size
Depends: $depends
Section: net
Priority: optional
Description: License Console's authorization and license server
 OAuth 2.0 device authorization (RFC 8628), signed short-lived license
 tokens (EdDSA JWT) with refresh and DPoP binding, the license account
 endpoint, and the admin pages where devices are authorized.
 .
 Runs as the hardened systemd service license-server.service (DynamicUser,
 database in /var/lib/license-server), neither enabled nor started on
 install; settings in /etc/license-server/license-server.env. Listens on
 127.0.0.1:8080 behind a reverse proxy that terminates TLS.
EOF
  chmod 0644 "$stage/DEBIAN/control"

  deb="$target_dir/debian/${PKG}_${version}_${arch}.deb"
  rm -f "$deb"
  dpkg-deb --build --root-owner-group "$stage" "$deb" >/dev/null
  rm -rf "$work"
  printf 'deb: %s (%s bytes, %s)\n' "$deb" "$(stat -c %s "$deb")" "$(du -h "$deb" | cut -f1)"
}

# --- check -------------------------------------------------------------------

# The server's stdout goes to a file; this waits for its one line
# "listening on http://IP:PORT" and prints the URL.
wait_listening() {
  local out=$1 pid=$2 _
  for _ in $(seq 1 200); do
    if grep -q '^listening on http://' "$out" 2>/dev/null; then
      sed -n 's/^listening on \(http:\/\/[^ ]*\)$/\1/p' "$out" | head -n 1
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

http_status() {
  local url=$1 hostport host port path
  if command -v curl >/dev/null; then
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$url" || true
    return 0
  fi
  hostport=${url#http://}
  path=/${hostport#*/}
  hostport=${hostport%%/*}
  host=${hostport%:*}
  port=${hostport##*:}
  exec 3<>"/dev/tcp/$host/$port"
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&3
  head -n 1 <&3 | cut -d' ' -f2
  exec 3<&-
}

check_deb() {
  local deb=$1
  [ -s "$deb" ] || die "no package at $deb"
  echo "== check $deb ($(stat -c %s "$deb") bytes)"

  echo "-- dpkg-deb --info"
  dpkg-deb --info "$deb"
  local field value
  [ "$(dpkg-deb --field "$deb" Package)" = "$PKG" ] || die "Package is not $PKG"
  [ "$(dpkg-deb --field "$deb" Architecture)" = "$(dpkg --print-architecture)" ] \
    || die "Architecture is not $(dpkg --print-architecture)"
  for field in Version Maintainer Depends Section Priority Description Installed-Size; do
    value=$(dpkg-deb --field "$deb" "$field")
    [ -n "$value" ] || die "the control file has no $field"
  done
  dpkg-deb --field "$deb" Depends | grep -q 'libc6' || die "Depends does not name libc6"
  dpkg-deb --info "$deb" conffiles | grep -qx "/etc/license-server/$PKG.env" \
    || die "/etc/license-server/$PKG.env is not a conffile"
  echo "ok: control fields, conffiles"

  echo "-- dpkg-deb --contents"
  local contents path
  contents=$(dpkg-deb --contents "$deb")
  for path in \
    usr/bin/$PKG \
    lib/systemd/system/$PKG.service \
    etc/license-server/$PKG.env \
    usr/share/doc/$PKG/README.md \
    usr/share/doc/$PKG/README.Debian \
    usr/share/doc/$PKG/copyright; do
    grep -qE "^[-a-z]{10} root/root +[0-9]+ [0-9-]+ [0-9:]+ \./$path\$" <<<"$contents" \
      || die "the package holds no ./$path owned by root/root"
  done
  grep -qE "^-rwxr-xr-x root/root .* \./usr/bin/$PKG\$" <<<"$contents" \
    || die "usr/bin/$PKG is not -rwxr-xr-x root/root"
  # The settings may hold a database password (PGPASSWORD): root only.
  grep -qE "^-rw------- root/root .* \./etc/license-server/$PKG.env\$" <<<"$contents" \
    || die "etc/license-server/$PKG.env is not -rw------- root/root"
  if grep -v "\./etc/license-server/$PKG.env\$" <<<"$contents" \
    | grep -vE '^(drwxr-xr-x|-rwxr-xr-x|-rw-r--r--) root/root '; then
    die "the entries above are not root/root with a 755/644 mode"
  fi
  echo "ok: every path present, root/root, modes 755/644 (the settings 600)"

  echo "-- dpkg-deb -x into a throwaway root"
  local root control
  root=$(new_tmp)
  control=$(new_tmp)
  dpkg-deb -x "$deb" "$root"
  dpkg-deb -e "$deb" "$control"
  local script
  for script in postinst prerm postrm; do
    [ -x "$control/$script" ] || die "no executable $script in the package"
    sh -n "$control/$script" || die "$script does not parse"
  done
  echo "ok: maintainer scripts parse (sh -n)"

  local bin="$root/usr/bin/$PKG"
  "$bin" --help >/dev/null || die "usr/bin/$PKG --help failed"
  local version_line
  version_line=$("$bin" --version)
  [ "$version_line" = "$PKG $(dpkg-deb --field "$deb" Version)" ] \
    || die "usr/bin/$PKG --version says '$version_line', the package $(dpkg-deb --field "$deb" Version)"
  echo "ok: usr/bin/$PKG --help runs; --version: $version_line"

  local env_file="$root/etc/license-server/$PKG.env" var missing=
  for var in $("$bin" serve --help | grep -o 'LICENSE_SERVER_[A-Z_]*' | sort -u); do
    grep -q "$var" "$env_file" || missing="$missing $var"
  done
  [ -z "$missing" ] || die "the env file does not mention:$missing"
  echo "ok: the env file names every LICENSE_SERVER_* setting of serve --help"

  # Serve from the extracted tree with the shipped settings, on a free port.
  local data out url status
  data=$(new_tmp)
  "$bin" init --db "$data/license.db" --admin-email ops@example.com >/dev/null \
    || die "license-server init failed"
  out="$data/serve.out"
  (
    set -a
    # shellcheck disable=SC1090
    . "$env_file"
    set +a
    LICENSE_SERVER_LISTEN=127.0.0.1:0
    exec "$bin" serve --db "$data/license.db"
  ) >"$out" 2>"$data/serve.err" &
  server_pid=$!
  url=$(wait_listening "$out" "$server_pid") || {
    cat "$data/serve.err" >&2
    die "license-server serve did not start with the shipped env file"
  }
  status=$(http_status "$url/healthz")
  [ "$status" = 200 ] || die "GET $url/healthz answered '$status'"
  kill -INT "$server_pid"
  wait "$server_pid" || die "license-server serve did not exit cleanly on SIGINT"
  server_pid=
  echo "ok: the extracted binary serves with the shipped env file ($url/healthz 200, SIGINT stops it)"

  check_unit "$root"
  check_dpkg_install "$deb"
  echo "all checks passed: $deb"
}

check_unit() {
  local root=$1 unit=$PKG.service
  echo "-- systemd unit"
  if ! command -v systemd-analyze >/dev/null; then
    echo "skipped: no systemd-analyze"
    return 0
  fi
  # --root: the unit and its ExecStart binary are taken from the extracted
  # tree; --recursive-errors=no: that tree has no sysinit.target and the like,
  # only this unit is verified (an unknown key, a bad value or a missing
  # binary still fails).
  if systemd-analyze verify --help 2>/dev/null | grep -q -- '--recursive-errors' \
    && systemd-analyze verify --help 2>/dev/null | grep -q -- '--root'; then
    local log
    log=$(systemd-analyze verify --man=no --recursive-errors=no --root="$root" "$unit" 2>&1) || {
      printf '%s\n' "$log" >&2
      die "systemd-analyze verify failed on $unit"
    }
    if [ -n "$log" ]; then
      printf '%s\n' "$log" >&2
      die "systemd-analyze verify warns about $unit"
    fi
    echo "ok: systemd-analyze verify $unit"
  else
    echo "skipped: systemd-analyze verify (this version has no --root/--recursive-errors)"
  fi
  local report score
  if report=$(systemd-analyze security --no-pager --offline=yes --root="$root" "$unit" 2>&1); then
    score=$(grep -o 'Overall exposure level for .*' <<<"$report" || true)
    if [ -n "$score" ]; then
      echo "systemd-analyze security: $score"
    else
      echo "skipped: systemd-analyze security printed no exposure level"
    fi
  else
    echo "skipped: systemd-analyze security --offline did not work here:"
    printf '%s\n' "$report" | tail -n 3
  fi
}

# dpkg -i into a throwaway root with its own database. The maintainer scripts
# run chrootless with DPKG_ROOT set, which makes them act on that root only
# and leave systemd alone. Needs root (dpkg checks its PATH tools as root).
check_dpkg_install() {
  local deb=$1
  echo "-- dpkg -i / -r / -P in a throwaway root"
  if [ "$(id -u)" != 0 ]; then
    echo "skipped: not root"
    return 0
  fi
  # dpkg hands DPKG_ROOT to maintainer scripts since 1.18.5; without it the
  # purge would act on this system's /var/lib.
  local dpkg_version
  dpkg_version=$(dpkg --version | sed -n '1s/.* version \([^ ]*\).*/\1/p')
  if ! dpkg --compare-versions "${dpkg_version:-0}" ge 1.18.5; then
    echo "skipped: dpkg $dpkg_version does not set DPKG_ROOT for maintainer scripts"
    return 0
  fi
  local root log
  root=$(new_tmp)
  mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
  : >"$root/var/lib/dpkg/status"
  : >"$root/var/lib/dpkg/available"
  # dpkg wants ldconfig and start-stop-daemon on PATH when run as root.
  local dpkg=(env "PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin"
    dpkg --root="$root" --force-script-chrootless --force-depends
    --log=/dev/null --no-triggers)
  log=$(new_tmp)/dpkg.log
  "${dpkg[@]}" -i "$deb" >"$log" 2>&1 || {
    cat "$log" >&2
    die "dpkg -i into the throwaway root failed"
  }
  [ "$(dpkg-query --root="$root" -W -f='${Status}' "$PKG")" = "install ok installed" ] \
    || die "dpkg -i: $PKG is not 'install ok installed'"
  [ -x "$root/usr/bin/$PKG" ] && [ -f "$root/lib/systemd/system/$PKG.service" ] \
    && [ -f "$root/etc/license-server/$PKG.env" ] || die "dpkg -i: files missing"
  grep -q 'not started' "$log" || die "postinst did not say the service is not started"
  # What systemd would have made of a first start, to see remove and purge.
  mkdir -p "$root/var/lib/private/$PKG" "$root/etc/systemd/system/multi-user.target.wants"
  : >"$root/var/lib/private/$PKG/license.db"
  ln -s "private/$PKG" "$root/var/lib/$PKG"
  ln -s "/lib/systemd/system/$PKG.service" "$root/etc/systemd/system/multi-user.target.wants/$PKG.service"
  "${dpkg[@]}" -r "$PKG" >"$log" 2>&1 || {
    cat "$log" >&2
    die "dpkg -r in the throwaway root failed"
  }
  [ ! -e "$root/usr/bin/$PKG" ] || die "dpkg -r left usr/bin/$PKG"
  [ -f "$root/var/lib/private/$PKG/license.db" ] || die "dpkg -r deleted the database"
  [ -f "$root/etc/license-server/$PKG.env" ] || die "dpkg -r deleted the conffile"
  "${dpkg[@]}" -P "$PKG" >"$log" 2>&1 || {
    cat "$log" >&2
    die "dpkg -P in the throwaway root failed"
  }
  [ ! -e "$root/var/lib/private/$PKG" ] && [ ! -L "$root/var/lib/$PKG" ] \
    || die "dpkg -P left the database"
  [ ! -e "$root/etc/license-server" ] || die "dpkg -P left /etc/license-server"
  [ ! -L "$root/etc/systemd/system/multi-user.target.wants/$PKG.service" ] \
    || die "dpkg -P left the enablement link"
  echo "ok: dpkg -i installs (not started), -r keeps the database and settings, -P deletes them"
}

if [ -n "$check_only" ]; then
  check_deb "$check_only"
else
  deb=
  build_deb
  check_deb "$deb"
  printf 'deb: %s (%s bytes, %s)\n' "$deb" "$(stat -c %s "$deb")" "$(du -h "$deb" | cut -f1)"
fi
