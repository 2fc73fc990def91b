"""Build ``samples/sample.mp4``: a short black-and-white "film" with sound, made from scratch.

Four shots from the photographs scikit-image ships (rocket, astronaut, coffee, chelsea), each with
a slow Ken Burns pan or zoom, joined by hard cuts; reduced to BT.601 luma and given a film look
(soft optics, clumped grain, gentle exposure flicker, vignette). The sound is an AAC chord per shot,
so the cuts are audible as well as visible. 24000/1001 fps, like most film transfers.

The colour originals are public (``skimage.data``), so the clip doubles as a quick sanity check for
colourisation. Everything is generated here; nothing is downloaded.

Usage::

    python samples/make_samples.py                  # writes samples/sample.mp4
    python samples/make_samples.py --out /tmp/x.mp4 --width 480 --height 270 --crf 23
    python samples/make_samples.py --stills samples/stills   # the four colour originals, as
                                                             # reference stills (README, "Guiding
                                                             # the colours")
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

logger = logging.getLogger("filmcolor")

RATE: Fraction = Fraction(24000, 1001)
"""Frame rate of the sample (NTSC film)."""

AUDIO_RATE: int = 48000
"""Sample rate of the sound track."""

SEED: int = 1895
"""Grain and flicker seed: the clip is the same on every run."""


@dataclass(frozen=True)
class Shot:
    """One shot: a photograph and a camera move across it.

    Attributes:
        image: name of a ``skimage.data`` function returning an RGB photograph.
        frames: length of the shot in frames.
        start: ``(centre x, centre y, width)`` of the crop window at the first frame, as fractions
            of the image width/height/width.
        end: the same at the last frame; the window moves linearly (eased) in between.
        chord: frequencies in Hz of the shot's chord.
    """

    image: str
    frames: int
    start: tuple[float, float, float]
    end: tuple[float, float, float]
    chord: tuple[float, ...]


SHOTS: tuple[Shot, ...] = (
    Shot("rocket", 42, (0.50, 0.62, 0.60), (0.50, 0.42, 0.60), (196.0, 246.9, 293.7)),  # tilt up
    Shot("astronaut", 42, (0.50, 0.45, 0.95), (0.45, 0.30, 0.55), (220.0, 277.2, 329.6)),  # zoom in
    Shot("coffee", 42, (0.38, 0.50, 0.70), (0.62, 0.50, 0.70), (174.6, 220.0, 261.6)),  # pan right
    Shot("chelsea", 42, (0.55, 0.40, 0.55), (0.50, 0.50, 0.98), (261.6, 329.6, 392.0)),  # zoom out
)
"""The film: 168 frames, about 7 s, three hard cuts."""


def _ease(t: float) -> float:
    """Smoothstep: camera moves start and stop gently, as a real rostrum camera does."""
    return t * t * (3.0 - 2.0 * t)


def _photo(name: str) -> np.ndarray:
    import skimage.data  # optional dependency of this script only (the `test` extra)

    loader: Callable[[], np.ndarray] = getattr(skimage.data, name)
    return loader()


def _to_luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma in [0, 1], float32: the photograph as a black-and-white film would hold it."""
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    return (rgb.astype(np.float32) @ weights) / 255.0


def _crop(
    grey: np.ndarray, window: tuple[float, float, float], size: tuple[int, int]
) -> np.ndarray:
    """Resample a window of ``grey`` to ``size`` (w, h) with an affine map (sub-pixel motion)."""
    h_img, w_img = grey.shape
    w_out, h_out = size
    cx, cy, frac_w = window
    win_w = frac_w * w_img
    win_h = win_w * h_out / w_out
    win_h = min(win_h, h_img)  # never sample outside the photograph
    win_w = win_h * w_out / h_out
    x0 = np.clip(cx * w_img - win_w / 2, 0, w_img - win_w)
    y0 = np.clip(cy * h_img - win_h / 2, 0, h_img - win_h)
    scale = win_w / w_out
    sx = sy = 1.0
    if scale > 1.25:
        # Shrink first so the bilinear warp below does not alias fine detail into shimmer. The
        # shrunk size is rounded to whole pixels, so map through its exact factors (sx, sy):
        # using `scale` instead would make the zoom jitter as the rounding changes per frame.
        small = (round(w_img / scale), round(h_img / scale))
        grey = cv2.resize(grey, small, interpolation=cv2.INTER_AREA)
        sx, sy = w_img / small[0], h_img / small[1]
    # Output pixel (u, v) samples the photograph at (x0 + u * scale, y0 + v * scale).
    m = np.array([[scale / sx, 0.0, x0 / sx], [0.0, scale / sy, y0 / sy]], np.float32)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(grey, m, (w_out, h_out), flags=flags, borderMode=cv2.BORDER_REFLECT)


