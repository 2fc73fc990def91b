"""Join the coloured video with the source's own audio and subtitles: ``ffmpeg -c copy``.

:func:`build_remux_args` is pure (no I/O, no FFmpeg needed) and returns the command as a list,
built with ffmpeg-python's stream API; :func:`run_remux` runs it without a shell. Audio is
always copied bit for bit, never re-encoded. :func:`verify_output` re-opens the result and checks
that no frame was lost.

Policies:
    * Rotation: the coloured video is encoded in the source's coded orientation, so the source's
      display matrix is re-applied with ``-display_rotation`` on the video input (FFmpeg >= 6.1).
    * Subtitles: Matroska takes every stream as it is (plus attachments, i.e. ASS fonts). MP4/MOV
      hold only ``mov_text``: other text subtitles are converted to it (styling is lost; a
      warning says so); bitmap subtitles (PGS, VobSub, DVB) cannot go in at all.
    * Before any colouring, :func:`unfit_streams` says which source streams an output container
      cannot take, so a film whose sound MP4 cannot hold is refused (or, by default, written as
      MKV) in the first second rather than failing at the remux after hours of work.
    * Metadata and chapters come from the source (``-map_metadata 1 -map_chapters 1``).
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av
import ffmpeg as ffmpeg_python  # the module; `ffmpeg` below is the executable's path

from filmcolor.errors import RemuxError
from filmcolor.io.containers import MP4_FAMILY, StrPath, muxer_for
from filmcolor.io.ffmpeg_exe import ffmpeg_exe
from filmcolor.io.probe import SourceInfo

__all__ = [
    "TEXT_SUBTITLE_CODECS",
    "UnfitStreams",
    "build_remux_args",
    "ffmpeg_exe",
    "run_remux",
    "unfit_streams",
    "verify_output",
]

logger = logging.getLogger("filmcolor")

TEXT_SUBTITLE_CODECS: frozenset[str] = frozenset(
    {
        "mov_text",
        "subrip",
        "srt",
        "ass",
        "ssa",
        "webvtt",
        "text",
        "microdvd",
        "subviewer",
        "subviewer1",
        "sami",
        "realtext",
        "jacosub",
        "mpl2",
        "pjs",
        "vplayer",
        "stl",
        "ttml",
    }
)
"""Subtitle codecs FFmpeg can convert to ``mov_text``; any other subtitle codec is a bitmap."""

GLOBAL_ARGS: tuple[str, ...] = ("-hide_banner", "-nostdin", "-loglevel", "error", "-y")
"""Options before the first input: quiet, never read the terminal, replace the (temp) output."""


def _muxer(out_path: StrPath) -> str:
    try:
        return muxer_for(out_path)
    except ValueError as exc:
        raise RemuxError(str(exc)) from None


@dataclass(frozen=True)
class UnfitStreams:
    """Source streams an output container cannot take as they are (see :func:`unfit_streams`).

    Attributes:
        refused: ``"<kind> stream <index> (<codec>)"`` for each stream the container cannot hold
            at all (bitmap subtitles in MP4, audio codecs its muxer refuses).
        converted: the same for text subtitles MP4/MOV take only after conversion to mov_text.
    """

    refused: tuple[str, ...] = ()
    converted: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.refused or self.converted)


def _copy_trial(source_path: StrPath, index: int, fmt: str, ffmpeg: str) -> bool:
    """Can ``fmt`` take stream ``index`` of the source by copy? FFmpeg tries half a second."""
    with tempfile.TemporaryDirectory(prefix="filmcolor-trial-") as td:
        args = ffmpeg_python.input(str(source_path)).output(
            str(Path(td) / "trial"), map=f"0:{index}", c="copy", t=0.5, f=fmt
        ).get_args()
        try:
            proc = subprocess.run([ffmpeg, *GLOBAL_ARGS, *args], stdin=subprocess.DEVNULL,
                                  capture_output=True, check=False, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return True  # cannot ask FFmpeg now; the remux itself reports any real problem
        return proc.returncode == 0


def unfit_streams(info: SourceInfo, out_path: StrPath, ffmpeg: str) -> UnfitStreams:
    """Which of the source's audio and subtitle streams ``out_path``'s container cannot copy.

    Matroska (and the other non-MP4 containers filmcolor writes) take every stream. For MP4/MOV,
    bitmap subtitles never fit and text subtitles are converted; whether an audio codec fits
    depends on the FFmpeg in use (PCM in MP4 needs FFmpeg 6.1+, for example), so FFmpeg is asked:
    it copies half a second of each audio stream whose codec is not known to fit. Cheap (a few
    tens of milliseconds a stream) and run once, before any colouring.

    Raises:
        RemuxError: the output suffix names no known container.
    """
    fmt = _muxer(out_path)
    if fmt not in MP4_FAMILY:
        return UnfitStreams()
    refused, converted = [], []
    for sub in info.subtitle_streams:
        name = f"subtitle stream {sub.index} ({sub.codec})"
        if sub.codec not in TEXT_SUBTITLE_CODECS:
            refused.append(name)
        elif sub.codec != "mov_text":
            converted.append(name)
    for aud in info.audio_streams:
        if aud.codec not in MP4_SAFE_AUDIO and not _copy_trial(info.path, aud.index, fmt, ffmpeg):
            refused.append(f"audio stream {aud.index} ({aud.codec})")
    return UnfitStreams(tuple(refused), tuple(converted))


MP4_SAFE_AUDIO: frozenset[str] = frozenset({"aac", "mp3", "ac3", "eac3", "alac"})
"""Audio codecs every FFmpeg filmcolor supports copies into MP4/MOV (others are tried)."""


def _shown_name(name: str) -> str:
    """The output's name as the user gave it, for a temporary one (``.film.filmcolor-join-42.mp4``
    -> ``film.mp4``): messages name what the user will see."""
    m = re.fullmatch(r"\.(.+)\.filmcolor-[a-z]+-\d+(\.[^.]+)", name)
    return m.group(1) + m.group(2) if m else name


def _subtitle_plan(info: SourceInfo, out_name: str) -> list[tuple[int, str]]:
    """``(source stream index, output codec)`` for each subtitle stream an MP4/MOV output keeps."""
    out_name = _shown_name(out_name)
    plan = []
    for sub in info.subtitle_streams:
        if sub.codec == "mov_text":
            plan.append((sub.index, "copy"))
        elif sub.codec in TEXT_SUBTITLE_CODECS:
            logger.warning(
                "subtitle stream %d (%s) converted to mov_text for %s: styling is lost "
                "(use an .mkv output to keep it as is)",
                sub.index,
                sub.codec,
                out_name,
            )
            plan.append((sub.index, "mov_text"))
        else:  # refused before colouring (unfit_streams); kept for direct library callers
            logger.warning(
                "bitmap subtitle stream %d (%s) dropped: %s cannot hold it "
                "(use an .mkv output to keep it)",
                sub.index,
                sub.codec,
                out_name,
            )
    return plan


def build_remux_args(
    video_path: StrPath,
    source_path: StrPath,
    out_path: StrPath,
    info: SourceInfo,
    ffmpeg: str = "ffmpeg",
) -> list[str]:
    """The FFmpeg command that copies the coloured video plus the source's audio and subtitles.

    Pure: reads no file and runs nothing, so it is unit-tested without FFmpeg.

    Args:
        video_path: video-only file from :func:`~filmcolor.io.encode.encode` (input 0).
        source_path: the original film (input 1): audio, subtitles, metadata, chapters.
        out_path: where to write; the container follows the suffix, looking through ``.tmp``
            (so ``film.mp4.tmp`` is written as MP4).
        info: :func:`~filmcolor.io.probe.probe` of the source (rotation, subtitle codecs).
        ffmpeg: executable to put first (see :func:`ffmpeg_exe`).

    Returns:
        The argument list, executable first.

    Raises:
        RemuxError: the output suffix names no known container.
    """
    fmt = _muxer(out_path)
    video_opts = {"display_rotation": info.rotation} if info.rotation else {}
    video = ffmpeg_python.input(str(video_path), **video_opts)
    source = ffmpeg_python.input(str(source_path))
    streams = [video["v:0"], source["a?"]]  # "?": a silent film has no audio stream, not an error
    out_opts: dict[str, object] = {"f": fmt, "map_metadata": 1, "map_chapters": 1}
    if fmt in MP4_FAMILY:
        # Per-type codecs rather than `-c copy` plus overrides, which FFmpeg warns about.
        out_opts.update({"c:v": "copy", "c:a": "copy"})
        for n, (index, codec) in enumerate(_subtitle_plan(info, Path(out_path).name)):
            streams.append(source[str(index)])
            out_opts[f"c:s:{n}"] = codec
        out_opts["movflags"] = "+faststart"  # index first: the film starts playing while loading
    else:
        streams.append(source["s?"])
        if fmt == "matroska":
            streams.append(source["t?"])  # attachments: the fonts ASS subtitles are styled with
        out_opts["c"] = "copy"
    out = ffmpeg_python.output(*streams, str(out_path), **out_opts)
    # ffmpeg-python appends global options after the output name, where FFmpeg 7+ reports
    # "trailing options"; put them right after the executable instead.
    return [ffmpeg, *GLOBAL_ARGS, *out.get_args()]


_UNSUPPORTED = re.compile(
    r"Could not find tag for codec (\S+) in stream #\d+|codec not currently supported in container"
)


_OPEN_FAILED = re.compile(r"^Error opening (input|output) file (.+?)\.?$", re.MULTILINE)
_LOG_PREFIX = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\] ")


def build_preview_remux_args(
    video: Path, src: Path, out: Path, start_s: float, duration_s: float, ffmpeg: str = "ffmpeg"
) -> list[str]:
    """FFmpeg command: the preview video plus the source's first audio track cut to the range.

    Pure (runs nothing). The audio is re-encoded to AAC: a copy could only be cut at packet
    boundaries, and AAC fits every container a preview is written to. No ``-shortest``: where
    the film's sound ends before the range does, it would cut the picture short too.
    """
    return [
        ffmpeg, *GLOBAL_ARGS,
        "-i", str(video),
        "-ss", f"{start_s:.6f}", "-t", f"{duration_s:.6f}", "-i", str(src),
        "-map", "0:v:0", "-map", "1:a:0?", "-c:v", "copy", "-c:a", "aac",
        str(out),
    ]


def _summarise(stderr: str, out_name: str, exe: str) -> str:
    """One actionable line from FFmpeg's stderr."""
    if "display_rotation" in stderr and (
        "Unrecognized option" in stderr or "Option not found" in stderr
    ):
        return (
            f"FFmpeg at {exe} is too old to carry the rotation (-display_rotation needs 6.1+): "
            "install a newer FFmpeg or remove it from PATH to use imageio-ffmpeg's"
        )
    m = _UNSUPPORTED.search(stderr)
    if m:
        codec = m.group(1)
        what = f"the source's {codec} stream" if codec else "a source stream"
        return (
            f"cannot copy {what} into '{out_name}': that container cannot hold it; "
            "use an .mkv output"
        )
    lines = [_LOG_PREFIX.sub("", ln).strip() for ln in stderr.splitlines() if ln.strip()]
    detail = lines[-1] if lines else "no error message"
    # FFmpeg names the file on one line and gives the reason on the last one: join them.
    m = _OPEN_FAILED.search(stderr)
    if m:
        return f"FFmpeg cannot open the {m.group(1)} '{m.group(2)}': {detail.rpartition(': ')[2]}"
    return f"FFmpeg failed to write '{out_name}': {detail}"


