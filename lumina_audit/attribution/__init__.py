"""Area ``attribution``: catalog stores, exact search, the noise floor, attribution and its reports.

:mod:`.store` (the HDF5 signature store, written atomically), :mod:`.search` (exact
similarities, streamed in blocks), :mod:`.method` (``lumina-attribution-v1``: calibration
and attribution), :mod:`.reports` (calibration files and attribution reports, canonical
JSON) and :mod:`.catalog` (a store straight from audio, for inspection and tests).

Imports the ``signature`` area only. Importing it imports none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._internal.lazy import lazy_exports

if TYPE_CHECKING:
    from . import calibration_file, metrics, store, store_writer
    from .calibration_file import read_arrays
    from .calibrators import CalibrationFitError, LogitCalibrator, LogitFit
    from .cohort import Cohort, CohortError, cohort_stats, query_stats
    from .derive import TRANSFORMS, DeriveError, default_name, derive_audio, output_path, read_sidecar
    from .detection import Positive, detect, unrelated_attributed_rate
    from .likelihood_ratio import (
        PROPOSITIONS,
        ChannelLRResult,
        LlrKey,
        LRError,
        attribute_channel,
        calibrate_channel,
        database_search,
        report_cut,
    )
    from .method import attribute, attribute_hits, calibrate
    from .metrics import TIPPETT_GRID
    from .reports import (
        ATTRIBUTION_V1,
        ATTRIBUTION_V2,
        CALIBRATION_FORMAT,
        REPORT_FORMAT,
        read_calibration,
        read_report,
        signature_method_of,
        write_canonical,
    )
    from .search import (
        DEFAULT_BLOCK_ROWS,
        KeyedHits,
        ResidentRows,
        exact_similarities,
        similarities,
        top_and_threshold,
        top_by_key,
    )
    from .store import read_index
    from .store_writer import StoreRows, write_streamed
    from .summary import Block, Table, calibration_blocks, report_blocks
    from .trials import H2_CONTROL, H2_POSITIVE, Labelled, Trials, build_trials
    from .validation import ValidationError, cross_validate, figures, validate

__all__ = [
    "ATTRIBUTION_V1",
    "ATTRIBUTION_V2",
    "Block",
    "CALIBRATION_FORMAT",
    "CalibrationFitError",
    "ChannelLRResult",
    "Cohort",
    "CohortError",
    "DEFAULT_BLOCK_ROWS",
    "DeriveError",
    "H2_CONTROL",
    "H2_POSITIVE",
    "KeyedHits",
    "LRError",
    "Labelled",
    "LlrKey",
    "LogitCalibrator",
    "LogitFit",
    "PROPOSITIONS",
    "Positive",
    "REPORT_FORMAT",
    "ResidentRows",
    "StoreRows",
    "TIPPETT_GRID",
    "TRANSFORMS",
    "Table",
    "Trials",
    "ValidationError",
    "attribute",
    "attribute_channel",
    "attribute_hits",
    "build_trials",
    "calibrate",
    "calibrate_channel",
    "calibration_blocks",
    "calibration_file",
    "cohort_stats",
    "cross_validate",
    "database_search",
    "default_name",
    "derive_audio",
    "detect",
    "exact_similarities",
    "figures",
    "metrics",
    "output_path",
    "query_stats",
    "read_arrays",
    "read_calibration",
    "read_index",
    "read_report",
    "read_sidecar",
    "report_blocks",
    "report_cut",
    "signature_method_of",
    "similarities",
    "store",
    "store_writer",
    "top_and_threshold",
    "top_by_key",
    "unrelated_attributed_rate",
    "validate",
    "write_canonical",
    "write_streamed",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "read_arrays": ".calibration_file",
    "CalibrationFitError": ".calibrators",
    "LogitCalibrator": ".calibrators",
    "LogitFit": ".calibrators",
    "Cohort": ".cohort",
    "CohortError": ".cohort",
    "cohort_stats": ".cohort",
    "query_stats": ".cohort",
    "DeriveError": ".derive",
    "TRANSFORMS": ".derive",
    "default_name": ".derive",
    "derive_audio": ".derive",
    "output_path": ".derive",
    "read_sidecar": ".derive",
    "Positive": ".detection",
    "detect": ".detection",
    "unrelated_attributed_rate": ".detection",
    "ChannelLRResult": ".likelihood_ratio",
    "LRError": ".likelihood_ratio",
    "LlrKey": ".likelihood_ratio",
    "PROPOSITIONS": ".likelihood_ratio",
    "attribute_channel": ".likelihood_ratio",
    "calibrate_channel": ".likelihood_ratio",
    "database_search": ".likelihood_ratio",
    "report_cut": ".likelihood_ratio",
    "attribute": ".method",
    "attribute_hits": ".method",
    "calibrate": ".method",
    "TIPPETT_GRID": ".metrics",
    "ATTRIBUTION_V1": ".reports",
    "ATTRIBUTION_V2": ".reports",
    "CALIBRATION_FORMAT": ".reports",
    "REPORT_FORMAT": ".reports",
    "read_calibration": ".reports",
    "read_report": ".reports",
    "signature_method_of": ".reports",
    "write_canonical": ".reports",
    "DEFAULT_BLOCK_ROWS": ".search",
    "KeyedHits": ".search",
    "ResidentRows": ".search",
    "exact_similarities": ".search",
    "similarities": ".search",
    "top_and_threshold": ".search",
    "top_by_key": ".search",
    "read_index": ".store",
    "StoreRows": ".store_writer",
    "write_streamed": ".store_writer",
    "Block": ".summary",
    "Table": ".summary",
    "calibration_blocks": ".summary",
    "report_blocks": ".summary",
    "H2_CONTROL": ".trials",
    "H2_POSITIVE": ".trials",
    "Labelled": ".trials",
    "Trials": ".trials",
    "build_trials": ".trials",
    "ValidationError": ".validation",
    "cross_validate": ".validation",
    "figures": ".validation",
    "validate": ".validation",
}, modules={"calibration_file": ".calibration_file", "metrics": ".metrics", "store": ".store",
            "store_writer": ".store_writer"})
