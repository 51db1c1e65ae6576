"""Captures what majortomo 0.2.0's client and worker put on the wire, as a ROUTER
(the broker's seat) sees it. Prints one JSON object per message: who sent it and its
frames in hex, routing id removed. Run once; the output is kept as test data.

    python capture_majortomo.py > majortomo.jsonl
"""
import json, threading, time, zmq
from majortomo import Client, Worker

ctx = zmq.Context.instance()
router = ctx.socket(zmq.ROUTER)
port = router.bind_to_random_port("tcp://127.0.0.1")
url = f"tcp://127.0.0.1:{port}"
out = []

def emit(who, frames):
    out.append({"from": who, "frames": [f.hex() for f in frames]})

# Worker: READY, then HEARTBEAT, then a PARTIAL and a FINAL for a request we send it.
worker = Worker(url, b"echo", heartbeat_interval=0.2, heartbeat_timeout=5.0)
def serve():
    worker.connect()
    client_id, frames = worker.wait_for_request()
    worker.send_reply_partial(client_id, [b"part"])
    worker.send_reply_final(client_id, frames)
t = threading.Thread(target=serve, daemon=True)
t.start()

wid, *ready = router.recv_multipart()
emit("worker", ready)
while True:
    _, *frames = router.recv_multipart()
    emit("worker", frames)
    if frames[2] == b"\x05":  # a heartbeat
        break
# The broker side of REQUEST, as majortomo's own broker sends it.
router.send_multipart([wid, b"", b"MDPW02", b"\x02", b"client-1", b"", b"hello", b"world"])
for _ in range(2):
    while True:
        _, *frames = router.recv_multipart()
        if frames[2] != b"\x05":
            break
    emit("worker", frames)

# Client: a request with a two-frame body.
client = Client(url)
client.connect()
client.send(b"echo", b"hello", b"world")
_, *frames = router.recv_multipart()
emit("client", frames)
worker.close()
client.close()
for line in out:
    print(json.dumps(line))
