"""The README's first command: the evidence chain on the embedded tiny checkpoint.

Everything happens in ``work/demo/`` (made afresh each time, fresh demo keys): keys and a
trust file, the demo manifest signed by an operator and a reviewer, ``lumina-audit run``,
``verify ledger`` (also against a checkpoint kept outside the ledger), an inclusion proof
verified offline. Each step is the command a user would type; it is printed before it runs.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "work" / "demo"
CLI = [str(Path(sys.executable).with_name("lumina-audit"))]


def step(*args: str, into: str | None = None) -> str:
    """Run one command in WORK and print it; with ``into``, save its output there instead of printing it."""
    print(f"\n$ lumina-audit {shlex.join(args)}" + (f" > {into}" if into else ""), flush=True)
    out = subprocess.run([*CLI, *args], cwd=WORK, text=True, capture_output=True, check=False)
    if into:
        (WORK / into).write_text(out.stdout)
    else:
        sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    if out.returncode != 0:
        raise SystemExit(f"demo step failed with exit code {out.returncode}")
    return out.stdout


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    digests = "".join(f"    {name}: {value}\n" for value, name in
                      (line.split() for line in (ROOT / "golden/models/tiny-musicgen.sha256").read_text().splitlines()))
    template = (ROOT / "manifests/demo/extract.yaml").read_text()
    (WORK / "extract.yaml").write_text(template.replace("{repo}", str(ROOT)).replace("{digests}\n", digests))
    trust = []
    for who, principal, ns in (("operator", "operator@demo", ["lumina-audit/manifest", "lumina-audit/ledger"]),
                               ("reviewer", "reviewer@demo", ["lumina-audit/manifest"])):
        out = step("keys", "generate", "--out", f"keys/{who}", "--principal", principal,
                   *[a for n in ns for a in ("--namespace", n)])
        trust.append(out.strip().splitlines()[-1])
    (WORK / "trust").write_text("\n".join(trust) + "\n")
    print(f"\n(wrote trust file {WORK / 'trust'})")
    step("manifest", "sign", "extract.yaml", "--key", "keys/operator.key")
    step("manifest", "sign", "extract.yaml", "--key", "keys/reviewer.key")
    step("manifest", "verify", "extract.yaml", "--trust", "trust")
    step("run", "extract.yaml", "--trust", "trust", "--key", "keys/operator.key")
    step("ledger", "show", "ledger")
    step("ledger", "checkpoint", "ledger", into="checkpoint.txt")
    step("ledger", "prove", "0", "--ledger", "ledger", into="proof-0.json")
    step("verify", "proof", "proof-0.json", "--trust", "trust")
    step("verify", "ledger", "ledger", "--trust", "trust", "--checkpoint", "checkpoint.txt")
    print(f"\nDemo outputs in {WORK}: keys/, trust, extract.yaml and its .sig, out/catalog.h5, ledger/, "
          "checkpoint.txt (keep it elsewhere: it catches truncation), proof-0.json")


if __name__ == "__main__":
    main()
