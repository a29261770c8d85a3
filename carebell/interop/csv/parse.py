"""A CSV file to plain rows, streamed (pure: no Django, no database).

`read_file` checks the header against the kind's documented columns and then yields
one `Parsed` per data row as it reads, so a file of any length is read in constant
memory. Whatever makes the whole file unreadable — not UTF-8, binary, a header of
other columns, another separator — raises `FileProblem` with one sentence saying
what to do; a row's own problems come back with the row.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from carebell.interop.csv.columns import COLUMNS, FileKind
from carebell.interop.csv.rows import Context, Problem, Row, parse_row

#: The longest cell read; a longer one is not a CSV a practice system wrote.
MAX_CELL = 10_000
_SAMPLE = 4096


class FileProblem(Exception):
    """The file as a whole cannot be read: str(self) says why and what to do."""


class Parsed(NamedTuple):
    row: int
    data: Row | None
    problems: list[Problem]


class Header(NamedTuple):
    columns: list[str]


def check_header(kind: FileKind, cells: list[str]) -> list[str]:
    """The header's column names (trimmed, lower case), or FileProblem."""
    names = [c.strip().lower() for c in cells]
    documented = {c.name for c in COLUMNS[kind]}
    if len(names) == 1 and names[0] not in documented:
        for separator, said in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if separator in names[0]:
                raise FileProblem(
                    f"The columns are separated by {said}: save the file as CSV with commas."
                )
    unknown = [n for n in names if n not in documented]
    if unknown:
        raise FileProblem(
            f"Column {unknown[0]!r} is not a column of a {kind.value} file; its columns are: "
            + ", ".join(c.name for c in COLUMNS[kind])
            + " (download the template)."
        )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise FileProblem(f"Column {twice[0]!r} appears twice in the header.")
    missing = [c.name for c in COLUMNS[kind] if c.required and c.name not in names]
    if missing:
        raise FileProblem(
            f"The header lacks the required column{'s' if len(missing) > 1 else ''} "
            + ", ".join(missing)
            + " (the first line must name the columns: download the template)."
        )
    return names


def _sniff(stream: BinaryIO) -> bytes:
    """The file's first bytes, refusing what is plainly not CSV text."""
    head = stream.read(_SAMPLE)
    if not head.strip():
        raise FileProblem("The file is empty: it needs a header line and one line per record.")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileProblem("The file is UTF-16 text: save it as 'CSV UTF-8'.")
    if b"\x00" in head or head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"%PDF")):
        raise FileProblem(
            "This is not a CSV text file (a spreadsheet, a PDF or other binary data): "
            "save it from the spreadsheet as 'CSV UTF-8'."
        )
    return head


class _Rejoined(io.RawIOBase):
    """The sniffed head, then the rest of the stream, as one readable stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self.head, self.rest = head, rest
        self.consumed = 0  # bytes handed on, for a progress bar

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.head:
            chunk, self.head = self.head[: len(buffer)], self.head[len(buffer) :]
        else:
            chunk = self.rest.read(len(buffer))
        buffer[: len(chunk)] = chunk
        self.consumed += len(chunk)
        return len(chunk)


class Reader:
    """Iterate a CSV file of `kind` as `Parsed` rows; `consumed` says how many bytes
    were read so far."""

    def __init__(self, stream: BinaryIO, kind: FileKind, context: Context) -> None:
        self.kind = FileKind(kind)
        self.context = context
        self._raw = _Rejoined(_sniff(stream), stream)
        self._text = io.TextIOWrapper(
            io.BufferedReader(self._raw), encoding="utf-8-sig", newline=""
        )
        self._csv = csv.reader(self._text, strict=True)
        self.columns = check_header(self.kind, self._next() or [])
        self.row = 1

    @property
    def consumed(self) -> int:
        return self._raw.consumed

    def _next(self) -> list[str] | None:
        try:
            return next(self._csv)
        except StopIteration:
            return None
        except UnicodeDecodeError:
            raise FileProblem(
                f"The file is not UTF-8 text (near row {getattr(self, 'row', 1) + 1}): "
                "save it from the spreadsheet as 'CSV UTF-8'."
            ) from None
        except csv.Error as error:
            raise FileProblem(
                f"Row {getattr(self, 'row', 1) + 1} is not valid CSV ({error}): check its quotes."
            ) from None

    def __iter__(self) -> Iterator[Parsed]:
        width = len(self.columns)
        while (cells := self._next()) is not None:
            self.row += 1
            if not any(c.strip() for c in cells):
                continue  # a blank line: spreadsheets leave them at the end
            yield self._parse(cells, width)

    def _parse(self, cells: list[str], width: int) -> Parsed:
        row = self.row
        if len(cells) != width:
            reason = f"the row has {len(cells)} values but the header names {width} columns"
            return Parsed(row, None, [Problem(row, "", "", reason)])
        long = next((n for n, c in enumerate(cells) if len(c) > MAX_CELL), None)
        if long is not None:
            name = self.columns[long]
            reason = f"{name} is longer than {MAX_CELL} characters"
            return Parsed(row, None, [Problem(row, name, cells[long][:40] + "…", reason)])
        data, problems = parse_row(
            self.kind, row, dict(zip(self.columns, cells, strict=True)), self.context
        )
        return Parsed(row, data, problems)


def read_file(stream: BinaryIO, kind: FileKind, context: Context) -> Reader:
    """A Reader of `stream` (header checked already: raises FileProblem)."""
    return Reader(stream, kind, context)
