"""Writes the `connection` seed corpus in the input encoding of src/connection.rs:
each configuration with messages, commands, PINGs with TTLs, clock steps, pauses
and sends, plus raw bytes cut in pieces."""
import hashlib
import pathlib

HERE = pathlib.Path(__file__).resolve().parent


def frames(*fs):
    """Op 1: up to 3 frames of (flags, body)."""
    assert len(fs) <= 3
    out = bytes([1, len(fs)])
    for flags, body in fs:
        out += bytes([flags, len(body)]) + body
    return out


def raw(data):
    """Op 0 repeated: the peer's bytes in pieces of up to 64."""
    out = b""
    while data:
        piece, data = data[:64], data[64:]
        out += bytes([0, len(piece) - 1]) + piece
    return out


def command(name, body=b""):
    return bytes([len(name)]) + name + body


tick = lambda t: bytes([2, t])
send = lambda k, b: bytes([3, k, b])
sub = lambda s: bytes([4, s])
listen = lambda on: bytes([5, 0 if on else 1])
ping = lambda ttl, ctx: bytes([6, ttl, ctx])
transmit = bytes([7])

seeds = []
for config in range(16):
    seeds.append(bytes([config]) + frames((1, b"id"), (1, b""), (0, b"hello")) + transmit)
    seeds.append(bytes([config]) + ping(5, 3) + transmit + tick(30) + tick(30) + tick(30))
    seeds.append(bytes([config]) + tick(10) + tick(10) + transmit + tick(20) + tick(20))
    seeds.append(
        bytes([config])
        + send(3, 2) + sub(0b0110) + sub(0b0111) + transmit
        + frames((4, command(b"SUBSCRIBE", b"topic")), (4, command(b"CANCEL", b"topic")))
    )
    seeds.append(bytes([config]) + listen(False) + tick(100) + tick(100) + listen(True) + tick(25) + tick(25))
big = b"\x02" + (70000).to_bytes(8, "big") + b"x" * 100
seeds.append(bytes([0]) + raw(big))
seeds.append(bytes([4]) + raw(b"\x01\x00" * 200 + b"\x00\x00"))
seeds.append(bytes([0]) + frames((4, b"\xffbroken"), (4, command(b"HELLO", b"junk")), (0, b"x")))
seeds.append(bytes([0]) + frames((4, command(b"PONG", b"ctx")), (5, b"\x04PING"), (0, b"")))
seeds.append(bytes([8]) + frames((1, b"a" * 40), (0, b"b" * 40)))

out = HERE / "corpus" / "connection"
out.mkdir(parents=True, exist_ok=True)
for seed in seeds:
    (out / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
print(f"{len(seeds)} seeds in {out}")
