"""Writes the `mdp` seed corpus (captured peers' frames, broker commands and replies of every dialect, malformed ones) in the input encoding of src/mdp.rs."""
import hashlib
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
E = b""


def encode(frames):
    assert len(frames) <= 11
    data = bytes([len(frames)])
    for frame in frames[:-1]:
        data += bytes([len(frame)]) + frame
    return data + (frames[-1] if frames else b"")


seeds = []
for capture in sorted((HERE / "../mdp/tests/captures").glob("*.jsonl")):
    for line in capture.read_text().splitlines():
        if line.strip():
            seeds.append([bytes.fromhex(f) for f in json.loads(line)["frames"]])

body = [b"hello", b"world"]
msgpack = [E, bytes.fromhex("82a17806a17907")]
# Broker -> worker: REQUEST, HEARTBEAT, DISCONNECT of each dialect.
seeds += [
    [E, b"MDPW01", b"\x02", b"client-1", E] + body,
    [E, b"MDPW01", b"\x04"],
    [E, b"MDPW01", b"\x05"],
    [b"MDPW02", b"\x02", b"client-1", E] + body,
    [b"MDPW02", b"\x05"],
    [b"MDPW02", b"\x06"],
    [E, b"MDPW02", b"\x02", b"\x00\x6b\x8b\x45\x67", E, b"hello"],
    [E, b"MDPW02", b"\x05"],
    [E, b"MDPW02", b"\x06"],
    [E, b"1", b"2", b"client-1", E, msgpack[1]],
    [E, b"1", b"5"],
    [E, b"1", b"6"],
]
# Broker -> client replies.
seeds += [
    [E, b"MDPC01", b"echo"] + body,
    [b"MDPC02", b"\x02", b"echo", b"part"],
    [E, b"MDPC02", b"\x03", b"echo"] + body,
    [E, b"MDPC02", b"\x03", b"part"],
    [E, b"MDPC02", b"\x04"] + body,
    [E, b"0", b"add"] + msgpack,
]
# Malformed: truncated, unknown header, non-empty delimiters, unknown command.
seeds += [
    [E, b"MDPC02", b"\x02"],
    [E, b"MDPW0"],
    [b"MDPX01", b"\x01", b"echo"],
    [E, b"MDPW01", b"\x03", b"client-1", b"x", b"hello"],
    [b"x", b"MDPC01", b"echo", b"hello"],
    [b"MDPW02", b"\x07"],
    [],
]

out = HERE / "corpus/mdp"
out.mkdir(parents=True, exist_ok=True)
for frames in seeds:
    data = encode(frames)
    (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
print(len(seeds), "seeds,", len(list(out.iterdir())), "files")
