"""Invisible, blind watermark in a grayscale mammogram's own grey levels (8 or 16 bit).

Scheme (``mammosynth-wm1``)
---------------------------
* **Canonical grid.** The image, as floats in [0, 1] (divided by 255 or 65535), is
  reduced to at most 256 px a side and resized (anti-aliased) to a fixed ``grid x grid``
  (64 x 64) representation, so the mark lives relative to the image size and survives
  rescaling and bit-depth changes.
* **Carrier.** 96 spatial patterns on that grid, one per slot: the DCT coefficients whose
  radial index ``sqrt(u^2 + v^2)`` lies in ``band`` (2-32: low/mid frequencies that JPEG and
  0.5x resizing keep) are shuffled with a keyed PRNG and dealt round-robin to disjoint sets
  with keyed random +-1 signs; each set's inverse DCT is multiplied by a window that is zero
  in the outer ``margin`` (10 %) of the grid with a raised-cosine ``taper`` (5 %) inside it,
  and normalised. Cutting up to 10 % off an edge therefore removes nothing the projections
  ``h_j = <canonical image, p_j>`` depend on, once the crop is undone geometrically.
* **Message.** 96 bits = 64-bit payload + 32-bit check (first 4 bytes of
  HMAC-SHA256(key, payload)), each bit repeated ``repeat`` (1) times over the slots.
* **Embedding** (spread-transform dither modulation, STDM): each projection ``h_j`` is
  moved to the nearest point of the bit's lattice ``dither_j + (0 or step/2) + step*Z``
  (keyed dither). Quantisation makes decoding
  independent of the image content; ``step`` follows from ``psnr_db`` (uniform distortion
  ``step^2/12`` per slot). The least-norm grid change giving those moves (through the
  patterns' Gram matrix, as the windowed patterns overlap slightly) is upsampled, weighted
  by a smooth tissue map (a quarter of the amplitude in the air background, none on
  pixels that are exactly 0: a removed background stays exactly 0) and added;
  ``passes`` correction rounds re-measure the projections on the quantised result.
* **Detection** (blind): soft bit ``cos(2 pi (h_j - dither_j) / step)`` per slot. Every
  hypothesis (no crop, or ``c`` in 1..10 % cut from one edge and edge-padded back; times 16
  candidate low-pass responses ``exp(-(a u^2 + b v^2))`` that undo resizing blur) is scored
  by its mean ``|soft|`` (closeness to the lattices); the ``decode_top`` (3) best are
  decoded with hard bits, then Chase decoding flips up to 4 of the 16 least reliable bits
  (2517 candidates). A payload is reported only when its 32-bit check verifies, so an
  unmarked image passes with probability at most ``3 x 2517 x 2^-32 = 1.8e-6`` (the HMAC is
  a pseudo-random function whatever the hypothesis choice): that bound is ``p_value``.

The watermark is evidence of origin for screening, not a security feature: the default key
is public so anyone can detect the mark; signatures (:mod:`.manifest`) give tamper evidence.
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SCHEME = "mammosynth-wm1"
MIN_SIDE = 32  # smaller images cannot hold the band's frequencies: not marked
CHECK_BITS = 32
PAYLOAD_BITS = 64
MESSAGE_BITS = PAYLOAD_BITS + CHECK_BITS


@dataclass(frozen=True)
class WatermarkConfig:
    """Watermark parameters; embedding and detection must use the same values."""

    key: str = "mammosynth-public-watermark-key-v1"
    grid: int = 64
    band: tuple[float, float] = (2.0, 32.0)
    repeat: int = 1
    psnr_db: float = 44.0  # STDM target; the corrections land at ~41-42 dB
    min_psnr_db: float = 40.0  # hard floor: the change is scaled down if ever needed
    passes: int = 3
    chase_bits: int = 16
    chase_flips: int = 4
    crops: tuple[float, ...] = tuple(round(0.01 * k, 2) for k in range(1, 11))
    gain_grid: tuple[float, ...] = (0.0, 2e-4, 5e-4, 1e-3)
    margin: float = 0.10  # patterns are zero this close to an edge (crop tolerance)
    taper: float = 0.05
    decode_top: int = 3

    @property
    def slots(self) -> int:
        return MESSAGE_BITS * self.repeat


@dataclass(frozen=True)
class Detection:
    """Result of :func:`detect_watermark`."""

    found: bool
    payload: int | None  # 64-bit payload when found
    bit_accuracy: float  # raw slots agreeing with the verified codeword (0 when not found)
    p_value: float  # bound on the chance an unmarked image gives this result
    crop: tuple[str, float] | None = None  # crop hypothesis that matched, e.g. ("right", 0.04)

    def to_dict(self) -> dict:
        return {"found": self.found, "payload": None if self.payload is None else f"{self.payload:016x}",
                "bit_accuracy": round(self.bit_accuracy, 4), "p_value": self.p_value,
                "crop": None if self.crop is None else {"edge": self.crop[0], "fraction": self.crop[1]}}


# -- payload -----------------------------------------------------------------------------
def make_payload(run_id: str, image_index: int | str) -> int:
    """64-bit payload: 32-bit hash of the run (checkpoint hash + run name) | 32-bit image part.

    ``image_index`` is used as is when an int (mod 2^32), else hashed (a string image id).
    """
    run32 = int.from_bytes(hashlib.sha256(f"mammosynth-run\x00{run_id}".encode()).digest()[:4], "big")
    if isinstance(image_index, (int, np.integer)) and not isinstance(image_index, bool):
        img32 = int(image_index) & 0xFFFFFFFF
    else:
        img32 = int.from_bytes(hashlib.sha256(f"mammosynth-image\x00{image_index}".encode()).digest()[:4], "big")
    return (run32 << 32) | img32


def split_payload(payload: int) -> tuple[str, int]:
    """``(run32 as 8 hex chars, image part)`` of a payload."""
    return f"{payload >> 32:08x}", payload & 0xFFFFFFFF


def _check(key: str, payload: int) -> int:
    mac = hmac.new(key.encode(), payload.to_bytes(8, "big"), hashlib.sha256).digest()
    return int.from_bytes(mac[:4], "big")


def _message_bits(key: str, payload: int) -> np.ndarray:
    if not (0 <= payload < 1 << PAYLOAD_BITS):
        raise ValueError(f"payload must be a 64-bit unsigned integer, got {payload}")
    word = (payload << CHECK_BITS) | _check(key, payload)
    return np.array([1.0 if (word >> (MESSAGE_BITS - 1 - i)) & 1 else -1.0 for i in range(MESSAGE_BITS)])


def _bits_to_int(bits: np.ndarray) -> int:
    out = 0
    for b in bits:
        out = (out << 1) | int(b > 0)
    return out


# -- carrier -----------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _patterns(cfg: WatermarkConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(spatial patterns [slots, grid*grid] unit norm, Gram-inverse [slots, slots], slot -> message bit).

    Pattern j = window * IDCT(keyed +-1 signs on its coefficient set). The window is 0 in the
    outer ``margin`` of the grid (raised-cosine taper inside it), so cropping up to
    ``margin`` off an edge removes no content the projections depend on.
    """
    from scipy.fft import idctn

    g = cfg.grid
    u, v = np.mgrid[0:g, 0:g]
    r = np.hypot(u, v)
    idx = np.flatnonzero((r >= cfg.band[0]) & (r < cfg.band[1]))
    seed = int.from_bytes(hashlib.sha256(f"{SCHEME}\x00{cfg.key}\x00{g}\x00{cfg.band}".encode()).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    idx = rng.permutation(idx)
    m = len(idx) // cfg.slots
    if m < 1:
        raise ValueError(f"watermark band {cfg.band} on a {g} grid has too few coefficients for {cfg.slots} slots")
    coeffs = idx[: m * cfg.slots].reshape(m, cfg.slots).T
    signs = rng.choice([-1.0, 1.0], size=coeffs.shape)
    t = (np.arange(g) + 0.5) / g
    edge = np.minimum(t, 1 - t)  # distance to the nearest edge, in grid fractions
    lo, hi = cfg.margin, cfg.margin + cfg.taper
    w1 = np.clip((edge - lo) / (hi - lo), 0, 1)
    w1 = 0.5 - 0.5 * np.cos(np.pi * w1)
    window = np.outer(w1, w1).ravel()
    pats = np.zeros((cfg.slots, g * g))
    for j in range(cfg.slots):
        spec = np.zeros(g * g)
        spec[coeffs[j]] = signs[j]
        pats[j] = idctn(spec.reshape(g, g), norm="ortho").ravel() * window
    pats /= np.linalg.norm(pats, axis=1, keepdims=True)
    gram_inv = np.linalg.inv(pats @ pats.T)
    slot_bit = np.tile(np.arange(MESSAGE_BITS), cfg.repeat)
    return pats, gram_inv, slot_bit


def _as_unit(image: np.ndarray) -> tuple[np.ndarray, float]:
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {image.shape}")
    if image.dtype == np.uint8:
        full = 255.0
    elif image.dtype == np.uint16:
        full = 65535.0
    else:
        raise ValueError(f"expected uint8 or uint16 pixels, got {image.dtype}")
    if min(image.shape) < MIN_SIDE:
        raise ValueError(f"image {image.shape} too small to carry a watermark (min side {MIN_SIDE})")
    return image.astype(np.float64) / full, full


@lru_cache(maxsize=32)
def _resize_matrix(n_in: int, n_out: int, order: int, anti_aliasing: bool) -> np.ndarray:
    """``[n_out, n_in]``: ``skimage.transform.resize`` (``mode="edge"``, no clipping) along
    one axis as a matrix. That resize (Gaussian anti-aliasing, then spline interpolation)
    is linear and separable, so it equals ``R_h @ x @ R_w.T`` up to float rounding."""
    from skimage.transform import resize

    eye = np.eye(n_in)  # the second axis is kept (factor 1: no filter, identity zoom)
    return np.ascontiguousarray(resize(eye, (n_out, n_in), order=order, anti_aliasing=anti_aliasing,
                                       mode="edge", clip=False))


def _resize(x: np.ndarray, shape: tuple[int, int], order: int, anti_aliasing: bool) -> np.ndarray:
    """``skimage.transform.resize(x, shape, order, anti_aliasing=..., mode="edge")`` (which
    clips to the input's range) as two matrix products: about 5x faster on small images."""
    rows = _resize_matrix(x.shape[0], shape[0], order, anti_aliasing)
    cols = _resize_matrix(x.shape[1], shape[1], order, anti_aliasing)
    return np.clip(rows @ x @ cols.T, x.min(), x.max())


def _canonical(x: np.ndarray, g: int) -> np.ndarray:
    return _resize(x, (g, g), order=1, anti_aliasing=True)


def _projections(x: np.ndarray, cfg: WatermarkConfig) -> np.ndarray:
    pats, _, _ = _patterns(cfg)
    return pats @ _canonical(_reduce(x, cfg), cfg.grid).ravel()


def _tissue_weight(x: np.ndarray) -> np.ndarray:
    """Smooth weight, ~1 in tissue and 0.25 in the dark air background, 0 on pixels that are
    exactly 0; mean square 1 (all 0 for an all-black image).

    Exact zeros are a removed background (``generate`` sets the air outside the breast to
    exactly 0, as ingest does for real films) and stay exactly 0: a mark there (only its
    positive half survives the clip at 0) leaves faint grey levels in the air, and
    radiomics features that are exactly 0 on the real films' flat background then carry
    the FRD of a generated set (README, "The watermark")."""
    from scipy.ndimage import gaussian_filter

    thr = 0.05 * float(x.max()) if x.max() > 0 else 0.0
    w = gaussian_filter((x > thr).astype(np.float64), sigma=max(1.0, min(x.shape) / 64))
    w = np.where(x > 0, 0.25 + 0.75 * w, 0.0)
    rms = np.sqrt(np.mean(w**2))
    return w / rms if rms > 0 else w


# -- embed / detect ----------------------------------------------------------------------
def _step(cfg: WatermarkConfig) -> float:
    """Quantiser step: uniform STDM distortion (step^2/12 per slot) meets the PSNR budget."""
    energy = cfg.grid * cfg.grid * 10 ** (-cfg.psnr_db / 10)
    return float(np.sqrt(12.0 * energy / cfg.slots))


@lru_cache(maxsize=8)
def _dither(cfg: WatermarkConfig) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(f"{SCHEME}-dither\x00{cfg.key}".encode()).digest()[:8], "big")
    return np.random.default_rng(seed).uniform(0.0, _step(cfg), cfg.slots)


