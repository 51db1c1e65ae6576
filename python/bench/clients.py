"""Python clients against one broker, same sitting: zmdp's blocking and asyncio
clients, majortomo's Client and a raw pyzmq REQ speaking MDP 0.1, each sending
100-byte requests to an echo service; prints requests/s and p50/p99 latency per
client and the ratios against majortomo and raw pyzmq.

    python clients.py ENDPOINT [SECONDS]

Run by scripts/bench-python, which starts the broker and Rust echo workers.
"""

import asyncio
import statistics
import sys
import time

import zmq

import zmdp

ENDPOINT = sys.argv[1]
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
BODY = b"x" * 100


def measure(name, one_request):
    """Sequential requests for SECONDS: (name, req/s, p50 µs, p99 µs)."""
    for _ in range(200):  # warm-up
        one_request()
    lat = []
    end = time.perf_counter() + SECONDS
    while True:
        t = time.perf_counter()
        if t > end:
            break
        one_request()
        lat.append(time.perf_counter() - t)
    return summary(name, lat, SECONDS)


def summary(name, lat, seconds):
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e6
    return name, len(lat) / seconds, p(0.5), p(0.99)


def zmdp_blocking():
    client = zmdp.BlockingClient(ENDPOINT, timeout=10)
    return measure("zmdp BlockingClient", lambda: client.request("echo", BODY))


def zmdp_async(in_flight=64):
    async def run():
        client = zmdp.Client(ENDPOINT, timeout=10)
        for _ in range(200):
            await client.request("echo", BODY)
        lat = []
        end = time.perf_counter() + SECONDS

        async def task():
            while time.perf_counter() < end:
                t = time.perf_counter()
                await client.request("echo", BODY)
                lat.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(task() for _ in range(in_flight)))
        return summary(f"zmdp Client, {in_flight} in flight", lat, time.perf_counter() - started)

    return asyncio.run(run())


def majortomo_client():
    from majortomo import Client

    client = Client(ENDPOINT)
    client.connect()

    def one():
        client.send(b"echo", BODY)
        client.recv_all_as_list(timeout=10)

    return measure("majortomo Client", one)


def raw_pyzmq():
    req = zmq.Context.instance().socket(zmq.REQ)
    req.connect(ENDPOINT)

    def one():
        req.send_multipart([b"MDPC01", b"echo", BODY])
        req.recv_multipart()

    return measure("raw pyzmq REQ (MDP 0.1)", one)


rows = [majortomo_client(), raw_pyzmq(), zmdp_blocking(), zmdp_async()]
base = {name: rate for name, rate, _, _ in rows}
print(f"{'client':34} {'req/s':>9} {'p50 us':>8} {'p99 us':>8} {'/majortomo':>11} {'/pyzmq':>7}")
for name, rate, p50, p99 in rows:
    print(
        f"{name:34} {rate:9.0f} {p50:8.0f} {p99:8.0f} "
        f"{rate / base['majortomo Client']:11.2f} {rate / base['raw pyzmq REQ (MDP 0.1)']:7.2f}"
    )
