"""The broker's event bus (``mdp-broker --pubsub IN OUT``) for Python.

.. code-block:: python

    publisher = zmdp.Publisher("tcp://127.0.0.1:5556")        # the IN endpoint
    await publisher.publish("orders.created", {"id": 7})

    async for event in zmdp.Subscriber("tcp://127.0.0.1:5557", ["orders."]):
        print(event.topic, event.data)

Topics are prefixes (``""`` for everything); bodies are MessagePack. Like any
ZeroMQ PUB/SUB, a subscriber that connects late misses what was published before,
and a publisher never waits for slow subscribers (their events are dropped past
the high-water mark).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Tuple, Union

import msgpack

from ._zmdp import NativePublisher, NativeSubscriber


def _topic(topic: Union[str, bytes]) -> bytes:
    return topic.encode() if isinstance(topic, str) else bytes(topic)


@dataclass
class Event:
    """One event: its topic, its MessagePack body decoded (``None`` when it has
    none or it is not MessagePack), and its raw frames."""

    topic: str
    data: Any
    frames: List[bytes]


class Publisher:
    """Publishes to the bus's IN endpoint."""

    def __init__(self, endpoint: str, *, curve: Optional[Tuple[str, str]] = None) -> None:
        self._native = NativePublisher(endpoint, curve=curve)

    async def publish(self, topic: Union[str, bytes], obj: Any) -> None:
        """Publishes ``obj`` MessagePack-encoded under ``topic``."""
        await self._native.publish(_topic(topic), [msgpack.packb(obj, use_bin_type=True)])

    async def publish_raw(self, topic: Union[str, bytes], *frames: bytes) -> None:
        """Publishes raw ``frames`` under ``topic``."""
        await self._native.publish(_topic(topic), [bytes(f) for f in frames])


class Subscriber:
    """Receives, from the bus's OUT endpoint, the events whose topic starts with
    one of ``topics``; iterate it with ``async for``."""

    def __init__(
        self,
        endpoint: str,
        topics: Iterable[Union[str, bytes]] = ("",),
        *,
        curve: Optional[Tuple[str, str]] = None,
    ) -> None:
        self._native = NativeSubscriber(endpoint, [_topic(t) for t in topics], curve=curve)

    def __aiter__(self) -> "Subscriber":
        return self

    async def __anext__(self) -> Event:
        return await self.recv()

    async def recv(self) -> Event:
        """The next event."""
        topic, frames = await self._native.recv()
        data = None
        if frames:
            try:
                data = msgpack.unpackb(frames[0], raw=False)
            except Exception:  # not MessagePack: the frames are still there
                data = None
        return Event(bytes(topic or b"").decode(errors="replace"), data, frames)
