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
    from .catalog import extract_to_store
    from .method import ChannelCalibration, ChannelResult, attribute, attribute_hits, calibrate
    from .reports import read_calibration, read_report, write_canonical
    from .search import Hits, similarities, top_and_threshold
    from .store import (
        SignatureStore,
        StoreIndex,
        StoreInfo,
        iter_blocks,
        open_info,
        read_index,
        read_store,
    )
    from .store_writer import create_or_append, create_or_append_multi

__all__ = [
    "ChannelCalibration",
    "ChannelResult",
    "Hits",
    "SignatureStore",
    "StoreIndex",
    "StoreInfo",
    "attribute",
    "attribute_hits",
    "calibrate",
    "create_or_append",
    "create_or_append_multi",
    "extract_to_store",
    "iter_blocks",
    "open_info",
    "read_calibration",
    "read_index",
    "read_report",
    "read_store",
    "similarities",
    "top_and_threshold",
    "write_canonical",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "SignatureStore": ".store",
    "StoreIndex": ".store",
    "StoreInfo": ".store",
    "create_or_append": ".store_writer",
    "create_or_append_multi": ".store_writer",
    "iter_blocks": ".store",
    "open_info": ".store",
    "read_index": ".store",
    "read_store": ".store",
    "Hits": ".search",
    "similarities": ".search",
    "top_and_threshold": ".search",
    "ChannelCalibration": ".method",
    "ChannelResult": ".method",
    "attribute": ".method",
    "attribute_hits": ".method",
    "calibrate": ".method",
    "read_calibration": ".reports",
    "read_report": ".reports",
    "write_canonical": ".reports",
    "extract_to_store": ".catalog",
})
