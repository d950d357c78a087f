#!/usr/bin/env python3
"""Converts a classic pcap into pcapng (SHB, one IDB with nanosecond resolution, EPBs), so the
sample captures exercise both readers with identical traffic.  usage: to_pcapng.py IN OUT"""
import struct
import sys

src, dst = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
magic = struct.unpack("<I", data[:4])[0]
endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
nanos = struct.unpack(endian + "I", data[:4])[0] == 0xA1B23C4D
snaplen, linktype = struct.unpack(endian + "II", data[16:24])


def block(kind, body):
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", kind, n) + body + struct.pack("<I", n)


out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
opts = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)  # if_tsresol = 10^-9
out.append(block(1, struct.pack("<HHI", linktype & 0xFFFF, 0, snaplen) + opts))
pos = 24
while pos + 16 <= len(data):
    sec, frac, incl, orig = struct.unpack(endian + "IIII", data[pos:pos + 16])
    pkt = data[pos + 16:pos + 16 + incl]
    pos += 16 + incl
    ts = sec * 1_000_000_000 + (frac if nanos else frac * 1000)
    out.append(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, incl, orig) + pkt))
open(dst, "wb").write(b"".join(out))
