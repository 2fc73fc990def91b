"""Frame-range previews (#4): range parsing, seeking, frames equal to a full run, the outputs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from filmcolor.__main__ import main
from filmcolor.config import RunConfig
from filmcolor.errors import ConfigError
from filmcolor.frames import FrameRange
from filmcolor.preview import (
    LOOKBACK,
    PreviewRequest,
    _timing,
    parse_frames,
    parse_position,
    preview_frames,
    resolve_range,
    sheet_indices,
)
from filmcolor.temporal.chain import build_temporal
from filmcolor.temporal.scenecut import SceneCutParams, warmup_start
from tests.media import Clip, film_frame, luma_codes, make_clip

NTSC = Fraction(24000, 1001)


@pytest.fixture(scope="module")
def clip_long(media_dir: Path) -> Clip:
    """200 frames, cuts at 30, 70, 100 and 180: previews start well past the look-back."""
    return make_clip(media_dir / "long.mp4", n_frames=200, cuts=(30, 70, 100, 180))


@pytest.mark.parametrize(
    "text, frame",
    [
        ("17280f", 17280),
        ("00:12:03.5", 17347),  # 723.5 s * 23.976 = 17346.65 -> first frame at or after it
        ("12:03.5", 17347),
        ("723.5", 17347),
        ("0", 0),
        ("1:00:00", 86314),
    ],
)
def test_parse_position(text: str, frame: int) -> None:
    assert parse_position(text, NTSC) == frame


@pytest.mark.parametrize("text", ["", "abc", "1:75", "1:2:3:4", "-5", "12f5", "1:60:00"])
def test_parse_position_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="is not a position"):
        parse_position(text, NTSC)


def test_parse_frames_and_ranges() -> None:
    assert parse_frames("17280-17400") == (17280, 17400)
    for bad, msg in (("17280", "not a range"), ("5-x", "not a range"), ("9-9", "is empty")):
        with pytest.raises(ConfigError, match=msg):
            parse_frames(bad)
    rate = NTSC
    assert resolve_range(PreviewRequest(frames="10-20"), rate, 48) == FrameRange(10, 20)
    assert resolve_range(PreviewRequest(start="1"), rate, 48) == FrameRange(24, 48)  # clipped
    assert resolve_range(PreviewRequest(start="0.5", end="1"), rate, 48) == FrameRange(12, 24)
    cases = [
        (PreviewRequest(frames="40-60"), "ends at frame 60, past the end of the film (48 frames"),
        (PreviewRequest(start="00:00:03"), "starts at frame 72, past the end of the film"),
        (PreviewRequest(start="2f", end="1f"), "the range is empty"),
        (PreviewRequest(frames="1-2", start="1"), "either --frames or --start/--end"),
    ]
    for req, msg in cases:
        with pytest.raises(ConfigError, match=msg.replace("(", r"\(")):
            resolve_range(req, rate, 48)


def test_sheet_indices() -> None:
    assert sheet_indices(FrameRange(10, 20), 4) == [10, 13, 16, 19]
    assert sheet_indices(FrameRange(10, 12), 5) == [10, 11]


@pytest.fixture(scope="module")
def long_whole_run(clip_long: Clip) -> tuple[RunConfig, object, dict]:
    """``(cfg, colorizer, {index: finished frame})`` of one whole pass over ``clip_long``."""
    from filmcolor.io.decode import decode
    from filmcolor.pipeline import build_colorizer, video_stages

    cfg = RunConfig(input=clip_long.path, model="tiny")
    colorizer = build_colorizer(cfg)
    whole = {f.index: f for f in video_stages(decode(clip_long.path), cfg, colorizer)}
    return cfg, colorizer, whole


@pytest.mark.parametrize(
    "rng", [FrameRange(160, 176), FrameRange(178, 183), FrameRange(192, 200)]
)
@pytest.mark.slow
def test_preview_frames_equal_full_run(
    clip_long: Clip, long_whole_run, rng: FrameRange, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bit-identical chroma to the same frames of one whole pass, and a real seek happened."""
    import filmcolor.io.decode as dec

    cfg, colorizer, whole = long_whole_run
    seeks = []
    real_seek = dec._seek

    def spy(container, stream, pts):
        got = real_seek(container, stream, pts)
        seeks.append(got is not None)
        return got

    monkeypatch.setattr(dec, "_seek", spy)
    got = list(preview_frames(cfg, clip_long.path, rng, clip_long.n_frames, colorizer))
    assert seeks == [True]
    assert [f.index for f in got] == list(range(rng.start, rng.end))
    for f in got:
        assert f.pts == whole[f.index].pts
        assert np.array_equal(f.extra["cbcr"], whole[f.index].extra["cbcr"])


