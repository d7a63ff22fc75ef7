"""Provenance under tampering and interruption (issue 20): every file under a set counts,
temporaries are never signed, detect names them, files honour the umask, broken pipes."""
from __future__ import annotations

import io
import os
import stat

import pytest

from mammosynth.cli import main
from mammosynth.provenance import detect_paths, sign_set, verify_set

from prov_helpers import write_set

pytestmark = pytest.mark.filterwarnings("ignore:images smaller than")


def test_hidden_tmp_file_added_after_signing_is_tampering(signed_set, keydir):
    (signed_set / "images" / ".payload.tmp").write_bytes(b"smuggled")
    rep = verify_set(signed_set, keydir)
    assert not rep.ok and rep.added == ["images/.payload.tmp"]


def test_symlinked_image_added_after_signing_is_tampering(signed_set, keydir, tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes((signed_set / "images" / "syn_0000.png").read_bytes())
    (signed_set / "images" / "syn_0099.png").symlink_to(outside)
    (signed_set / "more").symlink_to(tmp_path, target_is_directory=True)
    rep = verify_set(signed_set, keydir)
    assert not rep.ok
    assert "images/syn_0099.png" in rep.added and "more" in rep.added
    assert any("symbolic link" in e for e in rep.errors)


def test_signed_file_replaced_by_a_symlink_to_the_same_bytes_fails(signed_set, keydir, tmp_path):
    target = signed_set / "images" / "syn_0001.png"
    copy = tmp_path / "copy.png"
    copy.write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(copy)
    rep = verify_set(signed_set, keydir)
    assert not rep.ok and any("syn_0001.png" in e and "symbolic link" in e for e in rep.errors)


def test_temporaries_are_never_signed(tmp_path, keydir):
    root = write_set(tmp_path / "set", key=keydir)
    (root / "images" / ".syn_0003.png.ab12cd.tmp.png").write_bytes(b"")  # kill -9 during a write
    with pytest.raises(ValueError, match=r"\.syn_0003\.png\.ab12cd\.tmp\.png"):
        sign_set(root, key=keydir)


def test_generate_removes_its_temporaries_before_signing(tiny_pipe_for_prov, tmp_path):
    import json

    from mammosynth.sampling import GenerateConfig, generate

    out = tmp_path / "syn"
    generate(None, 2, out, GenerateConfig(), pipe=tiny_pipe_for_prov)
    (out / "images" / ".syn-0-000002.png.k2j3.tmp.png").write_bytes(b"")  # a killed rerun's leftover
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / ".best.pt.q1w2.tmp.pt").write_bytes(b"")
    generate(None, 3, out, GenerateConfig(), pipe=tiny_pipe_for_prov)
    files = json.loads((out / "provenance.json").read_text())["files"]
    assert not [f for f in files if ".tmp" in f]
    assert verify_set(out).ok


def test_detect_skips_and_names_temporaries(signed_set, capsys):
    tmp = signed_set / "images" / ".syn_0000.png.zz9.tmp.png"
    tmp.write_bytes(b"")
    results = detect_paths([signed_set])
    skipped = [r for r in results if r.get("skipped")]
    assert [r["path"] for r in skipped] == [str(tmp)]
    assert not [r for r in results if "error" in r]
    assert main(["detect", str(signed_set), "--no-crop-search"]) == 5
    out = capsys.readouterr().out
    assert "skipped" in out and tmp.name in out


def test_set_files_honour_the_umask_keys_stay_private(tmp_path):
    from mammosynth.provenance.keys import new_keypair

    old = os.umask(0o022)
    try:
        priv, _ = new_keypair(tmp_path / "keys")
        root = write_set(tmp_path / "set", key=tmp_path / "keys")
    finally:
        os.umask(old)
    for rel in ("images/syn_0000.png", "manifest.jsonl", "dataset.json", "provenance.json", "provenance.json.sig"):
        assert stat.S_IMODE(os.stat(root / rel).st_mode) == 0o644, rel
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600


class _ClosedPipe(io.StringIO):
    def write(self, s):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_verify_into_a_closed_pipe_exits_quietly(signed_set, monkeypatch, capsys):
    import sys

    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    rc = main(["verify", str(signed_set)])
    monkeypatch.undo()
    assert rc == 141
    assert capsys.readouterr().err == ""


def test_verify_piped_to_head_has_no_traceback(tmp_path, keydir):
    import subprocess
    import sys

    root = write_set(tmp_path / "set", key=keydir)
    for i in range(3000):  # enough output to overflow the pipe after head has gone
        (root / "images" / f"added_{i:05d}.txt").write_text("x")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run(f"'{sys.executable}' -m mammosynth verify '{root}' | head -1", shell=True,
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.stdout.startswith(str(root))
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
