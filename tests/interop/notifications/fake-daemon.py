#!/usr/bin/env python3
"""A desktop notification server for the tests (Desktop Notifications Specification 1.2).

It owns org.freedesktop.Notifications on the session bus it is started on, answers Notify,
CloseNotification, GetCapabilities (with "actions") and GetServerInformation, and records each
Notify and CloseNotification as a JSON line in the log file it is given. A test presses one of
a notification's actions with

    gdbus call --session --dest org.freedesktop.Notifications \
      --object-path /org/freedesktop/Notifications \
      --method org.switchboard.Test.Invoke ID KEY

which emits ActionInvoked(ID, KEY), as a server does when the user clicks it.

usage: fake-daemon.py LOG   (prints "ready" once the name is owned)
"""
import json
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

IFACE = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


class Server(dbus.service.Object):
    def __init__(self, bus, log):
        super().__init__(bus, PATH)
        self.log = log
        self.next_id = 1

    def record(self, **entry):
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    @dbus.service.method(IFACE, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app_name, replaces_id, app_icon, summary, body, actions, hints, timeout):
        nid = int(replaces_id)
        if nid == 0:
            nid = self.next_id
            self.next_id += 1
        self.record(
            method="Notify",
            id=nid,
            app=str(app_name),
            icon=str(app_icon),
            summary=str(summary),
            body=str(body),
            actions=[str(a) for a in actions],
            urgency=int(hints.get("urgency", 1)),
            desktop_entry=str(hints.get("desktop-entry", "")),
            timeout=int(timeout),
        )
        return dbus.UInt32(nid)

    @dbus.service.method(IFACE, in_signature="u")
    def CloseNotification(self, nid):
        self.record(method="CloseNotification", id=int(nid))
        self.NotificationClosed(nid, 3)

    @dbus.service.method(IFACE, out_signature="as")
    def GetCapabilities(self):
        return ["actions", "body", "body-markup"]

    @dbus.service.method(IFACE, out_signature="ssss")
    def GetServerInformation(self):
        return ("switchboard-tests", "switchboard", "1", "1.2")

    @dbus.service.signal(IFACE, signature="us")
    def ActionInvoked(self, nid, key):
        pass

    @dbus.service.signal(IFACE, signature="uu")
    def NotificationClosed(self, nid, reason):
        pass

    @dbus.service.method("org.switchboard.Test", in_signature="us")
    def Invoke(self, nid, key):
        self.record(method="Invoke", id=int(nid), key=str(key))
        self.ActionInvoked(nid, key)


def main():
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    name = dbus.service.BusName(IFACE, bus, do_not_queue=True)
    server = Server(bus, sys.argv[1])
    print("ready", flush=True)
    GLib.MainLoop().run()
    del name, server


if __name__ == "__main__":
    main()
