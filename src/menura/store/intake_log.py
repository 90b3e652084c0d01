"""Append-only intake log files: where an embedded (SQLite) server makes single accepted events
durable before answering 202, without taking the database's write lock.

Every API process appends to a segment file of its own (one `write()` per record, so the record is
in the kernel's page cache, and survives the process, when the call returns — the same promise as
SQLite's WAL with `synchronous=NORMAL`). The process holds an exclusive `flock` on its segment while
it may write to it; a segment nobody holds is *sealed* and, once drained, deleted. Drains (the
ingest worker) read records from the offset checkpointed in the database, in the same transaction
as the events they record, so each record is expanded exactly once.

Record: 4-byte little-endian payload length, 4-byte CRC-32 of the payload, the payload. A record cut
short by a crash mid-write was never acknowledged: in a sealed segment it, and anything after it,
is dropped; in a live one it is a record still being written.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

HEADER = struct.Struct("<II")
SEGMENT_BYTES = 64 * 1024 * 1024
SUFFIX = ".log"
READ_CHUNK = 1024 * 1024  # about a batch: a bulk request's record is ~200 KB


def log_directory(database_path: str) -> Path:
    """The intake directory belongs to the database file, so every process on it finds the same."""
    return Path(database_path + "-intake")


def frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


class IntakeLogWriter:
    """This process's segment; `append` is safe from any thread of the process."""

    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        self._size = 0

    def append(self, payload: bytes) -> None:
        """Make one record durable against the process dying (raises OSError if it could not)."""
        record = frame(payload)
        with self._lock:
            if self._fd is None or self._pid != os.getpid() or self._size >= self.segment_bytes:
                self._open_segment()
            assert self._fd is not None
            view = memoryview(record)
            try:
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
            except OSError:
                # Part of the record may be in the file: nothing may follow it there.
                os.close(self._fd)
                self._fd = None
                raise
            self._size += len(record)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    def _open_segment(self) -> None:
        # Locked under a temporary name first: a drain must never see an unlocked, empty segment
        # that is about to be written (it would take it for a sealed one and delete it).
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"
        temporary = self.directory / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(temporary, self.directory / f"{name}{SUFFIX}")
        previous, previous_pid = self._fd, self._pid
        self._fd, self._pid, self._size = fd, os.getpid(), 0
        if previous is not None and previous_pid == os.getpid():
            os.close(previous)  # seals it: drains finish and delete it


@dataclass(frozen=True)
class Record:
    segment: str
    end: int  # offset just past this record
    payload: bytes


def segments(directory: Path) -> list[str]:
    """Segment names, oldest first."""
    try:
        return sorted(entry.name for entry in os.scandir(directory) if entry.name.endswith(SUFFIX))
    except FileNotFoundError:
        return []


def size_of(directory: Path, segment: str) -> int:
    try:
        return (directory / segment).stat().st_size
    except FileNotFoundError:
        return 0


def read_records(directory: Path, segment: str, offset: int, max_bytes: int = READ_CHUNK) -> tuple[list[Record], bool]:
    """Whole records from `offset` on (about `max_bytes` of them, at least one), and whether the
    bytes after the last one are a cut-short record (or garbage) rather than the end of the file."""
    try:
        with open(directory / segment, "rb") as handle:
            handle.seek(offset)
            data = handle.read(max_bytes)
            records: list[Record] = []
            position = 0
            while position + HEADER.size <= len(data):
                length, crc = HEADER.unpack_from(data, position)
                start = position + HEADER.size
                if start + length > len(data):
                    if records:
                        break
                    # A record larger than the chunk: read it whole.
                    handle.seek(offset + start)
                    data = data[:start] + handle.read(length)
                    if start + length > len(data):
                        return records, True
                payload = data[start:start + length]
                if zlib.crc32(payload) != crc:
                    return records, True
                position = start + length
                records.append(Record(segment, offset + position, bytes(payload)))
            return records, position < len(data)
    except FileNotFoundError:
        return [], False


@contextmanager
def sealed(directory: Path, segment: str) -> Iterator[bool]:
    """Whether no process holds `segment` for writing; while the block runs, none can start to
    (writers only ever lock a segment they have just created)."""
    try:
        fd = os.open(directory / segment, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def remove(directory: Path, segment: str) -> None:
    try:
        os.unlink(directory / segment)
    except FileNotFoundError:
        pass


def remove_stale_temporaries(directory: Path, older_than_seconds: float = 3600) -> None:
    """Temporary names left by a process that died between creating and naming its segment."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    cutoff = time.time() - older_than_seconds
    for entry in entries:
        if entry.name.endswith(".tmp") and entry.stat().st_mtime < cutoff:
            remove(directory, entry.name)
