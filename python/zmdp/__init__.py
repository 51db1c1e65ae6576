"""ZeroMQ Majordomo (MDP) for Python, with the Rust core inside.

- :class:`Client`: an asyncio client (``async with Client(endpoint) as c``), many
  requests in flight from many tasks;
- :class:`BlockingClient`: the same for synchronous code (the GIL is released while
  it waits);
- :class:`Worker`: services as Python functions (``@worker.route("add")``), async or
  plain, MessagePack in and out;
- :class:`Publisher` and :class:`Subscriber`: the broker's event bus;
- ``mdp-broker`` and ``mdp`` (console scripts, and ``python -m zmdp.broker``): the
  Rust broker and command line, in-process.

Endpoints are ``tcp://host:port`` (a name stands for every address it resolves
to), ``ipc://path``, or a list of them: requests spread over the brokers and fail
over to another on timeout.
"""

from __future__ import annotations

import atexit
from typing import Any, AsyncIterator, List, Sequence, Union

import msgpack

from ._zmdp import Client as _NativeClient
from ._zmdp import Timeout, ZmdpError, __version__, quiesce

# Native tasks finish what they were doing before the interpreter goes (a client's
# connections live on: the wait is bounded).
atexit.register(quiesce, 300)
from .events import Event, Publisher, Subscriber
from .worker import ERROR_KEY, Worker

__all__ = [
    "Client",
    "BlockingClient",
    "Worker",
    "Publisher",
    "Subscriber",
    "Event",
    "ZmdpError",
    "Timeout",
    "BadPayload",
    "RemoteError",
    "__version__",
]

Endpoints = Union[str, Sequence[str]]
Frame = Union[bytes, bytearray, memoryview, str]


class BadPayload(ZmdpError):
    """A request could not be encoded, or a reply could not be decoded."""


class RemoteError(ZmdpError):
    """The service's handler (a :class:`Worker` route) raised: the message says
    what it raised."""


def _endpoints(brokers: Endpoints) -> List[str]:
    if isinstance(brokers, str):
        return [brokers]
    listed = list(brokers)
    if not listed:
        raise ValueError("at least one broker endpoint is needed")
    return listed


def _frame(frame: Frame) -> bytes:
    if isinstance(frame, str):
        return frame.encode()
    return bytes(frame)


def _service(service: Union[str, bytes]) -> bytes:
    return service.encode() if isinstance(service, str) else bytes(service)


def _pack(obj: Any) -> bytes:
    try:
        return msgpack.packb(obj, use_bin_type=True)
    except (TypeError, ValueError) as e:
        raise BadPayload(f"cannot encode the request as MessagePack: {e}") from e


def _unpack(frames: List[bytes]) -> Any:
    if not frames:
        raise BadPayload("the reply has no frame to decode")
    try:
        value = msgpack.unpackb(frames[-1], raw=False)
    except Exception as e:  # msgpack raises several unrelated types
        raise BadPayload(f"the reply is not MessagePack: {e}") from e
    if isinstance(value, dict) and len(value) == 1 and ERROR_KEY in value:
        raise RemoteError(str(value[ERROR_KEY]))
    return value


class _Connected:
    """What both clients share: the native client of the brokers given."""

    def __init__(
        self,
        brokers: Endpoints = "tcp://127.0.0.1:5555",
        *,
        timeout: float = 5.0,
        attempts: int = 1,
        dialect: str = "mdp02",
    ) -> None:
        self._native = _NativeClient(
            _endpoints(brokers), dialect=dialect, timeout=timeout, attempts=attempts
        )


class Client(_Connected):
    """An asyncio Majordomo client.

    ``timeout`` (seconds) bounds each attempt; ``attempts`` is how many times a
    request is sent before :class:`Timeout` is raised (retries go to another broker
    when there are several). ``dialect`` is what the client speaks: ``"mdp02"``
    (default, RFC 18), ``"mdp01"`` (zguide), ``"majortomo"``, ``"overseer"``.
    """

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def request(self, service: Union[str, bytes], *frames: Frame) -> List[bytes]:
        """Sends ``frames`` to ``service``; the reply's frames."""
        return await self._native.request(_service(service), [_frame(f) for f in frames])

    async def call(self, service: Union[str, bytes], obj: Any = None) -> Any:
        """Sends ``obj`` MessagePack-encoded to ``service``; the decoded reply."""
        return _unpack(await self.request(service, _pack(obj)))

    async def stream(
        self, service: Union[str, bytes], *frames: Frame
    ) -> AsyncIterator[List[bytes]]:
        """Sends ``frames`` to ``service`` and yields each reply's frames as it
        comes: the partial replies of an MDP 0.2 stream, then the final one."""
        native = await self._native.stream(_service(service), [_frame(f) for f in frames])
        while True:
            part = await native.next()
            if part is None:
                return
            yield part[1]


class BlockingClient(_Connected):
    """The same client for synchronous code: every call blocks (with the GIL
    released) until the reply or :class:`Timeout`."""

    def __enter__(self) -> "BlockingClient":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def request(self, service: Union[str, bytes], *frames: Frame) -> List[bytes]:
        """Sends ``frames`` to ``service``; the reply's frames."""
        return self._native.request_blocking(_service(service), [_frame(f) for f in frames])

    def call(self, service: Union[str, bytes], obj: Any = None) -> Any:
        """Sends ``obj`` MessagePack-encoded to ``service``; the decoded reply."""
        return _unpack(self.request(service, _pack(obj)))
