"""Benchmark: fastgan vs dcgan on mini-MIAS at 128x128 (or --size H W) under fixed CPU-time budgets.

For each family and budget (minutes): train from scratch on two thirds of the films,
generate as many images as the real set, and report training img/s, generation img/s,
FRD (frd-score, v1) against the held-back third, next to the FRD between two real
halves (the floor), and the realism measures (``mammosynth.metrics.realism``) against
the held-back films: detectability AUC of a CNN two-sample test next to its
real-vs-real floor (two halves of the held-back films), the texture spectrum exponent
beta and the high-pass (fine-detail) energy ratio, each next to its real-vs-real value
(held-back vs training films). The generated set has its background outside the breast removed,
as ``generate`` does by default and as the ingest does for the real films, and goes through
``generate``'s shape gate (``--shape-gate``: by default when the run stored its films' outlines,
as ``generate`` does; the row says what share it redrew); the FRD of
the raw generator output and an FRD with as many generated as held-back images (next
to a floor of as many training films; each the mean over disjoint random sets of that
size, ``matched_frd``; also without the radiomics features constant up to float rounding in
the held-back films, ``mammosynth.metrics.frd``) are printed too. The real-vs-real floors are computed once per set
of films and FRD version (in the feature cache, ``OUT/cache``). Saves the last training grid
and a contact sheet of generated images per run. Ends with the realism issue's targets
(``targets.py``): per run, each met or missed and by how much.

    python benchmarks/train_gan.py --data ../shared/data/mias-dev --budgets 2,5,10 \
        --families dcgan,fastgan --out /tmp/bench_train_gan
    python benchmarks/train_gan.py --size 256 160 --budgets 30 --families fastgan
    python benchmarks/train_gan.py --budgets 30 --families fastgan --seeds 0,1,2,3 --threads 1
    # the learning curve: one run per seed, scored at 10, 20, 30 and 60 CPU-minutes
    python benchmarks/train_gan.py --budgets 30,60 --families fastgan --seeds 1,2,3 --threads 1 \
        --extend --snapshot-minutes 10 --score-checkpoints
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import targets  # noqa: E402  (this directory's module, also when imported from elsewhere)


def precision() -> str:
    """What ``--amp auto`` trains in on this CPU (the figures depend on it)."""
    from mammosynth.training.loop import cpu_has_bf16_units

    return "bf16 autocast (AMX-BF16 CPU, --amp auto)" if cpu_has_bf16_units() else "fp32 (--amp auto on this CPU)"


#: the networks train on films ingested at this many times the benchmark's size, and fitted
#: to it at load, as a user who ingests at the default 512x320 and trains smaller does: the
#: resampled copies of each film (training.resample) need a stored film at least twice the size
SOURCE_SCALE = 4


def prepare(data: Path, work: Path, size: tuple[int, int], tag: str = "") -> Path:
    """Ingest mini-MIAS at H x W and re-split it: 2/3 train, 1/3 test (held back). The
    split depends on the film order only, so every ``tag`` (a size) holds out the same films."""
    from mammosynth.data.ingest import IngestConfig, ingest
    from mammosynth.data.prepared import DatasetWriter, PreparedDataset
    from mammosynth.data.preprocess import PreprocessConfig

    raw = work / f"ingested{tag}"
    if not (raw / "dataset.json").is_file():
        ingest(data, out=raw, config=IngestConfig(preprocess=PreprocessConfig(size=size), workers=2))
    split = work / f"split{tag}"
    if not (split / "dataset.json").is_file():
        ds = PreparedDataset(raw)
        order = np.random.default_rng(0).permutation(len(ds))
        held = set(order[: len(ds) // 3].tolist())
        with DatasetWriter(split, kind="real", source={"name": "mias-dev 2/3 train, 1/3 test"}) as wr:
            for i, rec in enumerate(ds.records):
                wr.add(rec.replace(split="test" if i in held else "train", file=None, sha256=None), ds.image(i))
    return split


def prepare_source(data: Path, work: Path, size: tuple[int, int], split: Path, scale: int = SOURCE_SCALE) -> Path:
    """The films the networks train on: :func:`prepare` at ``scale`` x ``size``, checked to
    hold back the same films as ``split`` (the reference at ``size``)."""
    from mammosynth.data.prepared import PreparedDataset

    big = tuple(scale * v for v in size)
    source = prepare(data, work, big, tag=f"-{big[0]}x{big[1]}")
    ids = [{r.image_id for r in PreparedDataset(f"{d}:train").records} for d in (split, source)]
    if ids[0] != ids[1]:
        raise SystemExit(f"{source}: holds back other films than {split}; delete both and run again")
    return source


def export_pngs(images: torch.Tensor, out: Path) -> Path:
    """[N, 1, H, W] in [-1, 1] -> 8-bit PNGs."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    arr = ((images[:, 0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    for i, a in enumerate(arr):
        Image.fromarray(a).save(out / f"{i:05d}.png")
    return out


