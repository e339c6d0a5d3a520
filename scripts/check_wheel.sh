#!/usr/bin/env bash
# The wheel is a complete verifier without torch (make check-wheel; .ci/run after make test):
#   1. build the wheel from the files git would ship (tracked and untracked-not-ignored: no stale build/);
#   2. install it into a fresh venv: requirements/verify.lock (--require-hashes), then the wheel --no-deps;
#   3. check that torch, torchaudio and audiocraft are absent;
#   4. make evidence with a small demo run in the full .venv (as tests/cli/test_demo_chain.py does);
#   5. with the wheel's lumina-audit, outside the source tree: verify the ledger, an inclusion proof and a
#      certificate (--rerender: the packaged templates render the same bytes), show a report and a
#      calibration, and check that a compute command refuses in one line (exit 2).
# One line per check; exits non-zero at the first failure. Environment: FULL_PYTHON (the full .venv's
# python: builds the wheel, runs the demo), PYTHON (the interpreter of the fresh venv), KEEP=1 keeps the
# temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FULL=${FULL_PYTHON:-$ROOT/.venv/bin/python}
BASE=${PYTHON:-python3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lumina-check-wheel.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "keeping $TMP"; else trap 'rm -rf "$TMP"' EXIT; fi
unset PYTHONPATH

ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# run NAME LOG CMD...: run CMD with its output in LOG; on failure show the log's tail and stop
run() {
    local name=$1 log=$2 rc=0
    shift 2
    "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then tail -n 30 "$log" >&2; fail "$name (exit $rc; the end of its log above)"; fi
}

# 1. the wheel
mkdir "$TMP/src" "$TMP/dist"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf - | tar -xf - -C "$TMP/src"
else
    tar --exclude=./.venv --exclude=./work --exclude=./build --exclude='*.egg-info' -cf - . | tar -xf - -C "$TMP/src"
fi
run "build the wheel" "$TMP/build.log" "$FULL" -m pip wheel --no-deps --no-build-isolation -w "$TMP/dist" "$TMP/src"
WHEEL=$(ls "$TMP"/dist/lumina_audit-*.whl)
ok "built $(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1))"

# 2. a fresh venv: the verifier lock, then the wheel without its dependencies
run "create the venv" "$TMP/venv.log" "$BASE" -m venv "$TMP/venv"
V=$TMP/venv/bin
run "install requirements/verify.lock" "$TMP/install.log" "$V/python" -m pip install --quiet --require-hashes \
    -r requirements/verify.lock
run "install the wheel" "$TMP/install-wheel.log" "$V/python" -m pip install --quiet --no-deps "$WHEEL"
run "pip check" "$TMP/pip-check.log" "$V/python" -m pip check
ok "installed verify.lock ($(grep -cE '^[a-zA-Z0-9]' requirements/verify.lock) packages) and the wheel into a fresh" \
    "venv ($(du -sh "$TMP/venv" | cut -f1)); pip check: $(head -n 1 "$TMP/pip-check.log")"

# 3. no torch
if "$V/python" -c "import torch" >/dev/null 2>&1; then fail "import torch succeeds in the verifier venv"; fi
"$V/python" - <<'EOF' || fail "torch, torchaudio or audiocraft is installed in the verifier venv"
import importlib.util, sys
sys.exit(any(importlib.util.find_spec(m) is not None for m in ("torch", "torchaudio", "audiocraft")))
EOF
ok "import torch fails; find_spec is None for torch, torchaudio and audiocraft"

# 4. evidence to verify: a small demo run in the full .venv
run "demo run" "$TMP/demo.log" "$FULL" -m scripts.demo --work "$TMP/demo" --catalog 10 --controls 20 --seconds 3 4
ok "demo made a ledger, a proof and certificates in $(grep -oE 'Done in [0-9]+ s' "$TMP/demo.log" | cut -c9-)"

# 5. the wheel's lumina-audit verifies them, from outside the source tree
cd "$TMP/demo"
LA=$V/lumina-audit
where=$("$V/python" -c "import lumina_audit; print(lumina_audit.__file__)")
case $where in "$TMP/venv/"*) ;; *) fail "lumina_audit imported from $where, not from the wheel" ;; esac
run "ledger verify" "$TMP/ledger.out" "$LA" ledger verify --ledger ledger --trust trust --checkpoint checkpoint.txt
ok "ledger verify: $(head -n 1 "$TMP/ledger.out")"
run "proof verify" "$TMP/proof.out" "$LA" proof verify proof-4.json --trust trust
ok "proof verify: $(head -n 1 "$TMP/proof.out" | cut -c1-100)"
PDF=$(ls out/certificates/query-*.pdf)
run "certificate verify" "$TMP/cert.out" "$LA" certificate verify "$PDF" --roots pki/root.pem --trust trust \
    --ledger ledger --rerender
grep -q "a fresh rendering of the report equals the signed revision" "$TMP/cert.out" \
    || fail "certificate verify --rerender did not re-render"
ok "certificate verify --rerender: $(head -n 1 "$TMP/cert.out"); a fresh rendering equals the signed revision"
run "report show" "$TMP/report.out" "$LA" report show "out/reports/$(basename "$PDF" .pdf).json"
run "calibration show" "$TMP/calibration.out" "$LA" calibration show out/calibration-gradproj.zip
ok "report show and calibration show ($(wc -l <"$TMP/report.out") and $(wc -l <"$TMP/calibration.out") lines)"
rc=0
"$LA" golden check >"$TMP/golden.out" 2>&1 || rc=$?
[ "$rc" = 2 ] && [ "$(wc -l <"$TMP/golden.out")" = 1 ] && grep -q "lumina-audit\[compute\]" "$TMP/golden.out" \
    || { cat "$TMP/golden.out" >&2; fail "golden check without the compute extra: exit $rc, not one line"; }
ok "golden check refuses (exit 2): $(cut -c1-110 "$TMP/golden.out")..."
