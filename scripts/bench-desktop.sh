#!/usr/bin/env bash
# Desktop app figures (issue 9): start to interactive window, and PSS of the app plus its WebKit
# processes idle and in a demo call, for the release build, under Xvfb through tauri-driver.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
export PATH="$HOME/.cargo/bin:$PATH"
scripts/ui.sh
cargo build --release --locked -p switchboard-app
cargo build --locked -p switchboard-tests --bin bench-desktop
export SWITCHBOARD_APP="$PWD/target/release/switchboard"
# A desktop session has a D-Bus session bus; without one, GTK autolaunches a bus and the
# accessibility bus for every start (about 0.4 s here), which no user's start pays.
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  exec dbus-run-session -- target/debug/bench-desktop
fi
exec target/debug/bench-desktop
