"""Serves the `add` service through an MDP broker from Python, with nothing but pyzmq
and msgpack: an MDP 0.1 worker on a DEALER socket (RFC 7), MessagePack bodies
{"x": int, "y": int} -> int, heartbeats both ways.

    pip install pyzmq msgpack
    python examples/python/add_worker.py [tcp://127.0.0.1:5555]

Any MDP client can call it, e.g. `cargo run -p zmtp-examples --example add_client -- 6 7`.
"""
import sys
import time

import msgpack
import zmq

endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
HEARTBEAT_S = 2.5  # RFC 7's default, as the broker's
LIVENESS = 3

READY, REQUEST, REPLY, HEARTBEAT, DISCONNECT = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"


def connect():
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    socket.send_multipart([b"", b"MDPW01", READY, b"add"])
    return socket


socket = connect()
print(f"add worker serving through {endpoint}", file=sys.stderr, flush=True)
last_heard = last_sent = time.monotonic()
while True:
    if socket.poll(int(HEARTBEAT_S * 1000)):
        frames = socket.recv_multipart()
        last_heard = time.monotonic()
        command = frames[2] if len(frames) > 2 else b""
        if command == REQUEST:
            # [empty, header, REQUEST, client, empty, body]
            client, body = frames[3], frames[5]
            args = msgpack.unpackb(body)
            result = msgpack.packb(args["x"] + args["y"])
            socket.send_multipart([b"", b"MDPW01", REPLY, client, b"", result])
            last_sent = time.monotonic()
        elif command == DISCONNECT:
            socket.close()
            socket = connect()
    now = time.monotonic()
    if now - last_heard > HEARTBEAT_S * LIVENESS:
        # The broker is gone (or restarted): register again on a new connection.
        socket.close()
        socket = connect()
        last_heard = now
    if now - last_sent >= HEARTBEAT_S:
        socket.send_multipart([b"", b"MDPW01", HEARTBEAT])
        last_sent = now
