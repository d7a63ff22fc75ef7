"""Optional C2PA manifests (c2pa-python) for PNG/TIFF images of a synthetic set.

Each image gets a **sidecar** manifest store ``<image stem>.c2pa`` beside it (the image bytes
are not changed, so ``dataset.json``/``manifest.jsonl`` hashes stay valid and the signed
``provenance.json`` covers the sidecars too). The manifest has a ``c2pa.actions`` assertion
with action ``c2pa.created`` and digitalSourceType ``trainedAlgorithmicMedia``, plus an
``org.mammosynth.generation`` assertion (checkpoint hash, run, seed, index, labels), and a
hard binding (``c2pa.hash.data``) to the image bytes.

Configuration (:func:`c2pa_config`): a PEM certificate chain (signing certificate first,
then intermediates / root) and its private key, from ``MAMMOSYNTH_C2PA_CERT`` and
``MAMMOSYNTH_C2PA_KEY`` or ``$MAMMOSYNTH_HOME/c2pa/chain.pem`` and ``key.pem``; optional
``MAMMOSYNTH_C2PA_TRUST`` (or ``c2pa/trust.pem``): trust anchors for verification. The signing
certificate needs digitalSignature key usage and an extended key usage C2PA accepts
(emailProtection, documentSigning or c2pa-kp-claimSigning). Algorithms: ES256/ES384/ES512
(EC keys), Ed25519, PS256 (RSA).
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
MIME = {".png": "image/png", ".tif": "image/tiff", ".tiff": "image/tiff", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
SIDECAR_SUFFIX = ".c2pa"


@dataclass(frozen=True)
class C2paConfig:
    """Where the C2PA signing credentials are."""

    cert_chain: Path
    private_key: Path
    trust_anchors: Path | None = None


def c2pa_config() -> C2paConfig | None:
    """The configured credentials, or None when C2PA signing is not set up.

    Raises ValueError when only half of the pair is configured.
    """
    from .keys import mammosynth_home

    cert, key = os.environ.get("MAMMOSYNTH_C2PA_CERT"), os.environ.get("MAMMOSYNTH_C2PA_KEY")
    trust = os.environ.get("MAMMOSYNTH_C2PA_TRUST")
    base = mammosynth_home() / "c2pa"
    if not cert and not key and (base / "chain.pem").is_file():
        cert, key = str(base / "chain.pem"), str(base / "key.pem")
        trust = trust or (str(base / "trust.pem") if (base / "trust.pem").is_file() else None)
    if not cert and not key:
        return None
    if not (cert and key):
        raise ValueError("C2PA signing needs both a certificate chain (MAMMOSYNTH_C2PA_CERT) "
                         "and its private key (MAMMOSYNTH_C2PA_KEY)")
    for p in (cert, key, trust):
        if p and not Path(p).is_file():
            raise FileNotFoundError(f"{p}: C2PA credential file not found")
    return C2paConfig(Path(cert), Path(key), Path(trust) if trust else None)


def _import_c2pa() -> Any:
    try:
        import c2pa
    except ImportError as exc:  # pragma: no cover - optional extra
        raise RuntimeError("C2PA manifests need the 'c2pa-python' package (pip install 'mammosynth[c2pa]')") from exc
    return c2pa


def _algorithm(key_pem: bytes, where: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    c2pa = _import_c2pa()
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: not an unencrypted PEM private key ({exc})") from exc
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg = {256: "ES256", 384: "ES384", 521: "ES512"}.get(key.curve.key_size)
        if alg:
            return getattr(c2pa.C2paSigningAlg, alg)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return c2pa.C2paSigningAlg.ED25519
    if isinstance(key, rsa.RSAPrivateKey):
        return c2pa.C2paSigningAlg.PS256
    raise ValueError(f"{where}: key type {type(key).__name__} is not usable for C2PA (EC P-256/384/521, Ed25519, RSA)")


def make_signer(cfg: C2paConfig) -> Any:
    c2pa = _import_c2pa()
    key_pem = cfg.private_key.read_bytes()
    info = c2pa.C2paSignerInfo(alg=_algorithm(key_pem, cfg.private_key), sign_cert=cfg.cert_chain.read_bytes(),
                               private_key=key_pem, ta_url=None)
    try:
        return c2pa.Signer.from_info(info)
    except c2pa.C2paError as exc:
        raise ValueError(f"{cfg.cert_chain}: C2PA rejected the certificate chain / key ({exc})") from exc


def _context(trust_pem: str | None = None) -> Any:
    c2pa = _import_c2pa()
    settings: dict[str, Any] = {"builder": {"thumbnail": {"enabled": False}}}
    if trust_pem:
        settings["trust"] = {"trust_anchors": trust_pem}
    return c2pa.Context.from_dict(settings)


def manifest_definition(title: str, mime: str, generation: dict[str, Any] | None) -> dict[str, Any]:
    """The C2PA manifest definition of one synthetic image."""
    assertions: list[dict[str, Any]] = [{
        "label": "c2pa.actions",
        "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE,
                              "softwareAgent": {"name": "mammosynth", "version": __version__}}]},
    }]
    if generation:
        assertions.append({"label": "org.mammosynth.generation", "data": generation})
    return {"claim_generator_info": [{"name": "mammosynth", "version": __version__}], "title": title,
            "format": mime, "assertions": assertions}


def sidecar_path(image: Path) -> Path:
    return image.with_suffix(SIDECAR_SUFFIX)


def sign_image(image: str | os.PathLike, signer: Any, generation: dict[str, Any] | None = None) -> Path:
    """Write the sidecar C2PA manifest store of ``image``; returns its path. The image is unchanged."""
    c2pa = _import_c2pa()
    image = Path(image)
    mime = MIME.get(image.suffix.lower())
    if mime is None:
        raise ValueError(f"{image}: C2PA manifests are written for PNG/TIFF/JPEG images only")
    builder = c2pa.Builder(manifest_definition(image.name, mime, generation), context=_context())
    builder.set_no_embed()
    with open(image, "rb") as src:
        try:
            manifest_bytes = builder.sign(signer, mime, src, io.BytesIO())
        except c2pa.C2paError as exc:
            raise ValueError(f"{image}: C2PA signing failed ({exc})") from exc
    out = sidecar_path(image)
    out.write_bytes(manifest_bytes)
    return out


def verify_image(image: str | os.PathLike, trust_anchors: str | os.PathLike | None = None) -> dict[str, Any]:
    """Validate ``image`` against its sidecar: ``{"state": "Trusted"|"Valid"|"Invalid", "errors": [...],
    "digital_source_type": ...}``. "Trusted" needs ``trust_anchors`` (PEM) holding the chain's root."""
    c2pa = _import_c2pa()
    image = Path(image)
    side = sidecar_path(image)
    if not side.is_file():
        raise FileNotFoundError(f"{side}: no C2PA sidecar for {image}")
    trust = Path(trust_anchors).read_text() if trust_anchors else None
    with open(image, "rb") as f:
        try:
            reader = c2pa.Reader(MIME.get(image.suffix.lower(), "image/png"), f, manifest_data=side.read_bytes(),
                                 context=_context(trust))
        except c2pa.C2paError as exc:
            return {"state": "Invalid", "errors": [f"{side}: unreadable C2PA manifest ({exc})"], "digital_source_type": None}
        with reader:
            state = reader.get_validation_state() or "Invalid"
            results = reader.get_validation_results() or {}
            active = reader.get_active_manifest() or {}
    failures = (results.get("activeManifest") or {}).get("failure") or []
    errors = [f"{x.get('code')}: {x.get('explanation')}" for x in failures]
    dst = None
    for a in active.get("assertions", []):
        if a.get("label", "").startswith("c2pa.actions"):
            for act in a.get("data", {}).get("actions", []):
                dst = act.get("digitalSourceType") or dst
    return {"state": state, "errors": errors, "digital_source_type": dst}


def sign_set_c2pa(root: str | os.PathLike, cfg: C2paConfig) -> dict[str, Any]:
    """Sidecar manifests for every PNG/TIFF image of a prepared set; returns a summary for provenance.json."""
    from cryptography import x509

    from ..data.prepared import MANIFEST, read_manifest
    from ..utils import progress
    from .markings import record_labels

    root = Path(root)
    records = [r for r in read_manifest(root / MANIFEST) if r.file and Path(r.file).suffix.lower() in (".png", ".tif", ".tiff")]
    signer = make_signer(cfg)
    with signer:
        for r in progress(records, total=len(records), desc="c2pa"):
            gen = dict(r.generation or {})
            gen["labels"] = record_labels(r)
            sign_image(root / r.file, signer, json.loads(json.dumps(gen, default=str)))
    cert = x509.load_pem_x509_certificates(cfg.cert_chain.read_bytes())[0]
    return {"sidecars": len(records), "suffix": SIDECAR_SUFFIX, "digital_source_type": DIGITAL_SOURCE_TYPE,
            "signer_subject": cert.subject.rfc4514_string()}
