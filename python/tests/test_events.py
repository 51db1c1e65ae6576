"""zmdp.Publisher and zmdp.Subscriber through the broker's event bus
(``--pubsub``), with a raw pyzmq subscriber beside ours."""

import asyncio
import subprocess
import sys

import msgpack
import zmq

import zmdp
from conftest import WAIT


def test_events_reach_the_subscribers_of_their_topic():
    proc = subprocess.Popen(
        [sys.executable, "-m", "zmdp.broker", "-b", "tcp://127.0.0.1:0", "--summary-interval", "0",
         "--pubsub", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = [proc.stdout.readline().split()[-1] for _ in range(3)]
        _, events_in, events_out = lines

        raw = zmq.Context.instance().socket(zmq.SUB)
        raw.subscribe(b"orders.")
        raw.connect(events_out)

        async def main():
            publisher = zmdp.Publisher(events_in)
            orders = zmdp.Subscriber(events_out, ["orders."])
            everything = zmdp.Subscriber(events_out, [""])
            first = asyncio.ensure_future(orders.recv())
            # Subscriptions travel through the bus: publish until one arrives.
            for _ in range(WAIT * 20):
                await publisher.publish("orders.created", {"id": 7})
                await publisher.publish("other", "ignored by orders.")
                done, _ = await asyncio.wait([first], timeout=0.05)
                if done:
                    break
            event = first.result()
            assert (event.topic, event.data) == ("orders.created", {"id": 7})
            # The "" subscriber gets both topics (publishing on until its own
            # subscription has arrived).
            seen = set()
            for _ in range(WAIT * 20):
                await publisher.publish("orders.created", {"id": 7})
                await publisher.publish("other", "for everyone")
                try:
                    while len(seen) < 2:
                        seen.add((await asyncio.wait_for(everything.recv(), 0.05)).topic)
                    break
                except asyncio.TimeoutError:
                    continue
            assert seen == {"orders.created", "other"}

        asyncio.run(main())
        assert raw.poll(WAIT * 1000)
        topic, body = raw.recv_multipart()
        assert (topic, msgpack.unpackb(body)) == (b"orders.created", {"id": 7})
        raw.close(linger=0)
    finally:
        proc.terminate()
        assert proc.wait(timeout=WAIT) == 0
