"""Reading and writing the files: positioned reads, line iteration, tails and the seq binary search."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

from memvault.backends.files.format import line_seq
from memvault.errors import CorruptData


class FileIO:
    """I/O helpers of :class:`~.store.FileStore` (the host provides ``fsync`` and ``bytes_read``)."""

    fsync: bool
    bytes_read: int

    def _write_atomic(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        with open(tmp, "wb") as f:
            f.write(data)
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if self.fsync:
            self._fsync_dir(path.parent)

    @staticmethod
    def _fsync_dir(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _pread(self, fd: int, size: int, offset: int, path: Path) -> bytes:
        data = os.pread(fd, size, offset)
        while len(data) < size:
            more = os.pread(fd, size - len(data), offset + len(data))
            if not more:
                raise CorruptData(
                    f"{path} ends at byte {offset + len(data)}, before its committed length: it was truncated",
                    path=str(path),
                )
            data += more
        self.bytes_read += size
        return data

    def _iter_lines(self, fd: int, lo: int, hi: int, path: Path, block: int = 16384) -> Iterator[tuple[int, bytes]]:
        """(offset, line without newline) for every line in ``[lo, hi)``, read in growing blocks."""
        pos, start, carry = lo, lo, b""
        while pos < hi:
            size = min(block, hi - pos)
            data = carry + self._pread(fd, size, pos, path)
            pos += size
            pieces = data.split(b"\n")
            carry = pieces.pop()
            for piece in pieces:
                yield start, piece
                start += len(piece) + 1
            block = min(block * 2, 1 << 20)
        if carry:
            raise CorruptData(f"{path} has an unterminated line at byte {start}", path=str(path))

    def _tail(self, fd: int, lo: int, hi: int, n: int, path: Path) -> list[tuple[int, bytes]]:
        """The last ``n`` lines of ``[lo, hi)``, reading blocks backwards from ``hi`` (a line boundary)."""
        out: list[tuple[int, bytes]] = []
        pos, carry, block = hi, b"", 8192
        while pos > lo and len(out) < n:
            size = min(block, pos - lo)
            pos -= size
            data = self._pread(fd, size, pos, path) + carry
            pieces = data.split(b"\n")
            pieces.pop()  # data ends with a newline: nothing follows it
            # the first piece may be a line whose beginning lies before ``pos``: keep it for the next block
            carry = pieces.pop(0) + b"\n" if pos > lo else b""
            end = pos + len(data)
            for piece in reversed(pieces):
                end -= len(piece) + 1
                out.append((end, piece))
            block = min(block * 2, 1 << 20)
        return out[:n][::-1]

    def _line_at(self, fd: int, start: int, hi: int, path: Path) -> bytes:
        """The line starting at ``start`` (with its newline)."""
        chunk, data = 256, b""
        while True:
            size = min(chunk, hi - start - len(data))
            if size <= 0:
                raise CorruptData(f"{path} has an unterminated line at byte {start}", path=str(path))
            data += self._pread(fd, size, start + len(data), path)
            i = data.find(b"\n", len(data) - size)
            if i >= 0:
                return data[: i + 1]
            chunk = min(chunk * 4, 1 << 20)

    def _line_start(self, fd: int, pos: int, lo: int, hi: int, path: Path) -> int:
        """The first line start at or after ``pos`` (``hi`` when there is none before it)."""
        if pos <= lo:
            return lo
        p = pos - 1
        while p < hi:
            data = self._pread(fd, min(4096, hi - p), p, path)
            i = data.find(b"\n")
            if i >= 0:
                return p + i + 1
            p += len(data)
        return hi

    def _lower_bound(self, fd: int, lo: int, hi: int, target: int, path: Path) -> int:
        """Offset of the first line in ``[lo, hi)`` whose seq is >= ``target`` (``hi`` if none): binary search."""
        while lo < hi:
            mid = (lo + hi) // 2
            start = self._line_start(fd, mid, lo, hi, path)
            if start >= hi:
                start = lo
            line = self._line_at(fd, start, hi, path)
            seq = line_seq(line[:-1])
            probe = start
            while seq is None and probe + len(line) < hi:  # a damaged line: decide by the next intact one
                probe += len(line)
                line = self._line_at(fd, probe, hi, path)
                seq = line_seq(line[:-1])
            if seq is None or seq >= target:
                hi = start
            else:
                lo = probe + len(line)
        return lo

    def _sync(self, fd: int) -> None:
        if self.fsync:
            os.fsync(fd)

    def _pwrite(self, fd: int, data: bytes, offset: int) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(fd, view, offset)
            view, offset = view[n:], offset + n
