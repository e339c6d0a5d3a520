"""The robustness table of the README, measured on the tiny checkpoint (printed, not tuned)."""

from __future__ import annotations

import sys
from typing import Any

from ..conftest import ROOT


def test_robustness_table_is_measured(session: Any, capsys: Any) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from robustness import measure, table

    rows = measure(session, n_catalog=8, n_controls=10, seconds=4.0)
    with capsys.disabled():
        print("\n" + table(rows))
    assert [r[1] for r in rows] == ["lumina-gradproj-v1"] * 7 + ["lumina-gradstats-v1"] * 7
    for block in (rows[:7], rows[7:]):
        cases = [r[0] for r in block]
        assert cases[0].startswith("threshold") and cases[-1].startswith("unrelated")
        for _, _, p, m in block[1:-1]:
            for cell in (p, m):
                rank = float(cell.split(" of ")[0])
                assert 1 <= rank <= 8
