#!/usr/bin/env python3
"""sip-flow-client.py: a tiny SIP user agent for the Kamailio self-check.

Standard library only. It exists because Debian's SIPp 3.6.1 has neither
TLS nor SHA-256 digest. It does exactly this:

  1. opens one flow to Kamailio (UDP socket, TCP connection, or TLS
     connection whose certificate is verified against --ca and the name
     --server-name);
  2. REGISTERs --user with an unreachable Contact (USER-device.invalid,
     ;ob, reg-id, +sip.instance), answers the 401 with digest credentials
     using the algorithm the challenge names (MD5 or SHA-256), expects 200;
  3. with --answer: waits for one INVITE on that same flow, answers
     180/200 (SDP), waits for the ACK, sends BYE through the Record-Route
     set, and expects 200.
     With --wait-bye it does not hang up itself: it waits for the caller's
     BYE (each wait bounded by --timeout) and answers it 200.
     With --rtp it also binds an RTP socket on 127.0.0.1, puts its port in
     the answer (PCMU), sends 20 ms PCMU packets to the address in the
     caller's offer while the call lasts, and reports how many RTP packets
     it received from the caller. --codec opus answers with the offer's
     opus payload type instead of PCMU (and then only receives RTP).

With --options it only sends one OPTIONS (no user part) and expects 200:
the readiness probe.

Exit status 0 = everything above happened; 1 = a step failed (reason on
stderr); 2 = usage / connection error. Prints one line per step.
"""
import argparse
import hashlib
import random
import re
import socket
import ssl
import sys
import threading
import time


def log(msg):
    print(f"sip-flow-client: {msg}", flush=True)


def fail(msg, code=1):
    print(f"sip-flow-client: FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


class Flow:
    """One UDP 5-tuple or one TCP/TLS connection to the proxy."""

    def __init__(self, transport, host, port, ca, server_name, timeout):
        self.transport = transport
        self.peer = (host, port)
        self.buf = b""
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.sock.connect(self.peer)
        else:
            raw = socket.create_connection(self.peer, timeout=timeout)
            if transport == "tls":
                ctx = ssl.create_default_context(cafile=ca)
                ctx.minimum_version = ssl.TLSVersion.TLSv1_2
                # Raises ssl.SSLCertVerificationError on a name mismatch.
                self.sock = ctx.wrap_socket(raw, server_hostname=server_name)
                log(f"TLS {self.sock.version()} with {server_name}: certificate verified")
            else:
                self.sock = raw
        self.sock.settimeout(timeout)
        self.local = self.sock.getsockname()

    def send(self, text):
        data = text.replace("\n", "\r\n").encode()
        if self.transport == "udp":
            self.sock.send(data)
        else:
            self.sock.sendall(data)

    def recv(self):
        """Next SIP message (str). Skips CRLF keep-alives."""
        if self.transport == "udp":
            while True:
                data = self.sock.recv(65535)
                if data.strip():
                    return data.decode(errors="replace")
        while True:
            self.buf = self.buf.lstrip(b"\r\n")
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = self.buf[:end].decode(errors="replace")
                m = re.search(r"^(?:Content-Length|l)[ \t]*:[ \t]*(\d+)", head, re.I | re.M)
                length = int(m.group(1)) if m else 0
                total = end + 4 + length
                if len(self.buf) >= total:
                    msg = self.buf[:total].decode(errors="replace")
                    self.buf = self.buf[total:]
                    return msg
            chunk = self.sock.recv(65535)
            if not chunk:
                raise ConnectionError("connection closed by the proxy")
            self.buf += chunk


class Rtp:
    """--rtp: one UDP socket; counts what arrives, sends PCMU to the offer's address."""

    def __init__(self, send=True):
        self.send = send
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.02)
        self.port = self.sock.getsockname()[1]
        self.peer = None
        self.received = 0
        self.payload_types = set()
        self.sent = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self, offer):
        """offer: the INVITE's SDP body (c= and first m=audio)."""
        c = re.search(r"^c=IN IP4 (\S+)", offer, re.M)
        m = re.search(r"^m=audio (\d+)", offer, re.M)
        if c and m and int(m.group(1)) != 0:
            self.peer = (c.group(1), int(m.group(1)))
        self.thread.start()

    def run(self):
        seq, ts, ssrc = random.getrandbits(16), random.getrandbits(32), random.getrandbits(32)
        next_send = time.time()
        while self.running:
            try:
                data, _ = self.sock.recvfrom(2048)
                if len(data) >= 12 and data[0] >> 6 == 2 and not 72 <= (data[1] & 0x7F) <= 76:
                    self.received += 1
                    self.payload_types.add(data[1] & 0x7F)
            except (socket.timeout, TimeoutError):
                pass
            except OSError:
                pass  # ICMP port unreachable from the peer's RTCP/RTP: ignore
            if self.send and self.peer and time.time() >= next_send:
                hdr = bytes([0x80, 0]) + (seq & 0xFFFF).to_bytes(2, "big") \
                    + (ts & 0xFFFFFFFF).to_bytes(4, "big") + ssrc.to_bytes(4, "big")
                try:
                    self.sock.sendto(hdr + b"\xff" * 160, self.peer)  # PCMU silence
                    self.sent += 1
                except OSError:
                    pass
                seq, ts, next_send = seq + 1, ts + 160, next_send + 0.02

    def stop(self):
        self.running = False
        if self.thread.is_alive():
            self.thread.join(1)
        pts = ",".join(str(p) for p in sorted(self.payload_types)) or "-"
        log(f"RTP: received {self.received} packets (payload types {pts}) on 127.0.0.1:{self.port}; "
            f"sent {self.sent} PCMU packets to {self.peer[0]}:{self.peer[1]}" if self.peer and self.send else
            f"RTP: received {self.received} packets (payload types {pts}) on 127.0.0.1:{self.port}; sent none")


