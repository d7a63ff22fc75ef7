"""keys new / verify from the command line."""
from __future__ import annotations

import json
import os
import stat

from mammosynth.cli import main


def test_keys_new(tmp_path, capsys):
    assert main(["keys", "new", "--out", str(tmp_path / "k")]) == 0
    out = capsys.readouterr().out
    assert "public key" in out and "key id" in out
    assert stat.S_IMODE(os.stat(tmp_path / "k" / "private.pem").st_mode) == 0o600
    assert main(["keys", "new", "--out", str(tmp_path / "k")]) == 1  # refuses to overwrite
    assert "already exists" in capsys.readouterr().err
    assert main(["keys", "new", "--out", str(tmp_path / "k"), "--force"]) == 0


def test_verify_cli(signed_set, keydir, tmp_path, capsys):
    assert main(["verify", str(signed_set), "--key", str(keydir / "public.pem")]) == 0
    assert "INTACT" in capsys.readouterr().out
    (signed_set / "images" / "syn_0000.png").write_bytes(b"swapped")
    assert main(["verify", str(signed_set), "--json"]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] is False and rep["modified"] == ["images/syn_0000.png"]
    assert main(["verify", str(tmp_path / "nowhere")]) == 1
    assert "not found" in capsys.readouterr().err


def test_keys_without_subcommand_and_empty_detect(tmp_path, capsys):
    assert main(["keys"]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["detect", str(tmp_path / "empty")]) == 1
    assert "no image files found" in capsys.readouterr().err
