"""Clips through the API: a good clip is an item with its frames; hostile video is a 4xx that
stores nothing (no row, no file)."""

from __future__ import annotations

import pytest

from reviewapp.models import Item, ItemKind
from tests.api.conftest import media_files
from tests.factories import png_bytes
from tests.video_support import (
    SLOW_RATE,
    blank_frames,
    digit_clip,
    encoded,
    webm_without_frames,
)


@pytest.mark.parametrize("extension", ["mp4", "webm", "gif"])
def test_a_clip_becomes_one_item_with_its_sampled_frames(api, media_dir, extension):
    data = digit_clip(list(range(10)) * 2, extension=extension)  # GIF merges equal frames
    response = api.submit(data, name=f"trap.{extension}", key=f"cam/{extension}")
    assert response.status_code == 202, response.content
    item = Item.objects.get()
    assert item.kind == ItemKind.CLIP and item.image_format == extension
    assert (item.width, item.height) == (32, 32)
    assert item.clip["frame_count"] == 20 and len(item.clip["frames"]) == 8
    assert [f["index"] for f in item.clip["frames"]] == [1, 3, 6, 8, 11, 13, 16, 18]
    stored = {p.name for p in media_files(media_dir)}
    assert f"{item.sha256}.{extension}" in stored
    assert {f"{item.sha256}.frame{i:02d}.png" for i in range(8)} <= stored


def test_fixed_rate_sampling_is_set_per_project(api):
    api.project.clip_sampling, api.project.clip_fps, api.project.clip_frames = "rate", 2.0, 8
    api.project.save()
    response = api.submit(digit_clip([5] * 20), name="clip.mp4")  # 2 s at 10 fps
    assert response.status_code == 202, response.content
    frames = Item.objects.get().clip["frames"]
    assert [f["time"] for f in frames] == [0.0, 0.5, 1.0, 1.5]


def _truncated(extension: str) -> bytes:
    data = digit_clip(list(range(10)) * 2, extension=extension)
    return data[: len(data) // 2]


HOSTILE = {
    "zero frames": (lambda: webm_without_frames(), "clip.webm", "no frames"),
    "truncated mp4": (lambda: _truncated("mp4"), "clip.mp4", "not a video we can read"),
    "truncated webm": (lambda: _truncated("webm"), "clip.webm", "truncated"),
    "truncated gif": (lambda: _truncated("gif"), "clip.gif", "truncated"),
    "mpeg-4 part 2 in mp4": (
        lambda: encoded(blank_frames(4, 32, 32), codec="mpeg4"),
        "clip.mp4",
        "mpeg4 is not accepted",
    ),
    "h264 in matroska": (
        lambda: encoded(blank_frames(4, 32, 32), extension="matroska"),
        "clip.mkv",
        "h264 is not accepted",
    ),
    "text named .mp4": (lambda: b"not a video, honest\n" * 20, "clip.mp4", "not a video"),
    "png named .mp4": (lambda: png_bytes(3), "clip.mp4", "not a video"),
    "mp4 signature then junk": (
        lambda: b"\x00\x00\x00\x18ftypisom" + b"\x00" * 300,
        "clip.mp4",
        "not a video we can read",
    ),
    "absurd duration": (
        lambda: encoded(blank_frames(3, 32, 32), rate=SLOW_RATE),
        "clip.mp4",
        "longer than 60 seconds",
    ),
    "absurd aspect": (
        lambda: encoded(blank_frames(2, 2048, 32)),
        "clip.mp4",
        "absurd frame size",
    ),
    "huge frames (decode memory)": (
        lambda: encoded(blank_frames(2, 2560, 1600)),
        "clip.mp4",
        "too many pixels",
    ),
    "absurd frame count": (
        lambda: encoded(blank_frames(1900, 16, 16), rate=120),
        "clip.mp4",
        "more than 1800 frames",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_video_is_a_4xx_and_stores_nothing(api, media_dir, case):
    build, name, message = HOSTILE[case]
    before = media_files(media_dir)
    response = api.submit(build(), name=name)
    assert response.status_code == 400, (case, response.content)
    assert message in response.content.decode(), response.content
    assert not Item.objects.exists()
    assert media_files(media_dir) == before


def test_the_limits_are_settings(api, settings):
    clip = digit_clip([1] * 20)
    settings.HANDOFF_VIDEO_MAX_FRAMES = 10
    assert "more than 10 frames" in api.submit(clip, name="a.mp4").content.decode()
    settings.HANDOFF_VIDEO_MAX_FRAMES, settings.HANDOFF_VIDEO_MAX_SECONDS = 1800, 1.0
    assert "longer than 1 seconds" in api.submit(clip, name="a.mp4").content.decode()
    settings.HANDOFF_VIDEO_MAX_SECONDS, settings.HANDOFF_VIDEO_MAX_PIXELS = 60, 31 * 31
    assert "too many pixels" in api.submit(clip, name="a.mp4").content.decode()
    assert not Item.objects.exists()
