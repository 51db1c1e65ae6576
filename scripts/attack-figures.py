"""Before/after figures for issue 20's request-side attacks (rows 1-4, 7, 8 and the
zguide-style asynchronous burst), against any mdp-broker binary with its default
options. pyzmq peers: attackers connect from 127.0.0.2, the side pair and fresh
clients from 127.0.0.1. One broker process per row; one line of figures per row.

    python scripts/attack-figures.py BROKER [ROW...]     # rows: 1 2 3 4 7 8 burst

Needs pyzmq (the test venv: target/interop-venv/bin/python). Figures, not
assertions: a row that cannot complete says so and the next one runs.
"""
import os, signal, subprocess, sys, threading, time
import msgpack, zmq

BROKER = sys.argv[1]
ROWS = sys.argv[2:] or ["1", "2", "3", "4", "7", "8", "burst"]


class Broker:
    def __init__(self, *args):
        self.proc = subprocess.Popen([BROKER, "-b", "tcp://127.0.0.1:0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        self.endpoint = line.split()[-1]
        self.port = self.endpoint.rsplit(":", 1)[1]
        self.stderr_lines = 0
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for _ in self.proc.stderr:
            self.stderr_lines += 1

    def attacker(self):
        return "tcp://127.0.0.2:0;127.0.0.1:" + self.port

    def status(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) // 1024  # MiB
        return 0

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


ctx = zmq.Context()


def sock(kind, endpoint, identity=None, rcvtimeo=10000):
    s = ctx.socket(kind)
    s.linger = 0
    s.rcvtimeo = rcvtimeo
    s.sndtimeo = 30000
    if identity:
        s.identity = identity
    s.connect(endpoint)
    return s


def echo_worker(endpoint, service=b"echo"):
    """An MDP 0.1 worker (zguide mdwrkapi style) on a thread; returns a stop event."""
    stop = threading.Event()

    def run():
        w = sock(zmq.DEALER, endpoint, rcvtimeo=200)
        w.send_multipart([b"", b"MDPW01", b"\x01", service])
        while not stop.is_set():
            try:
                f = w.recv_multipart()
            except zmq.Again:
                w.send_multipart([b"", b"MDPW01", b"\x04"])
                continue
            if f[2] == b"\x02":
                w.send_multipart([b"", b"MDPW01", b"\x03", f[3], b""] + f[5:])
        w.close()

    threading.Thread(target=run, daemon=True).start()
    return stop


def side_latencies(endpoint, n, timeout_ms=2500):
    """n echo requests from a REQ client (one attempt each): latencies in ms, or None
    for those not answered in time."""
    out = []
    for i in range(n):
        s = sock(zmq.REQ, endpoint, rcvtimeo=timeout_ms)
        t = time.perf_counter()
        s.send_multipart([b"MDPC01", b"echo", b"side-%d" % i])
        try:
            s.recv_multipart()
            out.append((time.perf_counter() - t) * 1000)
        except zmq.Again:
            out.append(None)
        s.close()
    return out


def summary(lat):
    ok = sorted(x for x in lat if x is not None)
    p50 = ok[len(ok) // 2] if ok else float("nan")
    return f"side {len(ok)}/{len(lat)} answered, p50 {p50:.1f} ms"


def mmi(endpoint, service, body=b""):
    s = sock(zmq.REQ, endpoint, rcvtimeo=30000)
    t = time.perf_counter()
    s.send_multipart([b"MDPC01", service] + ([body] if body else []))
    reply = s.recv_multipart()
    s.close()
    return reply, (time.perf_counter() - t) * 1000


def row1():
    b = Broker(); stop = echo_worker(b.endpoint); time.sleep(0.5)
    a = sock(zmq.DEALER, b.attacker())
    for i in range(100_000):
        a.send_multipart([b"", b"MDPC01", b"unserved-%d" % (i % 11), b"%d" % i])
    time.sleep(2)
    lat = side_latencies(b.endpoint, 20)
    lines_before = b.stderr_lines
    cpu = b.cpu_seconds()
    a.close()
    time.sleep(3)
    print(f"row 1: {summary(lat)}; log lines during the flood {lines_before}, "
          f"after the attacker left {b.stderr_lines - lines_before}; "
          f"broker CPU handling its departure {1000 * (b.cpu_seconds() - cpu):.0f} ms")
    stop.set(); b.stop()


def row2():
    b = Broker(); stop = echo_worker(b.endpoint); time.sleep(0.5)
    base = b.status("VmRSS")
    a = sock(zmq.DEALER, b.attacker())
    for i in range(8):
        a.send_multipart([b"", b"MDPC01", b"x" * (1 << 20), b"body"])
    for i in range(10_000):
        a.send_multipart([b"", b"MDPC01", b"%05d" % i + b"s" * 250, b"body"])
    for i in range(300):
        a.send_multipart([b"", b"MDPC01", b"mmi.services"])
    for i in range(200):
        a.send_multipart([b"", b"MDPC01", b"echo", b"%d" % i + b"e" * (1 << 20)])
    time.sleep(8)
    lat = side_latencies(b.endpoint, 10)
    print(f"row 2: RSS {base} -> {b.status('VmRSS')} MiB (peak {b.status('VmHWM')}); {summary(lat)}")
    a.close(); stop.set(); b.stop()


def row3():
    b = Broker()
    base = b.status("VmRSS")
    refused = 0
    for i in range(32):
        w = sock(zmq.DEALER, b.attacker(), rcvtimeo=1000)
        w.send_multipart([b"", b"MDPW01", b"\x01", b"%02d" % i + b"n" * (256 << 10)])
        try:
            refused += w.recv_multipart()[2] == b"\x05"
        except zmq.Again:
            pass
        w.close()
    time.sleep(1)
    reply, ms = mmi(b.endpoint, b"mmi.stats")
    a = sock(zmq.DEALER, b.attacker())
    for i in range(100):
        a.send_multipart([b"", b"MDPC01", b"mmi.stats"])
    time.sleep(5)
    print(f"row 3: {refused}/32 refused; mmi.stats {len(reply[-1])} bytes in {ms:.1f} ms; "
          f"RSS after 100 unread {base} -> {b.status('VmRSS')} MiB")
    a.close(); b.stop()


def row4():
    b = Broker()
    base = b.status("VmRSS")

    def worker():
        w = sock(zmq.DEALER, b.attacker(), rcvtimeo=60000)
        w.send_multipart([b"MDPW02", b"\x01", b"stream"])
        while True:
            f = w.recv_multipart()
            if f[1] == b"\x02":
                for _ in range(256):
                    w.send_multipart([b"MDPW02", b"\x03", f[2], b""] + [b""] * 65000)
                w.send_multipart([b"MDPW02", b"\x04", f[2], b"", b"end"])
                return

    threading.Thread(target=worker, daemon=True).start()
    time.sleep(0.5)
    c = sock(zmq.REQ, b.endpoint, rcvtimeo=120000)
    c.send_multipart([b"MDPC01", b"stream", b"go"])
    try:
        frames = len(c.recv_multipart()) - 2
    except zmq.Again:
        frames = "none"
    print(f"row 4: reply of {frames} frames; RSS {base} -> peak {b.status('VmHWM')} MiB")
    c.close(); b.stop()


def row7():
    b = Broker()
    w = sock(zmq.DEALER, b.endpoint, rcvtimeo=10000)
    w.send_multipart([b"", b"MDPW01", b"\x01", b"slow"])
    time.sleep(0.5)
    old = sock(zmq.DEALER, b.endpoint, identity=b"victim")
    old.send_multipart([b"", b"MDPC01", b"slow", b"private"])
    w.recv_multipart()
    old.close()
    time.sleep(0.5)
    new = sock(zmq.DEALER, b.attacker(), identity=b"victim", rcvtimeo=3000)
    new.send_multipart([b"", b"MDPC01", b"mmi.service", b"slow"])
    new.recv_multipart()
    w.send_multipart([b"", b"MDPW01", b"\x03", b"victim", b"", b"secret"])
    try:
        got = new.recv_multipart()[-1]
    except zmq.Again:
        got = None
    ids = []
    for i in range(8):
        s = sock(zmq.DEALER, b.endpoint)
        s.send_multipart([b"", b"MDPW01", b"\x01", b"anon"])
        ids.append(s)
    time.sleep(0.5)
    reply, _ = mmi(b.endpoint, b"mmi.workers", b"anon")
    workers = msgpack.unpackb(reply[-1])
    counters = sorted(int(w["identity"][4:], 16) for w in workers
                      if w["identity"].startswith("0x00"))
    consecutive = sum(1 for x, y in zip(counters, counters[1:]) if y == x + 1)
    print(f"row 7: the newcomer received {got!r}; anonymous ids {consecutive} of "
          f"{max(len(counters) - 1, 0)} consecutive")
    b.stop()


def row8():
    b = Broker()
    for batch in range(50):
        c = zmq.Context()
        for i in range(100):
            s = c.socket(zmq.DEALER); s.connect(b.attacker())
            s.send_multipart([b"", b"MDPW01", b"\x01", b"random-%d-%d" % (batch, i)])
            s.send_multipart([b"", b"MDPW01", b"\x05"])
            s.close(linger=5000)
        c.term()
    stop = echo_worker(b.endpoint, b"fresh")
    time.sleep(1)
    for i in range(3):
        s = sock(zmq.REQ, b.endpoint)
        s.send_multipart([b"MDPC01", b"fresh", b"x"]); s.recv_multipart(); s.close()
    time.sleep(0.5)
    reply, _ = mmi(b.endpoint, b"mmi.stats")
    fresh = [s for s in msgpack.unpackb(reply[-1])["services"] if s["name"] == "fresh"]
    shown = f"served {fresh[0]['served']}" if fresh else "absent"
    print(f"row 8: after 5 000 names came and went, 'fresh' (3 served) shows {shown} in mmi.stats")
    stop.set(); b.stop()


def burst():
    b = Broker(); stop = echo_worker(b.endpoint); time.sleep(0.5)
    s = sock(zmq.DEALER, b.endpoint, rcvtimeo=10000)
    t = time.perf_counter()
    for i in range(100_000):
        s.send_multipart([b"", b"MDPC01", b"echo", i.to_bytes(4, "big")])
    got = set()
    try:
        while len(got) < 100_000:
            got.add(s.recv_multipart()[-1])
    except zmq.Again:
        pass
    print(f"burst: {len(got)} of 100 000 answered in {time.perf_counter() - t:.1f} s; "
          f"broker log lines {b.stderr_lines}")
    stop.set(); b.stop()


for row in ROWS:
    try:
        {"1": row1, "2": row2, "3": row3, "4": row4, "7": row7, "8": row8, "burst": burst}[row]()
    except Exception as e:  # a figure, not a verdict: report and go on
        print(f"row {row}: could not complete: {e!r}")
    sys.stdout.flush()
