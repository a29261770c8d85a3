"""Batch files and archives to messages (no Django).

A file is a stream of messages (MSH … MSH …), with or without FHS/BHS batch headers
and BTS/FTS trailers, with any of CR, LF or CRLF between segments, even MLLP-framed.
An archive (.zip, .tar.gz, .tgz, .tar) holds such files. Each message comes back as
(where, bytes), `where` naming the file, the archive member and the position.
"""

from __future__ import annotations

import io
import re
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_BREAK = re.compile(rb"\r\n|\n\r|\n|\r|\x0b|\x1c")
_BATCH = (b"FHS", b"BHS", b"BTS", b"FTS")


@dataclass(frozen=True, slots=True)
class Item:
    where: str
    raw: bytes


def split_batch(data: bytes) -> list[bytes]:
    """The messages of a batch stream; segments before the first MSH that are not
    batch envelopes are kept as a message of their own, so they are answered (AR)
    rather than dropped."""
    messages: list[list[bytes]] = []
    for segment in _BREAK.split(data):
        if not segment.strip() or segment[:3] in _BATCH:
            continue
        if segment.startswith(b"MSH") or not messages:
            messages.append([])
        messages[-1].append(segment)
    return [b"\r".join(m) + b"\r" for m in messages]


def read_paths(paths: list[str], max_bytes: int) -> Iterator[Item | tuple[str, str]]:
    """Items of every file and archive; (where, problem) for what cannot be read."""
    for name in paths:
        path = Path(name)
        try:
            if path.is_dir():
                yield name, "is a directory"
                continue
            data = path.read_bytes()
        except OSError as error:
            yield name, error.strerror or str(error)
            continue
        yield from read_blob(name, data, max_bytes)


def read_blob(name: str, data: bytes, max_bytes: int) -> Iterator[Item | tuple[str, str]]:
    lowered = name.lower()
    try:
        if lowered.endswith(".zip"):
            yield from _zip(name, data, max_bytes)
            return
        if lowered.endswith((".tar.gz", ".tgz", ".tar")):
            yield from _tar(name, data, max_bytes)
            return
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
        yield name, f"is not a readable archive: {error}"
        return
    for n, raw in enumerate(split_batch(data), 1):
        if len(raw) > max_bytes:
            yield f"{name}#{n}", f"message larger than {max_bytes} bytes"
        else:
            yield Item(f"{name}#{n}", raw)


def _zip(name: str, data: bytes, max_bytes: int):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            if info.file_size > max_bytes * 1000:
                yield f"{name}:{info.filename}", "member too large"
                continue
            yield from read_blob(f"{name}:{info.filename}", archive.read(info), max_bytes)


def _tar(name: str, data: bytes, max_bytes: int):
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        for member in archive:
            if not member.isfile():
                continue
            if member.size > max_bytes * 1000:
                yield f"{name}:{member.name}", "member too large"
                continue
            handle = archive.extractfile(member)
            if handle is not None:
                yield from read_blob(f"{name}:{member.name}", handle.read(), max_bytes)
