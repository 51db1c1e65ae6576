"""The zmdp wheel against its own broker (run in-process by ``python -m
zmdp.broker``) and majortomo workers: the asyncio client, the blocking client,
MessagePack calls, timeouts and bad payloads, and the ``mdp`` command line."""

import asyncio
import subprocess
import sys
import textwrap

import pytest

import zmdp
from conftest import WAIT, add, upper


async def _served(client, service="echo"):
    """Waits until a worker of ``service`` is registered (its first request may
    otherwise wait for the worker to connect)."""
    for _ in range(200):
        try:
            if await client.request("mmi.service", service) == [b"200"]:
                return
        except zmdp.Timeout:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"no worker of {service} registered")


def test_async_request_and_call(broker, majortomo_worker):
    majortomo_worker("echo", upper)
    majortomo_worker("add", add)

    async def main():
        async with zmdp.Client(broker, timeout=WAIT) as client:
            await _served(client, "echo")
            await _served(client, "add")
            assert await client.request("echo", b"hello", "world") == [b"HELLO", b"WORLD"]
            assert await client.call("add", {"x": 6, "y": 7}) == 13

    asyncio.run(main())


def test_many_requests_in_flight_from_many_tasks(broker, majortomo_worker):
    for _ in range(4):
        majortomo_worker("echo", upper)

    async def main():
        async with zmdp.Client(broker, timeout=WAIT) as client:
            await _served(client)
            bodies = [f"request {i}".encode() for i in range(64)]
            replies = await asyncio.gather(*(client.request("echo", b) for b in bodies))
            assert replies == [[b.upper()] for b in bodies]

    asyncio.run(main())


def test_a_request_nobody_serves_times_out(broker):
    async def main():
        async with zmdp.Client(broker, timeout=0.3, attempts=2) as client:
            with pytest.raises(zmdp.Timeout) as raised:
                await client.request("nobody", b"x")
            assert "nobody" in str(raised.value)

    asyncio.run(main())


def test_bad_payloads_raise_bad_payload(broker, majortomo_worker):
    # 0xc1 is the one byte MessagePack never uses.
    majortomo_worker("junk", lambda frames: [b"\xc1"])

    async def main():
        async with zmdp.Client(broker, timeout=WAIT) as client:
            await _served(client, "junk")
            with pytest.raises(zmdp.BadPayload):
                await client.call("junk", object())
            with pytest.raises(zmdp.BadPayload) as raised:
                await client.call("junk", {"x": 1})
            assert "not MessagePack" in str(raised.value)

    asyncio.run(main())
    with pytest.raises(ValueError):
        zmdp.Client(broker, dialect="nonsense")


def test_the_blocking_client_from_a_plain_script(broker, majortomo_worker):
    majortomo_worker("add", add)
    script = textwrap.dedent(
        f"""
        import time, zmdp
        with zmdp.BlockingClient({broker!r}, timeout=60) as client:
            for _ in range(200):
                if client.request("mmi.service", "add") == [b"200"]:
                    break
                time.sleep(0.05)
            print(client.call("add", {{"x": 40, "y": 2}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=WAIT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "42"


def test_the_mdp_command_line(broker, majortomo_worker):
    majortomo_worker("echo", upper)
    call = [sys.executable, "-m", "zmdp.cli", "-b", broker, "call", "--timeout", "60000", "echo", "shout"]
    out = subprocess.run(call, capture_output=True, text=True, timeout=WAIT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "SHOUT"
    bad = subprocess.run([sys.executable, "-m", "zmdp.cli", "--bogus"], capture_output=True, text=True)
    assert bad.returncode == 2
