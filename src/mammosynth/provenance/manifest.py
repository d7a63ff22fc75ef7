"""Signed provenance manifests of synthetic sets: SHA-256 per file, Merkle root, Ed25519.

Layout (in the set's root)::

    provenance.json      the manifest (format ``mammosynth-provenance/1``), UTF-8 JSON
    provenance.json.sig  {"algorithm": "Ed25519", "key_id", "public_key", "signature"} (base64);
                         the signature covers the exact bytes of provenance.json

The manifest lists every file under the root (sorted by POSIX relative path) except the
two files above, with its SHA-256. Merkle tree (RFC 6962 shape, SHA-256, domain-separated):

* leaf  = SHA-256(0x00 || utf8(path) || 0x00 || file_sha256 (32 raw bytes))
* node  = SHA-256(0x01 || left || right); a list of n > 1 leaves splits at the largest
  power of two k < n: root(D) = node(root(D[:k]), root(D[k:]))
* empty set: SHA-256 of the empty string

The 0x00 / 0x01 prefixes keep a leaf from being passed off as an inner node (second
pre-image attacks). :func:`verify_set` checks the signature, recomputes the Merkle root
from the listed hashes, and rehashes every file, naming each modified, added or missing one.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..data.prepared import DATASET_JSON, atomic_write_text, sha256_file

FORMAT = "mammosynth-provenance/1"
MANIFEST_NAME = "provenance.json"
SIGNATURE_NAME = "provenance.json.sig"
EXCLUDED = {MANIFEST_NAME, SIGNATURE_NAME}


# -- Merkle tree -------------------------------------------------------------------------
def leaf_hash(path: str, file_sha256: str) -> bytes:
    return hashlib.sha256(b"\x00" + path.encode("utf-8") + b"\x00" + bytes.fromhex(file_sha256)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _root(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)  # largest power of two < n
    return node_hash(_root(leaves[:k]), _root(leaves[k:]))


def merkle_root(files: dict[str, str]) -> str:
    """Hex Merkle root over ``{relative path: sha256 hex}``, leaves sorted by path."""
    return _root([leaf_hash(p, files[p]) for p in sorted(files)]).hex()


# -- building ----------------------------------------------------------------------------
def list_files(root: Path) -> list[str]:
    """POSIX relative paths of every entry under ``root`` except the two provenance files:
    regular files, temporaries of interrupted writes, symbolic links (to files or folders,
    not followed) and other special files. :func:`sign_set` refuses to sign anything but
    regular files; :func:`verify_set` reports any entry the manifest does not list."""
    out = []
    for top, dirs, files in os.walk(root, followlinks=False):
        base = Path(top)
        links = [d for d in dirs if (base / d).is_symlink()]
        dirs[:] = [d for d in dirs if d not in links]
        for name in (*files, *links):
            rel = (base / name).relative_to(root).as_posix()
            if rel not in EXCLUDED:
                out.append(rel)
    return sorted(out)


def unsignable(root: Path, paths: list[str]) -> tuple[list[str], list[str]]:
    """(temporaries of interrupted writes, links and other non-regular files) among ``paths``."""
    from ..utils import is_temporary

    temps = [rel for rel in paths if is_temporary(Path(rel).name)]
    odd = [rel for rel in paths if (root / rel).is_symlink() or not (root / rel).is_file()]
    return temps, odd


def hash_files(root: Path, paths: list[str]) -> dict[str, str]:
    from ..utils import progress

    return {rel: sha256_file(root / rel) for rel in progress(paths, total=len(paths), desc="hash", unit="file")}


def _training_dataset(info: dict[str, Any]) -> dict[str, Any] | None:
    """Training-set hashes recorded by generate (dataset.json source.provenance.dataset)."""
    for holder in (info.get("source", {}).get("provenance", {}), info.get("settings", {}), info.get("source", {})):
        ds = holder.get("dataset") if isinstance(holder, dict) else None
        if isinstance(ds, dict):
            keep = {k: ds.get(k) for k in ("manifest_sha256", "content_hash", "path", "split", "images") if k in ds}
            if keep:
                return keep
    return None


def build_manifest(root: Path, files: dict[str, str], signer_public: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The provenance manifest of set ``root`` (dict, not yet written)."""
    from .keys import key_id, public_key_b64
    from .watermark import SCHEME, WatermarkConfig

    info: dict[str, Any] = {}
    if (root / DATASET_JSON).is_file():
        try:
            info = json.loads((root / DATASET_JSON).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{root / DATASET_JSON}: not valid JSON ({exc})") from exc
    settings = info.get("settings", {})
    generator = settings.get("generator") or info.get("source", {}).get("generator") or {}
    manifest = {
        "format": FORMAT,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "mammosynth_version": __version__,
        "set": {"name": root.name, "kind": info.get("kind"), "counts": info.get("counts", {}).get("images"),
                "complete": info.get("complete")},
        "synthetic": info.get("kind") == "synthetic",
        "generation": settings,
        "model": {"checkpoint_sha256": generator.get("checkpoint_sha256"), "run": generator.get("run"),
                  "step": generator.get("step")},
        "training_dataset": _training_dataset(info),
        "watermark": {"scheme": SCHEME,
                      "key_sha256": hashlib.sha256(WatermarkConfig().key.encode()).hexdigest()[:16]},
        "hash": "sha256",
        "merkle": "rfc6962-sha256: leaf=H(0x00|path|0x00|sha256), node=H(0x01|left|right)",
        "merkle_root": merkle_root(files),
        "files": dict(sorted(files.items())),
        "signer": {"algorithm": "Ed25519", "key_id": key_id(signer_public), "public_key": public_key_b64(signer_public)},
    }
    if extra:
        manifest.update(extra)
    return manifest


def write_signed(root: Path, manifest: dict[str, Any], private_key: Any) -> Path:
    """Write provenance.json and its detached Ed25519 signature; returns the manifest path."""
    from .keys import key_id, public_key_b64

    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    signature = private_key.sign(text.encode("utf-8"))
    pub = private_key.public_key()
    sig = {"algorithm": "Ed25519", "key_id": key_id(pub), "public_key": public_key_b64(pub),
           "signature": base64.b64encode(signature).decode()}
    atomic_write_text(root / MANIFEST_NAME, text)
    atomic_write_text(root / SIGNATURE_NAME, json.dumps(sig, indent=2) + "\n")
    return root / MANIFEST_NAME


def sign_set(root: str | os.PathLike, key: str | os.PathLike | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Hash every file of ``root``, build and sign its manifest; returns provenance.json's path."""
    from .keys import signing_key

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: set directory not found")
    paths = list_files(root)
    temps, odd = unsignable(root, paths)
    if temps:
        raise ValueError(f"{root}: holds temporary files of an interrupted write ({', '.join(temps[:3])}); "
                         "finish or rerun the command that wrote the set (or delete them), then sign")
    if odd:
        raise ValueError(f"{root}: holds symbolic links or special files ({', '.join(odd[:3])}); "
                         "a signed set holds regular files only")
    private_key = signing_key(key)
    files = hash_files(root, paths)
    return write_signed(root, build_manifest(root, files, private_key.public_key(), extra), private_key)


# -- verifying ---------------------------------------------------------------------------
@dataclass
class VerifyReport:
    """Outcome of :func:`verify_set`; ``ok`` only when every check passed."""

    root: str
    signature_ok: bool = False
    signer_key_id: str | None = None
    key_source: str = ""  # "given" or "embedded"
    merkle_ok: bool = False
    files_checked: int = 0
    modified: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.signature_ok and self.merkle_ok and not self.errors
                and not (self.modified or self.added or self.missing))

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["ok"] = self.ok
        return d

    def summary(self) -> str:
        lines = [f"{self.root}: {'INTACT' if self.ok else 'FAILED'}"]
        sig = "valid" if self.signature_ok else "INVALID"
        who = f"key {self.signer_key_id}" if self.signer_key_id else "unknown key"
        note = " (checked against the key embedded in the signature: integrity only; pass --key to check the signer)" \
            if self.key_source == "embedded" and self.signature_ok else ""
        lines.append(f"  signature: {sig}, {who}{note}")
        lines.append(f"  merkle root: {'matches' if self.merkle_ok else 'MISMATCH'}")
        lines.append(f"  files: {self.files_checked} checked, {len(self.modified)} modified, "
                     f"{len(self.added)} added, {len(self.missing)} missing")
        lines += [f"  MODIFIED {p}" for p in self.modified]
        lines += [f"  ADDED    {p}" for p in self.added]
        lines += [f"  MISSING  {p}" for p in self.missing]
        lines += [f"  ERROR    {e}" for e in self.errors]
        return "\n".join(lines)


def _load_manifest(root: Path) -> tuple[bytes, dict[str, Any], dict[str, Any]]:
    mpath, spath = root / MANIFEST_NAME, root / SIGNATURE_NAME
    if not mpath.is_file():
        raise FileNotFoundError(f"{mpath}: no provenance manifest (was the set finalised and signed?)")
    if not spath.is_file():
        raise FileNotFoundError(f"{spath}: signature file missing")
    raw = mpath.read_bytes()
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{mpath}: malformed manifest, not valid JSON ({exc})") from exc
    try:
        sig = json.loads(spath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{spath}: malformed signature file, not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{mpath}: not a {FORMAT} manifest (format {manifest.get('format') if isinstance(manifest, dict) else None!r})")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) and len(v) == 64
                                              for k, v in files.items()):
        raise ValueError(f"{mpath}: malformed manifest: 'files' must map paths to SHA-256 hex digests")
    if not isinstance(manifest.get("merkle_root"), str):
        raise ValueError(f"{mpath}: malformed manifest: 'merkle_root' missing")
    if not isinstance(sig, dict) or not isinstance(sig.get("signature"), str):
        raise ValueError(f"{spath}: malformed signature file: 'signature' missing")
    return raw, manifest, sig


def verify_set(root: str | os.PathLike, public_key: str | os.PathLike | None = None) -> VerifyReport:
    """Check a signed set: signature, Merkle root, every file's hash; added and missing files.

    ``public_key``: PEM file or key directory of the expected signer. Without it the
    signature is checked against the public key stored beside it (integrity, not identity).
    Raises FileNotFoundError / ValueError for a missing or malformed manifest.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from .keys import key_id, load_public_key

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: set directory not found")
    raw, manifest, sig = _load_manifest(root)
    rep = VerifyReport(root=str(root))
    try:
        if public_key is not None:
            pub = load_public_key(public_key)
            rep.key_source = "given"
        else:
            pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(sig.get("public_key", ""), validate=True))
            rep.key_source = "embedded"
        rep.signer_key_id = key_id(pub)
        pub.verify(base64.b64decode(sig["signature"], validate=True), raw)
        rep.signature_ok = True
    except InvalidSignature:
        claimed = sig.get("key_id")
        if public_key is not None and claimed and claimed != rep.signer_key_id:
            rep.errors.append(f"signature: made with key {claimed}, not with the given key {rep.signer_key_id} (wrong key)")
        else:
            rep.errors.append(f"signature: does not match {MANIFEST_NAME} (the manifest was edited or the signature replaced)")
    except (ValueError, TypeError) as exc:
        rep.errors.append(f"signature: unreadable ({exc})")
    files: dict[str, str] = manifest["files"]
    rep.merkle_ok = merkle_root(files) == manifest["merkle_root"]
    if not rep.merkle_ok:
        rep.errors.append("merkle root: recomputed root differs from the manifest's")
    entries = list_files(root)
    present = set(entries)
    listed = set(files)
    rep.missing = sorted(listed - present)
    rep.added = sorted(present - listed)
    _, odd = unsignable(root, entries)
    for rel in odd:  # never signed: a link may point anywhere, at any time
        rep.errors.append(f"{rel}: a symbolic link or special file, not a regular file of the set")
    for rel in sorted(listed & present):
        if rel in odd:
            continue
        rep.files_checked += 1
        if sha256_file(root / rel) != files[rel]:
            rep.modified.append(rel)
    return rep
