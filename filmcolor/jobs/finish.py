"""Finishing: the chunks joined into one video stream, the source's sound and subtitles
remuxed in, the result verified and renamed into place.

:func:`publish_video` (remux, verify, rename) is the one way any front end turns a coloured
video-only file into an output the user sees: the job's join here, and previews.
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path

from filmcolor.errors import EncodeError, JobStateError
from filmcolor.jobs import faults
from filmcolor.jobs.disk import check_disk, disk_full_error, is_disk_full
from filmcolor.jobs.folder import CHUNK_SUFFIX, final_temp_path, joined_temp_path, same_device
from filmcolor.jobs.spec import JobSpec, Plan


def join_chunks(paths: list[Path], offsets: list[Fraction], out: Path) -> int:
    """Copy the chunks' video packets, in order, into one video-only file; returns packets.

    Args:
        paths: the chunk files, in order.
        offsets: each chunk's start time in seconds (its first frame's source pts), added back
            to its 0-based timestamps.
        out: the video-only MP4 to write.

    Why a PyAV packet copy and not FFmpeg's concat demuxer: every chunk already carries the
    source's own pts (the encoder copies them), so copying packets keeps every timestamp exactly,
    VFR included. The concat demuxer instead re-bases each file on the summed *durations* of the
    files before it, which for MP4 include a guessed last-frame duration, and can shift a VFR
    film by a frame at every seam. Only decode timestamps may need care: a chunk's first DTS is
    its first PTS minus the B-frame reorder delay, which x264 estimates from the chunk's first
    frame durations; with VFR that can land at or before the previous chunk's last DTS (seen:
    13012 after 13013 in 1/24000 units). Such a DTS is raised to one tick after the previous
    one, which changes the decode order of nothing (the packets are already in decode order)
    and never any PTS; a DTS that would then pass its own PTS is an error, not patched.

    Raises:
        EncodeError: a chunk cannot be read, or a seam's timestamps cannot be reconciled.
    """
    import av

    count = 0
    last_dts: int | None = None
    try:
        with av.open(str(out), "w", format="mp4") as oc:
            ostream = None
            for path, offset_s in zip(paths, offsets, strict=True):
                with av.open(str(path)) as ic:
                    ist = ic.streams.video[0]
                    if ostream is None:
                        ostream = oc.add_stream_from_template(ist)
                        ostream.time_base = ist.time_base
                    ticks = offset_s / Fraction(ist.time_base)
                    if ticks.denominator != 1:
                        raise EncodeError(
                            f"{path.name}: start {offset_s} s is not on its time base"
                        )
                    offset = int(ticks)
                    for packet in ic.demux(ist):
                        if packet.size == 0:  # the demuxer's flush packet
                            continue
                        if packet.pts is not None:
                            packet.pts += offset
                        if packet.dts is not None:
                            packet.dts += offset
                        if packet.dts is not None:
                            if last_dts is not None and packet.dts <= last_dts:
                                # A seam: nudge the DTS past the previous chunk's (see above).
                                if packet.pts is not None and last_dts + 1 > packet.pts:
                                    raise EncodeError(
                                        f"cannot join {path.name}: its decode timestamps overlap "
                                        f"the previous chunk's ({packet.dts} after {last_dts})"
                                    )
                                packet.dts = last_dts + 1
                            last_dts = packet.dts
                        packet.stream = ostream
                        oc.mux(packet)
                        count += 1
                        faults.kill_point("join", count)
    except av.FFmpegError as exc:
        raise EncodeError(f"joining the chunks into {out} failed: {exc}") from exc
    return count


def publish_video(
    video: Path,
    src: Path,
    out: Path,
    info,
    frames: int,
    duration: float | None,
    audio_range: tuple[float, float] | None = None,
) -> None:
    """Remux ``video`` with the source's sound (and subtitles), verify it, rename it to ``out``.

    FFmpeg writes ``out``'s hidden temporary (:func:`~filmcolor.jobs.folder.final_temp_path`,
    beside it, so the rename is atomic); ``out`` appears only complete and verified, and the
    temporary is removed on any failure.

    Args:
        video: the coloured video-only file.
        src: the source (its audio and subtitle streams are copied untouched).
        out: the final path.
        info: the source's :class:`~filmcolor.io.probe.SourceInfo`.
        frames, duration: what the output must hold (the encoder's figures); ``duration``
            ``None`` skips that check.
        audio_range: ``(start, seconds)`` of a preview: the first audio track cut to that range
            and re-encoded (a copy could only be cut at packet boundaries), no subtitles.

    Raises:
        RemuxError: FFmpeg failed, or the output does not hold what was encoded.
        OutputError: the disk filled up.
    """
    from filmcolor.io.remux import (
        build_preview_remux_args,
        build_remux_args,
        ffmpeg_exe,
        run_remux,
        verify_output,
    )

    tmp = final_temp_path(out)
    try:
        if audio_range is None:
            args = build_remux_args(video, src, tmp, info, ffmpeg=ffmpeg_exe())
        else:
            args = build_preview_remux_args(video, src, tmp, *audio_range, ffmpeg=ffmpeg_exe())
        faults.kill_point("remux", 0)  # before FFmpeg starts
        try:
            run_remux(args)
        except Exception as exc:
            if is_disk_full(exc):
                raise disk_full_error("the final output", out.parent) from exc
            raise
        faults.kill_point("remux", 1)  # the remuxed temporary is complete, not yet verified
        # Against what was encoded: a container's duration may include longer audio.
        verify_output(tmp, frames, duration)
        faults.kill_point("remux", 2)  # verified, not yet renamed into place
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def finish_job(spec: JobSpec, plan: Plan) -> None:
    """Join the finished chunks of ``plan``, remux, verify and rename to ``spec.output``.

    Raises:
        JobStateError: a chunk file is missing.
        OutputError: too little disk space for the join and the output, or the disk filled up.
        FilmcolorError: the join or the remux failed.
    """
    job_dir, out, info = spec.job_dir, spec.output, spec.info
    chunks = plan.chunks
    paths = [job_dir / c.filename(CHUNK_SUFFIX) for c in chunks]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise JobStateError(
            f"chunk file {missing[0]} of the job in {job_dir} is missing; run again with --restart"
        )
    total_bytes = sum(c.bytes for c in chunks)
    if same_device(job_dir, out.parent):
        # The joined file and the final output exist side by side until the rename.
        check_disk(job_dir, 2 * total_bytes, "joining the chunks and the final output")
    else:
        check_disk(job_dir, total_bytes, "joining the chunks")
        check_disk(out.parent, total_bytes, "the final output")
    joined = joined_temp_path(job_dir)
    try:
        tb = Fraction(info.time_base) if info.time_base else Fraction(1, 25)
        try:
            join_chunks(paths, [(c.first_pts or 0) * tb for c in chunks], joined)
        except Exception as exc:
            if is_disk_full(exc):
                raise disk_full_error("the joined chunks", job_dir) from exc
            raise
        first, last = chunks[0], chunks[-1]
        duration = None
        if first.first_pts is not None and last.first_pts is not None and last.duration is not None:
            duration = float((last.first_pts - first.first_pts) * tb) + last.duration
        publish_video(joined, spec.source, out, info, plan.total_frames, duration)
    finally:
        with contextlib.suppress(FileNotFoundError):
            joined.unlink()
