"""The footage cross-validation study's folds: split by source, links not copies, no clip in both."""

from __future__ import annotations

from tests.scripts import load_pipeline


def _study():
    return load_pipeline("footage_cv")


def test_folds_split_by_source_with_links(tmp_path):
    cv = _study()
    clips = tmp_path / "clips"
    clips.mkdir()
    names = ["cam__a.mkv", "cam__b.mkv", "web__c.mp4", "lab__d.mp4", "plain.mp4", "notes.txt"]
    for n in names:
        (clips / n).write_bytes(n.encode())
    folds = cv.make_folds(clips, ["cam"], tmp_path / "cv")
    assert folds == {"cam": ["cam__a.mkv", "cam__b.mkv"], "other": ["lab__d.mp4", "plain.mp4", "web__c.mp4"]}
    for fold, members in folds.items():
        got = sorted(p.name for p in (tmp_path / "cv" / fold).iterdir())
        assert got == members
        for n in members:
            link = tmp_path / "cv" / fold / n
            assert link.is_symlink() and link.read_bytes() == n.encode()
    # Running it again keeps the same folds (links already there are left as they are).
    assert cv.make_folds(clips, ["cam"], tmp_path / "cv") == folds
    assert cv.source_of("intel-sample-videos__asl_gestures__bird.mkv") == "intel-sample-videos"
    assert cv.source_of("plain.mp4") == "plain"
