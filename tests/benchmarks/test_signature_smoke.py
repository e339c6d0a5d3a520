"""``benchmarks.bench_signature`` on a 2 s song and a random 48 x 64 model (seconds): its whole run.

Every stage of each model is timed over the song's one chunk; the methods' rows are there for the
signature runs and not for the training-style backward; gradproj's cache measured at 48 x 64 holds
exactly what ``sketch_cache_bytes`` expects of the wide model (2 bytes per entry of every non-zero
hooked tensor), and the module's cache limit is left as it was.
"""

from __future__ import annotations

import pytest

import benchmarks.bench_signature as bench
from lumina_audit.signature.methods import gradproj

WIDTH = 64
STAGES = ("decode", "encodec", "forward+backward", "accumulate")
METHODS = ("gradstats", "gradproj, first song", "gradproj", "both")


def test_stages_methods_and_cache(capsys: pytest.CaptureFixture[str]) -> None:
    limit = gradproj.CACHE_BYTES
    figures = bench.main(["--seconds", "2", "--width", str(WIDTH), "--cache-width", str(WIDTH)])
    out = capsys.readouterr().out
    assert gradproj.CACHE_BYTES == limit
    tiny, wide = "tiny checkpoint (48 x 32)", f"random 48 x {WIDTH}"
    full = f"{wide}, training-style backward"
    rows = figures["rows"]
    assert list(rows) == [tiny, wide, full]
    for name, t in rows.items():
        assert t["chunks"] == 1.0 and all(t[s] >= 0 for s in STAGES) and t["forward+backward"] > 0
        if name == full:
            assert not set(METHODS) & set(t)
        else:
            assert all(t[m] > 0 for m in METHODS)
    cache = figures["cache"]
    assert list(cache["expected"]) == [tiny, wide] and 0 < cache["expected"][tiny] < cache["expected"][wide]
    assert cache["measured"]["width"] == WIDTH and cache["measured"]["held"] == cache["expected"][wide]
    for name in rows:
        assert f"{name:<46} " in out
    assert out.count("gradproj's cache") == 3
