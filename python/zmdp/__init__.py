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

import asyncio
import atexit
import itertools
import json
import weakref
from typing import Any, AsyncIterator, Iterator, List, Optional, Sequence, Tuple, Union

import msgpack

from ._zmdp import Client as _NativeClient
from ._zmdp import Completions as _Completions
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
    "NoSuchService",
    "BrokerUnreachable",
    "__version__",
]

Endpoints = Union[str, Sequence[str]]
#: CURVE: (our secret certificate file, the broker's public certificate file), as
#: ``zmtp-keygen``, pyzmq's ``zmq.auth.create_certificates`` or czmq write them.
Curve = Optional[Tuple[str, str]]
Frame = Union[bytes, bytearray, memoryview, str]


class BadPayload(ZmdpError):
    """A request could not be encoded, or a reply could not be decoded."""


class NoSuchService(Timeout):
    """No reply, and the broker says no worker serves the service (``mmi.service``
    answered 404)."""


class BrokerUnreachable(Timeout):
    """No reply, and no broker answered ``mmi.service`` either."""


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


FORMATS = ("msgpack", "json", "raw")


def _pack(obj: Any, format: str = "msgpack") -> bytes:
    try:
        if format == "json":
            return json.dumps(obj).encode()
        if format == "raw":
            return _frame(obj)
        return msgpack.packb(obj, use_bin_type=True)
    except (TypeError, ValueError) as e:
        raise BadPayload(f"cannot encode the request as {format}: {e}") from e


def _unpack(frames: List[bytes], format: str = "msgpack") -> Any:
    if not frames:
        raise BadPayload("the reply has no frame to decode")
    if format == "raw":
        return frames[-1]
    try:
        if format == "json":
            value = json.loads(frames[-1])
        else:
            value = msgpack.unpackb(frames[-1], raw=False)
    except Exception as e:  # the decoders raise several unrelated types
        what = "JSON" if format == "json" else "MessagePack"
        raise BadPayload(f"the reply is not {what}: {e}") from e
    if isinstance(value, dict) and len(value) == 1 and ERROR_KEY in value:
        raise RemoteError(str(value[ERROR_KEY]))
    return value


class _Connected:
    """What both clients share: the native client of the brokers given."""

    _tokens = itertools.count()

    def __init__(
        self,
        brokers: Endpoints = "tcp://127.0.0.1:5555",
        *,
        timeout: float = 5.0,
        attempts: int = 1,
        dialect: str = "mdp02",
        format: str = "msgpack",
        curve: Curve = None,
    ) -> None:
        if format not in FORMATS:
            raise ValueError(f"format is one of {FORMATS}, not {format!r}")
        self._brokers = _endpoints(brokers)
        self._format = format
        self._native = _NativeClient(
            self._brokers, dialect=dialect, timeout=timeout, attempts=attempts, curve=curve
        )
        self._loops: "weakref.WeakKeyDictionary[Any, Tuple[Any, dict]]" = (
            weakref.WeakKeyDictionary()
        )
        # Asks mmi.service why a request got no reply.
        self._probe = _NativeClient(
            self._brokers, dialect=dialect, timeout=min(timeout, 1.0), attempts=1, curve=curve
        )

    def _explained(self, service: bytes, error: Exception, answer: Any) -> Exception:
        """What a Timeout of ``service`` means, given ``mmi.service``'s answer (a
        list of frames, or an exception)."""
        if service.startswith(b"mmi."):
            return error
        name = service.decode(errors="replace")
        if isinstance(answer, Exception):
            return BrokerUnreachable(f"{error}; no broker answered at {', '.join(self._brokers)}")
        if answer == [b"404"]:
            return NoSuchService(f"{error}; no worker serves {name!r}")
        return error


