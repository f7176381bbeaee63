"""Importing threat intelligence: STIX 2.1 bundles and CSV IOC lists become
``ThreatIndicator`` rows (``manage.py import_intel``).

Reading and writing are apart. ``read_stix`` (``stix``) and ``read_csv``
(``csv_lists``) turn one file into ``IndicatorRow``s and ``Problem``s (the
items they could not use, where they are and why) and raise
``IntelFileError`` only when the file as a whole cannot be read.
``import_intel`` (``writing``) reads every file first, then upserts the rows
in batches on the indicator's unique key (organisation, entity type, digest,
source): a feed imported again updates its rows instead of adding new ones.
Values are normalised as alerts normalise their entities (``values``), so
indicators and entities meet on (entity type, digest).
"""

from disposal.intel_import.csv_lists import read_csv
from disposal.intel_import.rows import INDICATOR_TYPES, IntelFileError, Problem
from disposal.intel_import.stix import pattern_values, read_stix
from disposal.intel_import.values import normalise
from disposal.intel_import.writing import FORMATS, ImportResult, import_intel, summary_lines

__all__ = [
    "FORMATS",
    "INDICATOR_TYPES",
    "ImportResult",
    "IntelFileError",
    "Problem",
    "import_intel",
    "normalise",
    "pattern_values",
    "read_csv",
    "read_stix",
    "summary_lines",
]
