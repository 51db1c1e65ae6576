"""MDP peers in the frame layouts real implementations use, for broker interop tests.

    mdp_peer.py ENDPOINT MODE SERVICE [OWN_SECRET_CERT BROKER_PUBLIC_CERT [TIMEOUT_S]]

With the two certificate paths (czmq format, read by zmq.auth.load_certificate),
every socket talks CURVE to the broker: the keys are set on the shared context,
which is how majortomo's Client and Worker pick them up unchanged. TIMEOUT_S bounds
a majortomo client's wait (default 20); on expiry it prints "TIMEOUT".

MODE:
  zguide-client    REQ socket, MDP 0.1 (as zguide mdcliapi): stdin lines are request
                   bodies; prints "REPLY <service>|<frames...>"
  zguide-worker    DEALER, MDP 0.1 (as zguide mdwrkapi): replies with the body upper-cased
  rfc18-client     DEALER, MDP 0.2 (RFC 18): prints "PARTIAL ..." / "FINAL ..."
  rfc18-worker     DEALER, MDP 0.2: a PARTIAL with the body, then FINAL upper-cased
  overseer-client  REQ, header "0", msgpack body {"x": .., "y": ..} from "x y" lines
  overseer-worker  DEALER, header "1", ASCII commands; replies msgpack x+y
  majortomo-client majortomo.Client; prints "REPLY <frames...>"
  majortomo-worker majortomo.Worker; replies upper-cased
  zguide-hang      DEALER, MDP 0.1 worker that prints "GOT <body>" for a request and
                   then hangs (no reply, no heartbeats): a worker dying mid-request
Prints READY once connected.
"""
import faulthandler, sys, threading, time
import msgpack, zmq

endpoint, mode, service = sys.argv[1], sys.argv[2], sys.argv[3].encode()
ctx = zmq.Context.instance()
if len(sys.argv) > 5:
    import zmq.auth
    own_public, own_secret = zmq.auth.load_certificate(sys.argv[4])
    broker_public, _ = zmq.auth.load_certificate(sys.argv[5])
    ctx.setsockopt(zmq.CURVE_SECRETKEY, own_secret)
    ctx.setsockopt(zmq.CURVE_PUBLICKEY, own_public)
    ctx.setsockopt(zmq.CURVE_SERVERKEY, broker_public)
timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 20

def lines():
    """stdin lines. While one is being answered, a watchdog armed for TIMEOUT_S + 5
    seconds (under the tests' 30 s wait) writes every thread's stack to stderr, which
    a failing test shows: a peer stuck on a request says where."""
    while True:
        faulthandler.cancel_dump_traceback_later()
        line = sys.stdin.readline()
        if not line:
            return
        faulthandler.dump_traceback_later(timeout + 5)
        yield line.rstrip("\n")

def show(frames):
    return "|".join(f.decode(errors="replace") for f in frames)

if mode == "zguide-client":
    s = ctx.socket(zmq.REQ); s.connect(endpoint); print("READY", flush=True)
    for body in lines():
        s.send_multipart([b"MDPC01", service, body.encode()])
        header, svc, *reply = s.recv_multipart()
        assert header == b"MDPC01", header
        print("REPLY " + svc.decode() + "|" + show(reply), flush=True)

elif mode == "zguide-worker":
    s = ctx.socket(zmq.DEALER); s.connect(endpoint)
    s.send_multipart([b"", b"MDPW01", b"\x01", service]); print("READY", flush=True)
    while True:
        if not s.poll(1000):
            s.send_multipart([b"", b"MDPW01", b"\x04"]); continue
        empty, header, cmd, *rest = s.recv_multipart()
        if cmd == b"\x02":
            client, _, *body = rest
            s.send_multipart([b"", b"MDPW01", b"\x03", client, b""] + [f.upper() for f in body])
        elif cmd == b"\x05":
            sys.exit(0)

elif mode == "rfc18-client":
    s = ctx.socket(zmq.DEALER); s.connect(endpoint); print("READY", flush=True)
    for body in lines():
        s.send_multipart([b"MDPC02", b"\x01", service, body.encode()])
        while True:
            header, cmd, svc, *reply = s.recv_multipart()
            kind = {b"\x02": "PARTIAL", b"\x03": "FINAL"}[cmd]
            print(kind + " " + svc.decode() + "|" + show(reply), flush=True)
            if kind == "FINAL":
                break

elif mode == "rfc18-worker":
    s = ctx.socket(zmq.DEALER); s.connect(endpoint)
    s.send_multipart([b"MDPW02", b"\x01", service]); print("READY", flush=True)
    while True:
        if not s.poll(1000):
            s.send_multipart([b"MDPW02", b"\x05"]); continue
        header, cmd, *rest = s.recv_multipart()
        if cmd == b"\x02":
            client, _, *body = rest
            s.send_multipart([b"MDPW02", b"\x03", client, b""] + body)
            s.send_multipart([b"MDPW02", b"\x04", client, b""] + [f.upper() for f in body])
        elif cmd == b"\x06":
            sys.exit(0)

elif mode == "overseer-client":
    s = ctx.socket(zmq.REQ); s.connect(endpoint); print("READY", flush=True)
    for line in lines():
        x, y = (int(v) for v in line.split())
        s.send_multipart([b"0", service, msgpack.packb({"x": x, "y": y})])
        header, svc, empty, body = s.recv_multipart()
        assert header == b"0" and empty == b"", (header, empty)
        print("REPLY " + svc.decode() + "|" + str(msgpack.unpackb(body)), flush=True)

elif mode == "overseer-worker":
    s = ctx.socket(zmq.DEALER); s.connect(endpoint)
    s.send_multipart([b"", b"1", b"3", service]); print("READY", flush=True)
    while True:
        if not s.poll(1000):
            s.send_multipart([b"", b"1", b"5"]); continue
        empty, header, cmd, *rest = s.recv_multipart()
        if cmd == b"2":
            client, _, body = rest
            args = msgpack.unpackb(body)
            s.send_multipart([b"", b"1", b"4", client, b"", msgpack.packb(args["x"] + args["y"])])
        elif cmd == b"6":
            sys.exit(0)

elif mode == "majortomo-client":
    from majortomo import Client
    c = Client(endpoint); c.connect(); print("READY", flush=True)
    for body in lines():
        c.send(service, body.encode())
        try:
            print("REPLY " + show(c.recv_all_as_list(timeout=timeout)), flush=True)
        except Exception as e:
            print("TIMEOUT" if type(e).__name__ == "Timeout" else "ERROR " + repr(e), flush=True)
            c.close(); c = Client(endpoint); c.connect()

elif mode == "majortomo-worker":
    from majortomo import Worker
    w = Worker(endpoint, service, heartbeat_interval=1.0, heartbeat_timeout=10.0)
    w.connect(); print("READY", flush=True)
    while True:
        client, frames = w.wait_for_request()
        w.send_reply_final(client, [f.upper() for f in frames])
elif mode == "zguide-hang":
    s = ctx.socket(zmq.DEALER); s.connect(endpoint)
    s.send_multipart([b"", b"MDPW01", b"\x01", service]); print("READY", flush=True)
    while True:
        empty, header, cmd, *rest = s.recv_multipart()
        if cmd == b"\x02":
            print("GOT " + show(rest[2:]), flush=True)
            time.sleep(3600)

else:
    sys.exit("unknown mode " + mode)
