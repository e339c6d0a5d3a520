"""``lumina-audit manifest``: sign and verify run manifests (``manifest run`` is in :mod:`.run`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ._common import (
    JsonOpt,
    KeyOpt,
    PassEnvOpt,
    TrustOpt,
    echo,
    private_key,
    trust_store,
)

__all__ = ["manifest_app"]

manifest_app = typer.Typer(no_args_is_help=True, help="Sign, verify and run manifests.")


@manifest_app.command("sign", epilog="Example: lumina-audit manifest sign manifests/demo/extract.yaml "
                      "--key keys/alice.key")
def manifest_sign(
    manifest: Annotated[Path, typer.Argument(help="Manifest YAML.")],
    key: KeyOpt,
    passphrase_env: PassEnvOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign a manifest (adds a signature to MANIFEST.sig; several signers may sign)."""
    from ..evidence.keys import key_id
    from ..evidence.manifest import load_manifest, sign_manifest

    signer = private_key(key, passphrase_env)
    sig = sign_manifest(manifest, signer)
    if as_json:
        echo(json.dumps({"manifest": str(manifest), "manifest_digest": load_manifest(manifest).digest,
                         "key_id": key_id(signer.public_key()), "signatures": str(sig)}, indent=1))
        return
    echo(f"signed {manifest} (digest {load_manifest(manifest).digest}) with key "
         f"{key_id(signer.public_key())[:16]}...; signatures in {sig}")


@manifest_app.command("verify", epilog="Example: lumina-audit manifest verify manifests/demo/extract.yaml "
                      "--trust trust")
def manifest_verify(
    manifest: Annotated[Path, typer.Argument(help="Manifest YAML.")],
    trust: TrustOpt,
    as_json: JsonOpt = False,
) -> None:
    """Verify a manifest's signatures and signing policy against the trust file (exit 0 valid, 1 invalid)."""
    from ..evidence.manifest import verify_manifest

    verified = verify_manifest(manifest, trust_store(trust))
    signers = [{"principal": s.principal, "key_id": s.key_id, "role": s.role} for s in verified.signers]
    checked = verified.policy
    if as_json:
        echo(json.dumps({"valid": True, "manifest_digest": verified.loaded.digest, "signers": signers,
                         "signing_policy": checked.to_json()}, indent=1))
    else:
        echo(f"valid: {manifest} (digest {verified.loaded.digest})")
        for s in signers:
            role = f", role {s['role']}" if s["role"] else ""
            echo(f"  signed by {s['principal']} (key {str(s['key_id'])[:16]}...{role})")
        _, rule = checked.policy.rule_for(checked.kind)
        source = f"@policy {checked.rule}" if checked.policy.stated else "the default policy"
        echo(f"  policy met: {rule.describe()} ({source}, sha256 {checked.policy.sha256[:16]}...)")
