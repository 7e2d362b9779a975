"""Reading ahead: the next batches are parsed while the database writes this one, in forked
reader processes (a thread where no process can be)."""

from __future__ import annotations

import gc
import itertools
import logging
import os
import pickle
import queue
import signal
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, TypeVar

import billiard

logger = logging.getLogger(__name__)


_T = TypeVar("_T")
READ_AHEAD = 2  # batches waiting for the writer per reader, besides the ones being parsed and written
# Judging rows (parse_contact) costs about as much CPU as PostgreSQL's share of writing them:
# two readers keep the writer fed on a machine with two cores or more.
READERS = 2 if (os.cpu_count() or 1) >= 2 else 1


def _read_ahead(items: Iterator[_T], depth: int = READ_AHEAD) -> Generator[_T, None, None]:
    """`items`, produced by a thread of their own up to `depth` ahead: the fallback where a
    process cannot be forked. Parsing then overlaps with the database's work (psycopg2 releases
    the GIL while it waits), but not with the writer's own Python work."""
    channel: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def send(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                channel.put((kind, value), timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not send("item", item):
                    return
            send("end", None)
        except BaseException as error:  # noqa: BLE001 — handed to the consumer, which raises it
            send("error", error)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="import-reader", daemon=True)
    # The writer gives up the GIL for each statement and needs it back as soon as the database
    # answers; with the default 5 ms switch interval it waits that long behind the reader at
    # every statement. (A worker process runs one task at a time, so this is ours to tune.)
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    thread.start()
    try:
        while True:
            kind, value = channel.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join(timeout=10)
        sys.setswitchinterval(switch_interval)


def _produce_in_child(channel: Any, parent: int, make: Callable[[], Iterator[Any]]) -> None:
    """The reader process: put what `make()` yields on `channel`, then ("end", None), or the
    error that stopped it. Never touches the database: the connection it inherited is the
    writer's. It stops when the writer is gone (it would otherwise wait on a full channel)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the handlers of a Celery pool process
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the writer's to handle
    # Parsing allocates a few dozen objects a row, nearly all freed by reference counting. The
    # cycle collector would traverse the objects of the batches in hand (and everything the
    # fork inherited) hundreds of times a batch (measured: a fifth to a third of the parsing).
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)

    def send(kind: str, value: Any) -> bool:
        while os.getppid() == parent:
            try:
                channel.put((kind, value), timeout=0.5)
                return True
            except queue.Full:
                continue
        channel.cancel_join_thread()  # nobody will read what is still buffered
        return False

    try:
        for item in make():
            if not send("item", item):
                return
        send("end", None)
    except BaseException as error:  # noqa: BLE001 — handed to the writer, which raises it
        try:
            pickle.dumps(error)
        except Exception:  # noqa: BLE001 — an error that cannot travel is described instead
            error = RuntimeError(f"{type(error).__name__}: {error}")
        send("error", error)


class _ReaderProcess:
    """One forked reader and the channel it fills (see _read_in_processes)."""

    def __init__(self, context: Any, make: Callable[[], Iterator[Any]], depth: int, name: str) -> None:
        self.channel = context.Queue(maxsize=depth)
        self.process = context.Process(
            target=_produce_in_child, args=(self.channel, os.getpid(), make), name=name, daemon=True
        )

    def start(self) -> None:
        self.process.start()
        # Only the reader writes to the pipe. Without the writer's copy of its sending end, a
        # reader that dies in the middle of a batch is an end of file here, not a read that
        # never ends.
        self.channel._writer.close()

    def get(self) -> tuple[str, Any]:
        while True:
            try:
                return tuple(self.channel.get(timeout=1))  # type: ignore[return-value]
            except queue.Empty:
                if self.process.is_alive():
                    continue
                try:  # what it sent before it ended is still in the pipe, then the end of file
                    return tuple(self.channel.get(timeout=1))  # type: ignore[return-value]
                except (queue.Empty, EOFError, OSError):
                    return "died", None
            except (EOFError, OSError):
                return "died", None

    def stop(self, *, finished: bool) -> None:
        if self.process.pid is not None:  # started
            if finished:  # it has sent its end, or is about to
                self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.terminate()
            self.process.join(timeout=10)
        self.channel.close()


def _read_in_processes(makes: list[Callable[[], Iterator[_T]]], depth: int = READ_AHEAD) -> Generator[_T, None, None]:
    """What the `makes()` yield, interleaved (the first item of each, then the second of
    each, ...), each produced in a forked process of its own up to `depth` items ahead. The
    readers then have cores (and GILs) of their own: parsing overlaps with the database's work
    and with the writer's Python work alike. Memory stays bounded by the depth.

    billiard (Celery's multiprocessing) rather than multiprocessing: a Celery prefork pool
    process is a daemon, and multiprocessing refuses to start children from one."""
    context: Any = billiard.get_context("fork")
    readers = [_ReaderProcess(context, make, depth, f"import-reader-{i}") for i, make in enumerate(makes)]
    try:
        for reader in readers:
            reader.start()
    except OSError:  # no process to be had (memory, a process limit): a thread reads instead
        logger.warning("import reader process could not start; reading in a thread", exc_info=True)
        for reader in readers:
            reader.stop(finished=False)
        yield from _read_ahead(_interleave([make() for make in makes]))
        return
    finished = False
    try:
        for reader in itertools.cycle(readers):
            kind, value = reader.get()
            if kind == "died":
                reader.process.join(timeout=10)
                raise RuntimeError(f"The import's reader process ended (exit code {reader.process.exitcode}).")
            if kind == "end":
                # Reader k ends first when the batches ran out at its turn; the ones after it
                # have nothing left either and end on their own.
                finished = True
                return
            if kind == "error":
                raise value
            yield value
    finally:
        for reader in readers:
            reader.stop(finished=finished)


def _interleave(iterators: list[Iterator[_T]]) -> Iterator[_T]:
    """The first item of each iterator, then the second of each, ... until one runs out."""
    for iterator in itertools.cycle(iterators):
        item = next(iterator, _END)
        if item is _END:
            return
        yield item  # type: ignore[misc]


_END = object()


def _can_fork() -> bool:
    return "fork" in billiard.get_all_start_methods()


def read_batches(batches: Callable[[int, int], Callable[[], Iterator[_T]]]) -> Generator[_T, None, None]:
    """What `batches(part, parts)()` yields for each part, interleaved: read by READERS forked
    processes, or by one thread (`batches(0, 1)`) where no process can be forked."""
    if _can_fork():
        return _read_in_processes([batches(part, READERS) for part in range(READERS)])
    return _read_ahead(batches(0, 1)())