def _die_with_parent():  # -> Callable[[], None] | None
    """A ``preexec_fn`` that has Linux SIGKILL FFmpeg when filmcolor dies; ``None`` elsewhere.

    A job killed during the remux must not leave FFmpeg writing its temporary file (#4).
    """
    import ctypes
    import os
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before the fork
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:  # filmcolor died before the call took effect
            os._exit(1)

    return hook


def run_remux(args: list[str]) -> None:
    """Run a command from :func:`build_remux_args` (no shell), raising on failure.

    Raises:
        RemuxError: FFmpeg is missing or failed; ``.stderr`` holds its full output.
    """
    logger.debug("remux: %s", shlex.join(args))
    out_name = Path(args[-1]).name if args else "?"
    try:
        proc = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
            preexec_fn=_die_with_parent(),
        )
    except FileNotFoundError as exc:
        raise RemuxError(
            f"FFmpeg not found at '{args[0]}': install ffmpeg or `pip install imageio-ffmpeg`"
        ) from exc
    except OSError as exc:
        raise RemuxError(f"cannot run FFmpeg at '{args[0]}': {exc}") from exc
    if proc.returncode != 0:
        raise RemuxError(_summarise(proc.stderr, out_name, args[0]), stderr=proc.stderr)
    if proc.stderr.strip():
        logger.debug("ffmpeg stderr: %s", proc.stderr.strip())


