"""Video clips at intake: decode within the limits, sample the project's frames, keep them as PNG.

A clip is checked as fully as an image: every frame is decoded (mlcore.video) before anything is
stored, and the sampled frames are what predictions, the desk and training use.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from reviewapp import ml
from reviewapp.models import Project

VIDEO_SUFFIXES = (".mp4", ".m4v", ".webm", ".mov", ".mkv", ".avi")


@dataclass(frozen=True)
class CheckedClip:
    """A clip that decoded fully: its format, size, facts and sampled frames as PNG bytes."""

    extension: str
    width: int
    height: int
    meta: dict[str, Any]
    frames: tuple[bytes, ...]


def clip_check(*, project: Project, data: bytes, name: str) -> CheckedClip:
    """Decode a clip fully within the limits and sample the project's frames (else a 4xx)."""
    try:
        clip = ml.clip_decode(
            data=data,
            scheme=project.clip_sampling,
            frames=project.clip_frames,
            fps=project.clip_fps,
        )
    except ml.VideoError as exc:
        raise ValidationError(f"{name}: {exc}")
    frames = []
    for image in clip.frames:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        frames.append(buffer.getvalue())
    meta = {
        "codec": clip.codec,
        "duration": clip.duration,
        "frame_count": clip.frame_count,
        "sampling": {
            "scheme": project.clip_sampling,
            "frames": project.clip_frames,
            "fps": project.clip_fps,
        },
        "frames": [
            {"index": index, "time": time}
            for index, time in zip(clip.indices, clip.times, strict=True)
        ],
    }
    return CheckedClip(
        extension=clip.extension,
        width=clip.width,
        height=clip.height,
        meta=meta,
        frames=tuple(frames),
    )