def _soft(proj: np.ndarray, cfg: WatermarkConfig) -> np.ndarray:
    """Per-slot soft bit in [-1, 1]: +1 on the bit-1 lattice, -1 on the bit-0 lattice."""
    return np.cos(2 * np.pi * (proj - _dither(cfg)) / _step(cfg))


def embed_watermark(image: np.ndarray, payload: int, cfg: WatermarkConfig = WatermarkConfig()) -> np.ndarray:
    """Return ``image`` (uint8/uint16, same dtype and shape) carrying ``payload`` (64 bits)."""
    x, full = _as_unit(image)
    g = cfg.grid
    pats, gram_inv, slot_bit = _patterns(cfg)
    bits = _message_bits(cfg.key, payload)[slot_bit]
    step, dither = _step(cfg), _dither(cfg)
    offset = dither + np.where(bits > 0, 0.0, step / 2)
    h = _projections(x, cfg)
    target = offset + step * np.round((h - offset) / step)  # nearest point of the bit's lattice
    weight = _tissue_weight(x)
    y, out = x, image
    for _ in range(cfg.passes):
        need = target - h
        d = (pats.T @ (gram_inv @ need)).reshape(g, g)  # least-norm change giving exactly `need`
        delta = _resize(d, x.shape, order=3, anti_aliasing=False)
        y = np.clip(y + delta * weight, 0.0, 1.0)
        out = np.rint(y * full).astype(image.dtype)
        h = _projections(out.astype(np.float64) / full, cfg)
    mse = float(np.mean((out.astype(np.float64) / full - x) ** 2))
    floor = 10 ** (-cfg.min_psnr_db / 10)
    if mse > floor:  # rare (large clipped background): keep the promise of min_psnr_db
        y = x + (y - x) * np.sqrt(floor / mse) * 0.99
        out = np.rint(np.clip(y, 0.0, 1.0) * full).astype(image.dtype)
    return out


