"""Load state dicts in the layout a third-party project released them, into plain modules.

The released files were saved from training-time models: DeOldify's generators carry
``torch.nn.utils.spectral_norm`` (``weight_orig``, ``weight_u``, ``weight_v``) and ``weight_norm``
(``weight_g``, ``weight_v``) re-parametrisations and may be wrapped by fastai as
``{'model': ..., 'opt': ...}``. filmcolor's model definitions have plain ``weight`` tensors
instead; this module folds each re-parametrisation into the weight it computes in eval mode, once,
at load time, so inference pays nothing for it and the model code needs no hooks. Everything here
is pure tensor work (no I/O).
"""

from __future__ import annotations

import torch
from torch import nn

NUM_BATCHES_TRACKED: str = "num_batches_tracked"
"""BatchNorm's step counter: unused at inference, absent from some old checkpoints: optional."""

_SN_SUFFIXES = ("weight_orig", "weight_u", "weight_v")
_WN_SUFFIXES = ("weight_g", "weight_v")


def unwrap_checkpoint(state: dict) -> dict:
    """The model state dict inside a checkpoint.

    fastai's ``Learner.save`` writes ``{'model': state_dict, 'opt': optimiser_state}``; filmcolor's
    own files use ``{'state_dict': ...}``; torch.hub files are bare state dicts.

    Raises:
        ValueError: the payload is not a state dict of tensors.
    """
    for key in ("model", "state_dict"):
        inner = state.get(key)
        if isinstance(inner, dict):
            state = inner
            break
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"not a state dict of tensors (entry {bad[0]!r} is not a tensor)")
    return state


