"""Captures the wire frames of zguide's MDP 0.1 client (REQ, as mdcliapi.py) and
worker (DEALER, as mdwrkapi.py), and of Overseer's client (REQ, header "0", msgpack
body) and worker (DEALER, header "1", ASCII commands), as a ROUTER sees them.

    python capture_zguide_overseer.py > zguide_overseer.jsonl
"""
import json, msgpack, zmq

ctx = zmq.Context.instance()
router = ctx.socket(zmq.ROUTER)
port = router.bind_to_random_port("tcp://127.0.0.1")
url = f"tcp://127.0.0.1:{port}"

def capture(who, dialect, sock_type, frames):
    s = ctx.socket(sock_type)
    s.connect(url)
    s.send_multipart(frames)
    _, *got = router.recv_multipart()
    print(json.dumps({"from": who, "dialect": dialect, "frames": [f.hex() for f in got]}))
    s.close()

# zguide mdcliapi.py: request = [MDPC01, service] + body over REQ.
capture("client", "mdp01", zmq.REQ, [b"MDPC01", b"echo", b"hello"])
# zguide mdcliapi2.py: DEALER with the empty frame pushed by hand.
capture("client", "mdp01", zmq.DEALER, [b"", b"MDPC01", b"echo", b"hello"])
# zguide mdwrkapi.py: [b"", MDPW01, command] + [option] + msg over DEALER.
capture("worker", "mdp01", zmq.DEALER, [b"", b"MDPW01", b"\x01", b"echo"])
capture("worker", "mdp01", zmq.DEALER, [b"", b"MDPW01", b"\x03", b"client-1", b"", b"hello"])
capture("worker", "mdp01", zmq.DEALER, [b"", b"MDPW01", b"\x04"])
capture("worker", "mdp01", zmq.DEALER, [b"", b"MDPW01", b"\x05"])
# RFC 18 client and worker over DEALER.
capture("client", "mdp02", zmq.DEALER, [b"MDPC02", b"\x01", b"echo", b"hello"])
capture("worker", "mdp02", zmq.DEALER, [b"MDPW02", b"\x01", b"echo"])
capture("worker", "mdp02", zmq.DEALER, [b"MDPW02", b"\x03", b"client-1", b"", b"part"])
capture("worker", "mdp02", zmq.DEALER, [b"MDPW02", b"\x04", b"client-1", b"", b"done"])
# Overseer ipc: client ["0", service, msgpack] over REQ; worker "1" + ASCII commands.
body = msgpack.packb({"x": 6, "y": 7})
capture("client", "overseer", zmq.REQ, [b"0", b"add", body])
capture("worker", "overseer", zmq.DEALER, [b"", b"1", b"3", b"add"])
capture("worker", "overseer", zmq.DEALER, [b"", b"1", b"4", b"client-1", b"", msgpack.packb(13)])
capture("worker", "overseer", zmq.DEALER, [b"", b"1", b"5"])
