"""Training data: colour photos and frames of colour clips, decoded once into an in-memory cache.

Decoding JPEGs on two CPU cores would starve the network, so every source image is decoded and
resized once (short side ``cache_size``) into a uint8 array cache stored beside the run; batches are
then random crops of that cache, drawn from a generator seeded by (seed, step) so that a resumed
run draws exactly the batches an uninterrupted run would have.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import torch

logger = logging.getLogger("filmcolor")

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_EXTS = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v"}


def is_holdout(name: str, every: int) -> bool:
    """Stable hash split: about one file in ``every`` is held out for validation."""
    if every <= 0:
        return False
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % every == 0


def _resize_short(img: np.ndarray, short: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = short / min(h, w)
    if s >= 1.0 and min(h, w) >= short:
        return img
    size = (max(short, round(w * s)), max(short, round(h * s)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def _video_frames(path: Path, every_s: float, limit: int) -> Iterable[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        next_t = 0.0
        n = 0
        for frame in c.decode(stream):
            t = float(frame.time or 0.0)
            if t + 1e-6 >= next_t:
                yield frame.to_ndarray(format="rgb24")
                next_t = t + every_s
                n += 1
                if n >= limit:
                    return


def build_cache(
    sources: list[Path],
    cache_path: Path,
    cache_size: int = 256,
    holdout_every: int = 40,
    clip_every_s: float = 2.0,
    clip_limit: int = 12,
) -> dict[str, list]:
    """Decode every image (and sampled clip frames) under ``sources`` into ``cache_path``.

    Returns ``{'train': [arrays], 'val': [arrays], 'train_names': [...], 'val_names': [...]}``;
    loaded from ``cache_path`` when it already exists.
    """
    if cache_path.exists():
        with open(cache_path, "rb") as f:
            return pickle.load(f)
    out: dict[str, list] = {"train": [], "val": [], "train_names": [], "val_names": []}
    files: list[Path] = []
    for src in sources:
        files += sorted(p for p in Path(src).rglob("*") if p.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS)
    for i, p in enumerate(files):
        if p.suffix.lower() in VIDEO_EXTS:
            imgs = list(_video_frames(p, clip_every_s, clip_limit))
        else:
            bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
            imgs = [] if bgr is None else [cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)]
        split = "val" if is_holdout(p.name, holdout_every) else "train"
        for img in imgs:
            if min(img.shape[:2]) < 64:
                continue
            out[split].append(np.ascontiguousarray(_resize_short(img, cache_size)))
            out[split + "_names"].append(p.name)
        if i % 500 == 0:
            logger.info("cached %d/%d files", i, len(files))
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(out, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(cache_path)
    return out


def clip_draw_weights(names: list[str], share: float) -> np.ndarray | None:
    """Draw probabilities for the cached images called ``names`` that give clip frames
    ``share`` of each batch; None (uniform draws, as every run without a share) when ``share``
    is 0 or the images are all photos or all frames."""
    if share <= 0:
        return None
    is_clip = np.array([Path(n).suffix.lower() in VIDEO_EXTS for n in names], dtype=bool)
    n_clip = int(is_clip.sum())
    if n_clip == 0 or n_clip == len(is_clip):
        return None
    return np.where(is_clip, share / n_clip, (1 - share) / (len(is_clip) - n_clip))


def sample_batch(
    images: list[np.ndarray],
    batch_size: int,
    crop: int,
    gen: np.random.Generator,
    scale: tuple[float, float] = (0.35, 1.0),
    weights: np.ndarray | None = None,
) -> torch.Tensor:
    """A batch of random crops ``(N, 3, crop, crop)`` float in [0, 1] (random scale and flips).

    Each crop is a square covering a uniform fraction in ``scale`` of the image's short side,
    resized to ``crop``. ``weights``: each image's probability of being drawn (default uniform).
    """
    out = np.empty((batch_size, crop, crop, 3), dtype=np.uint8)
    for j in range(batch_size):
        pick = gen.integers(len(images)) if weights is None else gen.choice(len(images), p=weights)
        img = images[int(pick)]
        h, w = img.shape[:2]
        side = int(min(h, w) * gen.uniform(scale[0], scale[1]))
        side = max(side, min(crop // 2, min(h, w)))
        y = int(gen.integers(0, h - side + 1))
        x = int(gen.integers(0, w - side + 1))
        patch = img[y : y + side, x : x + side]
        interp = cv2.INTER_AREA if side > crop else cv2.INTER_LINEAR
        patch = cv2.resize(patch, (crop, crop), interpolation=interp)
        if gen.random() < 0.5:
            patch = patch[:, ::-1]
        out[j] = patch
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)
