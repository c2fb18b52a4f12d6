#!/usr/bin/env bash
# Builds the Linux packages (.deb and .rpm) with Tauri's bundler and checks their metadata.
#
#   scripts/package.sh              # debug build (what the test suite installs and drives)
#   scripts/package.sh --release    # the release build, for users
#   scripts/package.sh --install    # also installs the .deb (with sudo when not root)
#
# The bundler is the Tauri CLI from npm (@tauri-apps/cli, in ui/'s devDependencies). Checks:
# desktop-file-validate on the desktop file, `%u` in its Exec and the four URL schemes in its
# MimeType, appstreamcli on the AppStream metadata, and the .rpm holding the same files.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
install=no
for arg in "$@"; do
  case $arg in
    --release) profile=release ;;
    --install) install=yes ;;
    *) echo "usage: scripts/package.sh [--release] [--install]" >&2; exit 2 ;;
  esac
done

scripts/ui.sh
flags=(--bundles deb rpm --ci)
if [ "$profile" = debug ]; then flags+=(--debug); fi
ui/node_modules/.bin/tauri build "${flags[@]}"

bundle="target/$profile/bundle"
deb=$(ls "$bundle"/deb/Switchboard_*_*.deb)
rpm=$(ls "$bundle"/rpm/Switchboard-*.rpm)
echo "package: $deb"
echo "package: $rpm"

tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
dpkg-deb -x "$deb" "$tree"
desktop="$tree/usr/share/applications/Switchboard.desktop"
metainfo="$tree/usr/share/metainfo/app.switchboard.desktop.metainfo.xml"
desktop-file-validate "$desktop"
# The stock template drops the URL; ours passes it.
grep -qx 'Exec=switchboard %u' "$desktop" || { echo "package: Exec does not pass %u" >&2; exit 1; }
for scheme in sip sips tel callto; do
  grep -q "^MimeType=.*x-scheme-handler/$scheme;" "$desktop" \
    || { echo "package: x-scheme-handler/$scheme is not registered" >&2; exit 1; }
done
appstreamcli validate --no-net "$metainfo"
for file in usr/bin/switchboard usr/lib/Switchboard/sounds/ringtone.wav \
  usr/share/icons/hicolor/128x128/apps/switchboard.png; do
  [ -e "$tree/$file" ] || { echo "package: /$file is missing from the .deb" >&2; exit 1; }
done
# The .rpm carries the same files (its payload listed without rpm: cpio inside the lead).
python3 - "$rpm" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
for path in (b"/usr/bin/switchboard", b"/usr/share/applications/Switchboard.desktop",
             b"/usr/share/metainfo/app.switchboard.desktop.metainfo.xml"):
    name = path.rsplit(b"/", 1)[1]
    if name not in data:
        sys.exit(f"package: {path.decode()} is not in the .rpm's file list")
EOF
echo "package: metadata checked"

if [ "$install" = yes ]; then
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" dpkg -i "$deb"
  echo "package: installed $(dpkg-query -W -f='${Package} ${Version}' switchboard)"
fi
