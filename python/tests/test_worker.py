"""zmdp.Worker against the real broker: served to a raw pyzmq MDP 0.1 client, to a
majortomo client and to our own client; plain functions in threads, async ones,
streaming generators; an exception is the client's RemoteError; SIGTERM sends
DISCONNECT and ends the worker cleanly."""

import asyncio
import signal
import subprocess
import sys
import textwrap
import time

import msgpack
import pytest
import zmq

import zmdp
from conftest import WAIT

WORKER = textwrap.dedent(
    """
    import asyncio, sys, time, zmdp
    worker = zmdp.Worker(sys.argv[1], heartbeat=1.0)

    @worker.route("add")
    async def add(x, y):
        return x + y

    @worker.route("shout")
    def shout(text):
        time.sleep(0.01)   # a plain function: runs in a thread
        return text.upper()

    @worker.route("fail")
    def fail():
        raise ValueError("no luck")

    @worker.route("count")
    async def count(n):
        for i in range(n):
            yield i

    print("SERVING", flush=True)
    worker.run()
    print("STOPPED", flush=True)
    """
)


@pytest.fixture
def python_worker(broker):
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, broker], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "SERVING", proc.stderr.read()
    with zmdp.BlockingClient(broker, timeout=WAIT) as client:
        deadline = time.monotonic() + WAIT
        while client.request("mmi.service", "count") != [b"200"]:
            assert time.monotonic() < deadline, "the Python worker did not register"
            time.sleep(0.05)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_our_client_calls_every_kind_of_route(broker, python_worker):
    with zmdp.BlockingClient(broker, timeout=WAIT) as client:
        assert client.call("add", {"x": 6, "y": 7}) == 13
        assert client.call("shout", "hi") == "HI"
        with pytest.raises(zmdp.RemoteError, match="ValueError: no luck"):
            client.call("fail")
        # The final reply of a stream is its last part.
        assert client.call("count", {"n": 3}) == 2


def test_a_raw_pyzmq_mdp01_client_is_served(broker, python_worker):
    ctx = zmq.Context.instance()
    req = ctx.socket(zmq.REQ)
    req.connect(broker)
    req.send_multipart([b"MDPC01", b"add", msgpack.packb({"x": 40, "y": 2})])
    assert req.poll(WAIT * 1000)
    header, service, body = req.recv_multipart()
    assert (header, service, msgpack.unpackb(body)) == (b"MDPC01", b"add", 42)
    # A 0.1 client gets a streamed answer gathered into one reply.
    req.send_multipart([b"MDPC01", b"count", msgpack.packb({"n": 3})])
    assert req.poll(WAIT * 1000)
    header, service, *parts = req.recv_multipart()
    assert [msgpack.unpackb(p) for p in parts] == [0, 1, 2]
    req.close(linger=0)


def test_a_majortomo_client_is_served(broker, python_worker):
    from majortomo import Client

    client = Client(broker)
    client.connect()
    client.send(b"shout", msgpack.packb("quiet"))
    assert [msgpack.unpackb(f) for f in client.recv_all_as_list(timeout=WAIT)] == ["QUIET"]
    client.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_send_disconnect_and_stop_the_worker(broker, python_worker, sig):
    python_worker.send_signal(sig)
    assert python_worker.wait(timeout=WAIT) == 0
    assert python_worker.stdout.readline().strip() == "STOPPED"
    # The broker forgot it at once (DISCONNECT), not after its heartbeats.
    with zmdp.BlockingClient(broker, timeout=WAIT) as client:
        assert client.request("mmi.service", "add") == [b"404"]


def test_the_async_client_streams_partial_replies(broker, python_worker):
    async def main():
        async with zmdp.Client(broker, timeout=WAIT) as client:
            parts = [p async for p in client.stream("count", msgpack.packb({"n": 4}))]
            assert [msgpack.unpackb(p[0]) for p in parts] == [0, 1, 2, 3]

    asyncio.run(main())


def test_the_blocking_client_streams_too(broker, python_worker):
    with zmdp.BlockingClient(broker, timeout=WAIT) as client:
        parts = list(client.stream("count", msgpack.packb({"n": 3})))
        assert [msgpack.unpackb(p[0]) for p in parts] == [0, 1, 2]


def test_a_cancelled_request_is_withdrawn_and_the_client_carries_on(broker, python_worker):
    async def main():
        async with zmdp.Client(broker, timeout=WAIT) as client:
            # Nobody serves "later": cancel the wait; the client stays usable, and
            # its pending table holds nothing for it.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.request("later", b"x"), 0.2)
            assert await client.call("add", {"x": 1, "y": 1}) == 2
            native, pending = next(iter(client._loops.values()))
            assert pending == {}

    asyncio.run(main())