def test_vfr_preview_counts_from_the_start(clip_vfr: Clip) -> None:
    from filmcolor.io.decode import decode
    from filmcolor.pipeline import build_colorizer, video_stages

    assert _timing(clip_vfr.path).rate is None  # no seek: indices cannot come from pts
    cfg = RunConfig(input=clip_vfr.path, model="tiny")
    colorizer = build_colorizer(cfg)
    whole = {f.index: f for f in video_stages(decode(clip_vfr.path), cfg, colorizer)}
    got = list(preview_frames(cfg, clip_vfr.path, FrameRange(20, 26), 32, colorizer))
    assert [f.pts for f in got] == [whole[i].pts for i in range(20, 26)]
    assert all(np.array_equal(f.extra["cbcr"], whole[f.index].extra["cbcr"]) for f in got)


def test_preview_cli_clip_side_by_side_sheet(clip_ntsc: Clip, tmp_path: Path, capsys) -> None:
    out = tmp_path / "pv.mp4"
    args = ["preview", str(clip_ntsc.path), "--frames", "20-40", "-o", str(out), "--model", "tiny",
            "--side-by-side", "--sheet", "3"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip().endswith(f"-> {out}, {out.with_suffix('.png')}")
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.width, v.height) == (2 * clip_ntsc.width, clip_ntsc.height)
        assert len(c.streams.audio) == 1
        times = [f.pts * v.time_base for f in c.decode(v)]
    assert len(times) == 20 and times[0] == 0
    assert times[1] == Fraction(1001, 24000)
    sheet = cv2.imread(str(out.with_suffix(".png")))
    assert sheet.shape == (clip_ntsc.height, 3 * clip_ntsc.width, 3)
    assert main(args) == 5  # exists: refused without --overwrite
    assert "use --overwrite" in capsys.readouterr().err


def test_preview_sweep_writes_one_sheet(clip_ntsc: Clip, tmp_path: Path, capsys) -> None:
    out = tmp_path / "sweep.mp4"
    assert main(["preview", str(clip_ntsc.path), "--start", "0:01", "--end", "1.5", "-o",
                 str(out), "--model", "tiny", "--render-size", "64,96", "-q"]) == 0
    assert not out.exists()  # a sweep writes the comparison sheet only
    sheet = cv2.imread(str(out.with_suffix(".png")))
    assert sheet.shape == (2 * clip_ntsc.height, 4 * clip_ntsc.width, 3)  # 2 sizes x 4 frames


def test_preview_vividness_sweep_rows_differ_in_chroma_only(clip_ntsc: Clip, tmp_path: Path) -> None:
    out = tmp_path / "viv.mp4"
    assert main(["preview", str(clip_ntsc.path), "--frames", "0-8", "-o", str(out), "--model",
                 "tiny", "--vividness", "0,1", "--sheet", "2", "-q"]) == 0
    assert not out.exists()
    sheet = cv2.imread(str(out.with_suffix(".png")))
    h, w = clip_ntsc.height, clip_ntsc.width
    assert sheet.shape == (2 * h, 2 * w, 3)  # 2 vividness values x 2 frames
    ycc = cv2.cvtColor(sheet, cv2.COLOR_BGR2YCrCb).astype(np.float32)
    grey, colour = ycc[:h, :w], ycc[h:, :w]  # first frame at vividness 0, then at 1
    # Vividness 0 removes all colour and keeps the luminance; 1 keeps the model's colour.
    assert np.abs(grey[..., 1:] - 128).max() <= 2
    assert np.abs(colour[..., 1:] - 128).mean() > 1
    assert np.abs(grey[..., 0] - colour[..., 0]).mean() < 2


