#!/usr/bin/env python3
"""Lint the SIP messages SIPp *sent*, as recorded by `sipp -trace_msg`.

Usage: lint_trace.py [--allow-cseq-violation] MESSAGES_LOG [MESSAGES_LOG ...]

Each message SIPp put on the wire is checked against the RFC 3261 basics
that the interop scenarios promise to respect:

  * CRLF line endings, a blank line between headers and body;
  * Content-Length present and equal to the body's size in bytes, and
    Content-Type present whenever there is a body;
  * every request: top Via with SIP/2.0/UDP and branch=z9hG4bK...,
    Max-Forwards, From with a tag, To, Call-ID, CSeq whose method equals the
    request method;
  * INVITE requests carry a Contact;
  * every response: Via, From, To, Call-ID, CSeq; a To tag unless it is 100;
    a Contact on 2xx to INVITE and on reliable (RSeq) provisionals.

--allow-cseq-violation skips the CSeq checks for messages that have a
missing or non-numeric CSeq (used for the deliberately malformed INVITE).

Exit status 0 when no problem is found, 1 otherwise.
"""
import re
import sys

BLOCK = re.compile(
    rb"^-{47} [^\n]*\n(?P<transport>\w+) (?:control )?message sent \((?P<len>\d+) bytes\):\n\n",
    re.M,
)


def sent_messages(data):
    for m in BLOCK.finditer(data):
        start = m.end()
        yield data[start : start + int(m.group("len"))]


def header_values(headers, name, compact=None):
    names = {name.lower()}
    if compact:
        names.add(compact.lower())
    out = []
    for line in headers:
        if ":" not in line:
            continue
        k, v = line.split(":", 1)
        if k.strip().lower() in names:
            out.append(v.strip())
    return out


def lint(raw, allow_cseq_violation):
    problems = []
    if b"\r\n\r\n" not in raw:
        return ["no CRLF CRLF between headers and body"]
    head, body = raw.split(b"\r\n\r\n", 1)
    if re.search(rb"(?<!\r)\n", head):
        problems.append("bare LF in header section")
    lines = head.decode("utf-8", "replace").split("\r\n")
    start, headers = lines[0], lines[1:]
    for h in headers:
        if h and not h[0].isspace() and ":" not in h:
            problems.append("header line without colon: %r" % h)

    def one(name, compact=None):
        v = header_values(headers, name, compact)
        if not v:
            problems.append("missing %s" % name)
            return None
        return v[0]

    cl = one("Content-Length", "l")
    if cl is not None:
        if not cl.isdigit():
            problems.append("Content-Length not numeric: %r" % cl)
        elif int(cl) != len(body):
            problems.append("Content-Length %s but body is %d bytes" % (cl, len(body)))
    if body and not header_values(headers, "Content-Type", "c"):
        problems.append("body without Content-Type")

    via = one("Via", "v")
    frm = one("From", "f")
    one("To", "t")
    one("Call-ID", "i")
    cseq_values = header_values(headers, "CSeq")
    cseq = cseq_values[0] if cseq_values else None
    cseq_ok = cseq is not None and re.fullmatch(r"\d+\s+[A-Za-z]+", cseq)
    if not cseq_ok and not allow_cseq_violation:
        problems.append("missing or bad CSeq: %r" % cseq)
    cseq_method = cseq.split()[-1] if cseq_ok else None

    if start.startswith("SIP/2.0 "):
        code = int(start.split()[1])
        to = header_values(headers, "To", "t")
        if code != 100 and to and ";tag=" not in to[0].replace(" ", ""):
            problems.append("%d response without To tag" % code)
        if cseq_method == "INVITE" and 200 <= code < 300 and not header_values(headers, "Contact", "m"):
            problems.append("2xx to INVITE without Contact")
        if header_values(headers, "RSeq") and not header_values(headers, "Contact", "m"):
            problems.append("reliable provisional without Contact")
    else:
        m = re.fullmatch(r"([A-Za-z]+) (\S+) SIP/2\.0", start)
        if not m:
            return problems + ["bad request line: %r" % start]
        method = m.group(1)
        if via is not None and not re.match(r"SIP/2\.0/UDP\s+\S+.*;\s*branch=z9hG4bK", via):
            problems.append("top Via without SIP/2.0/UDP or branch=z9hG4bK: %r" % via)
        mf = header_values(headers, "Max-Forwards")
        if not mf or not mf[0].isdigit():
            problems.append("missing or bad Max-Forwards")
        if frm is not None and ";tag=" not in frm.replace(" ", ""):
            problems.append("From without tag")
        if cseq_method is not None and cseq_method != method:
            problems.append("CSeq method %s != request method %s" % (cseq_method, method))
        if method == "INVITE" and not header_values(headers, "Contact", "m"):
            problems.append("INVITE without Contact")
    return problems


def main(argv):
    allow = "--allow-cseq-violation" in argv
    files = [a for a in argv if not a.startswith("--")]
    bad = 0
    total = 0
    for path in files:
        data = open(path, "rb").read()
        for raw in sent_messages(data):
            total += 1
            problems = lint(raw, allow)
            if problems:
                bad += 1
                first = raw.split(b"\r\n", 1)[0].decode("utf-8", "replace")
                print("%s: %s: %s" % (path, first, "; ".join(problems)))
    print("lint: %d sent messages checked, %d with problems" % (total, bad))
    return 1 if bad or not total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
