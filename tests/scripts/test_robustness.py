"""The robustness table of the README, measured on the tiny checkpoint (printed, not tuned)."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from scripts.robustness import measure, table

N_CATALOG, N_CONTROLS = 8, 10


class _Recording:
    """The session, recording every signature ``measure`` computes, in order: catalog, controls, unrelated, then
    for each catalog song its perturbed copies in the table's order."""

    def __init__(self, session: Any) -> None:
        self.session, self.methods, self.seen = session, session.methods, []

    def all_signatures(self, paths: Any, song_ids: Any) -> Any:
        out = self.session.all_signatures(paths, song_ids)
        self.seen += [sigs for _, sigs in out]
        return out


def _cell(ranks: list[int]) -> str:
    return f"{statistics.median(ranks):g} of {N_CATALOG} ({sum(r == 1 for r in ranks) / len(ranks):.0%})"


def test_robustness_table_is_measured(session: Any, capsys: Any) -> None:
    rec = _Recording(session)
    rows = measure(rec, n_catalog=N_CATALOG, n_controls=N_CONTROLS, seconds=4.0)
    with capsys.disabled():
        print("\n" + table(rows))
    assert [r[1] for r in rows] == ["lumina-gradproj-v1"] * 7 + ["lumina-gradstats-v1"] * 7
    cases = [r[0].split(":")[0] for r in rows[1:6]]
    assert cases == ["noise 40 dB SNR", "noise 20 dB SNR", "gain -6 dB", "resample 32k->44.1k->32k",
                     "low-pass 11 kHz (MP3-like)"]
    assert len(rec.seen) == N_CATALOG + 2 * N_CONTROLS + N_CATALOG * len(cases)
    catalog = rec.seen[:N_CATALOG]
    controls = rec.seen[N_CATALOG:N_CATALOG + N_CONTROLS]
    unrelated = rec.seen[N_CATALOG + N_CONTROLS:N_CATALOG + 2 * N_CONTROLS]
    queries = rec.seen[N_CATALOG + 2 * N_CONTROLS:]
    # Every cell recomputed from the recorded signatures: the rank of the original is its place when the catalog
    # is sorted by similarity to the copy, most similar first (a tie counts in the original's favour).
    for block in (rows[:7], rows[7:]):
        method = block[0][1]
        assert block[0][0] == "threshold tau = mu + 3 sigma"
        assert block[-1][0] == "unrelated queries: catalog songs above tau (mean, max)"
        expected: dict[str, list[str]] = {"threshold": [], "unrelated": []}
        for ch in ("p", "m"):
            cat = [np.asarray(getattr(s[method], ch), dtype=np.float64) for s in catalog]
            sims = [float(np.dot(getattr(c[method], ch).astype(np.float64), song)) for c in controls for song in cat]
            tau = statistics.mean(sims) + 3 * statistics.stdev(sims)
            expected["threshold"].append(f"{tau:.3f}")
            above = [sum(float(np.dot(getattr(u[method], ch).astype(np.float64), song)) > tau for song in cat)
                     for u in unrelated]
            expected["unrelated"].append(f"{statistics.mean(above):.2f}, {max(above)}")
            for k, case in enumerate(cases):
                ranks = []
                for i in range(N_CATALOG):
                    q = np.asarray(getattr(queries[i * len(cases) + k][method], ch), dtype=np.float64)
                    s = [float(np.dot(q, song)) for song in cat]
                    order = sorted(range(N_CATALOG), key=lambda j, s=s, i=i: (-s[j], j != i))
                    ranks.append(order.index(i) + 1)
                expected.setdefault(case, []).append(_cell(ranks))
        assert list(block[0][2:]) == expected["threshold"], method
        assert list(block[-1][2:]) == expected["unrelated"], method
        for row, case in zip(block[1:6], cases, strict=True):
            assert list(row[2:]) == expected[case], (method, case)
    # What the README's table shows and this size reproduces: under gradproj a copy with light noise, a resample
    # round trip or a low-pass still finds its original first (median rank 1, both channels).
    gradproj = {r[0].split(":")[0]: r[2:] for r in rows[:7]}
    for case in ("noise 40 dB SNR", "resample 32k->44.1k->32k", "low-pass 11 kHz (MP3-like)"):
        assert all(cell.startswith(f"1 of {N_CATALOG} ") for cell in gradproj[case]), (case, gradproj[case])
