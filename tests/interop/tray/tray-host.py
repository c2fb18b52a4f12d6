#!/usr/bin/env python3
"""A StatusNotifierItem host for the tests: the tray of a desktop, without the desktop.

    tray-host.py watch LOG         own org.kde.StatusNotifierWatcher on the session bus and
                                   record each item that registers as a JSON line in LOG
                                   (prints "ready" once the name is owned)
    tray-host.py menu LOG          print the last registered item's menu as JSON: a list of
                                   {"id", "label", "enabled", "toggle_state"} (com.canonical.dbusmenu
                                   GetLayout), separators left out
    tray-host.py click LOG LABEL   click the menu item with that label (dbusmenu Event "clicked")

Debian's Python with python3-dbus and python3-gi.
"""
import json
import sys
import time

import dbus
import dbus.mainloop.glib
import dbus.service

WATCHER = "org.kde.StatusNotifierWatcher"


class Watcher(dbus.service.Object):
    def __init__(self, bus, log):
        super().__init__(bus, "/StatusNotifierWatcher")
        self.log = log
        self.items = []

    @dbus.service.method(WATCHER, in_signature="s", sender_keyword="sender")
    def RegisterStatusNotifierItem(self, service, sender=None):
        # The item names its object path (libayatana-appindicator) or its bus name.
        path = str(service) if str(service).startswith("/") else "/StatusNotifierItem"
        name = sender if str(service).startswith("/") else str(service)
        self.items.append(f"{name}{path}")
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"service": str(name), "path": path}) + "\n")
        self.StatusNotifierItemRegistered(f"{name}{path}")

    @dbus.service.method(WATCHER, in_signature="s")
    def RegisterStatusNotifierHost(self, service):
        pass

    @dbus.service.signal(WATCHER, signature="s")
    def StatusNotifierItemRegistered(self, item):
        pass

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="ss", out_signature="v")
    def Get(self, interface, prop):
        return self.GetAll(interface)[prop]

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="s", out_signature="a{sv}")
    def GetAll(self, interface):
        return {
            "RegisteredStatusNotifierItems": dbus.Array(self.items, signature="s"),
            "IsStatusNotifierHostRegistered": dbus.Boolean(True),
            "ProtocolVersion": dbus.Int32(0),
        }


def watch(log):
    from gi.repository import GLib

    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    name = dbus.service.BusName(WATCHER, bus, do_not_queue=True)
    watcher = Watcher(bus, log)
    print("ready", flush=True)
    GLib.MainLoop().run()
    del name, watcher


def last_item(log):
    lines = [l for l in open(log, encoding="utf-8").read().splitlines() if l.strip()]
    return json.loads(lines[-1])


def menu_object(bus, log):
    item = last_item(log)
    obj = bus.get_object(item["service"], item["path"])
    path = obj.Get("org.kde.StatusNotifierItem", "Menu", dbus_interface=dbus.PROPERTIES_IFACE)
    return bus.get_object(item["service"], path)


def entries(menu):
    _, layout = menu.GetLayout(0, -1, ["label", "enabled", "toggle-state", "type", "visible"],
                               dbus_interface="com.canonical.dbusmenu")
    out = []
    for child in layout[2]:
        cid, props, _ = child
        if props.get("type") == "separator" or not bool(props.get("visible", True)):
            continue
        out.append({
            "id": int(cid),
            "label": str(props.get("label", "")).replace("_", ""),
            "enabled": bool(props.get("enabled", True)),
            "toggle_state": int(props.get("toggle-state", -1)),
        })
    return out


def main():
    command, log = sys.argv[1], sys.argv[2]
    if command == "watch":
        watch(log)
        return
    bus = dbus.SessionBus()
    menu = menu_object(bus, log)
    if command == "menu":
        print(json.dumps(entries(menu)))
    elif command == "click":
        label = sys.argv[3]
        found = [e for e in entries(menu) if e["label"] == label]
        if not found:
            sys.exit(f"no menu item {label!r} in {entries(menu)}")
        menu.Event(found[0]["id"], "clicked", dbus.Int32(0), dbus.UInt32(int(time.time())),
                   dbus_interface="com.canonical.dbusmenu")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