def _reduce(x: np.ndarray, cfg: WatermarkConfig) -> np.ndarray:
    """Anti-aliased reduction to at most ``4 * grid`` per side (keeps detection fast on big films)."""
    cap = 4 * cfg.grid
    shape = (min(x.shape[0], cap), min(x.shape[1], cap))
    return x if shape == x.shape else _resize(x, shape, order=1, anti_aliasing=True)


def _uncrop(x: np.ndarray, hyp: tuple[str, float]) -> np.ndarray:
    """Edge-pad ``x`` back to the size it had before ``hyp`` = (edge, fraction) was cut off."""
    edge, frac = hyp
    h, w = x.shape
    axis_len = w if edge in ("left", "right") else h
    extra = int(round(axis_len * frac / (1.0 - frac)))
    pad = {"left": ((0, 0), (extra, 0)), "right": ((0, 0), (0, extra)),
           "top": ((extra, 0), (0, 0)), "bottom": ((0, extra), (0, 0))}[edge]
    return np.pad(x, pad, mode="edge")


@lru_cache(maxsize=8)
def _gains(cfg: WatermarkConfig) -> list[np.ndarray]:
    """Inverse filters (DCT domain) for candidate low-pass responses exp(-(a u^2 + b v^2)) of
    resizing/blur, limited to the band's neighbourhood (radius < band[1] + 8)."""
    g = cfg.grid
    u, v = np.mgrid[0:g, 0:g]
    keep = np.hypot(u, v) < cfg.band[1] + 8
    return [np.where(keep, np.exp(a * u**2 + b * v**2), 0.0) for a in cfg.gain_grid for b in cfg.gain_grid]


