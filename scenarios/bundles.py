"""Uploaded locustfiles and zip bundles: the web app's name for workers.bundle.

The rules live in workers.bundle so that the upload and the load worker that extracts a stored
bundle apply exactly the same checks with the same budget; this module only re-exports them.
What to store for an accepted upload is `Bundle.content` (ignored members already dropped).
"""

from workers.bundle import (
    BOMB_MIN_BYTES,
    BOMB_RATIO,
    COMPILED_SUFFIXES,
    ENTRY_POINT,
    MAX_ENTRIES,
    MAX_FILES,
    MAX_PY_BYTES,
    MAX_UNPACKED_BYTES,
    MAX_ZIP_BYTES,
    Bundle,
    BundleError,
    open_stored,
    read_upload,
)

__all__ = [
    "BOMB_MIN_BYTES",
    "BOMB_RATIO",
    "COMPILED_SUFFIXES",
    "ENTRY_POINT",
    "MAX_ENTRIES",
    "MAX_FILES",
    "MAX_PY_BYTES",
    "MAX_UNPACKED_BYTES",
    "MAX_ZIP_BYTES",
    "Bundle",
    "BundleError",
    "open_stored",
    "read_upload",
]
