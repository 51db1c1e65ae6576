"""Fixtures: the broker of the wheel under test (``python -m zmdp.broker``) on a
fresh port, and majortomo workers (the Python peers our users already run)."""

import subprocess
import sys
import threading

import msgpack
import pytest

WAIT = 60


@pytest.fixture
def broker():
    """A broker started with ``python -m zmdp.broker`` on a free port; stopped with
    SIGTERM at the end, which must end it cleanly (exit status 0)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "zmdp.broker", "-b", "tcp://127.0.0.1:0", "--summary-interval", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line.startswith("listening on "), (line, proc.stderr.read() if proc.poll() is not None else "")
    endpoint = line.split()[-1]
    yield endpoint
    proc.terminate()
    try:
        status = proc.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the broker did not stop on SIGTERM")
    assert status == 0, proc.stderr.read()


def _majortomo_worker(endpoint, service, handle):
    from majortomo import Worker

    worker = Worker(endpoint, service.encode(), heartbeat_interval=1.0, heartbeat_timeout=10.0)
    worker.connect()
    while True:
        try:
            client, frames = worker.wait_for_request()
        except Exception:  # Disconnected: the broker stopped
            return
        worker.send_reply_final(client, handle(frames))


@pytest.fixture
def majortomo_worker(broker):
    """Starts majortomo workers on the broker: ``majortomo_worker(service, handle)``
    where ``handle`` maps the request's frames to the reply's. They end when the
    broker stops (its DISCONNECT)."""

    def start(service, handle):
        threading.Thread(
            target=_majortomo_worker, args=(broker, service, handle), daemon=True
        ).start()

    return start


def upper(frames):
    return [f.upper() for f in frames]


def add(frames):
    args = msgpack.unpackb(frames[-1], raw=False)
    return [msgpack.packb(args["x"] + args["y"])]
