"""Ed25519 signing keys: create, load, locate the default pair, fingerprint.

A key directory holds ``private.pem`` (PKCS#8, unencrypted, mode 0600) and ``public.pem``
(SubjectPublicKeyInfo). The default directory is ``$MAMMOSYNTH_HOME/keys``
(``MAMMOSYNTH_HOME`` defaults to ``~/.config/mammosynth``).
"""
from __future__ import annotations

import base64
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

PRIVATE_NAME = "private.pem"
PUBLIC_NAME = "public.pem"


def mammosynth_home() -> Path:
    """``$MAMMOSYNTH_HOME`` or ``~/.config/mammosynth``."""
    return Path(os.environ.get("MAMMOSYNTH_HOME") or Path.home() / ".config" / "mammosynth")


def default_key_dir() -> Path:
    return mammosynth_home() / "keys"


def raw_public_bytes(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Any) -> str:
    """Fingerprint: first 16 hex chars of SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(raw_public_bytes(public_key)).hexdigest()[:16]


def public_key_b64(public_key: Any) -> str:
    return base64.b64encode(raw_public_bytes(public_key)).decode()


def new_keypair(out_dir: str | os.PathLike, overwrite: bool = False) -> tuple[Path, Path]:
    """Create an Ed25519 pair in ``out_dir``; returns (private path, public path).

    Refuses to replace an existing private key unless ``overwrite``.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    out = Path(out_dir)
    priv_path, pub_path = out / PRIVATE_NAME, out / PUBLIC_NAME
    if priv_path.exists() and not overwrite:
        raise FileExistsError(f"{priv_path}: a private key already exists; refusing to overwrite it")
    out.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(out, 0o700)
    except OSError:  # pragma: no cover - e.g. a directory owned by someone else
        pass
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    if priv_path.exists():
        priv_path.unlink()
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(priv_path, 0o600)
    pub_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv_path, pub_path


def _resolve(path: str | os.PathLike, name: str) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / name
    if not p.is_file():
        raise FileNotFoundError(f"{p}: key file not found")
    return p


def load_private_key(path: str | os.PathLike) -> Any:
    """An Ed25519 private key from a PEM file or a key directory."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    p = _resolve(path, PRIVATE_NAME)
    try:
        key = serialization.load_pem_private_key(p.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{p}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{p}: not an Ed25519 private key ({type(key).__name__})")
    return key


def load_public_key(path: str | os.PathLike) -> Any:
    """An Ed25519 public key from a PEM file (public or private) or a key directory."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    p = Path(path)
    if p.is_dir():
        p = p / PUBLIC_NAME if (p / PUBLIC_NAME).is_file() else p / PRIVATE_NAME
    if not p.is_file():
        raise FileNotFoundError(f"{p}: key file not found")
    data = p.read_bytes()
    try:
        if b"PRIVATE KEY" in data:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{p}: not a PEM Ed25519 key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{p}: not an Ed25519 public key ({type(key).__name__})")
    return key


def signing_key(key: str | os.PathLike | None) -> Any:
    """The private key to sign with: ``key`` (directory or PEM file), or the default pair,
    created on first use (said on stderr)."""
    if key is not None:
        return load_private_key(key)
    kdir = default_key_dir()
    if (kdir / PRIVATE_NAME).is_file():
        print(f"mammosynth: signing with the default key {kdir / PRIVATE_NAME}", file=sys.stderr)
    else:
        new_keypair(kdir)
        print(f"mammosynth: created a default signing key pair in {kdir} (public key: {kdir / PUBLIC_NAME}); "
              "share the public key with whoever verifies your sets", file=sys.stderr)
    return load_private_key(kdir)
