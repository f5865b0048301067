"""A HEIC/HEIF/AVIF still shares MP4's container: sniffing tells them apart by the brand."""

from __future__ import annotations

import pytest

from mlcore import video


def _ftyp(brand: bytes) -> bytes:
    return b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00" + brand + b"mif1" + b"\x00" * 40


@pytest.mark.parametrize("brand", [b"heic", b"heix", b"mif1", b"avif"])
def test_heif_stills_are_not_clips(brand):
    assert video.sniff(_ftyp(brand)) is None


@pytest.mark.parametrize("brand", [b"isom", b"mp42", b"avc1"])
def test_mp4_brands_are_clips(brand):
    assert video.sniff(_ftyp(brand)) == "mp4"
