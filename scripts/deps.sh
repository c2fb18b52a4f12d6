#!/usr/bin/env bash
# Installs what building, running and testing Switchboard need on Debian/Ubuntu, when missing.
#   scripts/deps.sh run    # the toolchain only
#   scripts/deps.sh test   # plus the real peers the tests drive (SIPp, Kamailio, baresip,
#                          # dnsmasq) and a Secret Service for the keyring tests
set -euo pipefail

want=${1:-test}
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

# libasound2-dev: cpal's ALSA backend (PulseAudio and PipeWire are reached without a C library).
packages=(build-essential pkg-config ca-certificates curl cmake libasound2-dev)
# The desktop app: WebKitGTK for Tauri's window, librsvg for its icons, and the tray's
# StatusNotifierItem library (loaded at run time; the bundler finds it through its .pc file).
packages+=(libwebkit2gtk-4.1-dev librsvg2-dev libayatana-appindicator3-dev)
if [ "$want" = test ]; then
  packages+=(sip-tester kamailio kamailio-tls-modules openssl baresip-core iproute2 dnsmasq-base)
  packages+=(dbus gnome-keyring dbus-x11 libsecret-tools)
  # Real sound devices for the device tests: a private PulseAudio daemon with null sinks.
  packages+=(pulseaudio pulseaudio-utils)
  # Speech scoring and packet captures: espeak-ng and sox make the reference, PyPI pesq
  # (scripts/speech-env.sh) builds against python3-dev, tshark captures calls.
  packages+=(espeak-ng sox python3-venv python3-dev tshark)
  # The app in its real window: WebKitWebDriver (driven through tauri-driver) under Xvfb.
  packages+=(webkit2gtk-driver xvfb)
  # The packages: their metadata checked, links opened through the installed desktop file.
  packages+=(desktop-file-utils appstream xdg-utils)
  # Desktop notifications: a notification server of the tests' own (Debian's Python with D-Bus
  # and GLib), and gdbus to press its actions.
  packages+=(python3-dbus python3-gi libglib2.0-bin)
  # Global shortcuts are pressed with xdotool (XTEST) under Xvfb.
  packages+=(xdotool)
fi
# Node.js builds the user interface (ui/); Debian's is new enough (Vite 5 wants 18 or later).
if ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "deps: installing the Rust toolchain with rustup (https://rustup.rs)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
# rust-toolchain.toml pins the version; rustup fetches it (with rustfmt and clippy) on first use.
cargo --version >/dev/null

# tauri-driver sits between a WebDriver client and WebKitWebDriver for the app's tests.
if [ "$want" = test ] && ! command -v tauri-driver >/dev/null 2>&1; then
  echo "deps: installing tauri-driver"
  cargo install tauri-driver --version 2.1.0 --locked --quiet
fi
