"""C2PA sidecar manifests signed with a local test CA (ES256)."""
from __future__ import annotations

import datetime as dt
import json

import pytest

pytest.importorskip("c2pa")

from mammosynth.provenance import verify_set  # noqa: E402
from mammosynth.provenance.c2pa import DIGITAL_SOURCE_TYPE, c2pa_config, verify_image  # noqa: E402

from prov_helpers import write_set  # noqa: E402


def _name(cn: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mammosynth test")])


def _usage(sign: bool):
    from cryptography import x509

    return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=not sign, crl_sign=not sign,
                         encipher_only=False, decipher_only=False)


def make_test_ca(out):
    """Root CA + ES256 signing certificate (digitalSignature, EKU emailProtection); PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def cert(subject, issuer, pub, ca: bool):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(pub)
             .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
             .not_valid_after(now + dt.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(_usage(sign=not ca), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False))
        if not ca:
            b = (b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                 .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
        return b.sign(ca_key, hashes.SHA256())

    root = cert(_name("test root CA"), _name("test root CA"), ca_key.public_key(), ca=True)
    leaf = cert(_name("test signer"), root.subject, key.public_key(), ca=False)
    pem = serialization.Encoding.PEM
    out.mkdir(parents=True, exist_ok=True)
    (out / "chain.pem").write_bytes(leaf.public_bytes(pem) + root.public_bytes(pem))
    (out / "key.pem").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    (out / "trust.pem").write_bytes(root.public_bytes(pem))
    return out


@pytest.fixture
def c2pa_env(tmp_path, monkeypatch):
    ca = make_test_ca(tmp_path / "ca")
    monkeypatch.setenv("MAMMOSYNTH_C2PA_CERT", str(ca / "chain.pem"))
    monkeypatch.setenv("MAMMOSYNTH_C2PA_KEY", str(ca / "key.pem"))
    return ca


def test_config_needs_both_halves(monkeypatch, tmp_path):
    monkeypatch.setenv("MAMMOSYNTH_HOME", str(tmp_path))
    monkeypatch.delenv("MAMMOSYNTH_C2PA_CERT", raising=False)
    monkeypatch.delenv("MAMMOSYNTH_C2PA_KEY", raising=False)
    assert c2pa_config() is None
    monkeypatch.setenv("MAMMOSYNTH_C2PA_CERT", str(tmp_path / "chain.pem"))
    with pytest.raises(ValueError, match="both"):
        c2pa_config()


def test_set_gets_trusted_sidecars(c2pa_env, tmp_path, keydir):
    root = write_set(tmp_path / "set", n=2, key=keydir)
    manifest = json.loads((root / "provenance.json").read_text())
    assert manifest["c2pa"]["sidecars"] == 2 and "test signer" in manifest["c2pa"]["signer_subject"]
    assert "images/syn_0000.c2pa" in manifest["files"]  # sidecars are covered by the signed manifest
    assert verify_set(root, keydir).ok
    res = verify_image(root / "images" / "syn_0000.png", trust_anchors=c2pa_env / "trust.pem")
    assert res["state"] == "Trusted", res
    assert res["digital_source_type"] == DIGITAL_SOURCE_TYPE and not res["errors"]
    # without the anchors the signature is still valid, just not trusted
    assert verify_image(root / "images" / "syn_0000.png")["state"] in ("Valid", "Trusted")
    # one changed byte of the image breaks the hard binding
    img = root / "images" / "syn_0001.png"
    data = bytearray(img.read_bytes())
    data[-20] ^= 0xFF
    img.write_bytes(bytes(data))
    bad = verify_image(img, trust_anchors=c2pa_env / "trust.pem")
    assert bad["state"] == "Invalid" and bad["errors"]


def test_detect_reports_c2pa_sidecar(c2pa_env, tmp_path, keydir):
    from mammosynth.provenance import detect_paths

    root = write_set(tmp_path / "set", n=1, key=keydir)
    (r,) = detect_paths([root / "images"], crops=False)
    assert r["evidence"] == ["metadata", "c2pa", "watermark"]
    assert r["c2pa"]["state"] in ("Valid", "Trusted")
