"""Short video clips: sniff, decode within limits, sample frames, aggregate frame predictions.

Decoding uses PyAV (FFmpeg bundled in its wheels). A clip is decoded twice: once demuxing only
(no pixels) to count frames and check the limits, then decoding, keeping only the sampled
frames, so memory stays at one decoded frame plus the K kept ones whatever the clip's length.
Sampling follows Temporal Segment Networks (Wang et al. 2016, arXiv:1608.00859): K frames, the
centre of each of K equal segments (the deterministic test-time form), or one every 1/fps
seconds.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import av
import numpy as np
from PIL import Image

from mlcore.predict import PredictionResult

logger = logging.getLogger(__name__)

# extension -> (FFmpeg demuxer names that may read it, codecs accepted in it)
FORMATS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "mp4": (frozenset({"mov,mp4,m4a,3gp,3g2,mj2"}), frozenset({"h264"})),
    "webm": (frozenset({"matroska,webm"}), frozenset({"vp9"})),
    "gif": (frozenset({"gif"}), frozenset({"gif"})),
}
SCHEMES = ("segments", "rate")
# A declared frame count or duration may be off by a frame or two (edit lists, rounding).
_TRUNCATION_SLACK_FRAMES = 2
_TRUNCATION_SLACK_SECONDS = 0.25
_ERRORS = (av.FFmpegError, ValueError, OSError, EOFError, IndexError, KeyError, MemoryError)


class VideoError(ValueError):
    """A clip was refused: not a video we accept, damaged, or past a limit (the message says)."""


@dataclass(frozen=True)
class Limits:
    """What a clip may cost to decode."""

    max_seconds: float
    max_pixels: int
    max_frames: int


@dataclass(frozen=True)
class Sampling:
    """How frames are picked: K segment centres, or one every 1/fps seconds (at most K)."""

    scheme: str = "segments"
    frames: int = 8
    fps: float = 1.0

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"sampling scheme must be one of {SCHEMES}, got {self.scheme!r}")
        if self.frames < 1 or self.fps <= 0:
            raise ValueError("sampling needs at least one frame and a positive rate")


@dataclass(frozen=True)
class Clip:
    """A decoded clip: its container, codec, size, length and the sampled frames (RGB)."""

    extension: str
    codec: str
    width: int
    height: int
    duration: float
    frame_count: int
    frames: list[Image.Image] = field(repr=False)
    indices: list[int]
    times: list[float]


# HEIF/HEIC/AVIF stills share MP4's container (ISO BMFF): their major brand tells them apart.
STILL_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif"}


def sniff(data: bytes) -> str | None:
    """The clip format its first bytes announce ("mp4", "webm", "gif"), else None."""
    head = data[:64]
    if head[4:8] == b"ftyp":
        return None if head[8:12] in STILL_BRANDS else "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return None


def sample_indices(frame_count: int, times: Sequence[float], sampling: Sampling) -> list[int]:
    """Which decoded frames to keep (ascending, no repeats)."""
    if frame_count < 1:
        return []
    if sampling.scheme == "segments":
        k = sampling.frames
        picked = [min(frame_count - 1, int((i + 0.5) * frame_count / k)) for i in range(k)]
    else:
        start, step = times[0], 1.0 / sampling.fps
        picked, j = [], 0
        for n in range(sampling.frames):
            target = start + n * step
            while j < frame_count - 1 and times[j] < target - 1e-6:
                j += 1
            if times[j] < target - 1e-6:
                break  # the clip ended before this sample time
            picked.append(j)
    return sorted(set(picked))


def _open(data: bytes, extension: str):
    container = av.open(io.BytesIO(data), mode="r")
    demuxers, codecs = FORMATS[extension]
    if container.format.name not in demuxers:
        container.close()
        raise VideoError(f"the container is {container.format.name}, not {extension}")
    if not container.streams.video:
        container.close()
        raise VideoError("the file has no video stream")
    stream = container.streams.video[0]
    if stream.codec_context.name not in codecs:
        container.close()
        allowed = ", ".join(sorted(codecs))
        raise VideoError(
            f"{extension} with {stream.codec_context.name} is not accepted ({allowed})"
        )
    return container, stream


def _check_size(width: int, height: int, limits: Limits) -> None:
    if width < 1 or height < 1:
        raise VideoError("the video stream declares no frame size")
    if width * height > limits.max_pixels:
        raise VideoError(f"{width}x{height} frames have too many pixels")
    if max(width, height) / min(width, height) > 50:
        raise VideoError(f"absurd frame size {width}x{height}")


def _declared_seconds(container, stream) -> float:
    seconds = [container.duration / av.time_base if container.duration else 0.0]
    if stream.duration and stream.time_base:
        seconds.append(float(stream.duration * stream.time_base))
    return max(seconds)


def _demux(data: bytes, extension: str, limits: Limits) -> tuple[str, list[float], float]:
    """Frame times without decoding pixels; refuse what is past a limit or cut short."""
    container, stream = _open(data, extension)
    with container:
        codec = stream.codec_context.name
        _check_size(stream.codec_context.width, stream.codec_context.height, limits)
        declared_seconds = _declared_seconds(container, stream)
        if declared_seconds > limits.max_seconds:
            raise VideoError(f"the clip is longer than {limits.max_seconds:g} seconds")
        declared, times, last = int(stream.frames or 0), [], 0.0
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if len(times) >= limits.max_frames:
                raise VideoError(f"the clip has more than {limits.max_frames} frames")
            start = float(packet.pts * packet.time_base) if packet.pts is not None else last
            times.append(start)
            last = max(last, start + float((packet.duration or 0) * packet.time_base))
            if last > limits.max_seconds:
                raise VideoError(f"the clip is longer than {limits.max_seconds:g} seconds")
    if not times:
        raise VideoError("the clip has no frames")
    if declared and len(times) + _TRUNCATION_SLACK_FRAMES < declared:
        raise VideoError(f"the clip is truncated ({len(times)} of {declared} frames present)")
    frame_seconds = (last - min(times)) / len(times)
    if last + max(_TRUNCATION_SLACK_SECONDS, _TRUNCATION_SLACK_FRAMES * frame_seconds) < (
        declared_seconds
    ):
        raise VideoError(f"the clip is truncated ({last:.2f} of {declared_seconds:.2f} seconds)")
    if extension == "gif" and not data.endswith(b"\x3b"):
        raise VideoError("the GIF is truncated (no trailer)")
    return codec, sorted(times), last


def _decode(data: bytes, extension: str, limits: Limits, wanted: set[int]) -> tuple[dict, int]:
    """Decode every frame (a codec needs its references), keeping only the wanted ones."""
    container, stream = _open(data, extension)
    kept: dict[int, Image.Image] = {}
    decoded = 0
    with container:
        for index, frame in enumerate(container.decode(stream)):
            if index >= limits.max_frames:
                raise VideoError(f"the clip has more than {limits.max_frames} frames")
            _check_size(frame.width, frame.height, limits)  # a stream may change size midway
            decoded = index + 1
            if index in wanted:
                kept[index] = frame.to_image()
    return kept, decoded


def clip_decode(data: bytes, *, sampling: Sampling, limits: Limits) -> Clip:
    """Check and decode a clip fully, returning its sampled frames; raises VideoError."""
    extension = sniff(data)
    if extension is None:
        raise VideoError("not a video we can read (MP4/H.264, WebM/VP9 or animated GIF)")
    try:
        codec, times, seconds = _demux(data, extension, limits)
        picked = sample_indices(len(times), times, sampling)
        kept, decoded = _decode(data, extension, limits, set(picked))
    except VideoError:
        raise
    except EOFError as exc:
        raise VideoError("the clip ends before its frames (no frames, or truncated)") from exc
    except _ERRORS as exc:
        raise VideoError(f"not a video we can read ({exc.__class__.__name__}: {exc})") from exc
    if decoded + _TRUNCATION_SLACK_FRAMES < len(times) or len(kept) < len(picked):
        raise VideoError(f"the clip is damaged ({decoded} of {len(times)} frames decode)")
    frames = [kept[i] for i in picked]
    width, height = frames[0].size
    return Clip(
        extension=extension,
        codec=codec,
        width=width,
        height=height,
        duration=round(seconds, 3),
        frame_count=decoded,
        frames=[f.convert("RGB") for f in frames],
        indices=picked,
        times=[round(times[i] - times[0], 3) for i in picked],
    )


def clip_encode(frames: Sequence[Image.Image], *, extension: str, fps: int = 10) -> bytes:
    """Write frames as a clip (tests, benchmarks, demos): mp4 = H.264, webm = VP9, or gif."""
    if extension == "gif":
        buffer = io.BytesIO()
        first, *rest = [f.convert("RGB") for f in frames]
        first.save(
            buffer, format="GIF", save_all=True, append_images=rest, duration=1000 // fps, loop=0
        )
        return buffer.getvalue()
    codec, options = {
        "mp4": ("libx264", {"crf": "1", "preset": "ultrafast"}),
        "webm": ("libvpx-vp9", {"lossless": "1"}),
    }[extension]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=extension) as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.asarray(image.convert("RGB")), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else 0.0


def _mean_dict(dicts: Sequence[dict[str, float] | None]) -> dict[str, float] | None:
    present = [d for d in dicts if d]
    if not present:
        return None
    return {key: _mean([float(d.get(key, 0.0)) for d in present]) for key in present[0]}


def clip_aggregate(
    results: Sequence[PredictionResult], *, priority_labels: Collection[str] = ()
) -> PredictionResult:
    """One decision for a clip from its frames' predictions.

    The label is the arg-max of the mean frame probabilities, its confidence that mean; a
    priority label that is the top label of any frame wins instead, with its largest frame
    probability as confidence (one grizzly frame is an alert); the clip is out of domain when
    most of its frames are. Embeddings and image statistics are the frames' means.
    """
    if not results:
        raise ValueError("a clip needs at least one frame prediction")
    mean = {
        label: _mean([r.probabilities[label] for r in results])
        for label in results[0].probabilities
    }
    label = max(mean, key=mean.__getitem__)
    confidence = mean[label]
    alerts = {r.label for r in results} & set(priority_labels)
    if alerts:
        peak = {name: max(r.probabilities[name] for r in results) for name in alerts}
        label = max(sorted(peak), key=peak.__getitem__)
        confidence = peak[label]
    embeddings = [r.embedding for r in results if r.embedding is not None]
    return PredictionResult(
        label=label,
        confidence=confidence,
        probabilities=mean,
        top=sorted(mean.items(), key=lambda kv: kv[1], reverse=True)[:3],
        ood_score=_mean([r.ood_score for r in results]),
        ood_scores=_mean_dict([r.ood_scores for r in results]) or {},
        is_ood=2 * sum(bool(r.is_ood) for r in results) > len(results),
        embedding=np.mean(np.asarray(embeddings, dtype=float), axis=0).tolist()
        if embeddings
        else None,
        image_stats=_mean_dict([r.image_stats for r in results]),
    )


def frame_summaries(results: Sequence[PredictionResult], times: Sequence[float]) -> list[dict]:
    """Per-frame label, confidence and out-of-domain flag, for the desk's strip."""
    return [
        {
            "time": float(time),
            "label": r.label,
            "confidence": round(float(r.confidence), 4),
            "is_ood": bool(r.is_ood),
        }
        for r, time in zip(results, times, strict=True)
    ]