def fold_spectral_norm(weight_orig: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The weight a spectral-normed layer uses in eval mode: ``weight_orig / sigma``.

    PyTorch's ``spectral_norm`` (dim 0) estimates the largest singular value from the stored power
    iteration vectors, ``sigma = u . (W v)`` with ``W = weight_orig.flatten(1)``, and does no
    further iteration in eval mode; folding with the same stored ``u``, ``v`` (and the same
    float32 maths) reproduces it.
    """
    sigma = torch.dot(u, weight_orig.flatten(1) @ v)
    return weight_orig / sigma


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The weight of a ``weight_norm`` (dim 0) layer: ``g * v / ||v||``, norm taken per output."""
    norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
    return g * v / norm


def _fold_plan(state: dict[str, torch.Tensor]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """For each key of the folded state dict: ``(how, source keys)``, in file order.

    ``how`` is ``copy``, ``sn`` (spectral norm), ``wn`` (weight norm) or ``legacy`` (PyTorch 0.4
    spectral norm). Only names are looked at, so a file that does not fit fails before any maths.
    """
    plan: dict[str, tuple[str, tuple[str, ...]]] = {}
    for key in state:
        prefix, _, leaf = key.rpartition(".")
        prefix = prefix + "." if prefix else ""
        target = prefix + "weight"
        if leaf in _SN_SUFFIXES + ("weight_g",):
            if target in plan:
                continue
            has = {s: (prefix + s) in state for s in _SN_SUFFIXES + ("weight_g", "weight")}
            if has["weight_orig"]:
                if has["weight"] and not has["weight_v"]:
                    plan[target] = ("legacy", (target,))
                    continue
                missing = [s for s in _SN_SUFFIXES if not has[s]]
                if missing:
                    raise ValueError(
                        f"incomplete spectral-norm layer {prefix.rstrip('.')}: no {missing[0]}"
                    )
                plan[target] = ("sn", tuple(prefix + s for s in _SN_SUFFIXES))
            elif has["weight_g"]:
                if not has["weight_v"]:
                    raise ValueError(
                        f"incomplete weight-norm layer {prefix.rstrip('.')}: no weight_v"
                    )
                plan[target] = ("wn", (prefix + "weight_g", prefix + "weight_v"))
            else:
                raise ValueError(f"stray {key}: no weight_orig or weight_g beside it")
        elif leaf == "weight" and (prefix + "weight_orig") in state:
            continue  # the legacy buffer, taken with its group
        else:
            plan[key] = ("copy", (key,))
    return plan


def _folded_shape(state: dict[str, torch.Tensor], how: str, src: tuple[str, ...]) -> torch.Size:
    return state[src[0]].shape if how != "wn" else state[src[1]].shape


def _fold_one(state: dict[str, torch.Tensor], how: str, src: tuple[str, ...]) -> torch.Tensor:
    if how == "sn":  # in float32 at least, as PyTorch computes it (a half export loses nothing)
        return fold_spectral_norm(*(state[k].float() for k in src))
    if how == "wn":
        return fold_weight_norm(state[src[0]].float(), state[src[1]].float())
    return state[src[0]]


def fold_normalised_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace every spectral-norm and weight-norm group of keys with the plain ``weight``.

    Key order is kept (the folded ``weight`` takes the place of the group). A file already folded
    (plain ``weight`` keys, as DeOldify.NET exports) passes through unchanged. A legacy PyTorch 0.4
    spectral-norm layer (``weight_orig``, ``weight_u`` and the computed ``weight`` buffer, no
    ``weight_v``) keeps its stored ``weight``, which is what that version ran with.

    Raises:
        ValueError: an incomplete group (e.g. ``weight_orig`` without ``weight_u``).
    """
    return {k: _fold_one(state, how, src) for k, (how, src) in _fold_plan(state).items()}


def _fmt(keys: list[str], limit: int = 3) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def check_keys(model: nn.Module, shapes: dict[str, torch.Size]) -> None:
    """Every key of ``model`` present with its shape, nothing extra (``num_batches_tracked``
    optional).

    Raises:
        ValueError: one line naming the missing, unexpected or mis-shaped keys.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in shapes and not k.endswith(NUM_BATCHES_TRACKED)]
    unexpected = [k for k in shapes if k not in own]
    wrong = [
        f"{k} {list(shapes[k])} (model {list(own[k].shape)})"
        for k in own
        if k in shapes and shapes[k] != own[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {_fmt(missing)}")
    if unexpected:
        problems.append(f"unexpected {_fmt(unexpected)}")
    if wrong:
        problems.append(f"shape of {_fmt(wrong, 2)}")
    if problems:
        raise ValueError("; ".join(problems))


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], assign: bool = False) -> None:
    """Load ``state`` into ``model`` after :func:`check_keys`; floats are cast to the model's dtype.

    Args:
        model: the module to fill.
        state: plain (folded) state dict.
        assign: make ``state``'s tensors the model's own instead of copying them (half the peak
            memory for a 200M-parameter file). Only for a state nobody else holds: later in-place
            changes to the model (BatchNorm folding) would show in it.

    Raises:
        ValueError: keys or shapes do not fit (one line).
    """
    check_keys(model, {k: v.shape for k, v in state.items()})
    full = {}
    for k, ref in model.state_dict().items():
        # An absent step counter restarts at 0 (the model may have been built without init).
        v = state[k] if k in state else torch.zeros_like(ref)
        full[k] = v.to(ref.dtype) if v.is_floating_point() else v
    model.load_state_dict(full, strict=True, assign=assign)


def check_released(model: nn.Module, state: dict) -> None:
    """Check a released checkpoint against ``model`` by names and shapes only (no folding maths).

    Unwraps it, plans the folding of its norm groups and checks that the folded keys and shapes
    are exactly the model's. Works on a model built on the meta device (no storage).

    Raises:
        ValueError: not a state dict of tensors, an incomplete norm group, or keys/shapes that do
            not fit (one line).
    """
    state = unwrap_checkpoint(state)
    plan = _fold_plan(state)
    check_keys(model, {k: _folded_shape(state, how, src) for k, (how, src) in plan.items()})


def load_released(model: nn.Module, state: dict, assign: bool = False) -> None:
    """Unwrap, check every key and shape, fold the norm re-parametrisations, load.

    The check runs on names and shapes before any folding (:func:`check_released`), so a wrong
    file fails at once. ``assign`` as in :func:`load_strict`.

    Raises:
        ValueError: not a state dict, an incomplete norm group, or keys/shapes that do not fit.
    """
    check_released(model, state)
    state = unwrap_checkpoint(state)
    folded = {k: _fold_one(state, how, src) for k, (how, src) in _fold_plan(state).items()}
    load_strict(model, folded, assign=assign)
