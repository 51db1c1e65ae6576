"""pyzmq peers of the broker's event bus for the attack tests, driven by lines.

argv: pub ENDPOINT
    A PUB connected to ENDPOINT. Prints "READY", then for each line
    "publish FIRST COUNT SIZE TOPIC" sends COUNT events numbered FIRST, FIRST+1...:
    three frames [TOPIC, number in ASCII, SIZE bytes], or with TOPIC ending in "*"
    one frame of SIZE bytes that starts with TOPIC (without the "*") and the
    number, as the one-frame events many pyzmq programs send. Answers "SENT".

argv: flood ENDPOINT COUNT
    A SUB connected to ENDPOINT that subscribes to COUNT topics of distinct
    lengths (b"z" * 1, b"z" * 2, ... b"z" * COUNT), then prints "SUBSCRIBED" and
    never reads.

Anything that goes wrong ends the process with a traceback (the test shows stderr).
"""

import sys

import zmq


def publisher(endpoint):
    sock = zmq.Context().socket(zmq.PUB)
    sock.connect(endpoint)
    print("READY", flush=True)
    payloads = {}
    for line in sys.stdin:
        _, first, count, size, topic = line.split()
        first, count, size = int(first), int(count), int(size)
        if size not in payloads:
            payloads[size] = b"x" * size
        payload = payloads[size]
        for n in range(first, first + count):
            if topic.endswith("*"):
                head = topic[:-1].encode() + b"%d." % n
                sock.send(head + payload[len(head):])
            else:
                sock.send_multipart([topic.encode(), b"%d" % n, payload], copy=False)
        print("SENT", flush=True)


def flood(endpoint, count):
    sock = zmq.Context().socket(zmq.SUB)
    # libzmq drops subscriptions past the send HWM: let them all go.
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.connect(endpoint)
    for length in range(1, count + 1):
        sock.setsockopt(zmq.SUBSCRIBE, b"z" * length)
    print("SUBSCRIBED", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    if sys.argv[1] == "pub":
        publisher(sys.argv[2])
    elif sys.argv[1] == "flood":
        flood(sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}")
