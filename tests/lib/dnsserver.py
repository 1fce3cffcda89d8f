#!/usr/bin/python3
"""A small authoritative DNS server for the tests (Python stdlib only).

It answers on 127.0.0.1 over UDP and TCP on one port, from a zone kept in
a JSON file that it re-reads whenever the file changes (so that a test can
change {A, B} into {B, C} while the server and the resolver run).  Answers
larger than 512 bytes are sent over UDP with the TC bit and in full over
TCP, as RFC 1035 says.  It can also stop answering ("silent") and send
deliberately malformed answers, for the resolver's hostility tests.

    /usr/bin/python3 tests/lib/dnsserver.py --zone ZONE.json [--port N]

prints one JSON line {"port": N} once it answers, then one line per query
({"q": NAME, "type": "A", "tcp": false}).  The zone:

    {"ttl": 300,                  default TTL
     "silent": false,             true: read queries, answer none
     "names": {
       "web.test": {"A": ["10.0.0.1"], "AAAA": ["fd00::1"], "ttl": 5},
       "_http._tcp.web.test": {"SRV": [
           {"priority": 10, "weight": 5, "port": 8080, "target": "a.test"}]},
       "alias.test": {"CNAME": "web.test"},   followed, as a recursive
                                               server would (loops end)
       "sf.test": {"rcode": "SERVFAIL"},
       "quiet.test": {"silent": true},
       "bad.test": {"malformed": "truncated", "A": ["10.0.0.9"]}}}

A name not in "names" is NXDOMAIN; a name without records of the type
asked is an empty NOERROR answer (NODATA).  "malformed" is one of
MALFORMED below.
"""
import argparse
import json
import os
import random
import socket
import struct
import sys
import threading

TYPES = {"A": 1, "AAAA": 28, "SRV": 33, "CNAME": 5}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
RCODES = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3,
          "NOTIMP": 4, "REFUSED": 5}
MALFORMED = ("truncated", "ptrloop", "wrongid", "count", "garbage", "empty",
             "rdlen", "badname", "huge")
UDP_MAX = 512
TCP_MAX_CONNS = 16


class Zone:
    """The zone file, re-read when its mtime or size changes."""

    def __init__(self, path):
        self.path = path
        self.stamp = None
        self.data = {"names": {}}
        self.lock = threading.Lock()

    def get(self):
        with self.lock:
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
                if stamp != self.stamp:
                    with open(self.path, encoding="utf-8") as f:
                        data = json.load(f)
                    names = {k.lower().rstrip("."): v
                             for k, v in data.get("names", {}).items()}
                    data["names"] = names
                    self.data, self.stamp = data, stamp
            except (OSError, ValueError):
                pass  # a zone being written: keep the last one read
            return self.data


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("latin-1")
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def parse_query(msg):
    """(id, flags, qname text, qtype, raw question bytes) or None."""
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    if qd != 1 or flags & 0x8000:
        return None
    off, labels = 12, []
    while True:
        if off >= len(msg) or len(labels) > 127:
            return None
        n = msg[off]
        if n == 0:
            off += 1
            break
        if n & 0xC0 or off + 1 + n > len(msg):
            return None
        labels.append(msg[off + 1:off + 1 + n].decode("latin-1"))
        off += 1 + n
    if off + 4 > len(msg):
        return None
    qtype = struct.unpack("!H", msg[off:off + 2])[0]
    return qid, flags, ".".join(labels).lower(), qtype, msg[12:off + 4]


def rr(rtype, ttl, rdata, name=b"\xc0\x0c"):
    return name + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def cname_chain(names, qname, entry, base, default_ttl):
    """A recursive server's answer for an alias: the CNAME records, then
    the final name's entry (None after a loop: a name seen twice ends it).
    base is where the answer section starts; returns the records, the final
    entry and the offset of its name (the last CNAME's rdata)."""
    out, seen = [], {qname}
    name_off, at = 12, base  # the owner: the question's name first
    while entry is not None and "CNAME" in entry and len(seen) < 16:
        target = entry["CNAME"].lower().rstrip(".")
        ttl = int(entry.get("ttl", default_ttl))
        rec = rr(5, ttl, encode_name(target),
                 name=bytes([0xC0 | name_off >> 8, name_off & 0xFF]))
        out.append(rec)
        name_off = at + 2 + 10  # the target name, this record's rdata
        at += len(rec)
        if target in seen:
            return out, None, name_off
        seen.add(target)
        entry = names.get(target)
    return out, entry, name_off


def records(entry, qtype, ttl, badname=False):
    out = []
    tname = TYPE_NAMES.get(qtype)
    for value in entry.get(tname, []) if tname else []:
        if qtype == 1:
            out.append(rr(1, ttl, socket.inet_pton(socket.AF_INET, value)))
        elif qtype == 28:
            out.append(rr(28, ttl, socket.inet_pton(socket.AF_INET6, value)))
        elif qtype == 33:
            target = (b"\x08bad name\x04test\x00" if badname
                      else encode_name(value["target"]))
            out.append(rr(33, ttl, struct.pack(
                "!HHH", value.get("priority", 0), value.get("weight", 0),
                value["port"]) + target))
    return out


