"""The bottom layer, imported as ``taxdet.core``: input errors and the CLI runner, file
and JSON reading with limits, the config-field helper, special target values.

It lives in ``supertax/core/`` because the design card fixes the top-level folders; it
imports nothing of the project's, and everything else may import it.
"""

if __name__ != "taxdet.core":  # one import path: never taxdet.core
    raise ImportError(f"import this package as taxdet.core, not {__name__}")