def test_preview_range_past_the_end_is_one_line(clip_ntsc: Clip, capsys) -> None:
    assert main(["preview", str(clip_ntsc.path), "--start", "00:01:00", "--model", "tiny"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    expected = (
        "filmcolor: error: the range starts at frame 1439, past the end of the film "
        "(48 frames, 00:00:02.002)"
    )
    assert err == [expected]


def _whole_run(path: Path, **options) -> tuple[RunConfig, object, dict]:
    from filmcolor.io.decode import decode
    from filmcolor.pipeline import build_colorizer, video_stages

    cfg = RunConfig(input=path, model="tiny", **options)
    colorizer = build_colorizer(cfg)
    return cfg, colorizer, {f.index: f for f in video_stages(decode(path), cfg, colorizer)}


def _assert_equal_to_whole(got: list, whole: dict, rng: FrameRange) -> None:
    assert [f.index for f in got] == list(range(rng.start, rng.end))
    for f in got:
        assert f.pts == whole[f.index].pts
        assert f.scene_start == whole[f.index].scene_start, f.index
        assert np.array_equal(f.extra["cbcr"], whole[f.index].extra["cbcr"]), f.index


class _CountingContainer:
    """A PyAV input container that counts the frames it reads for decoding (seek cost, #4):
    the packets demuxed (one per frame; the decoder is fed packet by packet since #17)."""

    def __init__(self, container, counts: list[int]) -> None:
        self._c, self._counts = container, counts
        counts.append(0)

    def __getattr__(self, name: str):
        return getattr(self._c, name)

    def demux(self, *args, **kwargs):
        for packet in self._c.demux(*args, **kwargs):
            if packet.size:
                self._counts[-1] += 1
            yield packet


def _count_decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import filmcolor.io.decode as dec

    counts: list[int] = []
    real_open = dec.open_container
    monkeypatch.setattr(dec, "open_container", lambda p: _CountingContainer(real_open(p), counts))
    return counts


@pytest.fixture(scope="module")
def clip_fade(media_dir: Path) -> Path:
    """Shot A (60 frames), 100 black frames, shot B (60 frames) from frame 160; a keyframe every
    24 frames. Old films fade to black constantly (#4)."""
    path = media_dir / "fade.mp4"
    w, h = 160, 120
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=NTSC, options={"crf": "12", "g": "24"})
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        for i in range(220):
            if 60 <= i < 160:
                luma = np.zeros((h, w))
            else:
                luma = film_frame(i, w, h, cuts=(160,))
            frame = av.VideoFrame(w, h, "yuv420p")
            for k, plane in enumerate(frame.planes):
                rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
                rows[:, : plane.width] = luma_codes(luma, "yuv420p") if k == 0 else 128
            frame.pts = i
            for packet in vs.encode(frame):
                c.mux(packet)
        for packet in vs.encode():
            c.mux(packet)
    return path


@pytest.fixture(scope="module")
def fade_whole_run(clip_fade: Path) -> tuple[RunConfig, object, dict]:
    return _whole_run(clip_fade)


@pytest.mark.parametrize(
    "rng",
    [FrameRange(50, 62), FrameRange(100, 110), FrameRange(160, 170), FrameRange(200, 212)],
    ids=["before", "inside", "right-after", "later"],
)
@pytest.mark.slow
def test_preview_after_a_long_fade_to_black_equals_full_run(
    clip_fade: Path, fade_whole_run, rng: FrameRange, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reviewer's case: the full run finds the cut at 160, after 100 blank frames; a preview
    # whose detector started after the blank stretch began used to miss it (Cb/Cr off by 0.12).
    cfg, colorizer, whole = fade_whole_run
    assert sorted(i for i, f in whole.items() if f.scene_start) == [0, 160]
    counts = _count_decoded(monkeypatch)
    got = list(preview_frames(cfg, clip_fade, rng, 220, colorizer))
    _assert_equal_to_whole(got, whole, rng)
    assert counts[0] <= rng.end + 16 - rng.start + LOOKBACK + 24  # seeks: one GOP + look-back
    if rng.start >= 160:
        assert counts[0] < rng.start


def test_lookback_covers_the_detector_memory() -> None:
    assert LOOKBACK == SceneCutParams().memory == 2 * SceneCutParams().segment
    assert SceneCutParams().segment > SceneCutParams().max_gap


@pytest.fixture(scope="module")
def clip_mkv(media_dir: Path) -> Clip:
    """24000/1001 fps in Matroska (time base 1/1000: timestamps rounded to the millisecond),
    240 frames, a keyframe every 24 frames."""
    return make_clip(media_dir / "ntsc_long.mkv", n_frames=240, cuts=(60, 150),
                     options={"crf": "12", "g": "24"})


@pytest.mark.slow
def test_mkv_rounded_timestamps_preview_seeks(
    clip_mkv: Clip, monkeypatch: pytest.MonkeyPatch
) -> None:
    timing = _timing(clip_mkv.path)
    assert timing.rate == NTSC and timing.time_base == Fraction(1, 1000)
    assert (1 / (timing.rate * timing.time_base)).denominator != 1  # 41.708 ms: not integral
    cfg, colorizer, whole = _whole_run(clip_mkv.path)
    assert [whole[i].pts for i in (0, 1, 2, 3)] == [0, 42, 83, 125]
    counts = _count_decoded(monkeypatch)
    rng = FrameRange(220, 232)
    got = list(preview_frames(cfg, clip_mkv.path, rng, 240, colorizer))
    _assert_equal_to_whole(got, whole, rng)
    # Decoded from the keyframe before the scene-cut warm-up of the first coloured frame (the
    # temporal stages' look-back before the range, out to a batch; x264 puts keyframes at most
    # 24 frames apart), not from frame 0.
    before = build_temporal(cfg.smoothing, cfg.temporal).context_before
    first = warmup_start((220 - before) // colorizer.batch_size * colorizer.batch_size)
    assert first > 0
    assert len(counts) == 1 and 240 - first <= counts[0] <= 240 - first + 24


def test_timestamps_off_the_frame_grid_do_not_seek(clip_vfr: Clip) -> None:
    from filmcolor.preview import _locate, _Timing

    # Claim a constant rate for the irregular clip: the check on its packets refuses to seek.
    timing = _Timing(0, NTSC, clip_vfr.time_base)
    assert _locate(clip_vfr.path, timing, 16, 24) is None


@pytest.mark.slow
def test_preview_model_sweep_compares_models_in_one_sheet(clip_ntsc: Clip, tmp_path: Path) -> None:
    # One sheet comparing models (#4): row k is the sheet a preview with model k alone writes
    # (checked for the cheap one), and the models' colours differ while the luminance stays
    # the source's. The default model at render size 64 keeps this fast.
    from filmcolor.models.registry import DEFAULT_MODEL

    common = ["--frames", "20-28", "--render-size", "64", "--sheet", "2", "-q"]
    out = tmp_path / "models.mp4"
    assert main(["preview", str(clip_ntsc.path), "-o", str(out), "--model",
                 f"tiny,{DEFAULT_MODEL}", *common]) == 0
    assert not out.exists()
    sheet = cv2.imread(str(out.with_suffix(".png")))
    h, w = clip_ntsc.height, clip_ntsc.width
    assert sheet.shape == (2 * h, 2 * w, 3)  # 2 models x 2 frames
    alone = tmp_path / "tiny.mp4"
    assert main(["preview", str(clip_ntsc.path), "-o", str(alone), "--model", "tiny",
                 *common]) == 0
    assert np.array_equal(sheet[:h], cv2.imread(str(alone.with_suffix(".png"))))
    ycc = cv2.cvtColor(sheet, cv2.COLOR_BGR2YCrCb).astype(np.float32)
    tiny, default = ycc[:h, w:], ycc[h:, w:]  # second frames, clear of the labels
    assert np.abs(tiny[..., 1:] - default[..., 1:]).mean() > 1
    assert np.abs(tiny[..., 0] - default[..., 0]).mean() < 2


@pytest.mark.slow
def test_preview_colours_only_what_the_temporal_stages_need(
    clip_long: Clip, long_whole_run
) -> None:
    # Coloured: the range, the temporal stages' context (52 before: the colour hold's period
    # and the window's radius; 4 after), out to aligned batches of 8. The scene-cut look-back
    # before and lookahead after are decoded and scanned only (#4).
    cfg, colorizer, whole = long_whole_run
    coloured: list[int] = []

    class Spy:
        batch_size = colorizer.batch_size

        def __call__(self, frames):
            return colorizer(f for f in frames if not coloured.append(f.index))

    rng = FrameRange(160, 172)  # 172 + 4 = 176 is a batch edge: 176-177 are lookahead only
    got = list(preview_frames(cfg, clip_long.path, rng, clip_long.n_frames, Spy()))
    _assert_equal_to_whole(got, whole, rng)
    chain = build_temporal(cfg.smoothing, cfg.temporal)
    assert (chain.context_before, chain.context_after) == (52, 4)
    assert coloured == list(range((160 - 52) // 8 * 8, 176))
