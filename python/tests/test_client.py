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


def test_timeouts_say_why_when_the_broker_can_tell(broker):
    async def main():
        async with zmdp.Client(broker, timeout=0.3, attempts=2) as client:
            with pytest.raises(zmdp.NoSuchService) as raised:
                await client.request("nobody", b"x")
            assert "no worker serves 'nobody'" in str(raised.value)
            assert isinstance(raised.value, zmdp.Timeout)
        async with zmdp.Client("tcp://127.0.0.1:9", timeout=0.2) as client:
            with pytest.raises(zmdp.BrokerUnreachable):
                await client.request("echo", b"x")

    asyncio.run(main())


def test_json_and_raw_formats(broker, majortomo_worker):
    majortomo_worker("echo", lambda frames: frames)

    async def main():
        async with zmdp.Client(broker, timeout=WAIT, format="json") as client:
            await _served(client)
            assert await client.call("echo", {"a": [1, 2]}) == {"a": [1, 2]}
        async with zmdp.Client(broker, timeout=WAIT, format="raw") as client:
            assert await client.call("echo", b"as is") == b"as is"

    asyncio.run(main())
    with pytest.raises(ValueError):
        zmdp.Client(broker, format="yaml")


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


def test_curve_keys_from_certificate_files(tmp_path):
    import zmq.auth

    for name in ("broker", "client", "worker"):
        zmq.auth.create_certificates(str(tmp_path), name)
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    for name in ("client", "worker"):
        (allowed / f"{name}.key").write_bytes((tmp_path / f"{name}.key").read_bytes())
    proc = subprocess.Popen(
        [sys.executable, "-m", "zmdp.broker", "-b", "tcp://127.0.0.1:0", "--summary-interval", "0",
         "--curve-secret-key", str(tmp_path / "broker.key_secret"), "--allow-keys", str(allowed)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        endpoint = proc.stdout.readline().split()[-1]
        server = str(tmp_path / "broker.key")
        worker = zmdp.Worker(endpoint, curve=(str(tmp_path / "worker.key_secret"), server))

        @worker.route("secret")
        async def secret(word):
            return word[::-1]

        async def main():
            serving = asyncio.ensure_future(worker.serve())
            client = zmdp.Client(endpoint, timeout=WAIT, curve=(str(tmp_path / "client.key_secret"), server))
            await _served(client, "secret")
            assert await client.call("secret", "plans") == "snalp"
            worker.stop()
            await asyncio.wait_for(serving, WAIT)

        asyncio.run(main())
    finally:
        proc.terminate()
        assert proc.wait(timeout=WAIT) == 0


def test_a_client_used_by_many_event_loops_keeps_none_of_them(broker, majortomo_worker):
    import gc

    majortomo_worker("echo", upper)
    client = zmdp.Client(broker, timeout=WAIT)

    async def one():
        await _served(client)
        assert await client.request("echo", b"x") == [b"X"]

    for _ in range(5):
        asyncio.run(one())
    gc.collect()
    assert len(client._loops) == 0
