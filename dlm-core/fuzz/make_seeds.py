#!/usr/bin/env python3
"""Writes the small hand-made seed inputs under corpus/<target>/seed-*.

The encodings follow postcard (varints, enum variant index first) and the storage record framing
(u32 LE length, u32 LE CRC32, payload), so the seeds are valid frames and valid files that the
fuzzer then mutates. Run from this directory: python3 make_seeds.py
"""
import os
import struct
import zlib


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def string(s):
    b = s.encode()
    return varint(len(b)) + b


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def record(payload):
    return struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


# Command variants: Noop 0, Client 1, Expire 2, LiftDelay 3, CancelWait 4, ExpireSession 5.
def entry(term, index, command):
    return varint(term) + varint(index) + command


NOOP = b"\x00"
LIFT = b"\x03" + string("lock-a")
EXPIRE = b"\x02" + string("lock-a") + varint(7) + varint(2)


# Op variants: Acquire 0, Release 1, Cancel 2, KeepAlive 3, Append 4, Read 5, Status 6.
def request(op):
    return varint(0x1234_5678_9ABC) + varint(5) + varint(1) + op


ACQUIRE = b"\x00" + string("lock-a") + varint(30) + varint(0) + b"\x01" + varint(5) + varint(0)
APPEND = b"\x04" + string("lock-a") + varint(3) + string("file.txt") + varint(3) + b"abc"
CLIENT_CMD = b"\x01" + request(ACQUIRE)


def wire_seeds():
    # Hello: magic, version 2, cluster id, role, then the challenge (Option: 0 none, 1 + 32 bytes).
    hello_peer = varint(0x444C4D31) + varint(2) + varint(42) + b"\x00" + varint(2) + b"\x00"
    hello_client = varint(0x444C4D31) + varint(2) + varint(42) + b"\x01" + b"\x01" + bytes(range(32))
    # HelloAnswer::Challenge (variant 2): the node's nonce and proof.
    challenge = b"\x02" + bytes(range(32, 64)) + bytes(range(64, 96))
    # Reply variants differ per type; a Status reply stays out, the rejection path is enough:
    # Result::Err (1) + Rejection variant 0.
    response = varint(0x1234_5678_9ABC) + varint(5) + b"\x01\x00"
    # PeerBody: AppendEntries 0 {prev: (term, index), entries, commit}; RequestVote 2.
    append = (
        varint(1) + varint(2) + varint(3)
        + b"\x00" + varint(3) + varint(10)
        + varint(2) + entry(3, 11, NOOP) + entry(3, 12, CLIENT_CMD)
        + varint(10)
    )
    vote = varint(1) + varint(2) + varint(4) + b"\x02" + b"\x01" + varint(3) + varint(12) + b"\x00"
    # HelloProof: Proven (variant 0) with the caller's proof, or Refused (1) with why.
    proven = b"\x00" + bytes(range(96, 128))
    hung_up = b"\x01" + string("authentication failed: the node's proof did not verify")
    # The selector's low three bits pick the type; the rest, when not zero, are the most bytes
    # one read returns (here 1 and 3: a length prefix and a frame arriving in pieces).
    trickle1, trickle3 = 1 << 3, 3 << 3
    return {
        "client-acquire": b"\x00" + frame(request(ACQUIRE)) + frame(request(b"\x06")),
        "client-append": b"\x00" + frame(request(APPEND)),
        "response": b"\x01" + frame(response),
        "peer-append": b"\x02" + frame(append),
        "peer-vote": b"\x02" + frame(vote),
        "hello-peer": b"\x03" + frame(hello_peer),
        "hello-client": b"\x03" + frame(hello_client),
        "hello-trickle": bytes([3 | trickle1]) + frame(hello_client),
        "hello-answer": b"\x04" + frame(b"\x01" + string("bad magic")),
        "hello-challenge": b"\x04" + frame(challenge),
        # What a caller with a secret reads: the challenge, then the verdict.
        "hello-challenge-accepted": bytes([4 | trickle3]) + frame(challenge) + frame(b"\x00"),
        "hello-proof": b"\x05" + frame(proven),
        "hello-proof-refused": b"\x05" + frame(hung_up),
        "entry": b"\x06" + entry(3, 12, CLIENT_CMD),
        # An empty state machine: three empty maps (varint 0) and token 0.
        "snapshot": b"\x07" + b"\x00\x00\x00\x00",
    }


def disk(hard_state=None, snapshot=None, segments=(), framed=False):
    """The wal_raw input layout (see src/wal_raw.rs)."""
    flags = (1 if hard_state is not None else 0) | (2 if snapshot is not None else 0)
    flags |= 16 if framed else 0
    flags |= min(len(segments), 3) << 2
    out = bytearray([flags])
    for blob in (hard_state, snapshot):
        if blob is not None:
            out += struct.pack("<H", len(blob)) + blob
    for first, blob in segments[:3]:
        out += bytes([first]) if first < 255 else b"\xff" + struct.pack("<Q", first)
        out += struct.pack("<H", len(blob)) + blob
    return bytes(out)


def pieces(*payloads):
    return b"".join(bytes([len(p)]) + p for p in payloads)


def wal_seeds():
    seg1 = record(entry(1, 1, NOOP)) + record(entry(1, 2, LIFT)) + record(entry(2, 3, EXPIRE))
    seg4 = record(entry(2, 4, CLIENT_CMD)) + record(entry(2, 5, NOOP))
    hard = record(varint(2) + b"\x01" + varint(1))
    snap = record(varint(1) + varint(2) + varint(4) + b"\x00\x00\x00\x00")
    return {
        "one-segment": disk(segments=[(1, seg1)]),
        "two-segments": disk(hard_state=hard, segments=[(1, seg1), (4, seg4)]),
        "torn-tail": disk(hard_state=hard, segments=[(1, seg1 + seg4[:11])]),
        "zero-tail": disk(segments=[(1, seg1 + bytes(16))]),
        "snapshot": disk(hard_state=hard, snapshot=snap, segments=[(1, seg1), (4, seg4)]),
        "snapshot-only": disk(hard_state=hard, snapshot=snap),
        # Framed mode: payloads only, the target adds headers with good checksums.
        "framed": disk(
            hard_state=varint(2) + b"\x01" + varint(1),
            snapshot=varint(1) + varint(2) + varint(4) + b"\x00\x00\x00\x00",
            segments=[(1, pieces(entry(1, 1, NOOP), entry(1, 2, LIFT))),
                      (3, pieces(entry(2, 3, EXPIRE), entry(2, 4, CLIENT_CMD)))],
            framed=True,
        ),
    }


def write(target, seeds):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("wire_frame", wire_seeds())
    write("wal_raw", wal_seeds())