def answer(zone, msg):
    """The reply bytes, b"" for an empty datagram, or None for silence."""
    q = parse_query(msg)
    if q is None:
        return None
    qid, flags, qname, qtype, question = q
    data = zone.get()
    entry = data.get("names", {}).get(qname)
    if data.get("silent") or (entry is not None and entry.get("silent")):
        return None
    ttl = int((entry or {}).get("ttl", data.get("ttl", 300)))
    bad = (entry or {}).get("malformed")
    rcode = RCODES["NXDOMAIN"] if entry is None else \
        RCODES[entry.get("rcode", "NOERROR")]
    chain = []
    if entry is not None and "CNAME" in entry and qtype != 5:
        chain, final, off = cname_chain(data.get("names", {}), qname, entry,
                                        12 + len(question),
                                        data.get("ttl", 300))
        owner = (bytes([0xC0 | off >> 8, off & 0xFF])
                 if final is not None else None)
        fttl = int((final or {}).get("ttl", data.get("ttl", 300)))
        tail = [r[2:] for r in records(final or {}, qtype, fttl)]
        chain += [owner + r for r in tail] if owner else []
    ans = chain or records(entry or {}, qtype, ttl, badname=bad == "badname")
    if bad in ("truncated", "ptrloop", "count", "rdlen") and not ans:
        ans = [rr(1, ttl, b"\x0a\x09\x09\x09")]
    if bad == "huge" and qtype == 1:  # over any limit: 200 A, ~3 KB
        ans = [rr(1, ttl, bytes([10, 8, i // 250, i % 250 + 1]))
               for i in range(200)]
    flags_out = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode
    ancount = len(ans)
    if bad == "wrongid":
        qid ^= 0xFFFF
    if bad == "count":
        ancount += 50
    head = struct.pack("!HHHHHH", qid, flags_out, 1, ancount, 0, 0)
    body = head + question
    if bad == "ptrloop":
        off = len(body)
        ans = [rr(1, ttl, b"\x0a\x09\x09\x09",
                  name=bytes([0xC0 | off >> 8, off & 0xFF]))]
    if bad == "rdlen":
        ans = [b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, ttl, 200) + b"\x0a"]
    reply = body + b"".join(ans)
    if bad == "truncated":
        reply = reply[:len(body) + 5]
    if bad == "garbage":
        rnd = random.Random(qid)
        reply = struct.pack("!H", qid) + bytes(rnd.randrange(256)
                                               for _ in range(60))
    if bad == "empty":
        reply = b""
    return reply


OUT_LOCK = threading.Lock()


def emit(obj):
    """One JSON line on stdout; the UDP and TCP threads never interleave."""
    with OUT_LOCK:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def log(qname_msg, tcp):
    q = parse_query(qname_msg)
    if q:
        emit({"q": q[2], "type": TYPE_NAMES.get(q[3], q[3]), "tcp": tcp})


def udp_reply(reply):
    if reply is None or len(reply) <= UDP_MAX:
        return reply
    # Too large for UDP: header and question only, with TC set.
    qd_end = 12
    while reply[qd_end] != 0:
        qd_end += 1 + reply[qd_end]
    head = bytearray(reply[:qd_end + 5])
    head[2] |= 0x02
    head[6:8] = b"\0\0"
    return bytes(head)


def serve_udp(sock, zone):
    while True:
        try:
            msg, peer = sock.recvfrom(4096)
        except OSError:
            return
        log(msg, False)
        try:
            reply = udp_reply(answer(zone, msg))
        except Exception as e:  # a bug here must not stop the server
            emit({"error": repr(e)})
            continue
        if reply is not None:
            sock.sendto(reply, peer)


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def serve_tcp_conn(conn, zone, slots):
    try:
        conn.settimeout(5.0)
        for _ in range(100):  # queries per connection, bounded
            head = recv_exact(conn, 2)
            if head is None:
                return
            msg = recv_exact(conn, struct.unpack("!H", head)[0])
            if msg is None:
                return
            log(msg, True)
            reply = answer(zone, msg)
            if reply is not None:
                conn.sendall(struct.pack("!H", len(reply)) + reply)
    except OSError:
        pass
    finally:
        conn.close()
        slots.release()


def serve_tcp(lsock, zone):
    slots = threading.BoundedSemaphore(TCP_MAX_CONNS)
    while True:
        try:
            conn, _ = lsock.accept()
        except OSError:
            return
        if not slots.acquire(blocking=False):
            conn.close()
            continue
        threading.Thread(target=serve_tcp_conn, args=(conn, zone, slots),
                         daemon=True).start()


def bind_pair(port):
    """A UDP and a TCP socket on the same loopback port."""
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", port))
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            t.bind(("127.0.0.1", u.getsockname()[1]))
        except OSError:
            u.close()
            t.close()
            if port:
                raise
            continue
        t.listen(16)
        return u, t
    raise OSError("no free port for both UDP and TCP")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--zone", required=True)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    zone = Zone(args.zone)
    zone.get()
    u, t = bind_pair(args.port)
    threading.Thread(target=serve_tcp, args=(t, zone), daemon=True).start()
    emit({"port": u.getsockname()[1]})
    try:
        serve_udp(u, zone)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
