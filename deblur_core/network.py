"""Shipped ONNX networks: the model spec table, session loading with a sha256 check, tiled inference.

Every network the engine runs is listed in :data:`MODELS` with the file's sha256, its input layout and
value range, and how to tile it. :func:`load_model` opens an onnxruntime session (GPU providers when
onnxruntime offers them, the CPU last) after checking the file's hash, so a missing, truncated or
replaced file fails with a clear :class:`ModelError` instead of producing garbage.
:func:`run_tiled` is the one inference function: it pads to the network's multiple, runs overlapping
tiles, blends them with a smooth window and crops, so any photo size runs in bounded memory and the
result equals the untiled one away from tile seams (max difference < 1/255).
"""
from __future__ import annotations

import hashlib
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .threads import thread_budget

__all__ = ["ModelError", "ModelSpec", "MODELS", "DEFAULT_DENOISER", "DEFAULT_PNP_PRIOR", "models_dir", "load_model", "run_tiled",
           "denoise", "Model", "file_sha256"]


class ModelError(RuntimeError):
    """A shipped network is missing, corrupt or cannot be run."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    file: str                    # inside models_dir()
    sha256: str
    layout: str                  # input layout, channel meaning
    in_channels: int
    out_channels: int
    value_range: tuple           # of the image channels, in and out
    pad_multiple: int            # H and W must be multiples of this
    tile: int                    # tile side in pixels (multiple of pad_multiple)
    overlap: int                 # overlap between tiles (multiple of pad_multiple)
    macs_per_pixel: int
    parameters: int
    description: str = ""
    extra: dict = field(default_factory=dict)


MODELS: dict[str, ModelSpec] = {
    "denoiser-v2": ModelSpec(
        name="denoiser-v2",
        file="denoiser-v2.onnx",
        sha256="d9696ee6521631931fc53a9c703b65947111dc35542379ee8c90f00b04c33290",
        layout="NCHW float32: R', G', B' (sRGB-encoded) + per-pixel noise std map (same [0, 1] units) -> R', G', B'",
        in_channels=4,
        out_channels=3,
        value_range=(0.0, 1.0),
        pad_multiple=8,
        tile=1024,              # one tile for a 1 MP photo; balanced tiles above (see _layout)
        overlap=64,
        macs_per_pixel=27424,
        parameters=590764,
        description="noise-level-conditioned U-Net denoiser: the grain remover of old photos "
                    "(network.denoise) and the start of pnp-prior-v1",
    ),
    "pnp-prior-v1": ModelSpec(
        name="pnp-prior-v1",
        file="pnp-prior-v1.onnx",
        sha256="455382fa107a81da7c764c8f6db4f40728212bc94cf907f0c3af4df7e8d8912d",
        layout="NCHW float32: R', G', B' (sRGB-encoded) + per-pixel noise std map (same [0, 1] units) -> R', G', B'",
        in_channels=4,
        out_channels=3,
        value_range=(0.0, 1.0),
        pad_multiple=8,
        tile=1024,
        overlap=64,
        macs_per_pixel=27424,
        parameters=590764,
        description="denoiser-v2 fine-tuned inside the plug-and-play loop (unfolded, end to end): the prior "
                    "of pnp.pnp_deconvolve",
    ),
    "blurtype-v2": ModelSpec(
        name="blurtype-v2",
        file="blurtype-v2.onnx",
        sha256="4badaf7fdbdbc8ea440ef706315d864d6fae3258b76ec1d4972d04a549b4243a",
        layout="planes: N x 2 x 96 x 96 float32 (classifier.spectral_planes: Welch cepstrum centre, log power "
               "spectrum) + features: N x 36 float32 (classifier.FEATURES, raw) -> logits N x 5 (BLUR_TYPES)",
        in_channels=2,
        out_channels=5,
        value_range=(-20.0, 20.0),
        pad_multiple=96,        # one fixed-size input: not tiled
        tile=96,
        overlap=0,
        macs_per_pixel=0,       # per photo, not per pixel: 25.2 MMAC for one analysis
        parameters=63173,
        description="blur-type classifier (sharp, motion, defocus, gaussian, shake) on spectral planes and "
                    "the hand-made features; its probabilities are combined with the logistic model's",
    ),
}
DEFAULT_DENOISER = "denoiser-v2"       # white-noise denoiser: network.denoise (grain of old photos)
DEFAULT_PNP_PRIOR = "pnp-prior-v1"     # trained inside pnp's loop, for its schedule: pnp.pnp_deconvolve


def models_dir() -> Path:
    """The folder with the ONNX files: ``$AI_DEBLUR_MODELS`` or ``models/`` next to the package."""
    env = os.environ.get("AI_DEBLUR_MODELS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "models"


def file_sha256(path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks (the model table's checksums)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _providers(ort) -> list:
    avail = ort.get_available_providers()
    prefer = ["CUDAExecutionProvider", "ROCMExecutionProvider", "MIGraphXExecutionProvider",
              "DmlExecutionProvider", "CoreMLExecutionProvider", "CPUExecutionProvider"]
    chosen = [p for p in prefer if p in avail]
    return chosen or ["CPUExecutionProvider"]


class Model:
    """An open network: ``spec``, the onnxruntime ``session``, and :meth:`run` on an NCHW float32 array."""

    def __init__(self, spec: ModelSpec, session):
        self.spec = spec
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name
        self.providers = session.get_providers()

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != self.spec.in_channels:
            raise ValueError(f"{self.spec.name} expects (N, {self.spec.in_channels}, H, W), got {x.shape}")
        m = self.spec.pad_multiple
        if x.shape[2] % m or x.shape[3] % m:
            raise ValueError(f"{self.spec.name} needs H and W multiples of {m}, got {x.shape[2:]}")
        return self.session.run([self.output_name], {self.input_name: x})[0]


_cache: dict = {}
_lock = threading.Lock()


def load_model(name: str = DEFAULT_DENOISER, *, threads: int | None = None, providers=None,
               verify: bool = True) -> Model:
    """Open the network ``name`` of :data:`MODELS` (cached per name/threads/providers).

    Raises :class:`ModelError` when the name is unknown, the file is missing, its sha256 does not match
    the table (corrupt or replaced file), or onnxruntime cannot open it.
    """
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    spec = MODELS[name]
    path = models_dir() / spec.file
    key = (name, str(path), threads, tuple(providers) if providers else None)
    with _lock:
        if key in _cache:
            return _cache[key]
        if not path.is_file():
            raise ModelError(f"model file {path} is missing: reinstall the plug-in (the ONNX files ship in models/)")
        if verify:
            digest = file_sha256(path)
            if digest != spec.sha256:
                raise ModelError(f"model file {path} is corrupt or not the shipped version "
                                 f"(sha256 {digest[:12]}..., expected {spec.sha256[:12]}...): reinstall the plug-in")
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - onnxruntime is a hard requirement
            raise ModelError(f"onnxruntime is not installed: {exc}") from exc
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads or thread_budget())
        so.inter_op_num_threads = 1
        if so.intra_op_num_threads < (os.cpu_count() or 1):   # sharing the cores: waiting threads sleep
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        try:
            sess = ort.InferenceSession(str(path), so, providers=list(providers) if providers else _providers(ort))
        except Exception as exc:
            raise ModelError(f"onnxruntime cannot open {path}: {exc}") from exc
        model = Model(spec, sess)
        _cache[key] = model
        return model


def _window(n: int, overlap: int, lead: bool, trail: bool) -> np.ndarray:
    """1-D blend weights of a tile of length n: 0 over the outer quarter of the overlap, a raised-cosine
    ramp over its middle half, 1 inside; no ramp on a side that touches the image border. Two windows
    overlapping by ``overlap`` sum to 1."""
    w = np.ones(n, np.float32)
    q, r = overlap // 4, overlap // 2
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(r, dtype=np.float32) + 0.5) / r)).astype(np.float32)
    if lead and r > 0:
        w[:q] = 0
        w[q:q + r] = ramp
    if trail and r > 0:
        w[n - q:] = 0
        w[n - q - r:n - q] = np.minimum(w[n - q - r:n - q], ramp[::-1])
    return w


def _layout(total: int, tile: int, overlap: int, multiple: int) -> tuple:
    """Tile side and start offsets covering ``total`` px with tiles of at most ``tile`` px overlapping
    by at least ``overlap`` px.

    The tiles are balanced: as few as the maximum side allows, all of the same side (a multiple of
    ``multiple``), spread evenly. Fixed-side tiles waste up to a whole tile at the far edge (a 1104 px
    side ran 2 x 768 = 1536 px of network per row, 39 % of it twice); balanced ones waste only the
    overlap. Starts are multiples of ``multiple`` (``total`` should be one too)."""
    if total <= tile:
        return total, [0]
    n = math.ceil((total - overlap) / (tile - overlap))
    while True:
        side = math.ceil((total + (n - 1) * overlap) / n / multiple) * multiple
        while side <= tile:
            # starts on the network's grid (it is not shift-invariant below its downsampling factor)
            starts = [i * (total - side) // (n - 1) // multiple * multiple for i in range(n - 1)]
            starts.append(total - side)
            if max(b - a for a, b in zip(starts, starts[1:])) <= side - overlap:
                return side, starts
            side += multiple    # rounding the starts ate into the overlap
        n += 1


def run_tiled(model: Model, x: np.ndarray, *, tile: int | None = None, overlap: int | None = None,
              progress=None) -> np.ndarray:
    """Run ``model`` on one (C, H, W) float32 array of any size; returns (C_out, H, W) float32.

    Pads (reflect) to the network's multiple, cuts balanced tiles of at most ``tile`` px overlapping by
    at least ``overlap`` px (both rounded to the multiple; defaults from the spec; see :func:`_layout`),
    blends them with :func:`_window`, and crops.
    ``progress(fraction)`` is called after each tile; raising from it cancels.
    """
    spec = model.spec
    m = spec.pad_multiple
    tile = int(tile or spec.tile)
    overlap = int(spec.overlap if overlap is None else overlap)
    tile = max(m, tile // m * m)
    overlap = min(max(0, overlap // m * m), tile // 2)
    x = np.asarray(x, np.float32)
    c, h, w = x.shape
    hp, wp = math.ceil(h / m) * m, math.ceil(w / m) * m
    if (hp, wp) != (h, w):
        mode = "reflect" if min(h, w) > max(hp - h, wp - w) else "edge"
        x = np.pad(x, ((0, 0), (0, hp - h), (0, wp - w)), mode=mode)
    th, ys = _layout(hp, tile, overlap, m)
    tw, xs = _layout(wp, tile, overlap, m)
    if len(ys) == 1 and len(xs) == 1:
        out = model.run(x[None])[0]
        if progress is not None:
            progress(1.0)
        return np.ascontiguousarray(out[:, :h, :w])
    out = np.zeros((spec.out_channels, hp, wp), np.float32)
    wsum = np.zeros((hp, wp), np.float32)
    n, done = len(ys) * len(xs), 0
    for y0 in ys:
        wy = _window(th, min(overlap, th), y0 > 0, y0 + th < hp)
        for x0 in xs:
            wx = _window(tw, min(overlap, tw), x0 > 0, x0 + tw < wp)
            res = model.run(x[None, :, y0:y0 + th, x0:x0 + tw])[0]
            wgt = np.outer(wy, wx)
            out[:, y0:y0 + th, x0:x0 + tw] += res * wgt
            wsum[y0:y0 + th, x0:x0 + tw] += wgt
            done += 1
            if progress is not None:
                progress(done / n)
    out /= np.maximum(wsum, 1e-6)
    return out[:, :h, :w]


def denoise(image: np.ndarray, sigma, *, model: Model | None = None, tile: int | None = None,
            overlap: int | None = None, progress=None) -> np.ndarray:
    """Denoise an sRGB-encoded float32 image (H, W) or (H, W, 3) in [0, 1].

    ``sigma``: noise standard deviation in the same units, a number or an (H, W) map. Gray images run
    as R = G = B (the network was trained on that case too). Returns float32 of the input's shape,
    clipped to [0, 1].
    """
    model = model or load_model(DEFAULT_DENOISER)
    img = np.asarray(image, np.float32)
    if img.ndim == 3 and img.shape[2] == 1:
        return denoise(img[..., 0], sigma, model=model, tile=tile, overlap=overlap, progress=progress)[..., None]
    gray = img.ndim == 2
    rgb = np.repeat(img[None], 3, axis=0) if gray else np.moveaxis(img[..., :3], 2, 0)
    h, w = rgb.shape[1:]
    smap = np.broadcast_to(np.asarray(sigma, np.float32), (h, w))
    inp = np.concatenate([rgb, smap[None]], axis=0)
    out = np.clip(run_tiled(model, inp, tile=tile, overlap=overlap, progress=progress), 0, 1)
    return out.mean(axis=0) if gray else np.moveaxis(out, 0, 2)
