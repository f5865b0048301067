"""Upload screening the image decoder cannot do: unsafe filenames and polyglot files.

A polyglot is a file that is a valid image *and* something else (HTML, a script, a zip
appended after the image's end). Pillow decodes it happily, so we look for it ourselves.
"""

from __future__ import annotations

import html
import re
import struct

from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework import parsers
from rest_framework.exceptions import ParseError

_MARKUP = re.compile(
    rb"<\s*(script|html|body|svg|iframe|object|embed|!doctype|\?php)|javascript:", re.IGNORECASE
)
_PNG_END = b"IEND\xaeB`\x82"
_UNSAFE_NAME = re.compile(r"(^|[\\/])\.\.([\\/]|$)|[\\/]|[\x00-\x1f\x7f]|^[A-Za-z]:")


class UnsafeFilename(MultiPartParserError):
    """The multipart filename tries to leave its folder (../, absolute path, drive letter)."""


def filename_check(name: str) -> None:
    """Refuse filenames with path parts or control characters instead of silently cleaning them."""
    if _UNSAFE_NAME.search(name) or len(name) > 255:
        raise UnsafeFilename(f"unsafe filename {name[:80]!r}: send a plain file name")


class _CheckingDjangoParser(DjangoMultiPartParser):
    def sanitize_file_name(self, file_name):
        filename_check(html.unescape(file_name))
        return super().sanitize_file_name(file_name)


class SafeMultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser, refusing path-traversal filenames with a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context["request"]
        encoding = parser_context.get("encoding", "utf-8")
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        try:
            parser = _CheckingDjangoParser(meta, stream, request.upload_handlers, encoding)
            data, files = parser.parse()
        except MultiPartParserError as exc:
            raise ParseError(f"Multipart form parse error: {exc}")
        return parsers.DataAndFiles(data, files)


def _trailing_after(data: bytes, marker: bytes) -> bytes:
    end = data.rfind(marker)
    return data[end + len(marker) :] if end >= 0 else data


def polyglot_reason(data: bytes, extension: str) -> str | None:
    """Why this image is also something else (None when it is only an image)."""
    if _MARKUP.search(data):
        return "it contains HTML or script markup"
    if extension == "png":
        trailing = _trailing_after(data, _PNG_END)
    elif extension == "jpg":
        trailing = _trailing_after(data, b"\xff\xd9")
    elif extension == "gif":
        trailing = b"" if data.endswith(b"\x3b") else data[-16:]
    elif extension == "webp":
        declared = struct.unpack("<I", data[4:8])[0] + 8 if len(data) >= 8 else 0
        trailing = data[declared:] if declared else data
    elif extension == "bmp":
        declared = struct.unpack("<I", data[2:6])[0] if len(data) >= 6 else 0
        trailing = data[declared:] if declared else b""
    else:
        trailing = b""
    if trailing.strip(b"\x00"):
        return f"{len(trailing)} bytes follow the end of the image"
    return None