def headers(msg, name):
    """All values of header `name` (one per line; no compact forms)."""
    head = msg.split("\r\n\r\n", 1)[0]
    return [m.group(1).strip() for m in re.finditer(rf"^{name}[ \t]*:(.*)$", head, re.I | re.M)]


def header(msg, name):
    values = headers(msg, name)
    return values[0] if values else ""


def status(msg):
    m = re.match(r"SIP/2\.0 (\d{3})", msg)
    return int(m.group(1)) if m else 0


def digest(challenge, method, uri, user, password):
    """Authorization value for a Digest challenge (RFC 2617 / RFC 8760)."""
    params = {k: q or u for k, q, u in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', challenge)}
    algorithm = params.get("algorithm", "MD5")
    hashes = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
    if algorithm.upper() not in hashes:
        fail(f"unsupported digest algorithm {algorithm}")
    h = hashes[algorithm.upper()]

    def hx(s):
        return h(s.encode()).hexdigest()

    realm, nonce = params["realm"], params["nonce"]
    ha1 = hx(f"{user}:{realm}:{password}")
    ha2 = hx(f"{method}:{uri}")
    value = f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}"'
    if "auth" in params.get("qop", "").split(","):
        cnonce, nc = f"{random.getrandbits(64):016x}", "00000001"
        response = hx(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        value += f', qop=auth, nc={nc}, cnonce="{cnonce}"'
    else:
        response = hx(f"{ha1}:{nonce}:{ha2}")
    value += f', response="{response}", algorithm={algorithm}'
    if "opaque" in params:
        value += f', opaque="{params["opaque"]}"'
    return algorithm, value


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transport", choices=["udp", "tcp", "tls"], default="udp")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--domain", default="sip.test")
    ap.add_argument("--user", default="bob")
    ap.add_argument("--password", default="", help="required except with --options")
    ap.add_argument("--ca", help="CA file for TLS (required with tls)")
    ap.add_argument("--server-name", default="sip.test", help="name the TLS certificate must match")
    ap.add_argument("--expect-algorithm", help="fail unless the 401 names this algorithm")
    ap.add_argument("--answer", action="store_true", help="after registering, take one call")
    ap.add_argument("--wait-bye", action="store_true",
                    help="with --answer: let the caller hang up (wait for its BYE, answer 200)")
    ap.add_argument("--rtp", action="store_true",
                    help="with --answer: exchange PCMU RTP with the caller and count the packets")
    ap.add_argument("--codec", choices=["pcmu", "opus"], default="pcmu",
                    help="codec of the answer (opus: the offer's payload type; RTP is then only received)")
    ap.add_argument("--options", action="store_true",
                    help="only send OPTIONS sip:DOMAIN and expect 200 (readiness probe)")
    ap.add_argument("--timeout", type=float, default=20.0)
    a = ap.parse_args()
    if not a.options and not a.password:
        ap.error("--password is required (except with --options)")

    try:
        flow = Flow(a.transport, a.host, a.port, a.ca, a.server_name, a.timeout)
    except ssl.SSLError as e:
        fail(f"TLS handshake failed: {e}", 2)
    except OSError as e:
        fail(f"cannot open {a.transport} flow: {e}", 2)

    t = a.transport.upper()
    lhost, lport = flow.local[0], flow.local[1]
    contact_uri = f"sip:{a.user}@{a.user}-device.invalid;transport={a.transport};ob"
    call_id = f"{random.getrandbits(64):x}@sip-flow-client"
    tag = f"{random.getrandbits(32):x}"

    def register(cseq, auth=None):
        msg = (f"REGISTER sip:{a.domain} SIP/2.0\n"
               f"Via: SIP/2.0/{t} {lhost}:{lport};branch=z9hG4bK{random.getrandbits(48):x};rport\n"
               f"Max-Forwards: 70\n"
               f"From: <sip:{a.user}@{a.domain}>;tag={tag}\n"
               f"To: <sip:{a.user}@{a.domain}>\n"
               f"Call-ID: {call_id}\n"
               f"CSeq: {cseq} REGISTER\n"
               f"Supported: outbound, path\n"
               f'Contact: <{contact_uri}>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-4000-8000-0000000000f1>"\n'
               + (f"Authorization: {auth}\n" if auth else "")
               + "Expires: 300\nContent-Length: 0\n\n")
        flow.send(msg)
        while True:
            reply = flow.recv()
            if status(reply) >= 200 and header(reply, "CSeq").startswith(f"{cseq} "):
                return reply

    try:
        if a.options:
            flow.send(f"OPTIONS sip:{a.domain} SIP/2.0\n"
                      f"Via: SIP/2.0/{t} {lhost}:{lport};branch=z9hG4bK{random.getrandbits(48):x};rport\n"
                      f"Max-Forwards: 70\nFrom: <sip:probe@probe.invalid>;tag={tag}\n"
                      f"To: <sip:{a.domain}>\nCall-ID: {call_id}\nCSeq: 1 OPTIONS\n"
                      f"Content-Length: 0\n\n")
            r = flow.recv()
            if status(r) != 200:
                fail(f"OPTIONS answered {r.splitlines()[0]}")
            log(f"OPTIONS over {t}: {r.splitlines()[0]}")
            return
        r = register(1)
        if status(r) != 401:
            fail(f"expected 401, got: {r.splitlines()[0]}")
        challenge = header(r, "WWW-Authenticate")
        algorithm, auth = digest(challenge, "REGISTER", f"sip:{a.domain}", a.user, a.password)
        log(f"401 challenge: {challenge}")
        if a.expect_algorithm and algorithm.upper() != a.expect_algorithm.upper():
            fail(f"challenge algorithm {algorithm}, expected {a.expect_algorithm}")
        r = register(2, auth)
        if status(r) != 200:
            fail(f"REGISTER with {algorithm} credentials: {r.splitlines()[0]}")
        log(f"registered {a.user} over {t} with {algorithm} digest; 200 Require: {header(r, 'Require') or '-'}")
        if not a.answer:
            return

        # Wait for the INVITE on this very flow.
        while True:
            inv = flow.recv()
            if inv.startswith("INVITE "):
                break
            if status(inv) == 0:
                log(f"ignoring {inv.splitlines()[0]}")
        log(f"INVITE received on the registration flow: {inv.splitlines()[0]}")
        my_tag = f"{random.getrandbits(32):x}"
        vias = "".join(f"Via: {v}\n" for v in headers(inv, "Via"))
        rrs = headers(inv, "Record-Route")
        rr_lines = "".join(f"Record-Route: {v}\n" for v in rrs)
        frm, to, cid, cseq = (header(inv, n) for n in ("From", "To", "Call-ID", "CSeq"))
        m = re.search(r"<([^>]+)>", header(inv, "Contact"))
        remote_target = m.group(1) if m else ""
        if not remote_target:
            fail("INVITE without Contact")
        rtp = Rtp(send=a.codec == "pcmu") if a.rtp else None
        offer = inv.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in inv else ""
        m_line = re.search(r"^m=audio .*$", offer, re.M)
        log(f"offer: {m_line.group(0).strip() if m_line else 'no m=audio line'}")
        fmt = "0\na=rtpmap:0 PCMU/8000"
        if a.codec == "opus":
            m_opus = re.search(r"^a=rtpmap:(\d+) opus/48000/2", offer, re.M)
            if not m_opus:
                fail("the offer has no opus/48000/2")
            fmt = f"{m_opus.group(1)}\na=rtpmap:{m_opus.group(1)} opus/48000/2"
        sdp = ("v=0\no=bob 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n"
               f"m=audio {rtp.port if rtp else 40000} RTP/AVP {fmt}\na=sendrecv\n")
        for code, reason, body in (("180", "Ringing", ""), ("200", "OK", sdp)):
            flow.send(f"SIP/2.0 {code} {reason}\n{vias}{rr_lines}From: {frm}\nTo: {to};tag={my_tag}\n"
                      f"Call-ID: {cid}\nCSeq: {cseq}\nContact: <{contact_uri}>\n"
                      + ("Content-Type: application/sdp\n" if body else "")
                      + f"Content-Length: {len(body.replace(chr(10), chr(13) + chr(10)))}\n\n{body}")
        deadline = time.time() + a.timeout
        while True:
            msg = flow.recv()
            if msg.startswith("ACK "):
                break
            if time.time() > deadline:
                fail("no ACK")
        if rtp:
            rtp.start(offer)
        if a.wait_bye:
            t_ack = time.time()
            log("ACK received; waiting for the caller's BYE")
            while True:
                msg = flow.recv()
                if msg.startswith("BYE "):
                    break
                if status(msg) == 0:
                    log(f"ignoring in-dialog {msg.splitlines()[0]}")
            flow.send("SIP/2.0 200 OK\n" + "".join(f"Via: {v}\n" for v in headers(msg, "Via"))
                      + f"From: {header(msg, 'From')}\nTo: {header(msg, 'To')}\n"
                      f"Call-ID: {header(msg, 'Call-ID')}\nCSeq: {header(msg, 'CSeq')}\n"
                      "Content-Length: 0\n\n")
            if rtp:
                rtp.stop()
            log(f"BYE from the caller {time.time() - t_ack:.2f} s after the ACK; answered 200: call complete")
            return
        log("ACK received; hanging up")
        time.sleep(0.2)
        route = "".join(f"Route: {v}\n" for v in rrs)
        flow.send(f"BYE {remote_target} SIP/2.0\n"
                  f"Via: SIP/2.0/{t} {lhost}:{lport};branch=z9hG4bK{random.getrandbits(48):x};rport\n"
                  f"{route}Max-Forwards: 70\nFrom: {to};tag={my_tag}\nTo: {frm}\n"
                  f"Call-ID: {cid}\nCSeq: 1 BYE\nContent-Length: 0\n\n")
        while True:
            r = flow.recv()
            if header(r, "CSeq").endswith("BYE") and status(r) >= 200:
                break
        if rtp:
            rtp.stop()
        if status(r) != 200:
            fail(f"BYE answered {r.splitlines()[0]}")
        log("BYE answered 200: call complete")
    except (socket.timeout, TimeoutError):
        fail("timed out waiting for a message")
    except ConnectionError as e:
        fail(str(e))


if __name__ == "__main__":
    main()
