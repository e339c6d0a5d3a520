"""Benchmark: attribution-v1 (raw cosine, one noise floor) against v2 (S-norm, calibrated LRs) on recorded music.

    nice -n 10 python -m benchmarks.bench_lr_battery [--model DIR] [--work DIR] [--out DIR] [--fresh]

(from the repository root). The derive battery of ``bench_groundtruth --battery`` on a larger
recorded catalog, calibrated this time with RECORDED controls, scored both ways through the library:

- Catalog (N = 20): the 10 tracks of Planet Blupi (Debian ``planetblupi-music-ogg``) and the first 10
  tracks of Battle for Wesnoth's music (``wesnoth-1.16-music``) that last at least 90 s, by file name.
- Controls (C = 30), none in the catalog: the next 10 such Wesnoth tracks (same soundtrack as half
  the catalog, other pieces: the hard different-source trials), 15 of Warzone 2100's soundtrack
  (``warzone2100-music``: the 1999 original's 3 tracks, Legacy tracks 4-9 and Aftermath tracks 17-22,
  leaving out the two "enhanced" re-recordings of other tracks), Frozen Bubble's 3 music tracks
  (``frozen-bubble-data``) and Neverball's two tracks of at least 90 s (``neverball-common``).
- Every song is one excerpt of 60 s from 30 s into the track (``_groundtruth_battery.excerpt``: 16-bit
  WAV at the track's own rate and channels); derived copies are every catalog song under each
  one-source transform of ``lumina_audit.attribution.derive`` and a splice of it with the next catalog
  song (wrapping), as in the existing battery: 200 copies.
- Signatures: ``lumina-gradproj-v1`` and ``lumina-gradstats-v1`` in one pass per song
  (``Session.all_signatures``) on ``lumina_audit/_data/golden/models/tiny-musicgen-trained`` under the numerical
  pins (the module re-executes itself under them), cached per file SHA-256 and signature space in the work folder.
- Per signature method and channel, the trials of ``lumina_audit.attribution.trials.build_trials``
  (H1: each copy against its source song(s); H2: each control against every catalog song with itself
  left out of the cohort, each copy against every non-source song), scored twice: the raw cosine
  (``normalise=False``, the score of attribution-v1) and the S-norm (``normalise=True``, v2). Each is
  cross-validated and calibrated by ``likelihood_ratio.calibrate_channel`` (5 folds, unit mod 5); a
  refusal (no positive slope, a fold that cannot be fitted) is the result and is reported as such.
- Reported, overall and per transform: the share of same-source trials found at a 1 % false-alarm
  rate (see :func:`operating_point`), C_llr of the cross-validated LLRs, C_llr_min, EER and the ELUB
  bounds; for the raw cosine also attribution-v1's own floor tau = mu + 3 sigma of the control-catalog
  cosines (``method.calibrate``) and the shares of same-source and of different-source trials above it.

Every setting is fixed in :data:`CATALOG`, :data:`CONTROLS` and :class:`Settings` before anything is
measured; none was tuned on the figures. The music is installed with apt at run time and never
committed, nor anything derived from it (excerpts, copies, signatures): those live in ``--work``
(git-ignored); ``benchmarks/results/lr-battery.md`` and ``.json`` hold only figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks._groundtruth_common import CHANNELS, F32, F64, METHOD_NAMES
from lumina_audit.attribution import metrics
from lumina_audit.attribution.calibrators import CalibrationFitError, LogitCalibrator
from lumina_audit.attribution.cohort import cohort_stats
from lumina_audit.attribution.likelihood_ratio import LRError, calibrate_channel
from lumina_audit.attribution.method import calibrate
from lumina_audit.attribution.search import exact_similarities
from lumina_audit.attribution.trials import H2_CONTROL, H2_POSITIVE, Labelled, Trials, build_trials
from lumina_audit.attribution.validation import ValidationError, cross_validate, figures, validate
from lumina_tools import ToolError
from lumina_tools.environment import dpkg_version, ensure_debian, git_state, versions
from lumina_tools.files import RESULTS, TRAINED, WORK, clean_dir, file_sha256, read_digests, shown
from lumina_tools.invocation import reexec_pinned, run_record
from lumina_tools.markdown import md_table, num, pct, run_header

__all__ = [
    "CATALOG",
    "CONTROLS",
    "NOT_COMMITTED",
    "PACKAGES",
    "SCORES",
    "TRANSFORMS",
    "Package",
    "Sets",
    "Settings",
    "Track",
    "derive_copies",
    "main",
    "markdown",
    "measure",
    "operating_point",
    "parse_args",
    "prepare",
    "signature_vectors",
    "write_report",
]

#: The derive battery, in table order (one-source transforms, then the splice).
TRANSFORMS = ("mp3-128k", "opus-64k", "noise-30db", "noise-20db", "gain-3db", "gain-6db", "speed+2", "speed-2",
              "excerpt-20s", "splice")
#: The two scores of the same trials: (key, label, ``normalise`` of ``build_trials``).
SCORES = (("raw", "raw cosine (v1 score)", False), ("snorm", "S-norm (v2 score)", True))
NOT_COMMITTED = ("No audio file, and nothing derived from the music (excerpts, derived copies, signatures), is "
                 "committed: those files stay in the git-ignored work folder; this report holds only figures.")


@dataclass(frozen=True)
class Package:
    """A Debian package of free recorded music: where its tracks are and under what licence."""

    name: str
    marker: Path
    licence: str
    copyright: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "licence": self.licence, "copyright": self.copyright,
                "copyright_file": f"/usr/share/doc/{self.name}/copyright"}


_WESNOTH = Path("/usr/share/games/wesnoth/1.16/data/core/music")
_WZ = Path("/usr/share/games/warzone2100/music/albums")
PACKAGES: dict[str, Package] = {p.name: p for p in (
    Package("planetblupi-music-ogg", Path("/usr/share/planetblupi/music/music000.ogg"), "GPL-3+",
            "2017-2018 Mathieu Schroeter, 1997 Daniel Roux, EPSITEC SA & Denis Dumoulin"),
    Package("wesnoth-1.16-music", _WESNOTH / "battle.ogg", "GPL-2+",
            "the Battle for Wesnoth project (David White and contributors)"),
    Package("warzone2100-music", _WZ / "legacy_soundtrack/track4.opus",
            "GPL-2+ (original soundtrack); CC-BY-SA-3.0+ or GPL-2+ (Legacy and Aftermath soundtracks)",
            "1999 Martin Severn / Eidos Interactive and the Warzone 2100 Project (original); 2019-2022 "
            "LupusMechanicus (Legacy, Aftermath)"),
    Package("frozen-bubble-data", Path("/usr/share/games/frozen-bubble/snd/introzik.ogg"), "GPL-2",
            "2000-2010 The Frozen-Bubble Team"),
    Package("neverball-common", Path("/usr/share/games/neverball/bgm/track4.ogg"), "GPL-2+",
            "2003-2018 Robert Kooima, Jean Privat and the Neverball contributors"),
)}


@dataclass(frozen=True)
class Track:
    """One recorded track: its song id, its package and its file."""

    song_id: str
    package: str
    path: Path

    def as_dict(self) -> dict[str, str]:
        return {"song_id": self.song_id, "package": self.package, "file": str(self.path)}


def _tracks(package: str, folder: Path, prefix: str, names: Sequence[str]) -> tuple[Track, ...]:
    return tuple(Track(f"{prefix}{Path(n).stem}", package, folder / n) for n in names)


#: The catalog: Planet Blupi's 10 tracks, then Wesnoth's first 10 tracks of 90 s or more by file name.
CATALOG: tuple[Track, ...] = (
    *_tracks("planetblupi-music-ogg", Path("/usr/share/planetblupi/music"), "blupi-",
             [f"music{i:03d}.ogg" for i in range(10)]),
    *_tracks("wesnoth-1.16-music", _WESNOTH, "wesnoth-",
             ["battle.ogg", "breaking_the_chains.ogg", "casualties_of_war.ogg", "elvish-theme.ogg", "frantic.ogg",
              "heroes_rite.ogg", "into_the_shadows.ogg", "journeys_end.ogg", "knalgan_theme.ogg", "knolls.ogg"]),
)
#: The controls: Wesnoth's next 10 such tracks, 15 of Warzone 2100, 3 of Frozen Bubble, 2 of Neverball.
CONTROLS: tuple[Track, ...] = (
    *_tracks("wesnoth-1.16-music", _WESNOTH, "wesnoth-",
             ["legends_of_the_north.ogg", "love_theme.ogg", "loyalists.ogg", "northern_mountains.ogg",
              "northerners.ogg", "nunc_dimittis.ogg", "return_to_wesnoth.ogg", "siege_of_laurelmor.ogg",
              "silvan_sanctuary.ogg", "suspense.ogg"]),
    *_tracks("warzone2100-music", _WZ / "original_soundtrack", "wz2100-original-",
             ["track1.opus", "track2.opus", "track3.opus"]),
    *_tracks("warzone2100-music", _WZ / "legacy_soundtrack", "wz2100-legacy-",
             [f"track{i}.opus" for i in range(4, 10)]),
    *_tracks("warzone2100-music", _WZ / "aftermath_soundtrack", "wz2100-aftermath-",
             [f"track{i}.opus" for i in range(17, 23)]),
    *_tracks("frozen-bubble-data", Path("/usr/share/games/frozen-bubble/snd"), "frozenbubble-",
             ["frozen-mainzik-1p.ogg", "frozen-mainzik-2p.ogg", "introzik.ogg"]),
    *_tracks("neverball-common", Path("/usr/share/games/neverball/bgm"), "neverball-",
             ["track4.ogg", "track5.ogg"]),
)


@dataclass(frozen=True)
class Settings:
    """Every setting of the measurement, fixed before it runs."""

    excerpt_offset_s: float = 30.0
    excerpt_seconds: float = 60.0
    transforms: tuple[str, ...] = TRANSFORMS
    splice: str = "catalog song i, then catalog song i + 1 (wrapping), as derive's splice"
    k: float = 3.0
    min_controls: int = 10
    folds: int = 5
    false_alarm_percent: int = 1
    signature_methods: tuple[str, ...] = METHOD_NAMES
    channels: tuple[str, ...] = CHANNELS
    calibrator: str = "likelihood_ratio.calibrate_channel (LogitCalibrator, class-balanced logistic regression)"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Sets:
    """The songs of one measurement: catalog, controls and derived copies (paths and ids, in row order)."""

    catalog: list[Path]
    catalog_ids: list[str]
    controls: list[Path]
    control_ids: list[str]
    copies: list[Path] = field(default_factory=list)
    labels: list[Labelled] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [*self.catalog, *self.controls, *self.copies]

    @property
    def ids(self) -> list[str]:
        return [*self.catalog_ids, *self.control_ids, *(lab.song_id for lab in self.labels)]


# --------------------------------------------------------------------------- data


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line (see ``--help``); the measurement's settings are not options (:class:`Settings`)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_lr_battery", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=TRAINED,
                   help=f"checkpoint directory (default {shown(TRAINED)})")
    p.add_argument("--digests", type=Path, help="its digest file (default: DIR.sha256 beside it)")
    p.add_argument("--work", type=Path, default=WORK / "bench-groundtruth",
                   help="git-ignored folder for the audio and the signature cache (default work/bench-groundtruth; "
                        "this benchmark uses its lr-battery/ subfolder)")
    p.add_argument("--out", type=Path, default=RESULTS,
                   help="folder for lr-battery.md and lr-battery.json (default benchmarks/results)")
    p.add_argument("--report-only", action="store_true",
                   help="measure nothing: rewrite the Markdown (and JSON) of --out from its lr-battery.json")
    p.add_argument("--fresh", action="store_true",
                   help="remake the audio files and recompute the signatures kept by an earlier run")
    return p.parse_args(list(argv))


def derive_copies(catalog: Sequence[Path], catalog_ids: Sequence[str], transforms: Sequence[str],
                  out: Path) -> tuple[list[Path], list[Labelled]]:
    """Each catalog song under each transform (the splice: song i then song i + 1), written under ``out``.

    Labels name the catalog rows of the sources (the copy's own song first).
    """
    from lumina_audit.attribution.derive import derive_audio as derive

    paths: list[Path] = []
    labels: list[Labelled] = []
    n = len(catalog)
    for i, sid in enumerate(catalog_ids):
        for t in transforms:
            rows = (i, (i + 1) % n) if t == "splice" else (i,)
            d = derive([catalog[r] for r in rows], t, out / f"{sid}.{t}", song_ids=[catalog_ids[r] for r in rows])
            paths.append(d.path)
            labels.append(Labelled(d.path.stem, rows, t))
    return paths, labels


def prepare(settings: Settings, work: Path, fresh: bool = False) -> tuple[Sets, dict[str, Any]]:
    """Install the packages if needed, cut the excerpts, derive the copies; the sets and a data record.

    The files are reused from an earlier run when its record (``<work>/lr-battery/prepared.json``)
    has the same settings, tracks and package versions and every file still has its recorded SHA-256
    (unless ``fresh``).
    """
    from benchmarks._groundtruth_battery import excerpt

    installed = ensure_debian({name: p.marker for name, p in PACKAGES.items()})
    for t in (*CATALOG, *CONTROLS):
        if not t.path.is_file():
            raise ToolError(f"{t.path}: missing from the installed package {t.package}")
    used = sorted({t.package for t in (*CATALOG, *CONTROLS)})
    data: dict[str, Any] = {
        "packages": [PACKAGES[n].as_dict() | {"version": dpkg_version(n),
                                              "catalog_tracks": sum(t.package == n for t in CATALOG),
                                              "control_tracks": sum(t.package == n for t in CONTROLS)}
                     for n in used],
        "apt_installed": installed, "catalog": [t.as_dict() for t in CATALOG],
        "controls": [t.as_dict() for t in CONTROLS], "not_committed": NOT_COMMITTED}
    base = work / "lr-battery"
    record_path = base / "prepared.json"
    key = json.loads(json.dumps({"settings": settings.as_dict(), "catalog": data["catalog"],
                                 "controls": data["controls"], "packages": data["packages"]}))
    t0 = time.monotonic()
    old = None if fresh or not record_path.is_file() else json.loads(record_path.read_text("utf-8"))
    if old is not None and old["key"] == key and all(
            Path(f).is_file() and file_sha256(Path(f)) == sha for f, sha in old["files"].items()):
        sets = Sets([Path(p) for p in old["catalog"]], [t.song_id for t in CATALOG],
                    [Path(p) for p in old["controls"]], [t.song_id for t in CONTROLS],
                    [Path(p) for p in old["copies"]],
                    [Labelled(lab[0], tuple(lab[1]), lab[2]) for lab in old["labels"]])
        return sets, data | {"copies": len(sets.copies), "prepare_s": round(time.monotonic() - t0, 1),
                             "files_reused": True}
    record_path.unlink(missing_ok=True)
    dirs = {name: clean_dir(base / name, work) for name in ("catalog", "controls", "derived")}

    def cut(tracks: Sequence[Track], folder: Path) -> list[Path]:
        return [excerpt(t.path, settings.excerpt_offset_s, settings.excerpt_seconds, folder / f"{t.song_id}.wav")
                for t in tracks]

    sets = Sets(cut(CATALOG, dirs["catalog"]), [t.song_id for t in CATALOG], cut(CONTROLS, dirs["controls"]),
                [t.song_id for t in CONTROLS])
    print(f"excerpts cut in {time.monotonic() - t0:.0f} s; deriving copies", flush=True)
    sets.copies, sets.labels = derive_copies(sets.catalog, sets.catalog_ids, settings.transforms, dirs["derived"])
    record_path.write_text(json.dumps({
        "key": key, "catalog": [str(p) for p in sets.catalog], "controls": [str(p) for p in sets.controls],
        "copies": [str(p) for p in sets.copies],
        "labels": [[lab.song_id, list(lab.sources), lab.transform] for lab in sets.labels],
        "files": {str(p): file_sha256(p) for p in sets.paths}}, indent=1), encoding="utf-8")
    return sets, data | {"copies": len(sets.copies), "prepare_s": round(time.monotonic() - t0, 1),
                         "files_reused": False}


# --------------------------------------------------------------------------- signatures


def signature_vectors(session: Any, paths: Sequence[Path], ids: Sequence[str], cache: Path | None,
                      reuse: bool = True) -> tuple[dict[str, F32], list[str], dict[str, Any]]:
    """Every method's P and M signatures of ``paths`` (rows in order) and each file's PCM SHA-256.

    Keyed ``"<method> <channel>"``, float32 [rows, 216]. With ``cache``, each file's vectors are kept in
    ``cache/<tag>/<file sha256>.npz`` (tag: the signature spaces and the pins) and reused when present
    (unless ``reuse`` is False); the others are computed in one pass per song (``Session.all_signatures``).
    """
    from lumina_audit.signature.session import load_all

    methods = [m.name for m in session.methods]
    tag = hashlib.sha256(json.dumps({"spaces": {m: session.spaces[m].digest for m in methods},
                                     "pins": session.pins.digest}, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache / tag if cache is not None else None
    shas = [file_sha256(p) for p in paths]
    rows: list[dict[str, Any] | None] = [None] * len(paths)
    if folder is not None and reuse:
        for i, sha in enumerate(shas):
            f = folder / f"{sha}.npz"
            if f.is_file():
                with np.load(f) as z:
                    rows[i] = {k: z[k].copy() for k in z.files}
    todo = [i for i, r in enumerate(rows) if r is None]
    t0 = time.monotonic()
    if todo:
        audios = load_all([paths[i] for i in todo], session.config)
        print(f"signatures of {len(todo)} file(s) ({len(paths) - len(todo)} cached)", flush=True)
        for n, i in enumerate(todo):
            _path, sig = session.all_signatures([paths[i]], song_ids=[ids[i]], audios=[audios[n]])[0]
            row: dict[str, Any] = {"pcm_sha256": np.asarray(audios[n].pcm_sha256)}
            for m in methods:
                row[f"{m} P"], row[f"{m} M"] = sig[m].p, sig[m].m
            rows[i] = row
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f"{shas[i]}.tmp.npz"
                np.savez(tmp, **row)
                tmp.replace(folder / f"{shas[i]}.npz")
            if (n + 1) % 25 == 0:
                print(f"  {n + 1}/{len(todo)} in {time.monotonic() - t0:.0f} s", flush=True)
    done = [r for r in rows if r is not None]
    vectors = {f"{m} {ch}": np.stack([r[f"{m} {ch}"] for r in done]).astype(np.float32)
               for m in methods for ch in CHANNELS}
    pcm = [str(r["pcm_sha256"]) for r in done]
    record = {"files": len(paths), "computed": len(todo), "reused": len(paths) - len(todo), "cache_tag": tag,
              "seconds": round(time.monotonic() - t0, 1)}
    return vectors, pcm, record


# --------------------------------------------------------------------------- measurement


def operating_point(score: F64, h1: npt.NDArray[np.bool_], percent: int) -> tuple[float, int, int]:
    """The threshold at a false-alarm rate of ``percent`` %, and the H2 trials at or above it.

    With k = floor(n_H2 * percent / 100) (integer arithmetic) and h the H2 scores in descending
    order, the threshold is the smallest float64 t such that at most k H2 trials score t or more:
    t = nextafter(h[k], +inf), i.e. a trial is found when its score is strictly above the (k+1)-th
    highest H2 score. Returns (t, k, the H2 trials at or above t).
    """
    two = np.sort(score[~h1])[::-1]
    k = two.size * percent // 100
    t = float(np.nextafter(two[k], np.inf)) if k < two.size else -math.inf
    return t, k, int(np.count_nonzero(two >= t))


def _share(x: npt.NDArray[np.bool_]) -> float | None:
    return float(np.count_nonzero(x) / x.size) if x.size else None


def _figures(trials: Trials, settings: Settings, label: str, tau: float | None) -> dict[str, Any]:
    """Operating point, cross-validated calibration and (raw cosine) the v1 floor's shares of one score."""
    s, h1 = trials.score, trials.h1
    thr, k, at = operating_point(s, h1, settings.false_alarm_percent)
    by_t = {t: trials.h1 & (trials.transform == i) for i, t in enumerate(trials.transforms)}
    out: dict[str, Any] = {
        "trials": {"h1": int(np.count_nonzero(h1)), "h2": int(np.count_nonzero(~h1)),
                   "h2_controls": int(np.count_nonzero(trials.kind == H2_CONTROL)),
                   "h2_copies": int(np.count_nonzero(trials.kind == H2_POSITIVE)), "units": trials.units,
                   "source_units": len(trials.first_sources), "controls": trials.controls,
                   "h1_by_transform": {t: int(np.count_nonzero(sel)) for t, sel in by_t.items()}},
        "at_false_alarm": {"percent": settings.false_alarm_percent, "threshold": thr, "h2_allowed": k,
                           "h2_at_or_above": at, "h2_rate": at / int(np.count_nonzero(~h1)),
                           "found": _share(s[h1] >= thr),
                           "found_by_transform": {t: _share(s[sel] >= thr) for t, sel in by_t.items()}},
        "pooled_scores": {"cllr_min": metrics.cllr_min(s, h1), "eer": metrics.eer(s, h1)},
    }
    try:
        cal = calibrate_channel(trials, settings.folds, label)
        out["calibration"] = {"status": "ok", "model": cal.model.as_dict(),
                              "bounds": {"lower": cal.lower, "upper": cal.upper},
                              "overall": cal.validation.overall.as_dict(),
                              "by_transform": {t: f.as_dict() for t, f in cal.validation.by_transform.items()}}
        llrs = cross_validate(trials, LogitCalibrator(), settings.folds)  # the LLRs calibrate_channel validated
        out["calibration"]["by_h2_kind"] = {
            name: figures(llrs[sel], h1[sel], trials.unit[sel]).as_dict()
            for name, sel in (("controls", h1 | (trials.kind == H2_CONTROL)),
                              ("copies", h1 | (trials.kind == H2_POSITIVE)))}
    except (LRError, CalibrationFitError) as exc:
        reason = str(exc)
        short = "refused: no positive slope" if "slope" in reason else f"refused: {reason}"
        out["calibration"] = {"status": "refused", "short": short, "reason": reason}
        try:  # for the record only (the JSON): what the refused trials cross-validate to
            llrs = cross_validate(trials, LogitCalibrator(), settings.folds)
            v = validate(trials, llrs, settings.folds)
            out["calibration"]["cross_validated_despite_refusal"] = {
                "overall": v.overall.as_dict(), "by_transform": {t: f.as_dict() for t, f in v.by_transform.items()}}
        except (ValidationError, CalibrationFitError) as again:
            out["calibration"]["cross_validated_despite_refusal"] = f"not possible either: {again}"
    if tau is not None:
        out["v1_floor"] = {"tau": tau, "h1_above": _share(s[h1] > tau),
                           "h1_above_by_transform": {t: _share(s[sel] > tau) for t, sel in by_t.items()},
                           "h2_above": _share(s[~h1] > tau),
                           "h2_controls_above": _share(s[trials.kind == H2_CONTROL] > tau),
                           "h2_copies_above": _share(s[trials.kind == H2_POSITIVE] > tau)}
    return out


def measure(vectors: Mapping[str, F32], sets: Sets, pcm: Sequence[str], spaces: Mapping[str, str],
            settings: Settings) -> dict[str, Any]:
    """Per ``"<method> <channel>"``: attribution-v1's floor and both scores' figures (see the module)."""
    n, c = len(sets.catalog), len(sets.controls)
    cat, ctl, cop = slice(0, n), slice(n, n + c), slice(n + c, None)
    results: dict[str, Any] = {}
    for method in settings.signature_methods:
        for ch in settings.channels:
            v = vectors[f"{method} {ch}"]
            control_sims = exact_similarities(v[ctl], v[cat])
            floor = calibrate({ch: control_sims}, settings.k, control_ids=sets.control_ids,
                              control_pcm_sha256=list(pcm[ctl]), catalog_pcm_sha256=list(pcm[cat]),
                              control_space=spaces[method], catalog_space=spaces[method],
                              min_controls=settings.min_controls)[ch]
            common: dict[str, Any] = {
                "cohort": cohort_stats(control_sims, sets.catalog_ids, channel=ch), "control_sims": control_sims,
                "control_control": exact_similarities(v[ctl], v[ctl]),
                "positive_sims": exact_similarities(v[cop], v[cat]),
                "positive_controls": exact_similarities(v[cop], v[ctl]), "positives": sets.labels,
                "song_ids": sets.catalog_ids, "control_ids": sets.control_ids, "channel": ch}
            entry: dict[str, Any] = {"v1_floor": {key: val for key, val in floor.as_dict().items()
                                                  if key != "counts_above"}}
            for key, _label, normalise in SCORES:
                trials = build_trials(**common, normalise=normalise)
                entry[key] = _figures(trials, settings, f"{method} {ch} {key}", floor.tau if not normalise else None)
            results[f"{method} {ch}"] = entry
    return results


# --------------------------------------------------------------------------- report


def _short(method: str) -> str:
    return method.removeprefix("lumina-").removesuffix("-v1")


def _cal(r: dict[str, Any], transform: str | None = None) -> dict[str, Any] | None:
    cal = r["calibration"]
    if cal["status"] != "ok":
        return None
    f: dict[str, Any] = cal["overall"] if transform is None else cal["by_transform"].get(transform)
    return f


def _bounds(f: dict[str, Any] | None) -> str:
    return "-" if f is None else f"[{f['bounds']['lower']:g}, {f['bounds']['upper']:g}]"


def _cells(r: dict[str, Any], transform: str | None) -> list[str]:
    """Found at the false-alarm rate, C_llr, C_llr_min, EER, ELUB of one score (overall or one transform)."""
    a = r["at_false_alarm"]
    found = a["found"] if transform is None else a["found_by_transform"].get(transform)
    f = _cal(r, transform)
    if f is None:
        return [pct(found), r["calibration"]["short"], "-", "-", "-"]
    return [pct(found), num(f["cllr"]), num(f["cllr_min"]), pct(f["eer"]), _bounds(f)]


def _ordered(doc: dict[str, Any]) -> dict[str, Any]:
    """The results in table order: methods, then channels, as the settings list them."""
    res = doc["results"]
    keys = [f"{m} {c}" for m in doc["settings"]["signature_methods"] for c in doc["settings"]["channels"]]
    return {k: res[k] for k in keys if k in res}


def _reading(doc: dict[str, Any]) -> list[str]:
    """Sentences computed from the figures (no judgement is typed in by hand)."""
    res = _ordered(doc)
    transforms = doc["settings"]["transforms"]
    fa = doc["settings"]["false_alarm_percent"]
    lines = []
    count = {"found": 0, "cllr": 0, "cllr_min": 0, "both": 0, "t_cllr": 0, "t_more": 0, "t_fewer": 0, "pairs": 0}
    for key, r in res.items():
        raw, sn = r["raw"], r["snorm"]
        fr, fs = raw["at_false_alarm"]["found"], sn["at_false_alarm"]["found"]
        cr, cs = _cal(raw), _cal(sn)
        more = [t for t in transforms if (sn["at_false_alarm"]["found_by_transform"][t] or 0)
                > (raw["at_false_alarm"]["found_by_transform"][t] or 0)]
        fewer = [t for t in transforms if (sn["at_false_alarm"]["found_by_transform"][t] or 0)
                 < (raw["at_false_alarm"]["found_by_transform"][t] or 0)]
        count["found"] += fs > fr
        count["t_more"] += len(more)
        count["t_fewer"] += len(fewer)
        count["pairs"] += len(transforms)
        text = (f"- {_short(key.split()[0])} {key.split()[1]}: at {fa} % false alarms S-norm finds {pct(fs)} of the "
                f"same-source trials, the raw cosine {pct(fr)}")
        if cr is not None and cs is not None:
            count["both"] += 1
            count["cllr"] += cs["cllr"] < cr["cllr"]
            count["cllr_min"] += cs["cllr_min"] < cr["cllr_min"]
            lower = [t for t in transforms if (a := _cal(sn, t)) is not None and (b := _cal(raw, t)) is not None
                     and a["cllr"] < b["cllr"]]
            count["t_cllr"] += len(lower)
            text += (f"; cross-validated C_llr {num(cs['cllr'])} (S-norm) against {num(cr['cllr'])} (raw), "
                     f"C_llr_min {num(cs['cllr_min'])} against {num(cr['cllr_min'])}; S-norm's C_llr is lower on "
                     f"{', '.join(lower) or 'no transform'}")
        else:
            text += "; calibration: " + ", ".join(f"{name} {x['calibration']['short']}"
                                                  for name, x in (("S-norm", sn), ("raw", raw))
                                                  if x["calibration"]["status"] != "ok")
        text += (f". At {fa} % false alarms S-norm finds more on {', '.join(more) or 'no transform'}; fewer on "
                 f"{', '.join(fewer) or 'no transform'}.")
        lines.append(text)
    n = len(res)
    lines.insert(0, f"- Overall, over the {n} signature channels, S-norm finds more same-source trials at {fa} % false "
                    f"alarms on {count['found']}, and where both scores were calibrated ({count['both']}) it has the "
                    f"lower cross-validated C_llr on {count['cllr']} and the lower C_llr_min on {count['cllr_min']}. "
                    f"Per transform ({count['pairs']} channel-transform pairs) it has the lower C_llr on "
                    f"{count['t_cllr']}, and finds more on {count['t_more']} and fewer on {count['t_fewer']}.")
    split = []
    for key, r in res.items():
        kr, ks = r["raw"]["calibration"].get("by_h2_kind"), r["snorm"]["calibration"].get("by_h2_kind")
        if kr and ks:
            split.append(f"{_short(key.split()[0])} {key.split()[1]} {num(kr['controls']['cllr'])} -> "
                         f"{num(ks['controls']['cllr'])} (controls), {num(kr['copies']['cllr'])} -> "
                         f"{num(ks['copies']['cllr'])} (copies)")
    if split:
        lines.append("- C_llr from the raw cosine to S-norm, with only one kind of H2 trial: " + "; ".join(split)
                     + ". The per-transform figures count every control trial but only one transform's copy trials, "
                     "so they weigh the controls far more than the overall figures do.")
    high = [f"{_short(k.split()[0])} {k.split()[1]} (mu {num(r['v1_floor']['mu'], 3)}, sigma "
            f"{num(r['v1_floor']['sigma'], 3)}, tau {num(r['v1_floor']['tau'], 3)})" for k, r in res.items()
            if r["v1_floor"]["tau"] >= 1.0]
    if high:
        lines.append(f"- Attribution-v1's floor with these recorded controls lies at or above 1, the largest cosine "
                     f"there is, on {', '.join(high)}: there v1 attributes no song at all, derived copies included: "
                     "the cosines of recorded controls with the catalog spread too widely for a floor of 3 sigma.")
    return lines


def markdown(doc: dict[str, Any]) -> str:
    """The Markdown report of a result document."""
    st, d, res = doc["settings"], doc["data"], _ordered(doc)
    sig = doc["signatures"]
    fa = st["false_alarm_percent"]
    n_cat, n_ctl = len(d["catalog"]), len(d["controls"])
    lines = ["# Attribution v1 (raw cosine) and v2 (S-norm, calibrated LRs) on recorded music, recorded controls",
             "",
             *run_header(doc),
             f"- Checkpoint `{doc['model']['model']}` (width {doc['model']['width']}), SHA-256 "
             + ", ".join(f"{k} `{v[:16]}...`" for k, v in sorted(doc["model"]["digests"].items()))
             + f"; signatures of {sig['computed']} file(s) computed in {sig['seconds'] / 60:.1f} min, "
             f"{sig['reused']} reused from the work folder's cache",
             "", "## Data", "",
             "Recorded music from Debian packages, installed with apt"
             + (f" (by this run: {', '.join(d['apt_installed'])})" if d["apt_installed"] else "")
             + f" and used only here. {d['not_committed']}", ""]
    lines += md_table(["package", "version", "licence", "copyright", "catalog tracks", "control tracks"],
                      [[f"`{p['name']}`", p["version"], p["licence"], p["copyright"], str(p["catalog_tracks"]),
                        str(p["control_tracks"])] for p in d["packages"]], "llllrr") + [""]
    lines += [f"- Catalog ({n_cat}): " + ", ".join(t["song_id"] for t in d["catalog"]) + ".",
              f"- Controls ({n_ctl}, none in the catalog): " + ", ".join(t["song_id"] for t in d["controls"]) + ".",
              f"- Each song is one excerpt of {st['excerpt_seconds']:g} s from {st['excerpt_offset_s']:g} s into its "
              "track (16-bit WAV at the track's rate and channels). Derived copies "
              f"(`lumina_audit.attribution.derive`): {', '.join(st['transforms'])}; the splice takes {st['splice']}; "
              f"{d['copies']} copies.", ""]
    tr = next(iter(res.values()))["raw"]["trials"]
    lines += ["## Settings and definitions", "",
              f"- Trials (`attribution.trials.build_trials`, per channel): {tr['h1']} same-source (H1: each copy "
              f"against its source, a splice against both), {tr['h2']} different-source (H2: {tr['h2_controls']} "
              f"control x catalog with the control left out of its own cohort, {tr['h2_copies']} copy x non-source "
              f"song); {tr['units']} units ({tr['source_units']} source songs, then {tr['controls']} controls), fold = "
              f"unit mod {st['folds']}. The same trials are scored twice: raw cosine (`normalise=False`, the score of "
              "attribution-v1) and S-norm (`normalise=True`, v2).",
              f"- Found at {fa} % false alarms: with k = floor(n_H2 x {fa} / 100) and the H2 scores in descending "
              "order, the threshold is the smallest score t at or above which at most k H2 trials lie "
              "(nextafter of the (k+1)-th highest H2 score); a same-source trial is found when its score is at or "
              "above t. One threshold per channel and score, from all H2 trials; the per-transform rows count that "
              "transform's H1 trials against it. It is not cross-validated (it is read off the same H2 trials).",
              f"- C_llr, C_llr_min, EER, ELUB: `likelihood_ratio.calibrate_channel` ({st['folds']} folds): the "
              "figures of the cross-validated log10 LRs (each fold calibrated on the others; C_llr_min and EER after "
              "PAV of those pooled LLRs). Per transform, as `validation.validate` computes them: that transform's "
              "trials plus every control trial. A refusal of the calibration is printed in place of the figures.",
              f"- v1 floor: tau = mu + {st['k']:g} sigma of the {n_ctl} x {n_cat} control-catalog cosines "
              "(`method.calibrate`); above is strict.", ""]
    header = ["channel", "score", f"found at {fa} % FA", "threshold", "H2 at/above", "C_llr", "C_llr_min", "EER",
              "ELUB (log10)", "slope a"]
    body = []
    for key, r in res.items():
        for sk, label, _n in SCORES:
            x = r[sk]
            a = x["at_false_alarm"]
            cells = _cells(x, None)
            cal = x["calibration"]
            slope = f"{cal['model']['a']:.3g}" if cal["status"] == "ok" else "-"
            body.append([f"{_short(key.split()[0])} {key.split()[1]}", label, cells[0], f"{a['threshold']:.4g}",
                         f"{a['h2_at_or_above']} of {x['trials']['h2']}", *cells[1:], slope])
    lines += ["## Overall", "", *md_table(header, body, "llrrrrrrrr"), ""]
    body = []
    for key, r in res.items():
        for sk, label, _n in SCORES:
            kinds = r[sk]["calibration"].get("by_h2_kind")
            if kinds:
                body.append([f"{_short(key.split()[0])} {key.split()[1]}", label,
                             *(f"{num(kinds[h]['cllr'])} / {num(kinds[h]['cllr_min'])}"
                               for h in ("controls", "copies"))])
    if body:
        lines += ["### The same cross-validated LLRs, H2 split by kind (C_llr / C_llr_min)", "",
                  "All H1 trials with, as H2, only the control x catalog trials, or only the copy x non-source song "
                  "trials (`validation.figures` of the LLRs `calibrate_channel` validated).", "",
                  *md_table(["channel", "score", "H2 = controls", "H2 = copies' non-sources"], body, "llrr"), ""]
    for key, r in res.items():
        rows = []
        for t in [*st["transforms"], None]:
            h1 = r["raw"]["trials"]["h1_by_transform"][t] if t else r["raw"]["trials"]["h1"]
            raw, sn = _cells(r["raw"], t), _cells(r["snorm"], t)
            fl = r["raw"]["v1_floor"]
            above = fl["h1_above"] if t is None else fl["h1_above_by_transform"].get(t)
            rows.append([t or "all", str(h1), raw[0], sn[0], raw[1], sn[1], raw[2], sn[2], raw[3], sn[3], raw[4],
                         sn[4], pct(above)])
        lines += [f"## {_short(key.split()[0])} {key.split()[1]}: per transform (raw cosine / S-norm)", "",
                  *md_table(["transform", "H1 trials", f"found {fa}% raw", f"found {fa}% S-norm", "C_llr raw",
                             "C_llr S-norm", "C_llr_min raw", "C_llr_min S-norm", "EER raw", "EER S-norm",
                             "ELUB raw", "ELUB S-norm", "above tau (v1)"], rows), ""]
    body = []
    for key, r in res.items():
        fl, vf = r["v1_floor"], r["raw"]["v1_floor"]
        body.append([f"{_short(key.split()[0])} {key.split()[1]}", num(fl["mu"], 4), f"{fl['sigma']:.3g}",
                     num(fl["tau"], 4), pct(vf["h1_above"]), pct(vf["h2_above"]), pct(vf["h2_controls_above"]),
                     pct(vf["h2_copies_above"])])
    lines += ["## Attribution-v1's own floor (raw cosine)", "",
              "`H2 controls above`: the control x catalog cosines above tau (in-sample: the floor is made of them); "
              "`H2 copies above`: copy x non-source song cosines above tau.", "",
              *md_table(["channel", "mu", "sigma", "tau", "H1 above tau", "H2 above tau", "H2 controls above",
                         "H2 copies above"], body), ""]
    lines += ["## Reading", "", *_reading(doc), *doc.get("notes", []), ""]
    return "\n".join(lines)


def write_report(doc: dict[str, Any], out: Path) -> str:
    """Write ``lr-battery.md`` and ``lr-battery.json`` into ``out``; return the Markdown."""
    text = markdown(doc)
    out.mkdir(parents=True, exist_ok=True)
    (out / "lr-battery.md").write_text(text, encoding="utf-8")
    (out / "lr-battery.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return text


NOTES = [
    "- Limits: 20 catalog songs from two soundtracks and 30 controls from four; per-transform rows rest on 20 "
    "source songs (one unit each), so a share moves by 5 % per song. The Blupi songs have no control from their own "
    "soundtrack (all 10 Blupi tracks are in the catalog), the Wesnoth songs have 10.",
    "- The threshold at 1 % false alarms is read off the same H2 trials it is judged on; C_llr and its companions "
    "are cross-validated by unit. A derived copy is the same recording changed: this measures robustness of the "
    "signature to the change, not attribution of generated music.",
    "- The checkpoint is tiny and was trained on synthetic renders; recorded music is far outside it. Nothing here "
    "says how MusicGen-Large behaves. Nothing was tuned on these figures.",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (re-executed under the numerical pins) and write its report."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(args_list)
    if args.report_only:
        kept = json.loads((args.out / "lr-battery.json").read_text("utf-8"))
        print(write_report(kept | {"command": kept["command"].strip()}, args.out))
        return 0
    from lumina_audit.signature.pins import Pins

    reexec_pinned(Pins(), args_list, __spec__)
    from lumina_audit._internal.quiet import silence_libraries

    silence_libraries()
    started = time.monotonic()
    settings = Settings()
    doc: dict[str, Any] = {**run_record(__spec__, args_list), "settings": settings.as_dict(), "notes": NOTES,
                           "git": git_state(files=True)}
    print("settings (fixed before measuring):\n" + json.dumps(
        {**settings.as_dict(), "catalog": [t.song_id for t in CATALOG], "controls": [t.song_id for t in CONTROLS],
         "model": str(args.model)}, indent=1), flush=True)
    try:
        digests_path, digests = read_digests(args.model, args.digests)
        sets, doc["data"] = prepare(settings, args.work, fresh=args.fresh)
        print(f"data: {len(sets.catalog)} catalog songs, {len(sets.controls)} controls, {len(sets.copies)} copies in "
              f"{doc['data']['prepare_s']:.0f} s", flush=True)
        from lumina_audit.signature.methods import GRADPROJ, GRADSTATS
        from lumina_audit.signature.session import Session

        session = Session.open(args.model, digests, Pins(), methods=(GRADPROJ, GRADSTATS))
        vectors, pcm, doc["signatures"] = signature_vectors(
            session, sets.paths, sets.ids, args.work / "lr-battery" / "signatures", reuse=not args.fresh)
        spaces = {m: session.spaces[m].digest for m in settings.signature_methods}
        doc["results"] = measure(vectors, sets, pcm, spaces, settings)
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    doc["model"] = {"model": shown(args.model),
                    "digests_file": str(digests_path), "digests": dict(digests), "width": int(session.model.lm.dim),
                    "signature_spaces": spaces, "pins_sha256": session.pins.digest}
    doc["versions"] = versions()
    doc["run_seconds"] = round(time.monotonic() - started, 1)
    print(write_report(doc, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