def _video_extent(path: Path) -> tuple[int, float]:
    """``(packets, seconds)`` of the first video stream, by demuxing (no decoding)."""
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise RemuxError(f"cannot open the output '{path}' to check it: {exc}") from exc
    try:
        if not container.streams.video:
            raise RemuxError(f"the output '{path}' has no video stream")
        stream = container.streams.video[0]
        count, first, end = 0, None, None
        for packet in container.demux(stream):
            if packet.size == 0:  # the demuxer's flush packet carries no frame
                continue
            count += 1
            if packet.pts is not None:
                first = packet.pts if first is None else min(first, packet.pts)
                stop = packet.pts + (packet.duration or 0)
                end = stop if end is None else max(end, stop)
        tb = stream.time_base
        seconds = float((end - first) * tb) if first is not None and end is not None and tb else 0.0
        return count, seconds
    finally:
        container.close()


def verify_output(path: StrPath, expected_frames: int, expected_duration: float | None) -> None:
    """Check a finished output: exactly ``expected_frames`` video frames, duration within one frame.

    Counts video packets (one per frame for the streams filmcolor encodes), so it is fast even
    for a feature film. The duration is the video stream's, first frame start to last frame end.

    Args:
        path: the remuxed file.
        expected_frames: frames the encoder wrote.
        expected_duration: seconds the video should last (``EncodeStats.duration`` is exact);
            ``None`` skips the duration check.

    Raises:
        RemuxError: the frame count differs or the duration is off by more than one frame.
    """
    p = Path(path)
    count, seconds = _video_extent(p)
    if count != expected_frames:
        raise RemuxError(
            f"'{p.name}' has {count} video frames, expected {expected_frames}: the output is "
            "incomplete; run again (a full disk or a killed FFmpeg can cause this)"
        )
    if expected_duration is None:
        return
    frame = expected_duration / expected_frames if expected_frames else 0.0
    if abs(seconds - expected_duration) > frame + 1e-3:  # +1 ms: Matroska rounds to milliseconds
        try:
            container = muxer_for(p)
        except ValueError:
            container = p.suffix or "output"
        # The frames are all there (counted above): what lost the timing is the container
        # writing them, not the source; another container is what the user can act on.
        raise RemuxError(
            f"'{p.name}' lasts {seconds:.3f} s, expected {expected_duration:.3f} s: the "
            f"{container} container did not keep the frames' timestamps; write an .mkv or .mp4 "
            "instead (and report this, with the source file's details, if it happens there)"
        )
