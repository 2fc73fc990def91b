"""Receiving an upload: a multipart form streamed into the data folder, never into memory.

The form is parsed as it arrives (python-multipart's push parser), each file part written to
``incoming/`` under a generated name and counted against the size limit as it comes, so a 4 GB
film neither fills the server's memory nor lands in a temporary folder outside the data folder,
and an upload over the limit is stopped at the limit, not after it has all arrived.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header

MAX_FIELD_BYTES: int = 256 << 10
"""Largest plain (non-file) form field: settings and a hints list."""

MAX_FILES: int = 17
"""The film or photo and up to 16 reference stills."""


class UploadError(Exception):
    """The form cannot be accepted; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class FilePart:
    """One file field as received: the field name, the client's file name, where it lies."""

    field: str
    filename: str
    path: Path
    size: int = 0


@dataclass
class Form:
    """A received form: plain fields (repeated ones in order) and files."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[FilePart] = field(default_factory=list)

    def discard(self) -> None:
        """Delete every received file (the form was refused)."""
        for f in self.files:
            f.path.unlink(missing_ok=True)


class FormReceiver:
    """Feed it the body's bytes (:meth:`write`), then :meth:`finish`; files go to ``folder``.

    Args:
        content_type: the request's ``Content-Type`` (must be ``multipart/form-data``).
        folder: where file parts are written (``incoming/``).
        max_file_bytes: the size limit of all files together.
    """

    def __init__(self, content_type: str, folder: Path, max_file_bytes: int) -> None:
        ctype, params = parse_options_header(content_type or "")
        boundary = params.get(b"boundary")
        if ctype != b"multipart/form-data" or not boundary:
            raise UploadError(415, "send the file as multipart/form-data (a form with a 'file' field)")
        self.folder = folder
        self.max_file_bytes = max_file_bytes
        self.form = Form()
        self._file_bytes = 0
        self._headers: dict[str, str] = {}
        self._hname = b""
        self._hvalue = b""
        self._part: FilePart | None = None
        self._fh = None
        self._text: bytearray | None = None
        self._name = ""
        self._error: UploadError | None = None
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._hfield(d[s:e]),
            "on_header_value": lambda d, s, e: self._hval(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": lambda d, s, e: self._data(d[s:e]),
            "on_part_end": self._part_end,
        })

    # The callbacks may not raise through the parser cleanly: they record the first error.
    def _fail(self, status: int, message: str) -> None:
        if self._error is None:
            self._error = UploadError(status, message)

    def _part_begin(self) -> None:
        self._headers = {}
        self._hname = self._hvalue = b""

    def _hfield(self, b: bytes) -> None:
        self._hname += b

    def _hval(self, b: bytes) -> None:
        self._hvalue += b

    def _header_end(self) -> None:
        self._headers[self._hname.decode("latin-1").lower()] = self._hvalue.decode("utf-8", "replace")
        self._hname = self._hvalue = b""

    def _headers_done(self) -> None:
        _, params = parse_options_header(self._headers.get("content-disposition", ""))
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        if filename is not None:
            if len(self.form.files) >= MAX_FILES:
                self._fail(400, f"too many files in one upload (at most {MAX_FILES})")
                return
            path = self.folder / f"{secrets.token_hex(8)}.part"
            self._part = FilePart(self._name, filename.decode("utf-8", "replace"), path)
            self._fh = open(path, "wb")  # noqa: SIM115 (closed in _part_end or close())
            self.form.files.append(self._part)
        else:
            self._text = bytearray()

    def _data(self, b: bytes) -> None:
        if self._error is not None:
            return
        if self._fh is not None and self._part is not None:
            self._file_bytes += len(b)
            self._part.size += len(b)
            if self._file_bytes > self.max_file_bytes:
                self._fail(413, "the upload is larger than this server accepts")
                return
            self._fh.write(b)
        elif self._text is not None:
            self._text += b
            if len(self._text) > MAX_FIELD_BYTES:
                self._fail(400, f"form field '{self._name}' is too long")

    def _part_end(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())  # accepted means on disk
            self._fh.close()
            self._fh = None
            self._part = None
        elif self._text is not None:
            self.form.fields.setdefault(self._name, []).append(
                self._text.decode("utf-8", "replace"))
            self._text = None

    def write(self, data: bytes) -> None:
        """Parse the next piece of the body.

        Raises:
            UploadError: the form is malformed or over a limit (its files are deleted).
        """
        try:
            self._parser.write(data)
        except UploadError:
            raise
        except OSError as exc:
            self.close()
            self.form.discard()
            raise UploadError(507, f"the server cannot store the upload: {exc.strerror or exc}") from None
        except Exception as exc:  # noqa: BLE001 - python-multipart raises several kinds: all mean a bad form
            self.close()
            self.form.discard()
            raise UploadError(400, f"malformed multipart form: {exc}") from None
        if self._error is not None:
            self.close()
            self.form.discard()
            raise self._error

    def finish(self) -> Form:
        """The whole form, once the body has ended."""
        try:
            self._parser.finalize()
        except Exception as exc:  # noqa: BLE001 - python-multipart raises several kinds: all mean a bad form
            self.close()
            self.form.discard()
            raise UploadError(400, f"malformed multipart form: {exc}") from None
        if self._fh is not None:  # the body ended inside a file part
            self.close()
            self.form.discard()
            raise UploadError(400, "the upload ended before its end (connection cut?)")
        return self.form

    def close(self) -> None:
        """Close the file being written, if any (its errors are moot: the form is refused)."""
        fh, self._fh = self._fh, None
        if fh is not None:
            # Closing flushes the buffer, which fails again on a full disk.
            with contextlib.suppress(OSError):
                fh.close()
