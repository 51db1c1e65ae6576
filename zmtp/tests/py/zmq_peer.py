"""A pyzmq (libzmq) peer for the interop tests, driven by lines on stdin.

Options (argv): --type DEALER|ROUTER|REQ|REP|PUB|SUB|XPUB|XSUB|PUSH|PULL|PAIR,
--bind EP | --connect EP, --identity HEX, --heartbeat IVL_MS,TIMEOUT_MS,TTL_MS
(0: leave unset), --mandatory (ZMQ_ROUTER_MANDATORY), --xpub-verbose
(ZMQ_XPUB_VERBOSE), --monitor (record socket events).

Security: --curve-server SECRET (a CURVE server with this Z85 secret key),
--curve-client SECRET,SERVER_PUBLIC (a CURVE client), --curve-allow KEY,... (a
zmq.auth authenticator that lets in only these Z85 client public keys; "none" for
nobody).

Prints "READY <endpoint>" once bound or connected (for a bind, the real endpoint),
then answers each command with one line:

  send F          sends frames F                       -> SENT
  flood N F       sends N messages: frames F, then a
                  4-byte big-endian counter 0..N-1 (each
                  send waits up to WAIT_MS for room)   -> SENT N
  send_mandatory F ROUTER: retries while the peer is
                  unknown (EHOSTUNREACH)               -> SENT
  recv            waits for a message                  -> MSG F
  recv_within MS  waits at most MS milliseconds        -> MSG F | NONE
  recv_many N     receives up to N messages, each within
                  WAIT_MS; D counts distinct last frames -> RECEIVED K D
  subscribe H     SUB/XSUB: ZMQ_SUBSCRIBE topic H      -> OK
  unsubscribe H   SUB/XSUB: ZMQ_UNSUBSCRIBE topic H    -> OK
  poke            reads ZMQ_EVENTS, which makes libzmq
                  process its pending commands (a bound
                  socket attaches a new peer, and a SUB
                  sends it its subscriptions, only when
                  the application calls into the socket) -> OK
  try_send F       send F if it can be queued at once       -> SENT [not queued]
  events          every monitor event so far           -> EVENTS name,name,...
  wait_event NAME [N] until NAME was seen N times      -> EVENT NAME
  exit            closes the socket and exits

F is a message: frames in hex joined by ","; H is one frame in hex (empty: the
empty topic, which matches everything). Anything that goes wrong prints
"ERROR <reason>" (plus a traceback on stderr) and exits with status 1.
Waits are bounded by WAIT_MS.
"""

import argparse
import sys
import time
import traceback

import zmq
from zmq.utils.monitor import recv_monitor_message

# Below testkit's 30 s line timeout, so a wait that fails says what it saw.
WAIT_MS = 20_000


def encode(frames):
    return ",".join(bytes(f).hex() for f in frames)


def decode(text):
    return [bytes.fromhex(f) for f in text.split(",")]


def event_name(value):
    try:
        return zmq.Event(value).name
    except ValueError:
        return str(value)


