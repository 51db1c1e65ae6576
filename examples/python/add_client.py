"""Calls the `add` service through an MDP broker from Python, with nothing but pyzmq
and msgpack: MDP 0.1 over a REQ socket (RFC 7), MessagePack body.

    pip install pyzmq msgpack
    python examples/python/add_client.py [tcp://127.0.0.1:5555] [x] [y]
"""
import sys
import msgpack
import zmq

endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
x = int(sys.argv[2]) if len(sys.argv) > 2 else 6
y = int(sys.argv[3]) if len(sys.argv) > 3 else 7

socket = zmq.Context.instance().socket(zmq.REQ)
socket.setsockopt(zmq.LINGER, 0)
socket.connect(endpoint)
socket.send_multipart([b"MDPC01", b"add", msgpack.packb({"x": x, "y": y})])
if not socket.poll(5000):
    sys.exit("no reply within 5 s: is the broker running, and the add worker?")
header, service, body = socket.recv_multipart()
print(f"{x} + {y} = {msgpack.unpackb(body)}")