def real_pngs(ds_spec: str, out: Path, size: tuple[int, int]) -> Path:
    from mammosynth.training.data import load_training_data

    return export_pngs(load_training_data(ds_spec, size, (), show_progress=False).images.float(), out)


def frd(a: Path, b: Path) -> float:
    """FRD v1 (frd-score defaults), real set first; NaN when feature extraction fails
    (e.g. a collapsed generator producing constant images)."""
    from frd_score.frd import compute_frd

    try:
        # v1 divides constant features by their zero SD and then drops the inf/NaN columns:
        # numpy's "invalid value" warnings on the way are expected (as in mammosynth.metrics.frd)
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(compute_frd([str(a), str(b)], num_workers=2))
    except Exception as exc:  # pyradiomics fails on constant images
        print(f"FRD failed for {b}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return float("nan")


def texture_fd(a: Path, b: Path) -> float:
    """Fréchet distance on mammosynth's weight-free "mammo-texture" features (87 per image:
    intensity, band-pass and gradient energy, GLCM, LBP, wavelet energies, layout), z-scored
    with the pooled statistics of both sets (as ``evaluate`` does): a second,
    texture-sensitive view next to FRD."""
    from PIL import Image

    from mammosynth.metrics.features import describe_image, standardise
    from mammosynth.metrics.frechet import frechet_distance

    feats = [np.stack([describe_image(np.asarray(Image.open(f), dtype=np.float32) / 255.0)
                       for f in sorted(d.glob("*.png"))]) for d in (a, b)]
    return frechet_distance(*standardise(feats[0], feats[1], pooled=True))


def real_arrays(ds_spec: str) -> tuple[np.ndarray, np.ndarray, list]:
    """Images of a prepared set as float32 [N, H, W] in [0, 1], breast masks and records."""
    from mammosynth.data.prepared import PreparedDataset
    from mammosynth.data.preprocess import breast_masks

    ds = PreparedDataset(ds_spec)
    raw = np.stack([ds.image(i) for i in range(len(ds))])
    return raw.astype(np.float32) / 65535.0, breast_masks(raw), list(ds.records)


def realism(real: tuple, syn_u16: np.ndarray, sheet: Path, cache_dir: Path, real_key: str):
    """Realism measures of generated uint16 images against the held-back films, and the
    native-resolution crop sheet. The real side (the floor) is computed once, then cached."""
    from mammosynth.data.preprocess import breast_masks
    from mammosynth.metrics.cache import FeatureCache
    from mammosynth.metrics.outline import atypical_sheet
    from mammosynth.metrics.realism import RealismConfig, realism_metrics, realism_sheet

    xs, ms = syn_u16.astype(np.float32) / 65535.0, breast_masks(syn_u16)
    realism_sheet(real[0], real[1], xs, ms, sheet)
    rm = realism_metrics(real[0], real[1], real[2], xs, ms, None, RealismConfig(), progress=False,
                         cache=FeatureCache(cache_dir), real_key=real_key)
    if rm.outline is not None and "atypical" in rm.outline.rates:  # the most atypical outlines, for the eye
        atypical_sheet(rm.outline, real[0], real[1], xs, ms,
                       sheet.with_name(sheet.stem.removesuffix("-crops") + "-outlines.png"), real_label="held-back")
    return rm


def real_reference(held: tuple, train: tuple) -> tuple[float, float, Any, Any]:
    """The real-vs-real values of beta (median difference, training - held-back films), of
    the high-pass energy ratio (training / held-back), of the local texture statistics and
    of the outline rates (training films in the synthetic role)."""
    from mammosynth.metrics.detail import detail_comparison, highpass_energy
    from mammosynth.metrics.local_texture import local_texture_comparison, local_texture_statistics
    from mammosynth.metrics.outline import outline_comparison, outline_features
    from mammosynth.metrics.spectrum import spectral_exponents, spectrum_comparison

    spec = spectrum_comparison(spectral_exponents(held[0], held[1]), spectral_exponents(train[0], train[1]))
    det = detail_comparison(highpass_energy(held[0], held[1]), highpass_energy(train[0], train[1]))
    lt = local_texture_comparison(local_texture_statistics(held[0], held[1]),
                                  local_texture_statistics(train[0], train[1]))
    ol = outline_comparison(outline_features(held[1]), outline_features(train[1]))
    return spec.diff_median, det.ratio, lt, ol


def gate_for(pipe, shape_gate: str, training_films: str | None):
    """The shape gate ``generate`` would apply to ``pipe`` (``shape_gate`` auto: when the run
    stored its films' outlines; on: from ``training_films`` otherwise; off: None)."""
    from mammosynth.sampling.generate import GenerateConfig, shape_gate_for

    films = training_films if shape_gate == "on" and pipe.shape_reference is None else None
    return shape_gate_for(pipe, GenerateConfig(shape_gate=shape_gate, shape_reference=films))


def generate(run_dir: Path, n: int, out: Path, shape_gate: str = "auto",
             training_films: str | None = None) -> tuple[dict[str, float], np.ndarray, float | None]:
    """Generate ``n`` images from the run's best checkpoint through the public pipeline
    (per-index latents, eval fast path, 16-bit output) into ``out`` (default: breast
    background removed, and the shape gate as ``generate`` applies it: ``shape_gate``
    auto, on when the run stored its films' outlines; on: from ``training_films`` for a
    run that did not) and ``out``-raw (``remove_background=False``, no gate: the network
    alone). Returns img/s of both (generation only: best of three passes of at least 1024
    images after a warm-up batch, PNG writing excluded; the host is shared, the best pass is
    the least disturbed), writes a contact sheet of the first 32 images, and returns the
    uint16 images (background removed) and the share of them the gate redrew (None: off)."""
    from mammosynth.sampling import GanPipeline
    from mammosynth.training.loop import save_grid

    pipe = GanPipeline.from_pretrained(run_dir, checkpoint="best")
    gate = gate_for(pipe, shape_gate, training_films)
    pipe(32, seed=123)
    rates, redrawn = {}, None
    timed = max(n, 1024)  # time at least 1024 images (a short pass is noisy)
    for key, clean in (("gen", True), ("gen_raw", False)):
        rates[key] = 0.0
        for _ in range(3):
            t = time.time()
            pipe(timed, seed=7, remove_background=clean, shape_gate=gate if clean else None)
            rates[key] = max(rates[key], timed / (time.time() - t))
        result = pipe(n, seed=123, remove_background=clean, shape_gate=gate if clean else None)
        if clean and result.shape is not None:
            redrawn = float(np.mean([s["attempt"] > 0 for s in result.shape]))
        imgs = torch.from_numpy(result.images.astype(np.float32) / 32767.5 - 1.0)[:, None]
        export_pngs(imgs, out if clean else out.with_name(out.name + "-raw"))
        if clean:
            save_grid(out.with_name(out.name + "-sheet.png"), imgs[:32], cols=8)
            images = result.images
    return rates, images, redrawn


def finished_run(runs: Path, name: str) -> Path | None:
    """The newest run called ``name`` under ``runs`` whose last session ended (not
    interrupted or killed: an ``--extend`` copy carries the end of the run it copied)."""
    for run in sorted(runs.glob(f"*-{name}"), reverse=True):
        stats = run / "stats.jsonl"
        events = [json.loads(x)["event"] for x in stats.read_text().splitlines()] if stats.is_file() else []
        sessions = [e for e in events if e in ("start", "resume", "end", "interrupted")]
        if sessions and sessions[-1] == "end":
            return run
    return None


def extended_copy(prev: Path, runs: Path, name: str) -> Path:
    """A copy of the finished run ``prev`` as a new run ``name``, to resume for more minutes
    (``--extend``). No schedule depends on the budget and runs resume bit-identically, so
    this is the run a longer budget trains from scratch, at the cost of the difference."""
    from mammosynth.training.loop import next_run_dir

    dest = next_run_dir(runs, name)
    shutil.copytree(prev, dest)
    return dest


def checkpoint_minutes(run: Path) -> dict[float, float]:
    """CPU minutes of training (over all sessions of the run) at each logged kimg, from
    stats.jsonl: each session counts its own CPU time from its start."""
    out, offset, last = {}, 0.0, 0.0
    for line in (run / "stats.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["event"] in ("start", "resume"):
            offset, last = offset + last, 0.0
        elif "cpu_s" in e:
            last = e["cpu_s"]
            out[round(e["kimg"], 3)] = (offset + last) / 60
    return out


def best_kimg(run: Path) -> float:
    """The kimg of the checkpoint ``best.pt`` copies: what a run's row figures score."""
    from mammosynth.training.checkpoint import find_checkpoint, load_checkpoint

    return round(float(load_checkpoint(find_checkpoint(run, "best"))["kimg"]), 3)


def score_checkpoints(run: Path, n: int, held: tuple, work: Path, real_key: str, done: set[float],
                      best_figures, shape_gate: str = "auto", training_films: str | None = None) -> None:
    """The realism measures of every periodic checkpoint the run kept, oldest first (the
    learning curve of ``--score-checkpoints``), but those at a kimg in ``done`` (scored in
    the run this one extends); adds the scored ones to ``done``. ``best_figures``: the run's row
    figures, which the checkpoint that best.pt copies reuses (the same images: not scored twice)."""
    from mammosynth.sampling import GanPipeline
    from mammosynth.training.checkpoint import list_checkpoints

    minutes = checkpoint_minutes(run)
    best = best_kimg(run)
    for ck in reversed(list_checkpoints(run)):
        kimg = float(ck.stem.split("-")[1])
        if kimg in done:
            continue
        done.add(kimg)
        near = min(minutes, key=lambda k: abs(k - kimg), default=None)  # the log row nearest the checkpoint
        if round(kimg, 3) == best:
            rm = best_figures
        else:
            pipe = GanPipeline.from_pretrained(ck)
            syn = pipe(n, seed=123, shape_gate=gate_for(pipe, shape_gate, training_films)).images
            rm = realism(held, syn, work / "png" / f"{run.name}-{ck.stem}-crops.png", work / "cache", real_key)
        d, sp, dt = rm.detectability, rm.spectrum, rm.detail
        print(f"           checkpoint {kimg:7.2f} kimg (~{minutes[near] if near is not None else float('nan'):.1f} "
              f"CPU-min): detectability AUC {d.synthetic.auc:.3f} [{d.synthetic.ci_low:.2f}, {d.synthetic.ci_high:.2f}] "
              f"(texture view {view_auc(d, 'texture')}, layout view {view_auc(d, 'layout')}; floor {d.floor.auc:.3f})  "
              f"beta {sp.synthetic.median:.2f} vs real {sp.real.median:.2f}  high-pass ratio {dt.ratio:.2f}  "
              f"atypical outlines {atypical_cell(rm.outline)}", flush=True)


def subsets(src: Path, out: Path, n: int, most: int = 3) -> list[Path]:
    """Disjoint random sets of ``n`` PNGs of ``src`` (as many as it holds, at most
    ``most``), copied to ``out/0``, ``out/1``, ... (sample-size-matched FRD). Random and
    several: a few broken images dominate the radiomics covariance, so the first ``n``
    alone can read far from the rest (a 256x160 run: 5.3 on its first 54 samples, 14.3 on
    all 162)."""
    files = sorted(src.glob("*.png"))
    order = np.random.default_rng(0).permutation(len(files))
    shutil.rmtree(out, ignore_errors=True)
    dirs = []
    for k in range(min(most, len(files) // n)):
        d = out / str(k)
        d.mkdir(parents=True)
        for i in order[k * n:(k + 1) * n]:
            shutil.copy(files[i], d / files[i].name)
        dirs.append(d)
    return dirs


def matched_frd(real: Path, src: Path, out: Path, n: int) -> tuple[float, list[float], float, list[float]]:
    """FRD of ``real`` against disjoint random ``n``-image sets of ``src`` (:func:`subsets`):
    their mean and each, then the same without the radiomics features that are constant up to
    float rounding in ``real`` (``mammosynth.metrics.frd``: one synthetic image's rounding in
    such a feature can double a set's FRD). From one extraction per set, as frd-score computes
    FRD (``frd_from_features``; NaN when it fails)."""
    from mammosynth.metrics.frd import frd_from_features, radiomics_features

    def features(d: Path) -> np.ndarray:
        return radiomics_features(sorted(str(f) for f in d.glob("*.png")), num_workers=2)[0]

    each, stable = [], []
    try:
        ref = features(real)
        for d in subsets(src, out, n):
            feats = features(d)
            with np.errstate(divide="ignore", invalid="ignore"):
                each.append(frd_from_features(ref, feats))
                stable.append(frd_from_features(ref, feats, drop_float_noise=True))
    except Exception as exc:  # pyradiomics fails on constant images
        print(f"FRD failed for {src}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return float("nan"), [], float("nan"), []

    def mean(v: list[float]) -> float:
        return float(np.mean(v)) if v else float("nan")

    return mean(each), each, mean(stable), stable


FLOORS_VERSION = 2  # bump when the real-vs-real floors are computed differently


def png_digest(*dirs: Path) -> str:
    """A digest of the names and bytes of the PNGs in ``dirs``: the films the floors read."""
    h = hashlib.sha256()
    for d in dirs:
        for f in sorted(d.glob("*.png")):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def cached_floors(cache: Path, key: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The real-vs-real floors (``compute()``: numbers and lists of numbers by name), computed
    once per ``key`` (the films, the FRD version, ``FLOORS_VERSION``) and read back from the
    feature cache in ``cache`` by every later run on the same films: they cost minutes of
    pyradiomics per run and do not depend on it."""
    from mammosynth.metrics.cache import FeatureCache, cache_key

    store, entry = FeatureCache(cache), cache_key(floors=key)
    hit = store.load(entry)
    if hit is not None:
        return {name: a.tolist() for name, a in hit.items()}
    values = compute()
    store.save(entry, {name: np.asarray(v, dtype=np.float64) for name, v in values.items()})
    return values


def spread(each: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in each)


def local_texture_line(lt, other: str = "synthetic") -> str:
    """Local texture statistics (``metrics.local_texture.LocalTextureResult``): held-back
    median -> ``other`` median (AUC [CI])."""
    if lt is None or not lt.available:
        return "local texture: not available"
    return f"local texture, held-back -> {other} median (AUC [CI]): " + ", ".join(
        f"{name} {c.real.median:.2f} -> {c.synthetic.median:.2f} ({c.auc:.2f} [{c.ci_low:.2f}, {c.ci_high:.2f}])"
        for name, c in lt.statistics.items())


def outline_line(ol, other: str = "synthetic") -> str:
    """Outline rates (``metrics.outline.OutlineResult``): the share of ``other`` images above
    the held-back films' 95th percentile [CI]."""
    if ol is None or not ol.available:
        return "outline: not available"
    return f"outline, {other} images above the held-back films' {ol.quantile:.0%} quantile [CI]: " + ", ".join(
        f"{name} {r.rate:.1%} [{r.ci_low:.1%}, {r.ci_high:.1%}] (AUC {r.auc:.2f})" for name, r in ol.rates.items())


def atypical_cell(ol) -> str:
    """The share of atypical breast shapes and its AUC, for the table (n/a without them)."""
    r = None if ol is None else ol.rates.get("atypical")
    return "n/a" if r is None else f"{r.rate:.1%} ({r.auc:.2f})"


def view_auc(test, view: str) -> str:
    """One view's AUC of the synthetic-vs-real detectability test, or n/a."""
    a = test.synthetic.view_aucs()[view]
    return "n/a" if a is None else f"{a:.3f}"


def seed_summary(rows: list[tuple]) -> str:
    """Mean and SD over seeds, per family and budget, of the realism figures and FRD."""
    lines = ["\nover seeds (mean ± SD; min-max of detectability):"]
    for fam, m in dict.fromkeys((r[0], r[1]) for r in rows):
        rms = [r for r in rows if r[:2] == (fam, m)]
        figs = {"kimg": [r[3] for r in rms], "FRD": [r[6] for r in rms],
                "detectability": [r[-1].detectability.synthetic.auc for r in rms],
                "texture view": [r[-1].detectability.synthetic.view_aucs()["texture"] for r in rms],
                "layout view": [r[-1].detectability.synthetic.view_aucs()["layout"] for r in rms],
                "beta": [r[-1].spectrum.synthetic.median for r in rms],
                "high-pass ratio": [r[-1].detail.ratio for r in rms]}
        parts = [f"{k} {np.mean(v):.{1 if k == 'kimg' else 3}f} ± {np.std(v, ddof=1):.{1 if k == 'kimg' else 3}f}"
                 for k, v in figs.items() if None not in v]
        det = figs["detectability"]
        lines.append(f"  {fam} {m:g} min, seeds {','.join(str(r[2]) for r in rms)}: " + ", ".join(parts)
                     + f" (detectability {min(det):.3f}-{max(det):.3f})")
    return "\n".join(lines)


def figures(row: tuple, frd_floor_matched: float, frd_floor_stable: float) -> "targets.RunFigures":
    """A benchmark row as the figures its targets are checked on."""
    fam, minutes, seed, _, _, rates, _, frd_matched, _, _, frd_stable, rm = row
    return targets.RunFigures(family=fam, minutes=minutes, seed=seed, detectability=rm.detectability.synthetic.auc,
                              beta=rm.spectrum.synthetic.median, beta_real=rm.spectrum.real.median,
                              highpass_ratio=rm.detail.ratio, frd_matched=frd_matched,
                              frd_floor_matched=frd_floor_matched, gen_network=rates["gen_raw"],
                              frd_matched_stable=frd_stable, frd_floor_matched_stable=frd_floor_stable)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mias-dev"))
    ap.add_argument("--out", default="/tmp/bench_train_gan")
    ap.add_argument("--budgets", default="2,5,10", help="CPU minutes per run, comma-separated")
    ap.add_argument("--families", default="dcgan,fastgan")
    ap.add_argument("--size", type=int, nargs=2, default=[128, 128], metavar=("H", "W"))
    ap.add_argument("--seeds", default="0",
                    help="training seeds per family and budget, comma-separated; with several, a summary line per "
                         "family and budget gives the mean and SD over seeds (at these budgets the seed moves the "
                         "realism figures more than most design changes)")
    ap.add_argument("--model", default="", metavar="FIELD=INT,...",
                    help="integer ModelConfig fields overriding the family's defaults, e.g. strands=0 (the "
                         "generator without the strand input); the runs' names carry them")
    ap.add_argument("--resample-copies", type=int, default=None, metavar="K",
                    help="resampled copies per training film (TrainConfig.resample_copies; default: the family's); "
                         "a value other than the default goes into the runs' names")
    ap.add_argument("--reuse-runs", action="store_true",
                    help="score a finished run of the same name under OUT/runs instead of training it again "
                         "(e.g. after a change to the measures)")
    ap.add_argument("--threads", type=int, default=2,
                    help="torch CPU threads (use 1 on a heavily shared machine)")
    ap.add_argument("--budget-clock", default="cpu", choices=("cpu", "wall"),
                    help="budgets in CPU minutes of the training process (the same work however loaded the "
                         "machine is; at --threads 2 a CPU minute is half a wall minute of a busy 2-core run) or "
                         "wall minutes (default: %(default)s)")
    ap.add_argument("--content", default="auto", choices=("auto", "full"),
                    help="fastgan: networks for the films' content width (auto) or the whole frame (full; "
                         "the default before stop 50) (default: %(default)s)")
    ap.add_argument("--snapshot-minutes", type=float, default=None,
                    help="minutes between checkpoints (default: a third of the budget)")
    ap.add_argument("--extend", action="store_true",
                    help="train each budget but the smallest by resuming a copy of the same family and seed's run "
                         "at the next smaller budget: --budgets 30,60 costs 60 minutes, not 90, and gives the "
                         "same runs")
    ap.add_argument("--shape-gate", default="auto", choices=("auto", "on", "off"),
                    help="the samples scored: with generate's shape gate (auto: on when the run stored its training "
                         "films' outlines, as generate does; on: from the training films for runs that did not) or "
                         "without it (off: the network's draws as they come) (default: %(default)s)")
    ap.add_argument("--score-checkpoints", action="store_true",
                    help="also score every periodic checkpoint of each run (all are kept): the learning curve")
    args = ap.parse_args()
    try:
        overrides = {k: int(v) for k, v in (item.split("=", 1) for item in args.model.split(",") if item)}
    except ValueError:
        ap.error(f"--model: expected FIELD=INT,..., got {args.model!r}")
    torch.set_num_threads(args.threads)
    os.environ.setdefault("MAMMOSYNTH_NO_PROGRESS", "1")
    from mammosynth.models import ModelConfig
    from mammosynth.training import TrainConfig, train

    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    size = tuple(args.size)
    split = prepare(Path(args.data), work, size)
    source = prepare_source(Path(args.data), work, size, split)
    from mammosynth.data.prepared import PreparedDataset

    n_real = len(PreparedDataset(split))
    test_dir = real_pngs(f"{split}:test", work / "png" / "test", size)
    train_dir = real_pngs(f"{split}:train", work / "png" / "train", size)
    all_imgs = sorted((work / "png" / "test").glob("*.png")) + sorted((work / "png" / "train").glob("*.png"))
    half_a, half_b = work / "png" / "half_a", work / "png" / "half_b"
    for d in (half_a, half_b):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    order = np.random.default_rng(1).permutation(len(all_imgs))
    for k, i in enumerate(order):
        shutil.copy(all_imgs[i], (half_a if k % 2 == 0 else half_b) / f"{k:05d}.png")
    print(f"data: {n_real} films, train {len(list(train_dir.glob('*.png')))}, held back {len(list(test_dir.glob('*.png')))}; "
          f"torch threads {torch.get_num_threads()}, CPU cores {os.cpu_count()}, {precision()}, "
          f"load average {os.getloadavg()[0]:.1f} (shared machine)", flush=True)
    from mammosynth.training.config import TRAIN_DEFAULTS

    copies = {f: args.resample_copies if args.resample_copies is not None else TRAIN_DEFAULTS[f]["resample_copies"]
              for f in args.families.split(",")}
    print(f"training films ingested at {SOURCE_SCALE}x the size ({source.name}) and fitted to it at load; resampled "
          f"copies per film: {', '.join(f'{f} {k}' for f, k in copies.items())}", flush=True)
    n_test = len(list(test_dir.glob("*.png")))

    def real_floors() -> dict[str, Any]:
        matched, each, stable, stable_each = matched_frd(test_dir, train_dir, work / "png" / "train-matched", n_test)
        return {"frd": frd(half_a, half_b), "frd_th": frd(test_dir, train_dir), "matched": matched,
                "matched_each": each, "matched_stable": stable, "matched_stable_each": stable_each,
                "tex": texture_fd(half_a, half_b), "tex_th": texture_fd(test_dir, train_dir)}

    from importlib.metadata import version

    floors = cached_floors(work / "cache", f"v{FLOORS_VERSION}-frd{version('frd-score')}-"
                           f"{png_digest(test_dir, train_dir)}", real_floors)
    floor, floor_th, floor_matched, floor_each = floors["frd"], floors["frd_th"], floors["matched"], floors["matched_each"]
    print(f"FRD floor (two real halves): {floor:.3f}; held-back third vs training two thirds: {floor_th:.3f}; "
          f"held-back vs {n_test} training films (size-matched floor, mean of {len(floor_each)} disjoint random "
          f"sets: {spread(floor_each)}): {floor_matched:.3f}; without features constant up to float rounding in "
          f"the held-back films: {floors['matched_stable']:.3f} ({spread(floors['matched_stable_each'])})", flush=True)
    tex_floor, tex_floor_th = floors["tex"], floors["tex_th"]
    print(f"texture FD floor (two real halves): {tex_floor:.2f}; held-back vs training: {tex_floor_th:.2f}", flush=True)
    held, trained = real_arrays(f"{split}:test"), real_arrays(f"{split}:train")
    held_key = PreparedDataset(f"{split}:test").content_hash  # the cache key of the held-back films' features
    beta_rr, hp_rr, lt_rr, ol_rr = real_reference(held, trained)
    print(f"real vs real (training vs held-back films): beta difference {beta_rr:+.2f}, high-pass energy ratio "
          f"{hp_rr:.2f}\n    {local_texture_line(lt_rr, 'training')}\n    {outline_line(ol_rr, 'training')}",
          flush=True)
    rows = []
    seeds = [int(s) for s in args.seeds.split(",")]
    budgets = [float(b) for b in args.budgets.split(",")]
    if args.extend:
        budgets = sorted(budgets)
    trained: dict[tuple[str, int], tuple[float, Path]] = {}  # (family, seed) -> its latest run (--extend)
    scored: dict[tuple[str, int], set[float]] = {}  # (family, seed) -> checkpoints scored (kimg)
    for fam, minutes, seed in [(f, b, s) for f in args.families.split(",") for b in budgets for s in seeds]:
        snap = args.snapshot_minutes or max(1.0, minutes / 3)
        cfg = TrainConfig(model=ModelConfig.for_family(fam, resolution=size, **overrides), minutes=minutes,
                          budget_clock=args.budget_clock, snapshot_minutes=snap, seed=seed,
                          keep=1000 if args.score_checkpoints else 3, content=args.content,
                          resample_copies=args.resample_copies,
                          name=f"{fam}-{minutes:g}min" + (f"-s{seed}" if seed else "")
                          + "".join(f"-{k}{v}" for k, v in overrides.items())
                          + (f"-copies{args.resample_copies}" if args.resample_copies is not None else "")
                          + ("-full" if args.content == "full" else ""))
        t = time.time()
        run = finished_run(work / "runs", cfg.name) if args.reuse_runs else None
        if run is None and args.extend and (fam, seed) in trained:
            before, prev = trained[fam, seed]
            run = train(f"{source}:train", work / "runs", cfg.with_budget(minutes - before, None),
                        resume=extended_copy(prev, work / "runs", cfg.name))
        run = run or train(f"{source}:train", work / "runs", cfg)
        trained[fam, seed] = (minutes, run)
        wall = time.time() - t
        stats = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
        end = [s for s in stats if s["event"] == "end"][-1]
        train_rate = end["kimg"] * 1000 / end["time_s"]
        gen_dir = work / "png" / run.name
        shutil.rmtree(gen_dir, ignore_errors=True)
        rates, syn, redrawn = generate(run, n_real, gen_dir, args.shape_gate, f"{split}:train")
        real_m = realism(held, syn, gen_dir.with_name(gen_dir.name + "-crops.png"), work / "cache",
                         held_key)
        score = frd(test_dir, gen_dir)
        score_raw = frd(test_dir, gen_dir.with_name(gen_dir.name + "-raw"))
        score_matched, matched_each, stable, stable_each = matched_frd(test_dir, gen_dir,
                                                                       gen_dir.with_name(gen_dir.name + "-matched"),
                                                  n_test)
        tex = texture_fd(test_dir, gen_dir)
        grids = sorted((run / "samples").glob("grid-*.png"))
        rows.append((fam, minutes, seed, end["kimg"], train_rate, rates, score, score_matched, score_raw, tex,
                     stable, real_m))
        d, sp, dt = real_m.detectability, real_m.spectrum, real_m.detail
        print(f"{fam:8s} {minutes:5g} min  seed {seed}  {end['kimg']:7.2f} kimg (best.pt {best_kimg(run):.2f})  "
              f"train {train_rate:7.1f} img/s  "
              f"gen {rates['gen']:7.1f} img/s (network only {rates['gen_raw']:.1f})  FRD {score:7.3f} "
              f"(size-matched {score_matched:.3f} = mean of {spread(matched_each)}; without float-noise features "
              f"{stable:.3f} = mean of {spread(stable_each)}; raw background {score_raw:.3f}; floor {floor:.3f})  "
              f"texture FD {tex:.2f} (floor {tex_floor:.2f})  "
              f"shape gate {'off' if redrawn is None else f'on, {redrawn:.1%} redrawn'}  "
              f"wall {wall:.0f}s  load {os.getloadavg()[0]:.1f}  grid {grids[-1] if grids else None}\n"
              f"         realism: detectability AUC {d.synthetic.auc:.3f} [{d.synthetic.ci_low:.3f}, "
              f"{d.synthetic.ci_high:.3f}] (texture view {view_auc(d, 'texture')}, "
              f"layout view {view_auc(d, 'layout')}; "
              f"floor {d.floor.auc:.3f} [{d.floor.ci_low:.3f}, {d.floor.ci_high:.3f}]"
              f"{' = mean of ' + '/'.join(f'{a:.3f}' for a in d.floor.split_aucs) if d.floor.split_aucs else ''}, "
              f"{d.synthetic.seconds + d.floor.seconds:.0f}s)  beta {sp.synthetic.median:.2f} vs real "
              f"{sp.real.median:.2f}  high-pass ratio {dt.ratio:.2f} [{dt.ci_low:.2f}, {dt.ci_high:.2f}]  "
              f"verdict {real_m.verdict.status}\n         {local_texture_line(real_m.local_texture)}\n"
              f"         {outline_line(real_m.outline)}", flush=True)
        if args.score_checkpoints:
            score_checkpoints(run, n_real, held, work, held_key, scored.setdefault((fam, seed), set()), real_m,
                              args.shape_gate, f"{split}:train")
    print(f"\nFRD vs the {n_test} held-back films; floors: two real halves {floor:.3f}, held-back vs training "
          f"{floor_th:.3f}, held-back vs {n_test} training films {floor_matched:.3f}; texture FD floors: two real "
          f"halves {tex_floor:.2f}, held-back vs training {tex_floor_th:.2f}")
    print(f"realism vs the {n_test} held-back films; real-vs-real: detectability = the floor column (two halves "
          f"of the held-back films, the mean over random halvings), beta difference {beta_rr:+.2f}, "
          f"high-pass energy ratio {hp_rr:.2f} (training "
          f"vs held-back films); beta of the held-back films {rows[0][-1].spectrum.real.median:.2f}" if rows else "")
    print("| family | budget (min) | seed | kimg | train img/s | gen img/s | gen img/s, network only | FRD vs held-back "
          "| FRD, size-matched | FRD floor | texture FD | detectability AUC [CI] | floor AUC [CI] | beta syn (real) "
          "| high-pass ratio [CI] | atypical outlines (AUC) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for fam, m, seed, k, tr, r, s_, sm, sr, tx, _, rm in rows:
        d, sp, dt = rm.detectability, rm.spectrum, rm.detail
        print(f"| {fam} | {m:g} | {seed} | {k:.2f} | {tr:.1f} | {r['gen']:.1f} | {r['gen_raw']:.1f} | {s_:.3f} | {sm:.3f} "
              f"| {floor:.3f} | {tx:.2f} | {d.synthetic.auc:.3f} [{d.synthetic.ci_low:.2f}, {d.synthetic.ci_high:.2f}] "
              f"| {d.floor.auc:.3f} [{d.floor.ci_low:.2f}, {d.floor.ci_high:.2f}] | {sp.synthetic.median:.2f} "
              f"({sp.real.median:.2f}) | {dt.ratio:.2f} [{dt.ci_low:.2f}, {dt.ci_high:.2f}] | {atypical_cell(rm.outline)} |")
    if len(seeds) > 1:
        print(seed_summary(rows))
    print(targets.report([figures(r, floor_matched, floors["matched_stable"]) for r in rows], size, args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
