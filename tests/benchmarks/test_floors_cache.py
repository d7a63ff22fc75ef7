"""benchmarks/train_gan.py computes the real-vs-real floors once per set of films."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import train_gan  # noqa: E402


def test_floors_are_computed_once_per_key_and_recomputed_when_damaged(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"frd": 6.5 + len(calls), "matched_each": [4.8, 7.0]}

    first = train_gan.cached_floors(tmp_path / "cache", "k1", compute)
    assert first == {"frd": 7.5, "matched_each": [4.8, 7.0]}
    assert train_gan.cached_floors(tmp_path / "cache", "k1", compute) == first and len(calls) == 1
    assert train_gan.cached_floors(tmp_path / "cache", "k2", compute)["frd"] == 8.5  # another key: computed
    from mammosynth.metrics.cache import FeatureCache, cache_key

    FeatureCache(tmp_path / "cache").path(cache_key(floors="k1")).write_text("{not an npz")
    assert train_gan.cached_floors(tmp_path / "cache", "k1", compute)["frd"] == 9.5 and len(calls) == 3


def test_png_digest_follows_the_films_bytes_and_names(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "00000.png").write_bytes(b"film")
    assert train_gan.png_digest(a) == train_gan.png_digest(b)
    (b / "00000.png").write_bytes(b"film!")
    assert train_gan.png_digest(a) != train_gan.png_digest(b)
    (b / "00000.png").rename(b / "00001.png")
    (b / "00001.png").write_bytes(b"film")
    assert train_gan.png_digest(a) != train_gan.png_digest(b)
    assert train_gan.png_digest(a, b) != train_gan.png_digest(b, a)
