"""Super-taxonomy and customer taxonomies: what each customer labels, under which names.

Typical use::

    import taxdet.supertax as supertax
    ts = supertax.load(["taxonomies/driving"])
    ts.names                      # K super classes, column order
    ts.label_mask("customer_a")   # [K] bool, True = labeled
    ts.ancestors                  # [K, K] bool target expansion
    ts.label_columns("customer_a")  # customer label -> column

Files are read within documented limits (``taxdet.supertax.yamlpos``: ``MAX_YAML_BYTES``,
``MAX_YAML_NODES``, ``MAX_YAML_DEPTH``; pass ``limits=YamlLimits(...)`` to override).
Every exception for bad input derives from ``taxdet.core.errors.InputError``.
"""

from taxdet.core.errors import ConfigError, InputError, InputNotFoundError, OutputError, run_cli
from taxdet.supertax.diagnostics import ERROR, WARNING, Diagnostic, TaxonomyError
from taxdet.supertax.taxonomy import (
                               ClassificationSource,
                               Coverage,
                               DataSource,
                               Label,
                               Taxonomy,
                               coverage,
                               label_columns,
                               label_mask,
                               missing_mask,
)
from taxdet.supertax.taxset import (
                               TaxonomySet,
                               UnknownTaxonomyError,
                               Validation,
                               discover,
                               load,
                               validate_files,
)
from taxdet.supertax.tree import SuperClass, SuperTaxonomy
from taxdet.supertax.yamlpos import YamlLimitError, YamlLimits, YamlSyntaxError

__all__ = [
    "ERROR", "WARNING", "Diagnostic", "TaxonomyError", "InputError", "ConfigError",
    "InputNotFoundError", "OutputError", "run_cli", "ClassificationSource", "Coverage",
    "DataSource", "Label", "Taxonomy", "coverage", "label_columns", "label_mask", "missing_mask",
    "TaxonomySet",
    "Validation", "discover", "load", "validate_files", "SuperClass", "SuperTaxonomy",
    "UnknownTaxonomyError", "YamlLimits", "YamlLimitError", "YamlSyntaxError",
]
