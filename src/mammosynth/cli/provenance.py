"""``mammosynth keys new``, ``mammosynth verify``, ``mammosynth detect``."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK, EXIT_FAIL = 0, 1
EXIT_SYNTHETIC_FOUND = 5


def register(subparsers: Any) -> None:
    keys = subparsers.add_parser("keys", help="manage Ed25519 signing keys for provenance manifests")
    ksub = keys.add_subparsers(dest="keys_command", metavar="KEYS_COMMAND")
    new = ksub.add_parser("new", help="create an Ed25519 key pair (private.pem 0600, public.pem)")
    new.add_argument("--out", required=True, help="key directory to create")
    new.add_argument("--force", action="store_true", help="replace an existing private key")
    new.set_defaults(func=_keys_new)
    keys.set_defaults(func=lambda args: (keys.print_help(), 2)[1])

    ver = subparsers.add_parser("verify", help="check a synthetic set's signature, Merkle root and every file")
    ver.add_argument("set", metavar="SET", help="set directory (holds provenance.json)")
    ver.add_argument("--key", default=None, help="expected signer: public key PEM or key directory "
                                                 "(default: the key stored with the signature; integrity only)")
    ver.add_argument("--json", action="store_true", help="print the report as JSON")
    ver.set_defaults(func=_verify)

    det = subparsers.add_parser("detect", help="screen images for synthetic watermarks and markings "
                                               f"(exit 0 none, {EXIT_SYNTHETIC_FOUND} synthetic found, 1 errors)")
    det.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    det.add_argument("--json", action="store_true", help="print one JSON list of results")
    det.add_argument("--no-crop-search", action="store_true", help="skip the crop hypotheses (faster)")
    det.set_defaults(func=_detect)


def _keys_new(args: argparse.Namespace) -> int:
    from ..provenance.keys import key_id, load_public_key, new_keypair

    priv, pub = new_keypair(args.out, overwrite=args.force)
    print(f"private key: {priv} (mode 0600; keep it secret)")
    print(f"public key:  {pub} (give this to verifiers: mammosynth verify SET --key {pub})")
    print(f"key id:      {key_id(load_public_key(pub))}")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from ..provenance.manifest import verify_set

    rep = verify_set(args.set, public_key=args.key)
    if args.json:
        print(json.dumps(rep.to_dict(), indent=2))
    else:
        print(rep.summary())
    return EXIT_OK if rep.ok else EXIT_FAIL


def _line(r: dict[str, Any]) -> str:
    if "skipped" in r:
        return f"skipped    {r['path']}: {r['skipped']}"
    if "error" in r:
        return f"ERROR      {r['error']}"
    if not r["synthetic"]:
        return f"clean      {r['path']}"
    parts = []
    wm = r.get("watermark") or {}
    if "watermark" in r["evidence"]:
        crop = f", crop {wm['crop']['edge']} {wm['crop']['fraction']:.0%}" if wm.get("crop") else ""
        parts.append(f"watermark run {wm['run32']} image {wm['image32']} (bit accuracy {wm['bit_accuracy']:.2f}, "
                     f"p <= {wm['p_value']:.1e}{crop})")
    if "metadata" in r["evidence"]:
        meta = r.get("metadata") or {}
        ck = str(meta.get("checkpoint_sha256") or "")[:12]
        parts.append(f"metadata (model {ck or '?'}, seed {meta.get('seed', '?')})")
    if "c2pa" in r["evidence"]:
        parts.append(f"C2PA trainedAlgorithmicMedia ({r['c2pa'].get('state')})")
    if "dicom" in r["evidence"]:
        parts.append("DICOM " + ", ".join(r["dicom"]))
    return f"SYNTHETIC  {r['path']}: " + "; ".join(parts)


def _detect(args: argparse.Namespace) -> int:
    from ..provenance.detect import detect_paths

    results = detect_paths(args.paths, crops=not args.no_crop_search)
    n_syn = sum(1 for r in results if r.get("synthetic"))
    n_err = sum(1 for r in results if "error" in r)
    n_skip = sum(1 for r in results if "skipped" in r)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(_line(r))
        skipped = f", {n_skip} skipped" if n_skip else ""
        print(f"{len(results)} file(s): {n_syn} synthetic, {len(results) - n_syn - n_err - n_skip} clean, "
              f"{n_err} error(s){skipped}")
    if n_err:
        print(f"mammosynth detect: {n_err} file(s) could not be read", file=sys.stderr)
    if len(results) == n_skip:
        print("mammosynth detect: no image files found (PNG, JPEG, TIFF, PGM, DICOM .dcm)", file=sys.stderr)
    if n_syn:
        return EXIT_SYNTHETIC_FOUND
    return EXIT_FAIL if n_err or not results else EXIT_OK