def _decode(proj: np.ndarray, cfg: WatermarkConfig) -> tuple[int | None, np.ndarray, int]:
    """Soft bits -> (payload or None, message signs, flips used); Chase search on weak bits."""
    _, _, slot_bit = _patterns(cfg)
    soft = np.zeros(MESSAGE_BITS)
    np.add.at(soft, slot_bit, _soft(proj, cfg))
    bits = np.where(soft > 0, 1.0, -1.0)
    word = _bits_to_int(bits)
    weakest = [int(i) for i in np.argsort(np.abs(soft))[: cfg.chase_bits]]
    masks = [1 << (MESSAGE_BITS - 1 - i) for i in weakest]
    mac = hmac.new(cfg.key.encode(), digestmod=hashlib.sha256)
    for n in range(cfg.chase_flips + 1):
        for flip in itertools.combinations(range(len(masks)), n):
            trial = word
            for j in flip:
                trial ^= masks[j]
            payload, check = trial >> CHECK_BITS, trial & 0xFFFFFFFF
            h = mac.copy()
            h.update(payload.to_bytes(8, "big"))
            if int.from_bytes(h.digest()[:4], "big") == check:
                out = bits.copy()
                out[[weakest[j] for j in flip]] *= -1
                return payload, out, n
    return None, bits, -1


