"""Damaged films (#17): undecodable packets in the middle, cut-out bytes, truncated files.

Every damaged file is built here from one generated clip (96 frames, 160x120, cuts at 32 and
64, AAC sound) by changing its bytes where PyAV's demuxer says the video packets are
(``packet.pos`` / ``packet.size``). The command line runs in a subprocess (``FILMCOLOR_DEBUG=0``)
so that what is checked is exactly what a user sees on stderr:

* damage in the middle: exit 0, the output keeps the damaged file's frame count and every
  frame's timestamp, the sound is copied, ONE warning line names the lost frames, and each lost
  frame shows the last good picture (its Y plane matches the previous output frame's, within
  the re-encoding's error, and is not a flat grey frame);
* a truncated MKV, or a truncated MP4 whose index (moov) is at the front: exit 0, coloured up to
  where the file ends, ONE warning line ``the film ends after N frames, and its header
  announces M``;
* a truncated MP4 whose index was at the end cannot be opened: exit 2, one line;
* ``--strict``: exit 3, one line, nothing written (no output, no job folder, no temporary file);
* a preview over a damaged range warns the same way and keeps its frame count.

The table in ``docs/sources_table.md`` lists these cases; keep the two in step.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from tests.media import Clip, make_clip, run_ffmpeg

N_FRAMES = 96
CUTS = (32, 64)
TINY = ("--model", "tiny", "-q")

WARNING = re.compile(r"^filmcolor: WARNING: '(?P<name>[^']+)' is damaged: (?P<what>.*)$")
LOST = re.compile(r"(?P<k>\d+) of (?P<n>\d+) frames cannot be decoded \((?P<spans>frames? [^)]*\)"
                  r"(?:, [^)]*\))*)\)")
SPAN = re.compile(r"(?P<a>\d+)(?:-(?P<b>\d+))? \((?P<tc>\d\d:\d\d:\d\d\.\d\d\d)\)")
ENDS = re.compile(r"the film ends after (?P<n>\d+) frames, and its header announces (?P<m>\d+)")
ENDS_AT = re.compile(
    r"the film ends after (?P<s>[\d.]+) s, and its header says it lasts (?P<d>[\d.]+) s"
)
GAP = re.compile(r"(?P<s>[\d.]+) s of picture are missing after frame (?P<i>\d+)")


# -- helpers ---------------------------------------------------------------------------------------
def cli(*args: object) -> subprocess.CompletedProcess:
    """``python -m filmcolor ARGS`` as a user runs it: one-line errors, no debug traceback."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["FILMCOLOR_DEBUG"] = "0"
    return subprocess.run([sys.executable, "-m", "filmcolor", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def stderr_lines(r: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in r.stderr, r.stderr
    return [line for line in r.stderr.splitlines() if line.strip()]


def one_error_line(r: subprocess.CompletedProcess, code: int) -> str:
    """The single ``filmcolor: error:`` line of a run that had to exit with ``code``."""
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = stderr_lines(r)
    assert len(lines) == 1, lines
    assert lines[0].startswith("filmcolor: error: "), lines
    return lines[0]


def one_warning_line(r: subprocess.CompletedProcess) -> re.Match:
    """The single damage warning of a run that succeeded."""
    assert r.returncode == 0, (r.returncode, r.stderr)
    lines = stderr_lines(r)
    assert len(lines) == 1, lines
    m = WARNING.match(lines[0])
    assert m, lines[0]
    return m


def lost_frames(what: str) -> set[int]:
    """The frame numbers a warning names (``frames 39 (00:00:01.627), 41-42 (...)``)."""
    m = LOST.search(what)
    if m is None:
        return set()
    assert "more span" not in what, what  # the tests damage few enough spans to see them all
    frames: set[int] = set()
    for s in SPAN.finditer(m["spans"]):
        a = int(s["a"])
        frames.update(range(a, int(s["b"] or a) + 1))
    assert len(frames) == int(m["k"]), what
    return frames


def timecode(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


@dataclass(frozen=True)
class Packet:
    pts: int
    start: int  # first byte of the packet's payload in the file
    size: int


def video_packets(path: Path) -> tuple[list[Packet], float]:
    """The video packets in file (decode) order, with where their payload lies, and the time
    base. ``packet.pos`` is the payload in MP4, the block (4 header bytes before the payload) in
    Matroska: the payload is found by its first bytes."""
    data = path.read_bytes()
    out = []
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        for p in c.demux(st):
            if not p.size:
                continue
            head = bytes(p)[:32]
            start = data.find(head, p.pos, p.pos + 64)
            assert start >= 0, (p.pts, p.pos)
            out.append(Packet(p.pts, start, p.size))
        return out, float(st.time_base)


def demuxed(path: Path) -> tuple[list[float], int]:
    """``(sorted video packet times in seconds, audio packets)`` as PyAV demuxes ``path``
    (stopping where a damaged container stops)."""
    times, audio = [], 0
    with av.open(str(path)) as c:
        try:
            for p in c.demux():
                if not p.size or p.pts is None:
                    continue
                if p.stream.type == "video":
                    times.append(float(p.pts * p.stream.time_base))
                elif p.stream.type == "audio":
                    audio += 1
        except av.FFmpegError:
            pass
    return sorted(times), audio


def output_frames(path: Path) -> tuple[list[float], list[np.ndarray], int]:
    """``(frame times, Y planes as float32, audio packets)`` of an output file."""
    times, planes = [], []
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        for f in c.decode(st):
            times.append(float(f.pts * st.time_base))
            pl = f.planes[0]
            y = np.frombuffer(pl, np.uint8).reshape(pl.height, pl.line_size)[:, : pl.width]
            planes.append(y.astype(np.float32))
    with av.open(str(path)) as c:
        audio = sum(1 for p in c.demux(audio=0) if p.size) if c.streams.audio else 0
    return times, planes, audio


def assert_concealed(planes: list[np.ndarray], lost: set[int]) -> None:
    """Each lost frame shows the previous output frame's picture (H.264 re-encoded: nearly, not
    bit for bit), and a real picture, not a flat grey one."""
    for i in sorted(lost):
        assert i > 0, "the tests never damage the first frame"
        diff = float(np.abs(planes[i] - planes[i - 1]).mean())
        assert diff < 1.5, f"frame {i} differs from frame {i - 1} by {diff:.2f}: not concealed"
        assert float(planes[i].std()) > 10, f"frame {i} is flat: a grey frame, not a picture"


def assert_nothing_beside(folder: Path, *keep: str) -> None:
    """Only ``keep`` in the output folder: no job folder, no hidden temporary file."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(keep)


# -- damaged files ----------------------------------------------------------------------------------
@dataclass
class Sources:
    mp4: Clip
    mkv: Clip
    faststart: Path  # the same MP4 with its index (moov) at the front
    folder: Path


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    d = tmp_path_factory.mktemp("damaged")
    mp4 = make_clip(d / "film.mp4", n_frames=N_FRAMES, cuts=CUTS)
    mkv = make_clip(d / "film.mkv", n_frames=N_FRAMES, cuts=CUTS)
    fast = d / "film-faststart.mp4"
    run_ffmpeg("-i", str(mp4.path), "-map", "0", "-c", "copy", "-movflags", "+faststart", str(fast))
    return Sources(mp4, mkv, fast, d)


def display_index(packets: list[Packet], which: list[int]) -> set[int]:
    """Frame numbers (presentation order) of the packets ``which`` (file order)."""
    order = sorted(p.pts for p in packets)
    return {order.index(packets[i].pts) for i in which}


def rewrite(src: Path, dst: Path, change: Callable[[bytearray], None]) -> Path:
    data = bytearray(src.read_bytes())
    change(data)
    dst.write_bytes(bytes(data))
    return dst


@dataclass
class Damage:
    path: Path
    kind: str  # "middle": frames lost in the middle; "truncated": the file ends early
    lost: set[int] | None = None  # frames that must be reported lost (middle)
    exact: bool = True  # the report names exactly ``lost`` (else: some of them, at least one)


def _zero_packets(src: Path, dst: Path, which: list[int]) -> Damage:
    """Packets ``which`` (file order) of ``src``'s video zeroed (payload bytes set to 0)."""
    packets, _ = video_packets(src)

    def change(data: bytearray) -> None:
        for i in which:
            p = packets[i]
            data[p.start : p.start + p.size] = bytes(p.size)

    return Damage(rewrite(src, dst, change), "middle", display_index(packets, which))


def zeroed(s: Sources, dst: Path) -> Damage:
    """(a) Three packets of the MP4 zeroed (payload bytes set to 0)."""
    return _zero_packets(s.mp4.path, dst, [40, 41, 42])


def flipped(s: Sources, dst: Path) -> Damage:
    """(b) Bytes flipped (XOR 0xA5, every 5th byte after the NAL header) in two packets."""
    packets, _ = video_packets(s.mp4.path)
    which = [40, 50]

    def change(data: bytearray) -> None:
        for i in which:
            p = packets[i]
            for j in range(p.start + 6, p.start + p.size, 5):
                data[j] ^= 0xA5

    # A flipped packet may still decode, wrongly: the report names some of them, at least one.
    return Damage(rewrite(s.mp4.path, dst, change), "middle", display_index(packets, which),
                  exact=False)


def zeroed_span(s: Sources, dst: Path) -> Damage:
    """(c) One contiguous run of the MP4's media data zeroed: five video packets and the sound
    interleaved between them."""
    packets, _ = video_packets(s.mp4.path)
    first, last = 44, 48

    def change(data: bytearray) -> None:
        a, b = packets[first].start, packets[last].start + packets[last].size
        data[a:b] = bytes(b - a)

    return Damage(rewrite(s.mp4.path, dst, change), "middle",
                  display_index(packets, list(range(first, last + 1))))


def cut_out(s: Sources, dst: Path) -> Damage:
    """(c') About 8 KB cut out of the MKV's media data (three packets' worth, from inside one to
    inside another): the demuxer resynchronises at the next cluster, so the frames in between
    are gone from the file altogether, not merely undecodable."""
    packets, _ = video_packets(s.mkv.path)

    def change(data: bytearray) -> None:
        del data[packets[44].start + 100 : packets[47].start + 100]

    return Damage(rewrite(s.mkv.path, dst, change), "gap")


def zeroed_mkv(s: Sources, dst: Path) -> Damage:
    """(g) Three packets of the MKV zeroed (payload only; the block headers are intact)."""
    return _zero_packets(s.mkv.path, dst, [40, 41, 42])


def truncated_mkv(s: Sources, dst: Path) -> Damage:
    """(d) The MKV cut off at 60 % of its bytes."""
    data = s.mkv.path.read_bytes()
    dst.write_bytes(data[: int(len(data) * 0.6)])
    return Damage(dst, "truncated")


def truncated_faststart(s: Sources, dst: Path) -> Damage:
    """(e) The MP4 with its index at the front (``-movflags +faststart``) cut off at 60 %."""
    data = s.faststart.read_bytes()
    dst.write_bytes(data[: int(len(data) * 0.6)])
    return Damage(dst, "truncated")


CASES: dict[str, tuple[Callable[[Sources, Path], Damage], str]] = {
    "zeroed-mp4": (zeroed, ".mp4"),
    "flipped-mp4": (flipped, ".mp4"),
    "zeroed-span-mp4": (zeroed_span, ".mp4"),
    "cut-out-mkv": (cut_out, ".mkv"),
    "zeroed-mkv": (zeroed_mkv, ".mkv"),
    "truncated-mkv": (truncated_mkv, ".mkv"),
    "truncated-faststart-mp4": (truncated_faststart, ".mp4"),
}


@pytest.fixture(scope="module")
def damaged(sources: Sources) -> Callable[[str], Damage]:
    made: dict[str, Damage] = {}

    def get(name: str) -> Damage:
        if name not in made:
            build, suffix = CASES[name]
            made[name] = build(sources, sources.folder / f"{name}{suffix}")
        return made[name]

    return get


def test_the_damage_is_real(damaged: Callable[[str], Damage]) -> None:
    """Guard for the builders: each damaged file really breaks a plain decode, or ends early."""
    for name in CASES:
        d = damaged(name)
        times, _ = demuxed(d.path)
        decoded = 0
        with av.open(str(d.path)) as c:
            try:
                for _ in c.decode(video=0):
                    decoded += 1
            except av.FFmpegError:
                decoded = -1  # the decoder stopped on the damage
        assert decoded != N_FRAMES or len(times) != N_FRAMES, name


# -- damage in the middle ---------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["zeroed-mp4", "flipped-mp4", "zeroed-span-mp4", "zeroed-mkv"])
def test_damage_in_the_middle_is_concealed(
    name: str, damaged: Callable[[str], Damage], tmp_path: Path
) -> None:
    d = damaged(name)
    src_times, src_audio = demuxed(d.path)
    assert len(src_times) == N_FRAMES  # every packet is still there, some undecodable
    out = tmp_path / "out.mp4"
    r = cli(d.path, "-o", out, *TINY)
    m = one_warning_line(r)
    assert m["name"] == d.path.name
    assert not ENDS.search(m["what"]), m["what"]  # the film is complete
    lost = lost_frames(m["what"])
    assert f" of {N_FRAMES} frames cannot be decoded" in m["what"]
    assert d.lost is not None
    if d.exact:
        assert lost == d.lost
    else:
        assert lost and lost <= d.lost, (lost, d.lost)
    for s in SPAN.finditer(m["what"]):  # each span's time is its first frame's
        assert s["tc"] == timecode(src_times[int(s["a"])]), s.group(0)

    times, planes, audio = output_frames(out)
    assert len(times) == N_FRAMES
    assert np.allclose(times, src_times, atol=5e-4), "the frames' timestamps were not kept"
    assert audio == src_audio > 0
    assert_concealed(planes, lost)
    assert_nothing_beside(tmp_path, out.name)


@pytest.mark.slow
def test_bytes_cut_out_of_an_mkv(damaged: Callable[[str], Damage], tmp_path: Path) -> None:
    """Matroska resynchronises after the cut: the frames in it are gone from the file (not
    counted), one more cannot be decoded; what is left is coloured with its own timestamps."""
    d = damaged("cut-out-mkv")
    src_times, src_audio = demuxed(d.path)
    assert 60 < len(src_times) < N_FRAMES
    out = tmp_path / "out.mp4"
    m = one_warning_line(cli(d.path, "-o", out, *TINY))
    lost = lost_frames(m["what"])
    assert lost, m["what"]

    times, planes, audio = output_frames(out)
    assert len(times) == len(src_times)
    assert np.allclose(times, src_times, atol=5e-4)
    assert audio == src_audio > 0
    assert_concealed(planes, lost)
    assert_nothing_beside(tmp_path, out.name)


@pytest.mark.slow
def test_a_gap_in_the_middle_is_not_called_an_early_end(
    damaged: Callable[[str], Damage], tmp_path: Path
) -> None:
    d = damaged("cut-out-mkv")
    r = cli(d.path, "-o", tmp_path / "out.mp4", *TINY)
    m = one_warning_line(r)
    assert not ENDS.search(m["what"]) and not ENDS_AT.search(m["what"]), m["what"]
    gap = GAP.search(m["what"])  # named as what it is: picture missing in the middle
    assert gap, m["what"]
    assert 0.3 < float(gap["s"]) < 2.0 and 0 < int(gap["i"]) < N_FRAMES


# -- truncated files -------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["truncated-mkv", "truncated-faststart-mp4"])
def test_truncated_film_is_coloured_to_its_end(
    name: str, sources: Sources, damaged: Callable[[str], Damage], tmp_path: Path
) -> None:
    d = damaged(name)
    src_times, src_audio = demuxed(d.path)
    out = tmp_path / "out.mp4"
    m = one_warning_line(cli(d.path, "-o", out, *TINY))
    n = len(src_times)
    assert N_FRAMES * 0.4 < n < N_FRAMES * 0.7
    ends = ENDS.search(m["what"])
    if ends:  # MP4 counts its frames: the count is compared
        assert int(ends["n"]) == n and int(ends["m"]) == N_FRAMES
    else:  # Matroska does not: the times are (its duration may include the sound)
        ends = ENDS_AT.search(m["what"])
        assert ends, m["what"]
        period = float(src_times[1] - src_times[0])
        assert abs(float(ends["s"]) - n * period) < 0.1  # Matroska rounds times to ms
        assert abs(float(ends["d"]) - N_FRAMES * period) < 0.1
    assert not LOST.search(m["what"])  # nothing lost before the end

    times, planes, audio = output_frames(out)
    assert len(times) == n
    assert min(float(y.std()) for y in planes) > 10  # pictures, none a flat grey filler
    assert np.allclose(times, src_times, atol=5e-4)
    # Those are frames of the film, at their own times (Matroska: to the ms); the file ends in
    # decode order, so a B-frame or two just before the end may be missing.
    tb = sources.mp4.time_base
    clip_times = np.array([float(p * tb) for p in sources.mp4.pts])
    assert all(np.abs(clip_times - t).min() < 1e-3 for t in times)
    assert audio == src_audio > 0
    assert_nothing_beside(tmp_path, out.name)


def test_truncated_mp4_with_its_index_at_the_end_is_refused(
    sources: Sources, tmp_path: Path
) -> None:
    """The moov box (frame index) was in the lost part: nothing to open. Exit 2, one line."""
    data = sources.mp4.path.read_bytes()
    assert data.rfind(b"moov") > len(data) * 0.6  # the index is in the part cut off
    src = tmp_path / "in" / "cut.mp4"
    src.parent.mkdir()
    src.write_bytes(data[: int(len(data) * 0.6)])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for extra in ((), ("--strict",)):
        line = one_error_line(cli(src, "-o", out_dir / "out.mp4", *TINY, *extra), 2)
        assert "cut.mp4" in line
        assert_nothing_beside(out_dir)


# -- --strict ---------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_strict_refuses_a_damaged_film(
    name: str, damaged: Callable[[str], Damage], tmp_path: Path
) -> None:
    d = damaged(name)
    line = one_error_line(cli(d.path, "-o", tmp_path / "out.mp4", *TINY, "--strict"), 3)
    assert f"'{d.path.name}' is damaged" in line
    assert "--strict" in line
    assert_nothing_beside(tmp_path)


# -- preview ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_preview_over_a_damaged_range(damaged: Callable[[str], Damage], tmp_path: Path) -> None:
    d = damaged("zeroed-mp4")
    assert d.lost == {39, 41, 42}
    a, b = 30, 50
    out = tmp_path / "clip.mp4"
    m = one_warning_line(cli("preview", d.path, "--frames", f"{a}-{b}", "-o", out, *TINY))
    assert "3 frame(s) of the range cannot be decoded (from frame 39)" in m["what"]
    times, planes, audio = output_frames(out)
    assert len(times) == b - a
    assert audio > 0
    assert_concealed(planes, {i - a for i in d.lost})
    assert_nothing_beside(tmp_path, out.name)

    strict = tmp_path / "strict.mp4"
    line = one_error_line(
        cli("preview", d.path, "--frames", f"{a}-{b}", "-o", strict, *TINY, "--strict"), 3)
    assert "frame 39 cannot be decoded" in line
    assert_nothing_beside(tmp_path, out.name)
