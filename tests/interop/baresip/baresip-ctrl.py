#!/usr/bin/env python3
"""baresip-ctrl.py: drive one call of baresip 1.0 through its ctrl_tcp module.

Standard library only. ctrl_tcp speaks JSON in netstrings ("LEN:JSON,")
over one TCP connection (it accepts one client; a new one replaces the
old). This client:

  1. connects to 127.0.0.1:PORT, retrying until --connect-timeout (baresip
     may still be starting);
  2. sends {"command":"dial","params":URI,"token":"dial"};
  3. waits for the CALL_ESTABLISHED event (up to --timeout seconds), keeps
     the call for --hold seconds, sends {"command":"hangup"} and waits for
     CALL_CLOSED ("Connection reset by user");
  4. with --quit, sends {"command":"quit"} and waits until baresip closes
     the connection, which it does when it exits. This is also done when
     the call failed (exit status 1), so baresip never outlives the client.

Every message received is printed as one line: "ctrl: <- {json}" (the
CALL_RTCP statistics events only with --verbose), every command sent as
"ctrl: -> {json}", and each step as "ctrl: ...". The last line says what
happened: "ctrl: PASS ..." or "ctrl: FAIL ...".

Exit status: 0 = the call was established, held and hung up by us (and
baresip exited, with --quit); 1 = the call failed or closed early (the
CALL_CLOSED reason is printed); 2 = no connection, or a timeout.
"""
import argparse
import json
import socket
import sys
import time


def log(msg):
    print(f"ctrl: {msg}", flush=True)


TIMEOUT = {}


class Timeout(Exception):
    pass


class Ctrl:
    def __init__(self, port, connect_timeout, verbose):
        deadline = time.time() + connect_timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError as e:
                if time.time() > deadline:
                    log(f"FAIL cannot connect to ctrl_tcp on 127.0.0.1:{port}: {e}")
                    sys.exit(2)
                time.sleep(0.05)
        self.buf = b""
        self.verbose = verbose
        log(f"connected to 127.0.0.1:{port}")

    def send(self, command, params=None, token=None):
        msg = {"command": command}
        if params is not None:
            msg["params"] = params
        if token is not None:
            msg["token"] = token
        data = json.dumps(msg).encode()
        self.sock.sendall(b"%d:%s," % (len(data), data))
        log(f"-> {json.dumps(msg)}")

    def recv(self, deadline, fatal=True):
        """Next message (dict), or None on EOF. At the deadline: raise
        Timeout, or return TIMEOUT if not fatal."""
        while True:
            colon = self.buf.find(b":")
            if colon > 0:
                length = int(self.buf[:colon])
                end = colon + 1 + length
                if len(self.buf) > end:
                    payload, self.buf = self.buf[colon + 1:end], self.buf[end + 1:]
                    msg = json.loads(payload)
                    if self.verbose or msg.get("type") != "CALL_RTCP":
                        log(f"<- {json.dumps(msg)}")
                    return msg
            left = deadline - time.time()
            if left <= 0:
                if not fatal:
                    return TIMEOUT
                raise Timeout()
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                continue
            except ConnectionError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk


def quit_baresip(c, timeout):
    """Send quit; wait (bounded) until baresip closes the connection."""
    t = time.time()
    try:
        c.send("quit", token="quit")
        deadline = t + timeout
        while c.recv(deadline, fatal=False) not in (None, TIMEOUT):
            pass
    except OSError as e:
        log(f"quit: {e}")
        return
    log(f"baresip closed the control connection (exiting) {time.time() - t:.3f} s after quit")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True, help="ctrl_tcp_listen port")
    ap.add_argument("--dial", required=True, help="URI to call, e.g. sip:bob@sip.test")
    ap.add_argument("--hold", type=float, default=3.0, help="seconds to keep the call (default 3)")
    ap.add_argument("--quit", action="store_true", help="make baresip exit afterwards")
    ap.add_argument("--timeout", type=float, default=20.0,
                    help="seconds to wait for the call to be established, and for each later step")
    ap.add_argument("--connect-timeout", type=float, default=10.0)
    ap.add_argument("--verbose", action="store_true", help="also print CALL_RTCP events")
    a = ap.parse_args()

    c = Ctrl(a.port, a.connect_timeout, a.verbose)

    def fail(msg, code=1):
        log(f"FAIL {msg}")
        if a.quit:
            quit_baresip(c, a.timeout)
        sys.exit(code)

    try:
        run(a, c, fail)
    except Timeout:
        fail("timed out", 2)


def run(a, c, fail):
    t0 = time.time()
    c.send("dial", a.dial, "dial")

    # Wait for the dial response and CALL_ESTABLISHED, in either order.
    deadline = t0 + a.timeout
    while True:
        m = c.recv(deadline)
        if m is None:
            fail("baresip closed the connection before the call was established")
        if m.get("response") and m.get("token") == "dial" and not m.get("ok"):
            fail(f"dial refused: {m.get('data')}")
        if m.get("event") and m.get("type") == "CALL_CLOSED":
            fail(f"call closed before it was established: {m.get('param', '')}")
        if m.get("event") and m.get("type") == "CALL_ESTABLISHED":
            break
    t_est = time.time()
    log(f"call established after {t_est - t0:.3f} s; holding {a.hold} s")

    # Hold: keep reading, so that an early CALL_CLOSED is noticed.
    hold_end = t_est + a.hold
    while True:
        m = c.recv(hold_end, fatal=False)
        if m is TIMEOUT:
            break
        if m is None:
            fail("baresip closed the connection during the call")
        if m.get("event") and m.get("type") == "CALL_CLOSED":
            fail(f"call closed {time.time() - t_est:.3f} s after it was established, "
                 f"before our hangup: {m.get('param', '')}")

    c.send("hangup", token="hangup")
    deadline = time.time() + a.timeout
    while True:
        m = c.recv(deadline)
        if m is None:
            fail("connection closed before CALL_CLOSED")
        if m.get("event") and m.get("type") == "CALL_CLOSED":
            reason = m.get("param", "")
            break
    log(f"call closed by our hangup after {time.time() - t_est:.3f} s: {reason}")

    if a.quit:
        quit_baresip(c, a.timeout)
    log(f"PASS established, held {a.hold} s, hung up" + (", quit" if a.quit else ""))


if __name__ == "__main__":
    main()
