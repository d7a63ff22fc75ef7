"""Signed manifests: every kind of tampering is detected and named."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import stat

import pytest

from mammosynth.io.images import read_image, write_image
from mammosynth.provenance import verify_set
from mammosynth.provenance.keys import key_id, load_public_key, new_keypair
from mammosynth.provenance.manifest import MANIFEST_NAME, SIGNATURE_NAME, leaf_hash, merkle_root, node_hash


def test_keypair_permissions_and_refusal(tmp_path):
    priv, pub = new_keypair(tmp_path / "k")
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    assert b"PRIVATE KEY" in priv.read_bytes() and b"PUBLIC KEY" in pub.read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        new_keypair(tmp_path / "k")
    assert len(key_id(load_public_key(pub))) == 16


def test_merkle_root_is_domain_separated_rfc6962():
    files = {"a": "11" * 32, "b": "22" * 32, "c": "33" * 32}
    la, lb, lc = (leaf_hash(p, h) for p, h in sorted(files.items()))
    assert merkle_root(files) == node_hash(node_hash(la, lb), lc).hex()
    assert la == hashlib.sha256(b"\x00a\x00" + bytes.fromhex("11" * 32)).digest()
    assert merkle_root({}) == hashlib.sha256(b"").hexdigest()
    assert merkle_root({"a": "11" * 32}) == la.hex()
    # a leaf can never equal an inner node of the same data
    assert node_hash(la, lb) != hashlib.sha256(la + lb).digest()


def test_intact_set_verifies(signed_set, keydir):
    manifest = json.loads((signed_set / MANIFEST_NAME).read_text())
    assert manifest["synthetic"] is True
    assert manifest["model"]["checkpoint_sha256"] == "ab" * 32
    assert manifest["training_dataset"]["manifest_sha256"] == "cd" * 32
    assert set(manifest["files"]) == {"dataset.json", "manifest.jsonl", "images/syn_0000.png",
                                      "images/syn_0001.png", "images/syn_0002.png"}
    rep = verify_set(signed_set, public_key=keydir / "public.pem")
    assert rep.ok, rep.summary()
    assert rep.signature_ok and rep.merkle_ok and rep.files_checked == 5 and rep.key_source == "given"
    assert verify_set(signed_set).ok  # embedded key: integrity only


def test_one_changed_pixel_is_named(signed_set, keydir):
    path = signed_set / "images" / "syn_0001.png"
    img, meta = read_image(path)
    img = img.copy()
    img[10, 10] ^= 1
    write_image(path, img, text=meta["text"])
    rep = verify_set(signed_set, keydir)
    assert not rep.ok and rep.modified == ["images/syn_0001.png"]
    assert rep.signature_ok and not rep.added and not rep.missing
    assert "MODIFIED images/syn_0001.png" in rep.summary()


def test_flipped_byte_is_named(signed_set, keydir):
    path = signed_set / "manifest.jsonl"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    rep = verify_set(signed_set, keydir)
    assert rep.modified == ["manifest.jsonl"] and not rep.ok


def test_added_and_removed_files_are_named(signed_set, keydir):
    (signed_set / "images" / "extra.png").write_bytes(b"not really a png")
    (signed_set / "images" / "syn_0002.png").unlink()
    rep = verify_set(signed_set, keydir)
    assert rep.added == ["images/extra.png"] and rep.missing == ["images/syn_0002.png"]
    assert not rep.ok and "ADDED    images/extra.png" in rep.summary() and "MISSING  images/syn_0002.png" in rep.summary()


def test_edited_manifest_breaks_signature(signed_set, keydir):
    path = signed_set / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    manifest["files"]["images/syn_0000.png"] = "00" * 32  # hide a swapped image
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    rep = verify_set(signed_set, keydir)
    assert not rep.signature_ok and not rep.ok
    assert not rep.merkle_ok  # the root no longer matches the edited list either
    assert any("signature" in e for e in rep.errors)


def test_wrong_key_is_reported(signed_set, tmp_path):
    _, other_pub = new_keypair(tmp_path / "other")
    rep = verify_set(signed_set, other_pub)
    assert not rep.signature_ok and not rep.ok
    assert any("wrong key" in e for e in rep.errors)


def test_resigned_with_attackers_key_fails_against_real_key(signed_set, keydir, tmp_path):
    from mammosynth.provenance.keys import load_private_key

    new_keypair(tmp_path / "attacker")
    attacker = load_private_key(tmp_path / "attacker")
    raw = (signed_set / MANIFEST_NAME).read_bytes()
    sig = json.loads((signed_set / SIGNATURE_NAME).read_text())
    sig["signature"] = base64.b64encode(attacker.sign(raw)).decode()
    sig["key_id"] = key_id(attacker.public_key())
    (signed_set / SIGNATURE_NAME).write_text(json.dumps(sig))
    assert not verify_set(signed_set, keydir).ok


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"format": "other"}', "not a mammosynth-provenance/1 manifest"),
    ('{"format": "mammosynth-provenance/1", "files": {"a": "xyz"}, "merkle_root": "00"}', "'files' must map"),
])
def test_malformed_manifest_gives_clear_error(signed_set, content, message):
    (signed_set / MANIFEST_NAME).write_text(content)
    with pytest.raises(ValueError, match=message) as exc:
        verify_set(signed_set)
    assert str(signed_set / MANIFEST_NAME) in str(exc.value)


def test_missing_manifest_and_signature(tmp_path, signed_set):
    with pytest.raises(FileNotFoundError, match="no provenance manifest"):
        verify_set(tmp_path / "keys")
    (signed_set / SIGNATURE_NAME).unlink()
    with pytest.raises(FileNotFoundError, match="signature file missing"):
        verify_set(signed_set)


def test_default_key_is_created_and_announced(tmp_path, monkeypatch, capsys):
    from prov_helpers import write_set

    monkeypatch.setenv("MAMMOSYNTH_HOME", str(tmp_path / "home"))
    root = write_set(tmp_path / "s", n=1, key=None)
    err = capsys.readouterr().err
    assert "created a default signing key pair" in err and str(tmp_path / "home" / "keys") in err
    assert (tmp_path / "home" / "keys" / "private.pem").is_file()
    assert verify_set(root, tmp_path / "home" / "keys" / "public.pem").ok
    write_set(tmp_path / "s2", n=1, key=None)
    assert "signing with the default key" in capsys.readouterr().err
