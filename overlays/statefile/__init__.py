"""The cluster state file: the whole overlay configuration as one JSON document.

Holds ``schema`` (what a version 2 file holds, the error type), ``versions``
(which version a file is; version 1 read as version 2), ``export`` (the
configuration as a file) and ``importer`` (a file applied through the services,
all or nothing, checked to render). May import core, nodes, vdc models, overlays
models, the generators, selectors and services; only the UI layer (API, command line,
management commands) imports it.
"""

from overlays.statefile.export import export_state
from overlays.statefile.importer import ImportReport, import_state
from overlays.statefile.schema import VERSION, StateFileError

__all__ = ["VERSION", "ImportReport", "StateFileError", "export_state", "import_state"]
