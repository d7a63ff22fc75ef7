"""benchmarks/train_gan.py's sample-size-matched FRD sets: disjoint, random, as many as fit."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import train_gan  # noqa: E402


def test_matched_sets_are_disjoint_random_and_as_many_as_fit(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(17):
        (src / f"{i:05d}.png").write_bytes(bytes([i]))
    dirs = train_gan.subsets(src, tmp_path / "out", 5)
    assert len(dirs) == 3  # 17 // 5, within the default cap of 3
    names = [sorted(p.name for p in d.glob("*.png")) for d in dirs]
    assert all(len(n) == 5 for n in names)
    assert len(set().union(*map(set, names))) == 15  # disjoint
    assert names[0] != [f"{i:05d}.png" for i in range(5)]  # not simply the first five
    assert all((d / n).read_bytes() == (src / n).read_bytes() for d, ns in zip(dirs, names) for n in ns)
    # deterministic, the old sets replaced, and capped
    again = train_gan.subsets(src, tmp_path / "out", 5, most=2)
    assert [sorted(p.name for p in d.glob("*.png")) for d in again] == names[:2]
    assert not (tmp_path / "out" / "2").exists()
    assert train_gan.subsets(src, tmp_path / "few", 20) == []