def film_frames(width: int, height: int) -> Iterator[np.ndarray]:
    """Every frame of the film as float32 luma ``(H, W)`` in [0, 1], one at a time."""
    rng = np.random.default_rng(SEED)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((xx - width / 2) / (width / 2)) ** 2 + ((yy - height / 2) / (height / 2)) ** 2
    vignette = 1.0 - 0.18 * r2
    for shot in SHOTS:
        grey = _to_luma(_photo(shot.image))
        for i in range(shot.frames):
            t = _ease(i / (shot.frames - 1))
            window = tuple(a + (b - a) * t for a, b in zip(shot.start, shot.end, strict=True))
            img = _crop(grey, window, (width, height))
            img = cv2.GaussianBlur(img, (0, 0), 0.6)  # old lenses and prints are soft
            flicker = 1.0 + rng.normal(0.0, 0.015)  # exposure varies frame to frame
            grain = cv2.GaussianBlur(
                rng.normal(0.0, 0.03, img.shape).astype(np.float32), (0, 0), 0.9
            )
            img = (img * vignette * flicker) + grain
            yield np.clip(img, 0.0, 1.0).astype(np.float32)


def sound(n_samples: int, shot_starts: list[float]) -> np.ndarray:
    """Stereo float32 ``(2, n)``: one soft chord per shot, faded in and out around each cut."""
    t = np.arange(n_samples, dtype=np.float64) / AUDIO_RATE
    out = np.zeros(n_samples, np.float64)
    bounds = [*shot_starts, n_samples / AUDIO_RATE]
    fade = int(0.02 * AUDIO_RATE)  # 20 ms: no click at the cut, still a hard change
    for shot, a, b in zip(SHOTS, bounds[:-1], bounds[1:], strict=True):
        i0, i1 = round(a * AUDIO_RATE), round(b * AUDIO_RATE)
        seg = t[i0:i1] - a
        chord = sum(np.sin(2 * np.pi * f * seg) for f in shot.chord) / len(shot.chord)
        env = np.ones(i1 - i0)
        k = min(fade, (i1 - i0) // 2)
        env[:k] = np.linspace(0.0, 1.0, k)
        env[-k:] = np.linspace(1.0, 0.0, k)
        out[i0:i1] = 0.25 * chord * env
    return np.stack([out, out * 0.9]).astype(np.float32)  # slightly off-centre stereo


def write_film(path: Path, width: int, height: int, crf: int) -> None:
    """Encode the film and its sound track into ``path`` (H.264 + AAC in MP4)."""
    n_frames = sum(shot.frames for shot in SHOTS)
    time_base = Fraction(1, RATE.numerator)
    step = RATE.denominator
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        video = container.add_stream(
            "libx264", rate=RATE, options={"crf": str(crf), "preset": "slow", "tune": "grain"}
        )
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = time_base
        video.time_base = time_base
        video.codec_context.colorspace = 6  # BT.601 (SMPTE 170M), like the luma weights above
        video.codec_context.color_range = 1  # limited (tv) range
        audio = container.add_stream("aac", rate=AUDIO_RATE, options={"b": "64k"})
        audio.layout = "stereo"
        for i, luma in enumerate(film_frames(width, height)):
            frame = av.VideoFrame(width, height, "yuv420p")
            for n, plane in enumerate(frame.planes):
                rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
                view = rows[:, : plane.width]
                view[:] = np.rint(16 + 219 * luma) if n == 0 else 128  # grey: neutral chroma
            frame.pts = i * step
            frame.time_base = time_base
            frame.colorspace, frame.color_range = 6, 1
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)

        starts, acc = [], 0
        for shot in SHOTS:
            starts.append(float(acc * step * time_base))
            acc += shot.frames
        n_samples = round(n_frames * step * time_base * AUDIO_RATE)
        pcm = sound(n_samples, starts)
        chunk = audio.codec_context.frame_size or 1024
        for start in range(0, n_samples, chunk):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(pcm[:, start : start + chunk]), format="fltp", layout="stereo"
            )
            frame.sample_rate = AUDIO_RATE
            frame.pts = start
            frame.time_base = Fraction(1, AUDIO_RATE)
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)


def write_stills(folder: Path, width: int = 640) -> list[Path]:
    """Write each shot's colour photograph, whole (the shot sees only part of it, moving), as
    ``<folder>/<name>.jpg`` at most ``width`` pixels wide: reference stills for guided colour."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for shot in SHOTS:
        rgb = _photo(shot.image)
        if rgb.shape[1] > width:
            h = round(rgb.shape[0] * width / rgb.shape[1])
            rgb = cv2.resize(rgb, (width, h), interpolation=cv2.INTER_AREA)
        path = folder / f"{shot.image}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        out.append(path)
    return out


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("sample.mp4"))
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--crf", type=int, default=26)
    parser.add_argument("--stills", type=Path, metavar="DIR",
                        help="write the shots' colour photographs into DIR instead of the film")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.stills:
        for p in write_stills(args.stills):
            logger.info("wrote %s", p)
        return
    write_film(args.out, args.width, args.height, args.crf)
    n = sum(s.frames for s in SHOTS)
    logger.info(
        "wrote %s: %dx%d, %d frames at %s fps (%.2f s), %d bytes",
        args.out,
        args.width,
        args.height,
        n,
        RATE,
        n / RATE,
        args.out.stat().st_size,
    )


if __name__ == "__main__":
    main()