class Client(_Connected):
    """An asyncio Majordomo client.

    ``timeout`` (seconds) bounds each attempt; ``attempts`` is how many times a
    request is sent before :class:`Timeout` is raised (retries go to another broker
    when there are several). ``dialect`` is what the client speaks: ``"mdp02"``
    (default, RFC 18), ``"mdp01"`` (zguide), ``"majortomo"``, ``"overseer"``.
    ``format`` is how :meth:`call` encodes: ``"msgpack"`` (default), ``"json"``,
    ``"raw"`` (bytes as they are). ``curve``: see :data:`Curve`.
    """

    def _completions(self) -> Tuple[Any, dict]:
        """This loop's completions and pending futures (replies reach the loop in
        batches: one wake-up for all that finished meanwhile)."""
        loop = asyncio.get_running_loop()
        found = self._loops.get(loop)
        if found is not None:
            return found
        pending: dict = {}

        def drain() -> None:
            for token, kind, value in native.take():
                future = pending.pop(token, None)
                if future is None or future.done():
                    continue
                if kind == 0:
                    future.set_result(value)
                elif kind == 1:
                    future.set_exception(Timeout(value))
                else:
                    future.set_exception(ZmdpError(value))

        # A weak reference: the entry (keyed weakly by the loop) must not keep the
        # loop alive, or a client used under many asyncio.run() calls would keep
        # every loop it saw.
        loop_ref = weakref.ref(loop)

        def wake() -> None:
            target = loop_ref()
            if target is not None and not target.is_closed():
                target.call_soon_threadsafe(drain)

        native = _Completions(wake)
        self._loops[loop] = (native, pending)
        return native, pending

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def request(self, service: Union[str, bytes], *frames: Frame) -> List[bytes]:
        """Sends ``frames`` to ``service``; the reply's frames. Raises
        :class:`Timeout` (:class:`NoSuchService` or :class:`BrokerUnreachable`
        when the broker can tell)."""
        name = _service(service)
        completions, pending = self._completions()
        token = next(self._tokens)
        future = asyncio.get_running_loop().create_future()
        pending[token] = future
        self._native.submit(completions, token, name, [_frame(f) for f in frames])
        try:
            return await future
        except asyncio.CancelledError:
            # The caller stopped waiting: the request is withdrawn at once.
            pending.pop(token, None)
            completions.cancel(token)
            raise
        except Timeout as e:
            try:
                answer: Any = await asyncio.get_running_loop().run_in_executor(
                    None, self._probe.request_blocking, b"mmi.service", [name]
                )
            except Timeout as probe_error:
                answer = probe_error
            raise self._explained(name, e, answer) from None

    async def call(self, service: Union[str, bytes], obj: Any = None) -> Any:
        """Sends ``obj`` encoded in the client's format (MessagePack by default) to
        ``service``; the decoded reply."""
        return _unpack(await self.request(service, _pack(obj, self._format)), self._format)

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
        """Sends ``frames`` to ``service``; the reply's frames (errors as
        :meth:`Client.request`)."""
        name = _service(service)
        try:
            return self._native.request_blocking(name, [_frame(f) for f in frames])
        except Timeout as e:
            try:
                answer: Any = self._probe.request_blocking(b"mmi.service", [name])
            except Timeout as probe_error:
                answer = probe_error
            raise self._explained(name, e, answer) from None

    def call(self, service: Union[str, bytes], obj: Any = None) -> Any:
        """Sends ``obj`` encoded in the client's format to ``service``; the decoded
        reply."""
        return _unpack(self.request(service, _pack(obj, self._format)), self._format)

    def stream(self, service: Union[str, bytes], *frames: Frame) -> Iterator[List[bytes]]:
        """Sends ``frames`` to ``service`` and yields each reply's frames as it
        comes: the partial replies of an MDP 0.2 stream, then the final one."""
        native = self._native.stream_blocking(_service(service), [_frame(f) for f in frames])
        while True:
            part = native.next_blocking()
            if part is None:
                return
            yield part[1]
