#!/usr/bin/env python3
"""Builds fuzz/seeds/<target>/ from what the project already knows is SIP,
SDP and RTP: the RFC 4475 torture messages (../shared/testdata/rfc4475, or
CLINICDESK_RFC4475=dir), the SIPp scenarios of the integration tests
(tests/it/sipp/*.xml, keywords filled in with plausible values), and the
messages in the unit tests of src/sip/*.rs. Header values, URIs and SDP
bodies are cut out of those messages. RTP, RTCP, DTMF and jitter seeds are
written here from RFC 3550/4733 layouts (no test holds such bytes as data).

Run from anywhere: `python3 fuzz/make_seeds.py`. It replaces seeds/ entirely;
the file names are content hashes, so reruns are stable."""

import hashlib
import os
import re
import shutil
import struct
import sys

FUZZ = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(FUZZ)
SEEDS = os.path.join(FUZZ, "seeds")
RFC4475 = os.environ.get("CLINICDESK_RFC4475") or os.path.join(ROOT, "..", "shared", "testdata", "rfc4475")

seeds = {}  # target -> {hash: bytes}


def add(target, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if not data or len(data) > 8192:
        return
    seeds.setdefault(target, {})[hashlib.sha1(data).hexdigest()[:16]] = data


HEADER_TARGET = {
    "via", "v", "from", "f", "to", "t", "contact", "m", "route", "record-route", "cseq",
    "content-type", "c", "event", "o", "subscription-state", "replaces", "refer-to", "r",
    "referred-by", "b", "p-asserted-identity", "www-authenticate", "proxy-authenticate",
    "authorization", "proxy-authorization",
}
URI_IN_BRACKETS = re.compile(rb"<([^<>\s]*)>")


def add_message(data, origin):
    """A whole message, plus its header values, URIs and SDP body."""
    add("sip_message", data)
    head, sep, body = data.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = head.split(b"\n")
    if lines:
        parts = lines[0].split(b" ")
        if len(parts) == 3 and parts[2].startswith(b"SIP/"):
            add("sip_uri", parts[1])
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        name = name.strip().lower().decode("latin-1")
        value = value.strip()
        if name in HEADER_TARGET:
            add("sip_headers", value)
        if name in ("via", "v"):
            sent_by = value.split(b";")[0].split(b" ")[-1]
            add("sip_uri", sent_by.rsplit(b":", 1)[0] if sent_by.count(b":") == 1 else sent_by)
        for uri in URI_IN_BRACKETS.findall(value):
            add("sip_uri", uri)
    if sep and body.lstrip().startswith(b"v=0"):
        add("sdp", body.replace(b"\n", b"\r\n"))


def rfc4475():
    if not os.path.isdir(RFC4475):
        sys.exit(f"no RFC 4475 messages at {RFC4475} (set CLINICDESK_RFC4475)")
    for name in sorted(os.listdir(RFC4475)):
        if name.endswith(".dat"):
            with open(os.path.join(RFC4475, name), "rb") as f:
                add_message(f.read(), name)


SIPP_VALUES = {
    "local_ip": "192.0.2.7", "local_port": "5070", "pid": "4242", "call_number": "1",
    "transport": "UDP", "service": "100", "remote_port": "5060", "remote_ip": "192.0.2.1",
    "caller": "sipp", "call_id": "1-4242@192.0.2.7", "branch": "z9hG4bK-4242-1-0",
    "media_port": "6000", "media_ip_type": "4", "media_ip": "192.0.2.7", "local_ip_type": "4",
    "peer_tag_param": ";tag=a1b2c3", "$remote_contact": "sip:100@192.0.2.1:5060",
    "$remote_from": "<sip:200@192.0.2.1>;tag=x9", "$local_to": "<sip:sipp@192.0.2.7:5070>",
    "target": "sip:300@192.0.2.1", "next_url": "sip:100@192.0.2.1:5060", "cseq": "2",
    "last_Via:": "Via: SIP/2.0/UDP 192.0.2.1:5060;rport=5060;branch=z9hG4bKd1e2f3",
    "last_Call-ID:": "Call-ID: 8f3c2a@192.0.2.1",
    "last_To:": "To: <sip:sipp@192.0.2.7:5070>",
    "last_From:": "From: \"Reception\" <sip:200@192.0.2.1>;tag=abc123",
    "last_CSeq:": "CSeq: 1 INVITE",
    "last_Contact:": "Contact: <sip:200@192.0.2.1:5060>",
}


def sipp():
    d = os.path.join(ROOT, "tests", "it", "sipp")
    for name in sorted(os.listdir(d)):
        if not name.endswith(".xml"):
            continue
        with open(os.path.join(d, name), encoding="latin-1") as f:
            xml = f.read()
        for block in re.findall(r"<send[^>]*>\s*<!\[CDATA\[(.*?)\]\]>", xml, re.S):
            lines = [l.strip() for l in block.strip("\n").split("\n")]
            while lines and not lines[0]:
                lines.pop(0)
            while lines and not lines[-1]:
                lines.pop()
            text = "\r\n".join(lines)
            text = re.sub(r"\[([^\]\s]+)\]", lambda m: SIPP_VALUES.get(m.group(1), m.group(0)), text)
            head, sep, body = text.partition("\r\n\r\n")
            body = body + "\r\n" if body else ""
            head = head.replace("[len]", str(len(body.encode())))
            add_message((head + "\r\n\r\n" + body).encode("latin-1"), name)


RUST_STR = re.compile(r'(b?)"((?:[^"\\]|\\.)*)"', re.S)


def rust_unescape(s):
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        n = s[i + 1]
        i += 2
        if n == "\n":  # line continuation: skip the next line's leading white space
            while i < len(s) and s[i] in " \t\n\r":
                i += 1
        elif n in "rnt0\\\"'":
            out += {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'"}[n]
        elif n == "x":
            out.append(int(s[i:i + 2], 16))
            i += 2
        elif n == "u":
            j = s.index("}", i)
            out += chr(int(s[i + 1:j], 16)).encode()
            i = j + 1
        else:
            out += ("\\" + n).encode()
    return bytes(out)


START = re.compile(rb"^(?:[A-Z]+ [^ ]+ SIP/2\.0|SIP/2\.0 \d{3} )")


def unit_tests():
    for d in ("src/sip", "src/media"):
        for name in sorted(os.listdir(os.path.join(ROOT, d))):
            if not name.endswith(".rs"):
                continue
            with open(os.path.join(ROOT, d, name), encoding="utf-8") as f:
                src = f.read()
            tests = src.find("#[cfg(test)]")
            if tests < 0:
                continue
            for m in RUST_STR.finditer(src[tests:]):
                try:
                    data = rust_unescape(m.group(2))
                except (ValueError, IndexError):
                    continue
                if START.match(data) and b"\n" in data:
                    add_message(data, name)
                elif data.startswith(b"v=0") and b"\n" in data:
                    add("sdp", data)
                elif data.startswith((b"sip:", b"sips:", b"tel:")):
                    add("sip_uri", data)
                elif data.startswith(b"Digest "):
                    add("sip_headers", data)


def rtp(pt, seq, ts, ssrc, payload, marker=False, csrc=(), ext=None, padding=0):
    b0 = 0x80 | len(csrc) | (0x10 if ext else 0) | (0x20 if padding else 0)
    out = struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq, ts, ssrc)
    out += b"".join(struct.pack("!I", c) for c in csrc)
    if ext:
        ident, body = ext
        out += struct.pack("!HH", ident, len(body) // 4) + body
    out += payload
    if padding:
        out += b"\0" * (padding - 1) + bytes([padding])
    return out


def report_block(ssrc):
    return struct.pack("!IB3sIIII", ssrc, 12, (3).to_bytes(3, "big"), 0x10064, 37, 0xC0FFEE00, 0x8000)


def rtcp(pt, count, body, padding=0):
    if padding:
        body += b"\0" * (padding - 1) + bytes([padding])
    return struct.pack("!BBH", 0x80 | (0x20 if padding else 0) | count, pt, len(body) // 4) + body


def sdes(ssrc, cname):
    chunk = struct.pack("!I", ssrc) + bytes([1, len(cname)]) + cname + b"\0"
    chunk += b"\0" * (-len(chunk) % 4)
    return rtcp(202, 1, chunk)


def media():
    speech = bytes((0xFF - (i * 7) % 0x40) for i in range(160))
    add("rtp", rtp(0, 1, 160, 0x1234ABCD, speech, marker=True))
    add("rtp", rtp(8, 2, 320, 0x1234ABCD, speech))
    add("rtp", rtp(111, 3, 960, 0x5EED, b"\xf8\xff\xfe" + speech[:40]))
    add("rtp", rtp(0, 4, 480, 1, speech, csrc=(7, 8)))
    add("rtp", rtp(0, 5, 640, 1, speech, ext=(0xBEDE, b"\x10\x01\x00\x00")))
    add("rtp", rtp(0, 6, 800, 1, speech, padding=4))
    add("rtp", rtp(101, 7, 960, 1, b"\x05\x0a\x01\x40", marker=True))

    sr = struct.pack("!IQIII", 0x1234ABCD, 0xE8A1B2C3D4E5F607, 16000, 100, 16000)
    add("rtcp", rtcp(200, 0, sr) + sdes(0x1234ABCD, b"clinicdesk@192.0.2.7"))
    add("rtcp", rtcp(200, 1, sr + report_block(0x5EED)) + sdes(0x1234ABCD, b"op1"))
    add("rtcp", rtcp(201, 1, struct.pack("!I", 0x5EED) + report_block(0x1234ABCD)))
    bye = struct.pack("!I", 0x1234ABCD) + bytes([7]) + b"hang up"
    add("rtcp", rtcp(201, 0, struct.pack("!I", 0x5EED)) + rtcp(203, 1, bye))
    add("rtcp", rtcp(201, 0, struct.pack("!I", 1), padding=4) + rtcp(204, 0, b"name" + struct.pack("!I", 2)))

    # DTMF: a '5' (start, continuation, three ends), then '#' and 'D'.
    events = [(5, 0, 10, 160), (5, 0, 10, 320), (5, 1, 10, 480), (5, 1, 10, 480), (5, 1, 10, 480)]
    stream = b"".join(struct.pack("!IBBH", 8000, e, (end << 7) | vol, dur) for e, end, vol, dur in events)
    stream += struct.pack("!IBBH", 9600, 11, 0x8A, 800) + struct.pack("!IBBH", 12000, 15, 0x0A, 160)
    add("dtmf", stream)
    add("dtmf", struct.pack("!BBH", 1, 0x8A, 1280))

    # Jitter: seq, timestamp, arrival step (high bit: pop first), payload length, payload.
    def packet(seq, ts, step, pop=False, payload=speech):
        return struct.pack("!HIHB", seq, ts, step | (0x8000 if pop else 0), len(payload)) + payload[:255]
    steady = b"".join(packet(i, i * 160, 20, pop=True, payload=speech[:160]) for i in range(12))
    add("jitter", steady)
    jittery = [packet(0, 0, 0), packet(2, 320, 45, True), packet(1, 160, 1, True), packet(3, 480, 30, True),
               packet(3, 480, 0), packet(9, 1440, 90, True), packet(4, 640, 2, True), packet(10, 1600, 20, True)]
    add("jitter", b"".join(jittery))
    add("jitter", b"".join(packet(100 + i, (0xFFFFFF00 + i * 160) % 2**32, 20, True) for i in range(6)) +
        b"".join(packet(106 + i, 5000 + i * 160, 20, True) for i in range(3)))


def main():
    rfc4475()
    sipp()
    unit_tests()
    media()
    if os.path.isdir(SEEDS):
        shutil.rmtree(SEEDS)
    for target, files in sorted(seeds.items()):
        os.makedirs(os.path.join(SEEDS, target))
        for h, data in sorted(files.items()):
            with open(os.path.join(SEEDS, target, h), "wb") as f:
                f.write(data)
        print(f"{target}: {len(files)} seeds, {sum(map(len, files.values()))} bytes")


main()
