"""Generate small, deterministic test media with PyAV (no shared data, no network).

A "film" here is grey: shots of moving shapes and gradients with a little grain, different content
per shot so the cuts are real, written plane by plane so each frame's luma is known exactly
(:meth:`Clip.luma`). Audio is a sine tone whose pitch changes at every cut.

Importable by any test::

    from tests.media import make_clip
    clip = make_clip(tmp_path / "a.mp4", n_frames=12)
    clip.pts, clip.luma(3)
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

NTSC_FILM: Fraction = Fraction(24000, 1001)
"""23.976 fps, the rate of most film transfers."""

VFR_STEPS: tuple[int, ...] = (1, 1, 2, 1, 3, 1, 1, 2)
"""Frame durations (in nominal frame periods) cycled through by VFR clips: irregular on purpose."""

AUDIO_RATE: int = 48000
"""Sample rate of generated sound tracks."""


def ffmpeg_bin() -> str:
    """The FFmpeg executable the tests use to build what PyAV cannot (bundled with imageio)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(*args: str) -> None:
    """Run the FFmpeg binary quietly; raise with its stderr on failure."""
    cmd = [ffmpeg_bin(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {' '.join(cmd)}\n{proc.stderr}")


def shot_of(index: int, cuts: Sequence[int]) -> int:
    """Which shot frame ``index`` belongs to (0 before the first cut)."""
    return sum(1 for c in cuts if index >= c)


def film_frame(
    index: int, width: int, height: int, cuts: Sequence[int] = (), seed: int = 0
) -> np.ndarray:
    """Grey frame ``index`` of the synthetic film: float64 ``(H, W)`` in [0.05, 0.95].

    Shot 0: a bright disc drifting over a sliding gradient. Shot 1: a scrolling checkerboard.
    Shot 2 and later: expanding rings. Deterministic for given arguments.
    """
    shot = shot_of(index, cuts)
    t = index - (max([c for c in cuts if c <= index], default=0))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    if shot % 3 == 0:
        img = 0.25 + 0.4 * ((xx + 3.0 * t) % width) / width
        cx, cy = (0.2 + 0.03 * t) * width % width, height * 0.5
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2) < (0.18 * min(width, height)) ** 2
        img[disc] = 0.9
    elif shot % 3 == 1:
        cell = max(4, min(width, height) // 6)
        img = np.where(((xx + 2 * t) // cell + (yy + t) // cell) % 2 == 0, 0.15, 0.7)
    else:
        r = np.hypot(xx - width / 2, yy - height / 2)
        img = 0.5 + 0.35 * np.sin(r / 3.0 - 0.6 * t)
    img = cv2.GaussianBlur(img, (0, 0), 0.7)  # lens softness: no pixel-sharp edges on film
    rng = np.random.default_rng(seed * 100003 + index)
    # Film grain clumps over a few pixels (unlike sensor noise): blurred noise, about 1% rms.
    grain = cv2.GaussianBlur(rng.normal(0.0, 0.028, img.shape), (0, 0), 0.8)
    img = img + grain
    return np.clip(img, 0.05, 0.95)


def _yuv_spec(pix_fmt: str) -> tuple[int, bool]:
    fmt = av.VideoFormat(pix_fmt)
    return fmt.components[0].bits, pix_fmt.startswith("yuvj")


def luma_codes(value: np.ndarray, pix_fmt: str) -> np.ndarray:
    """Integer Y codes for luma ``value`` in [0, 1] in ``pix_fmt`` (limited unless ``yuvj``)."""
    bits, full = _yuv_spec(pix_fmt)
    if full:
        return np.rint(value * ((1 << bits) - 1)).astype(np.int64)
    return np.rint(16 * (1 << (bits - 8)) + value * 219 * (1 << (bits - 8))).astype(np.int64)


def codes_to_luma(codes: np.ndarray, pix_fmt: str) -> np.ndarray:
    """Inverse of :func:`luma_codes` as float32 (what a decoder should report)."""
    bits, full = _yuv_spec(pix_fmt)
    c = codes.astype(np.float32)
    if full:
        return c / np.float32((1 << bits) - 1)
    return (c - np.float32(16 << (bits - 8))) / np.float32(219 << (bits - 8))


@dataclass
class Clip:
    """A generated clip and the facts tests check against.

    Attributes:
        path: the file.
        width, height: frame size.
        n_frames: frames written.
        rate: nominal frame rate.
        time_base: video time base used when writing.
        pts: every frame's pts, in ``time_base`` units.
        cuts: frame indices that start a new shot.
        pix_fmt: pixel format written.
        audio_codec: codec of the sound track, ``None`` when silent.
        tones: tone frequency (Hz) of each shot's sound.
    """

    path: Path
    width: int
    height: int
    n_frames: int
    rate: Fraction
    time_base: Fraction
    pts: list[int]
    cuts: tuple[int, ...]
    pix_fmt: str
    audio_codec: str | None = None
    tones: list[float] = field(default_factory=list)
    seed: int = 0

    @property
    def duration(self) -> float:
        """Seconds from the first frame's start to the last frame's end."""
        last = (
            self.pts[-1] - self.pts[-2]
            if len(self.pts) > 1
            else round(1 / (self.rate * self.time_base))
        )
        return float((self.pts[-1] + last - self.pts[0]) * self.time_base)

    def luma(self, index: int) -> np.ndarray:
        """The luma a lossless decode of frame ``index`` must return (quantised like the file)."""
        codes = luma_codes(
            film_frame(index, self.width, self.height, self.cuts, self.seed), self.pix_fmt
        )
        return codes_to_luma(codes, self.pix_fmt)


def _fill_yuv(frame: av.VideoFrame, value: np.ndarray, pix_fmt: str) -> None:
    bits, _ = _yuv_spec(pix_fmt)
    dtype = np.dtype(np.uint8) if bits <= 8 else np.dtype("<u2")
    for i, plane in enumerate(frame.planes):
        rows = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
        view = rows[:, : plane.width]
        view[:] = luma_codes(value, pix_fmt) if i == 0 else 128 << (bits - 8)


def _pts_list(n_frames: int, step: int, vfr: bool) -> list[int]:
    pts, t = [], 0
    for i in range(n_frames):
        pts.append(t)
        t += step * (VFR_STEPS[i % len(VFR_STEPS)] if vfr else 1)
    return pts


def make_clip(
    path: str | Path,
    width: int = 160,
    height: int = 120,
    n_frames: int = 48,
    rate: Fraction = NTSC_FILM,
    cuts: Sequence[int] = (16, 32),
    audio: bool = True,
    vfr: bool = False,
    rotation: int = 0,
    pix_fmt: str = "yuv420p",
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    audio_codec: str = "aac",
    sar: Fraction | None = None,
    seed: int = 0,
) -> Clip:
    """Write a grey synthetic film with PyAV and return what was written.

    Args:
        path: output file (container from the suffix: ``.mp4``, ``.mkv``...).
        width, height: frame size (odd sizes need a 4:4:4 ``pix_fmt`` for libx264).
        n_frames: number of frames.
        rate: nominal frame rate; the time base is ``1 / (rate.numerator)`` scaled so one frame
            is ``rate.denominator`` ticks (1/24000 for 24000/1001, like real NTSC film files).
        cuts: frame indices where a new shot starts.
        audio: add a tone track (pitch changes at each cut).
        vfr: irregular frame durations (cycled from :data:`VFR_STEPS`).
        rotation: display rotation in degrees, stored in the stream's display matrix by PyAV.
        pix_fmt: planar YUV format to write (``yuvj*`` for full range).
        codec: video encoder.
        options: encoder options (default: x264 ``crf=12``; pass ``{"qp": "0"}`` for lossless).
        audio_codec: ``aac``, ``pcm_s16le`` (mkv only)...
        sar: sample aspect ratio to tag.
        seed: grain seed.
    """
    path = Path(path)
    time_base = Fraction(1, rate.numerator)
    step = rate.denominator
    if options is None:
        options = {"crf": "12"} if codec in ("libx264", "libx265") else {}
    pts_list = _pts_list(n_frames, step, vfr)
    tones = [220.0 * (1.5**s) for s in range(len(cuts) + 1)]
    clip = Clip(
        path,
        width,
        height,
        n_frames,
        rate,
        time_base,
        pts_list,
        tuple(cuts),
        pix_fmt,
        audio_codec if audio else None,
        tones if audio else [],
        seed,
    )
    with av.open(str(path), "w") as container:
        vs = container.add_stream(codec, rate=rate, options=options)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        vs.codec_context.time_base = time_base
        vs.time_base = time_base
        vs.codec_context.color_range = 2 if pix_fmt.startswith("yuvj") else 1
        if sar:
            vs.codec_context.sample_aspect_ratio = sar
            vs.sample_aspect_ratio = sar
        if rotation:
            vs.set_display_rotation(rotation)
        aus = None
        if audio:
            aus = container.add_stream(audio_codec, rate=AUDIO_RATE)
            aus.layout = "stereo"
            formats = [f.name for f in aus.codec_context.codec.audio_formats or []]
            aus.format = next(f for f in ("fltp", "s16", "s16p", "u8") if not formats or f in formats)
        for i, pts in enumerate(pts_list):
            frame = av.VideoFrame(width, height, pix_fmt)
            _fill_yuv(frame, film_frame(i, width, height, cuts, seed), pix_fmt)
            frame.pts = pts
            frame.time_base = time_base
            for packet in vs.encode(frame):
                container.mux(packet)
        for packet in vs.encode():
            container.mux(packet)
        if aus is not None:
            _write_tones(container, aus, clip)
    return clip


def _write_tones(
    container: av.container.OutputContainer, stream: av.AudioStream, clip: Clip
) -> None:
    """A sine per shot covering the video's duration, in encoder-sized frames."""
    n = round(clip.duration * AUDIO_RATE)
    t = np.arange(n) / AUDIO_RATE
    cut_times = [float(clip.pts[c] * clip.time_base) for c in clip.cuts if c < clip.n_frames]
    shot = np.searchsorted(np.array(cut_times), t, side="right")
    freq = np.array(clip.tones)[shot]
    phase = 2 * np.pi * np.cumsum(freq) / AUDIO_RATE  # continuous phase: no click inside a shot
    mono = (0.3 * np.sin(phase)).astype(np.float32)
    fmt = stream.format.name
    chunk = stream.codec_context.frame_size or 1024
    for start in range(0, n, chunk):
        part = mono[start : start + chunk]
        if fmt == "fltp":
            data = np.stack([part, part])
        elif fmt == "s16":  # packed: L R L R ... in one row
            data = (np.stack([part, part], axis=1) * 32767).astype(np.int16).reshape(1, -1)
        elif fmt == "s16p":
            data = (np.stack([part, part]) * 32767).astype(np.int16)
        elif fmt == "u8":  # packed unsigned 8-bit (pcm_u8)
            data = (np.stack([part, part], axis=1) * 127 + 128).astype(np.uint8).reshape(1, -1)
        else:
            raise ValueError(f"unsupported audio sample format {fmt}")
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, AUDIO_RATE)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def make_audio_only(path: str | Path, seconds: float = 0.5) -> Path:
    """An audio-only file (no video stream), for error-path tests."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=AUDIO_RATE)
        stream.layout = "mono"
        n = int(seconds * AUDIO_RATE)
        samples = (np.sin(np.arange(n) * 0.05) * 8000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def rotate_with_ffmpeg(src: str | Path, dst: str | Path, degrees: int) -> Path:
    """Stream-copy ``src`` to ``dst``, adding a display matrix with ``-display_rotation``."""
    run_ffmpeg("-display_rotation", str(degrees), "-i", str(src), "-c", "copy", str(dst))
    return Path(dst)


DEFAULT_CUES: tuple[tuple[float, float, str], ...] = (
    (0.0, 0.5, "Hello"),
    (0.6, 1.2, "Film"),
)
"""``(start s, end s, text)`` subtitle cues used by :func:`add_subtitles`."""


def add_subtitles(
    src: str | Path,
    dst: str | Path,
    cues: Sequence[tuple[float, float, str]] = DEFAULT_CUES,
    codec: str = "srt",
) -> Path:
    """Copy ``src`` to ``dst`` (use ``.mkv``) adding an SRT subtitle stream made from ``cues``."""
    dst = Path(dst)
    srt = dst.with_suffix(".srt")

    def stamp(s: float) -> str:
        ms = round(s * 1000)
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    srt.write_text(
        "".join(
            f"{i}\n{stamp(a)} --> {stamp(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(cues, 1)
        ),
        encoding="utf-8",
    )
    run_ffmpeg(
        "-i",
        str(src),
        "-i",
        str(srt),
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        "-c:s",
        codec,
        str(dst),
    )
    return dst


def make_image(
    path: str | Path,
    width: int = 96,
    height: int = 64,
    bit_depth: int = 8,
    color: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """Write a still (grey or colour, 8 or 16 bit) with OpenCV; return the array written.

    The array is what ``cv2.imread`` returns: ``(H, W)`` grey or ``(H, W, 3)`` BGR, uint8/uint16.
    """
    value = film_frame(0, width, height, seed=seed)
    top = (1 << bit_depth) - 1
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    grey = np.rint(value * top).astype(dtype)
    if color:
        bgr = np.stack([grey, np.flipud(grey), np.fliplr(grey)], axis=-1)
        img = np.ascontiguousarray(bgr)
    else:
        img = grey
    if not cv2.imwrite(str(path), img):
        raise RuntimeError(f"cv2 could not write {path}")
    return img


@dataclass
class Film:
    """A decoded film as a viewer sees it: rgb24 frames, their pts, and whether it has sound
    (what kill-and-resume checks compare with an uninterrupted run)."""

    frames: list[np.ndarray]
    pts: list[int]
    audio: bool


def decode_film(path: str | Path) -> Film:
    """Every frame of ``path``'s first video stream as rgb24, with its pts."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        audio = len(c.streams.audio) > 0
        frames, pts = [], []
        for f in c.decode(vs):
            frames.append(f.to_ndarray(format="rgb24"))
            pts.append(f.pts)
    return Film(frames, pts, audio)
