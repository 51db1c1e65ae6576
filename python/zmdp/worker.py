"""A Majordomo worker whose services are Python functions.

.. code-block:: python

    worker = zmdp.Worker("tcp://127.0.0.1:5555")

    @worker.route("add")
    async def add(x, y):
        return x + y

    @worker.route("slow")          # a plain function runs in a thread pool
    def slow(n):
        time.sleep(n)
        return n

    @worker.route("count")         # an async generator streams partial replies
    async def count(n):
        for i in range(n):
            yield i

    worker.run()                   # until Ctrl-C or SIGTERM (DISCONNECT is sent)

A request's MessagePack map becomes keyword arguments (any other value, one
positional argument; no body, no argument), and the return value is packed back.
An exception is logged and answered with an error the client raises as
:class:`zmdp.RemoteError` (never a stuck client).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import signal
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import msgpack

from ._zmdp import NativeWorker

log = logging.getLogger("zmdp.worker")

#: The key of the MessagePack map a failed handler's reply is.
ERROR_KEY = "__zmdp_error__"


def _arguments(frames: List[bytes]) -> tuple:
    if not frames or not frames[-1]:
        return (), {}
    value = msgpack.unpackb(frames[-1], raw=False)
    if value is None:
        return (), {}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return (), value
    return (value,), {}


def _pack(value: Any) -> List[bytes]:
    return [msgpack.packb(value, use_bin_type=True)]


class Worker:
    """Serves the services registered with :meth:`route` through one broker or
    several (a list, or a name that resolves to several)."""

    def __init__(
        self,
        brokers: Union[str, Sequence[str]] = "tcp://127.0.0.1:5555",
        *,
        concurrency: int = 8,
        dialect: str = "mdp02",
        heartbeat: float = 2.5,
        executor: Optional[concurrent.futures.Executor] = None,
        curve: Optional[Tuple[str, str]] = None,
    ) -> None:
        self._brokers = [brokers] if isinstance(brokers, str) else list(brokers)
        self._options = dict(
            dialect=dialect, concurrency=concurrency, heartbeat=heartbeat, curve=curve
        )
        self._routes: Dict[str, Callable[..., Any]] = {}
        self._executor = executor
        self._natives: List[NativeWorker] = []
        self._stopping = threading.Event()

    def route(self, service: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Registers the decorated function as the handler of ``service``."""
        if service.startswith("mmi."):
            raise ValueError("mmi.* services belong to the broker")

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._routes[service] = fn
            return fn

        return register

    def stop(self) -> None:
        """Stops serving: every broker gets DISCONNECT, :meth:`serve` returns once
        the requests under way are answered."""
        self._stopping.set()
        for native in self._natives:
            native.stop()

    async def serve(self) -> None:
        """Serves until :meth:`stop`, Ctrl-C or SIGTERM."""
        if not self._routes:
            raise ValueError("no route: decorate a function with @worker.route(name)")
        loop = asyncio.get_running_loop()
        handled = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, self.stop)
                    handled.append(sig)
                except (NotImplementedError, RuntimeError):
                    pass
        self._natives = [
            NativeWorker(self._brokers, service.encode(), **self._options)
            for service in self._routes
        ]
        if self._stopping.is_set():
            self.stop()
        try:
            await asyncio.gather(
                *(self._take(native, fn) for native, fn in zip(self._natives, self._routes.values()))
            )
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)

    def run(self) -> None:
        """:meth:`serve` in a new event loop, until Ctrl-C or SIGTERM."""
        asyncio.run(self.serve())

    async def _take(self, native: NativeWorker, fn: Callable[..., Any]) -> None:
        tasks = set()
        while True:
            job = await native.next()
            if job is None:
                break
            frames, reply = job
            task = asyncio.ensure_future(self._handle(fn, frames, reply))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, fn: Callable[..., Any], frames: List[bytes], reply: Any) -> None:
        try:
            args, kwargs = _arguments(frames)
            if inspect.isasyncgenfunction(fn):
                previous = None
                async for part in fn(*args, **kwargs):
                    if previous is not None:
                        await reply.part(previous)
                    previous = _pack(part)
                await reply.finish(previous if previous is not None else _pack(None))
                return
            if inspect.iscoroutinefunction(fn):
                result = await fn(*args, **kwargs)
            else:
                loop = asyncio.get_running_loop()
                call = functools.partial(fn, *args, **kwargs)
                result = await loop.run_in_executor(self._executor, call)
            await reply.finish(_pack(result))
        except Exception as e:  # the handler's failure is the client's error
            log.exception("handler of %s failed", getattr(fn, "__name__", fn))
            await reply.finish(_pack({ERROR_KEY: f"{type(e).__name__}: {e}"}))
