"""generate(): prepared-dataset output, index reproducibility, resume, mixes, formats, CLI."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from mammosynth.cli import main
from mammosynth.data.prepared import PreparedDataset
from mammosynth.provenance import mark_image
from mammosynth.sampling import GenerateConfig, generate

from sampling_helpers import assert_close_u16


# tiny test images are below the watermark's minimum size; provenance says so once per image
pytestmark = pytest.mark.filterwarnings("ignore:images smaller than")

def _by_id(path):
    ds = PreparedDataset(path)
    return {r.image_id: (r, ds.image(r)) for r in ds}


def test_generate_writes_a_labelled_synthetic_set(tiny_pipe, tmp_path):
    out = generate(None, 6, tmp_path / "syn", GenerateConfig(seed=2, batch=4), pipe=tiny_pipe)
    ds = PreparedDataset(out)
    assert ds.kind == "synthetic" and len(ds) == 6
    assert sorted(r.image_id for r in ds) == [f"syn-2-{i:06d}" for i in range(6)]
    r = ds[0]
    assert r.synthetic and r.split is None and r.patient_id.startswith("synthetic-")
    assert r.laterality == "R" and r.preprocessing["flipped"] is False
    assert r.generation["seed"] == 2 and r.generation["index"] == 0
    assert r.generation["checkpoint_sha256"] == "0" * 64 and r.generation["run"] == "00001-tiny"
    assert r.generation["conditions"] == {"density": r.density, "finding": r.finding_kind, "view": r.view}
    for rec in ds:
        if rec.findings:
            assert rec.findings[0].pathology == "unknown" and rec.findings[0].box is None
    assert ds.image(0).dtype == np.uint16 and ds.image(0).shape == (16, 16)
    info = ds.info
    assert info["complete"] is True
    assert info["settings"]["seed"] == 2
    assert info["settings"]["generator"]["checkpoint_sha256"] == "0" * 64
    assert info["settings"]["mix"]["proportions"]["density"]["B"] == pytest.approx(0.4)
    # the images are the pipeline's images (marked by provenance) with the same labels
    direct = tiny_pipe(n=6, seed=2, batch_size=4)
    for i, (im, lab) in enumerate(zip(direct.images, direct.labels)):
        rec, stored = _by_id(out)[f"syn-2-{i:06d}"]
        assert np.array_equal(stored, mark_image(im, rec, rec.generation)[0])
        assert (rec.density, rec.finding_kind, rec.view) == (lab["density"], lab["finding"], lab["view"])


def test_image_i_does_not_depend_on_n_or_batch(tiny_pipe, tmp_path):
    a = _by_id(generate(None, 10, tmp_path / "a", GenerateConfig(batch=4), pipe=tiny_pipe))
    b = _by_id(generate(None, 7, tmp_path / "b", GenerateConfig(batch=3), pipe=tiny_pipe))
    assert set(b) <= set(a)
    for k, (rec, im) in b.items():
        assert rec.generation["conditions"] == a[k][0].generation["conditions"]
        assert_close_u16(im, a[k][1])


def test_interrupted_run_completes_exactly(tiny_pipe, tmp_path):
    ref = _by_id(generate(None, 10, tmp_path / "ref", GenerateConfig(batch=4), pipe=tiny_pipe))

    class Stop(Exception):
        pass

    def stop_after_6(i, rec):
        if i == 5:
            raise Stop

    out = tmp_path / "cut"
    with pytest.raises(Stop):
        generate(None, 10, out, GenerateConfig(batch=4), pipe=tiny_pipe, callback=stop_after_6)
    assert json.loads((out / "dataset.json").read_text())["complete"] is False
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 6
    # also lose the manifest row of image 2 (its file stays): it must be redone, not duplicated
    lines = (out / "manifest.jsonl").read_text().splitlines()
    (out / "manifest.jsonl").write_text("\n".join(x for x in lines if "syn-0-000002" not in x) + "\n")
    seen = []
    generate(None, 10, out, GenerateConfig(batch=4), pipe=tiny_pipe, callback=lambda i, r: seen.append(i))
    assert seen == [2, 6, 7, 8, 9]
    ids = [json.loads(x)["image_id"] for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(ids) == 10 and sorted(ids) == sorted(ref)
    got = _by_id(out)
    for k in ref:
        assert np.array_equal(got[k][1], ref[k][1]), k
        assert got[k][0].sha256 == ref[k][0].sha256
    # a second rerun has nothing to do
    seen.clear()
    generate(None, 10, out, GenerateConfig(batch=4), pipe=tiny_pipe, callback=lambda i, r: seen.append(i))
    assert seen == []


def test_writer_threads_do_not_change_the_set(tiny_pipe, tmp_path):
    one = generate(None, 11, tmp_path / "one", GenerateConfig(batch=2, writers=1), pipe=tiny_pipe)
    many = generate(None, 11, tmp_path / "many", GenerateConfig(batch=2, writers=3), pipe=tiny_pipe)
    # rows in index order, byte-identical manifests and files
    rows = [json.loads(x)["image_id"] for x in (many / "manifest.jsonl").read_text().splitlines()]
    assert rows == [f"syn-0-{i:06d}" for i in range(11)]
    assert (one / "manifest.jsonl").read_bytes() == (many / "manifest.jsonl").read_bytes()
    with pytest.raises(ValueError, match="writers must be >= 1"):
        GenerateConfig(writers=0)


def test_failed_write_keeps_the_images_before_it(tiny_pipe, tmp_path, monkeypatch):
    import mammosynth.provenance as prov

    real_mark = prov.mark_image

    def failing_mark(image, record, generation):
        if record.generation["index"] == 3:
            raise OSError("disk full (test)")
        return real_mark(image, record, generation)

    out = tmp_path / "cut"
    monkeypatch.setattr(prov, "mark_image", failing_mark)
    with pytest.raises(OSError, match="disk full"):
        generate(None, 8, out, GenerateConfig(batch=2, writers=2), pipe=tiny_pipe)
    ids = [json.loads(x)["image_id"] for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert ids == ["syn-0-000000", "syn-0-000001", "syn-0-000002"]  # committed in order up to the failure
    monkeypatch.setattr(prov, "mark_image", real_mark)
    seen = []
    generate(None, 8, out, GenerateConfig(batch=2, writers=2), pipe=tiny_pipe, callback=lambda i, r: seen.append(i))
    assert seen == [3, 4, 5, 6, 7]
    ref = generate(None, 8, tmp_path / "ref", GenerateConfig(batch=2), pipe=tiny_pipe)
    assert (out / "manifest.jsonl").read_bytes() == (ref / "manifest.jsonl").read_bytes()


def test_mix_proportions_are_respected(tiny_pipe, tmp_path):
    cfg = GenerateConfig(mix={"finding": "mass:0.3,none:0.7", "density": "A:0.5,D:0.5",
                              "laterality": "L:0.5,R:0.5"}, batch=32)
    ds = PreparedDataset(generate(None, 100, tmp_path / "m", cfg, pipe=tiny_pipe))
    finding = Counter(r.finding_kind for r in ds)
    density = Counter(r.density for r in ds)
    lat = Counter(r.laterality for r in ds)
    assert abs(finding["mass"] - 30) <= 3 and finding["mass"] + finding["none"] == 100
    assert abs(density["A"] - 50) <= 3 and density["A"] + density["D"] == 100
    assert abs(lat["L"] - 50) <= 3
    assert all(r.preprocessing["flipped"] == (r.laterality == "L") for r in ds)
    # the view axis (no mix) follows the training frequencies (CC 0.5 / MLO 0.5)
    assert abs(Counter(r.view for r in ds)["CC"] - 50) <= 3


def test_bad_mix_and_other_settings_are_refused(tiny_pipe, tmp_path):
    with pytest.raises(ValueError, match="unknown value 'E'"):
        generate(None, 2, tmp_path / "x", GenerateConfig(mix={"density": "E:1"}), pipe=tiny_pipe)
    with pytest.raises(ValueError, match="sum to 1"):
        generate(None, 2, tmp_path / "x", GenerateConfig(mix={"density": "A:0.2"}), pipe=tiny_pipe)
    out = generate(None, 3, tmp_path / "s", GenerateConfig(), pipe=tiny_pipe)
    with pytest.raises(ValueError, match="other settings"):
        generate(None, 3, out, GenerateConfig(mix={"density": "A:1"}), pipe=tiny_pipe)
    with pytest.raises(ValueError, match="beyond the 2 requested"):
        generate(None, 2, out, GenerateConfig(), pipe=tiny_pipe)
    generate(None, 2, out, GenerateConfig(mix={"density": "A:1"}, overwrite=True), pipe=tiny_pipe)
    ds = PreparedDataset(out)
    assert len(ds) == 2 and {r.density for r in ds} == {"A"}


def test_overwrite_refuses_foreign_directories(tiny_pipe, tmp_path, tiny_dataset):
    with pytest.raises(ValueError, match="only replaces synthetic sets"):
        generate(None, 2, tiny_dataset, GenerateConfig(overwrite=True), pipe=tiny_pipe)
    other = tmp_path / "docs"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a synthetic set"):
        generate(None, 2, other, GenerateConfig(overwrite=True), pipe=tiny_pipe)
    assert (other / "notes.txt").is_file()


@pytest.mark.parametrize("fmt, suffix", [("png8", ".png"), ("tiff", ".tif")])
def test_other_formats(tiny_pipe, tmp_path, fmt, suffix):
    ds = PreparedDataset(generate(None, 2, tmp_path / fmt, GenerateConfig(fmt=fmt), pipe=tiny_pipe))
    assert ds.info["format"] == fmt and ds[0].file.endswith(suffix)
    rec = ds[0]
    ref = mark_image(tiny_pipe(n=2).images[0], rec, rec.generation)[0]
    assert_close_u16(ds.image(0), ref, tol=128 if fmt == "png8" else 0)


def test_every_image_is_marked_and_the_set_finalised(tiny_pipe, tmp_path, monkeypatch):
    import mammosynth.provenance as prov

    marked, finalised = [], []

    def mark(image, record, generation):
        marked.append(record.image_id)
        assert generation == record.generation
        return image, {"mammosynth:test": record.image_id}

    monkeypatch.setattr(prov, "mark_image", mark)
    monkeypatch.setattr(prov, "finalize_synthetic_set", lambda root, key=None: finalised.append((root, key)))
    from mammosynth.provenance.keys import new_keypair

    keydir = str(new_keypair(tmp_path / "keys")[0].parent)  # checked before any image is made
    out = generate(None, 3, tmp_path / "p", GenerateConfig(key=keydir), pipe=tiny_pipe)
    assert sorted(marked) == [f"syn-0-{i:06d}" for i in range(3)]
    assert finalised == [(out, keydir)]
    from PIL import Image

    with Image.open(out / "images" / "syn-0-000001.png") as im:
        assert im.text["mammosynth:test"] == "syn-0-000001"


def test_dicom_format_uses_the_provenance_writer(tiny_pipe, tmp_path):
    import mammosynth.provenance as prov

    from mammosynth.sampling.generate import make_record

    sample = tiny_pipe(n=1)
    try:
        prov.write_synthetic_dicom(tmp_path / "probe.dcm", sample.images[0],
                                   make_record(tiny_pipe, 0, 0, sample.labels[0]))
    except NotImplementedError:
        pytest.skip("provenance.write_synthetic_dicom not implemented yet")
    ds = PreparedDataset(generate(None, 2, tmp_path / "d", GenerateConfig(fmt="dicom"), pipe=tiny_pipe))
    assert ds[0].file.endswith(".dcm") and (ds.root / ds[0].file).stat().st_size > 0


def test_cli_generate_from_a_pretrained_dir(tiny_pipe, tmp_path, capsys):
    pre = tiny_pipe.save_pretrained(tmp_path / "pre")
    out = tmp_path / "cli"
    rc = main(["generate", str(pre), "--n", "5", "--out", str(out), "--mix", "finding=mass:1",
               "--seed", "9", "--batch", "2"])
    assert rc == 0
    assert "wrote 5 synthetic images" in capsys.readouterr().out
    ds = PreparedDataset(out)
    assert {r.finding_kind for r in ds} == {"mass"} and ds[0].image_id.startswith("syn-9-")
    rc = main(["generate", str(pre), "--n", "5", "--out", str(tmp_path / "bad"), "--mix", "view=XX:1"])
    assert rc == 1
    assert "unknown value 'XX'" in capsys.readouterr().err
    rc = main(["generate", str(tmp_path / "missing"), "--n", "1", "--out", str(tmp_path / "o")])
    assert rc == 1 and "missing" in capsys.readouterr().err


def test_manifest_records_the_background_step_per_image(tiny_pipe, tmp_path):
    ds = PreparedDataset(generate(None, 6, tmp_path / "d", GenerateConfig(), pipe=tiny_pipe))
    removed = tiny_pipe(n=6, seed=0).background_removed
    assert [("remove_background" in r.preprocessing["steps"]) for r in ds.records] == removed
    kept = PreparedDataset(generate(None, 2, tmp_path / "k", GenerateConfig(remove_background=False), pipe=tiny_pipe))
    assert all(r.preprocessing["steps"] == [] for r in kept.records)
    assert json.loads((tmp_path / "k" / "dataset.json").read_text())["settings"]["remove_background"] is False


def test_chunks_cover_the_missing_batches_aligned():
    from mammosynth.sampling.generate import _chunks

    assert _chunks(list(range(10)), 10, 3, 2) == [(0, 6), (6, 4)]
    # batch 1 (3..5) and batch 3 (9) hold missing images; batch 2 is complete: two calls
    assert _chunks([4, 9], 10, 3, 4) == [(3, 3), (9, 1)]
    assert _chunks([0, 1, 2, 3, 4, 5, 6], 7, 2, 8) == [(0, 7)]
    assert _chunks([], 5, 2, 4) == []
