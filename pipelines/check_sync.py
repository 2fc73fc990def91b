"""Check that a coloured film is frame-exact and in sync with its source.

    python pipelines/check_sync.py movie.mp4 movie.colour.mp4

Compares, by decoding both files with PyAV: the number of video frames, every frame's presentation
time in seconds (time bases may differ), and for each audio stream every packet's bytes and time.
Prints one line per check and exits 1 if any differs. The tests make the same assertions on
generated clips; this script is for real films (e.g. ``../shared/data/clips/bw``).
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import av


def frame_times(path: Path) -> list[Fraction]:
    """Presentation time (seconds, exact) of every decoded video frame."""
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        return [f.pts * st.time_base for f in c.decode(st)]


def audio_packets(path: Path) -> list[list[tuple[Fraction | None, bytes]]]:
    """Per audio stream: (time in seconds, payload) of every non-empty packet."""
    with av.open(str(path)) as c:
        streams = list(c.streams.audio)
        out: list[list[tuple[Fraction | None, bytes]]] = [[] for _ in streams]
        index = {s.index: i for i, s in enumerate(streams)}
        for pkt in c.demux(streams):
            if pkt.size:
                t = None if pkt.pts is None else pkt.pts * pkt.time_base
                out[index[pkt.stream.index]].append((t, bytes(pkt)))
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("output", type=Path)
    args = ap.parse_args(argv)
    ok = True
    src_t, out_t = frame_times(args.source), frame_times(args.output)
    same = src_t == out_t
    ok &= same
    last = float(out_t[-1]) if out_t else 0.0
    print(f"video frames: source {len(src_t)}, output {len(out_t)}; every frame time equal: {same} "
          f"(last frame at {last:.3f} s)")
    src_a, out_a = audio_packets(args.source), audio_packets(args.output)
    if len(src_a) != len(out_a):
        print(f"audio streams: source {len(src_a)}, output {len(out_a)}")
        ok = False
    for i, (a, b) in enumerate(zip(src_a, out_a)):
        same_bytes = [p for _, p in a] == [p for _, p in b]
        same_times = [t for t, _ in a] == [t for t, _ in b]
        ok &= same_bytes and same_times
        print(f"audio stream {i}: {len(a)} vs {len(b)} packets; bytes identical: {same_bytes}; "
              f"times equal: {same_times}")
    print("in sync" if ok else "NOT in sync")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