class Peer:
    def __init__(self, args):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(getattr(zmq, args.type))
        self.sock.linger = 1000
        self.sock.sndtimeo = WAIT_MS
        if args.identity:
            self.sock.setsockopt(zmq.ROUTING_ID, bytes.fromhex(args.identity))
        if args.mandatory:
            self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        if args.xpub_verbose:
            self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        if args.heartbeat:
            ivl, timeout, ttl = (int(x) for x in args.heartbeat.split(","))
            self.sock.setsockopt(zmq.HEARTBEAT_IVL, ivl)
            if timeout:
                self.sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, timeout)
            if ttl:
                self.sock.setsockopt(zmq.HEARTBEAT_TTL, ttl)
        self.auth = None
        if args.curve_allow:
            from zmq.auth.thread import ThreadAuthenticator

            self.auth = ThreadAuthenticator(self.ctx)
            self.auth.start()
            allowed = set() if args.curve_allow == "none" else set(args.curve_allow.split(","))

            class Allowed:
                def callback(self, domain, key):
                    return key.decode() in allowed

            self.auth.configure_curve_callback(domain="*", credentials_provider=Allowed())
        if args.curve_server:
            self.sock.curve_server = True
            self.sock.curve_secretkey = args.curve_server.encode()
        if args.curve_client:
            secret, server = args.curve_client.split(",")
            self.sock.curve_secretkey = secret.encode()
            self.sock.curve_publickey = zmq.curve_public(secret.encode())
            self.sock.curve_serverkey = server.encode()
        self.monitor = self.sock.get_monitor_socket() if args.monitor else None
        self.events = []
        if args.bind:
            self.bind(args.bind)
            endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        else:
            self.sock.connect(args.connect)
            endpoint = args.connect
        print("READY", endpoint)

    def bind(self, endpoint):
        # A restarted peer rebinds its predecessor's address; retry briefly in case
        # the OS has not released it yet.
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sock.bind(endpoint)
                return
            except zmq.ZMQError as e:
                if e.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def poll_events(self, timeout_ms=0):
        if self.monitor is None:
            raise RuntimeError("started without --monitor")
        while self.monitor.poll(timeout_ms):
            self.events.append(event_name(recv_monitor_message(self.monitor)["event"]))
            timeout_ms = 0

    def recv(self, timeout_ms):
        if not self.sock.poll(timeout_ms, zmq.POLLIN):
            return None
        return self.sock.recv_multipart()

    def command(self, line):
        op, _, arg = line.partition(" ")
        if op == "send":
            self.sock.send_multipart(decode(arg))
            print("SENT")
        elif op == "try_send":
            # Queued if the socket can take it now (a refused client may have no
            # pipe at this moment), else not sent at all.
            try:
                self.sock.send_multipart(decode(arg), flags=zmq.NOBLOCK)
                print("SENT")
            except zmq.Again:
                print("SENT not queued")
        elif op == "flood":
            count, _, frames = arg.partition(" ")
            frames = decode(frames)
            for i in range(int(count)):
                self.sock.send_multipart(frames + [i.to_bytes(4, "big")])
            print("SENT", count)
        elif op == "send_mandatory":
            frames = decode(arg)
            deadline = time.monotonic() + WAIT_MS / 1000
            while True:
                try:
                    self.sock.send_multipart(frames)
                    break
                except zmq.ZMQError as e:
                    if e.errno != zmq.EHOSTUNREACH or time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
            print("SENT")
        elif op == "recv":
            msg = self.recv(WAIT_MS)
            if msg is None:
                raise TimeoutError(f"no message within {WAIT_MS} ms")
            print("MSG", encode(msg))
        elif op == "recv_many":
            received, distinct = 0, set()
            for _ in range(int(arg)):
                msg = self.recv(WAIT_MS)
                if msg is None:
                    break
                received += 1
                distinct.add(bytes(msg[-1]))
            print("RECEIVED", received, len(distinct))
        elif op == "recv_within":
            msg = self.recv(int(arg))
            print("NONE" if msg is None else "MSG " + encode(msg))
        elif op in ("subscribe", "unsubscribe"):
            option = zmq.SUBSCRIBE if op == "subscribe" else zmq.UNSUBSCRIBE
            self.sock.setsockopt(option, bytes.fromhex(arg))
            print("OK")
        elif op == "poke":
            self.sock.getsockopt(zmq.EVENTS)
            print("OK")
        elif op == "events":
            self.poll_events()
            print("EVENTS", ",".join(self.events))
        elif op == "wait_event":
            name, _, count = arg.partition(" ")
            count = int(count or 1)
            deadline = time.monotonic() + WAIT_MS / 1000
            self.poll_events()
            while self.events.count(name) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{name} x{count} not seen; events: {self.events}")
                self.poll_events(int(left * 1000) + 1)
            print("EVENT", name)
        elif op == "exit":
            self.sock.close()
            sys.exit(0)
        else:
            raise ValueError(f"unknown command {op!r}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--type", required=True)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--bind")
    where.add_argument("--connect")
    parser.add_argument("--identity")
    parser.add_argument("--heartbeat")
    parser.add_argument("--mandatory", action="store_true")
    parser.add_argument("--xpub-verbose", action="store_true")
    parser.add_argument("--monitor", action="store_true")
    parser.add_argument("--curve-server")
    parser.add_argument("--curve-client")
    parser.add_argument("--curve-allow")
    args = parser.parse_args()
    try:
        peer = Peer(args)
        for line in sys.stdin:
            peer.command(line.rstrip("\n"))
    except Exception as e:  # report any failure on stdout for the test, details on stderr
        traceback.print_exc()
        print("ERROR", repr(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
