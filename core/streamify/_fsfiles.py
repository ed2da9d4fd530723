"""The files ``streamify://`` opens for writing: bytes go out in parts as they are written.

``StreamedFile`` is a :class:`StreamWriter` as a binary file; ``StreamedText`` is text on
one. Closing completes and verifies the object; leaving a ``with`` block by an exception
aborts it, so a half-written object never appears.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ._result import UploadResult
from ._stream import StreamWriter

__all__ = ["StreamedFile", "StreamedText"]


class StreamedFile(io.RawIOBase):
    """A file open for writing on ``streamify://``: a :class:`StreamWriter` as a file.

    Bytes go out in parallel parts while the program writes (at most ``concurrency`` parts
    in memory). ``close()`` completes and verifies the object: closing keeps what was
    written, as with any file, also from an ``except`` block or a ``finally``.
    ``abort()`` discards it (the multipart upload is aborted, no object appears). Used as
    the context manager, the file aborts when the ``with`` block ends by an exception, so
    a half-written object never appears; ``fsspec.open(...)``'s context manager closes the
    file without saying why, so there call ``abort()`` on errors. ``result`` is the
    completed upload.
    """

    def __init__(self, writer: StreamWriter, path: str,
                 written: Callable[[str], None]) -> None:
        super().__init__()
        self.writer = writer
        self.path = path
        self.result: UploadResult | None = None
        self._written = written
        self._position = 0

    @property
    def name(self) -> str:
        return f"streamify://{self.path}"

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError(f"write to {self.name}, which is closed")
        written = self.writer.write(data)
        self._position += written
        return written

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        """Send the last part, complete and verify the object. Closing again does nothing."""
        self._end(self.writer.close)

    def abort(self) -> None:
        """Discard what was written: abort the multipart upload, create no object."""
        self._end(self.writer.abort)

    def _end(self, end: Callable[[], UploadResult | None]) -> None:
        if self.closed:
            return
        try:
            self.result = end()
        finally:
            super().close()
            self._written(self.path)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        _leave(error, self.close, self.abort)


class StreamedText(io.TextIOWrapper):
    """Text on a :class:`StreamedFile` (``fs.open(path, "w")``): leaving a ``with`` block
    by an exception aborts, as the binary file does; closing completes."""

    def __init__(self, file: StreamedFile, **options: Any) -> None:
        super().__init__(file, **options)
        self._file = file

    def abort(self) -> None:
        """Discard what was written, the text not yet encoded too."""
        self._file.abort()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        _leave(error, self.close, self.abort)


def _leave(error: BaseException | None, close: Callable[[], None],
           abort: Callable[[], None]) -> None:
    """The end of a ``with`` block: a clean exit completes, an exception discards."""
    if error is None:
        close()
    else:
        abort()