def _candidates(cfg: WatermarkConfig) -> int:
    """Codewords tested per detection (Chase candidates x hypotheses decoded)."""
    from math import comb

    return cfg.decode_top * sum(comb(cfg.chase_bits, n) for n in range(cfg.chase_flips + 1))


def _ranked(image: np.ndarray, cfg: WatermarkConfig, crops: bool) -> list[tuple[float, tuple[str, float] | None, np.ndarray]]:
    """(lattice fit, crop hypothesis, projections) for every (crop, low-pass gain) hypothesis, best first."""
    from scipy.fft import dctn, idctn

    x, _ = _as_unit(image)
    x = _reduce(x, cfg)
    pats, _, _ = _patterns(cfg)
    hyps: list[tuple[str, float] | None] = [None]
    if crops:
        hyps += [(e, c) for c in cfg.crops for e in ("left", "right", "top", "bottom")]
    scored = []
    for hyp in hyps:
        c = dctn(_canonical(x if hyp is None else _uncrop(x, hyp), cfg.grid), norm="ortho")
        for inverse in _gains(cfg):
            proj = pats @ idctn(c * inverse, norm="ortho").ravel()
            scored.append((float(np.mean(np.abs(_soft(proj, cfg)))), hyp, proj))
    scored.sort(key=lambda t: -t[0])
    return scored


def detect_watermark(image: np.ndarray, cfg: WatermarkConfig = WatermarkConfig(), crops: bool = True) -> Detection:
    """Blind detection: the payload when the check verifies, else ``found=False``.

    Every (crop, low-pass gain) hypothesis is scored by how close the projections sit to the
    quantiser lattices (mean |soft bit|); the ``decode_top`` best are decoded.
    """
    _, _, slot_bit = _patterns(cfg)
    p_value = min(1.0, _candidates(cfg) * 2.0 ** -CHECK_BITS)
    for _, hyp, proj in _ranked(image, cfg, crops)[: cfg.decode_top]:
        payload, word, _ = _decode(proj, cfg)
        if payload is not None:
            acc = float(np.mean(np.sign(_soft(proj, cfg)) == word[slot_bit]))
            return Detection(True, payload, acc, p_value, hyp)
    return Detection(False, None, 0.0, 1.0, None)


def bit_accuracy(image: np.ndarray, payload: int, cfg: WatermarkConfig = WatermarkConfig(), crops: bool = True) -> float:
    """Fraction of raw slots whose hard bit matches the known ``payload``'s codeword, at the
    best-fitting hypothesis (what the decoder sees before error correction)."""
    _, _, slot_bit = _patterns(cfg)
    want = _message_bits(cfg.key, payload)[slot_bit]
    _, _, proj = _ranked(image, cfg, crops)[0]
    return float(np.mean(np.sign(_soft(proj, cfg)) == want))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two same-dtype images, relative to the dtype's full scale."""
    x, full = _as_unit(a)
    y, _ = _as_unit(b)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)
