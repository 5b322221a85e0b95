"""Super-taxonomy and customer taxonomies: what each customer labels, under which names.

Typical use::

    import supertax
    ts = supertax.load(["taxonomies/driving"])
    ts.names                      # K super classes, column order
    ts.label_mask("customer_a")   # [K] bool, True = labeled
    ts.ancestors                  # [K, K] bool target expansion
    ts.label_columns("customer_a")  # customer label -> column
"""

from supertax.diagnostics import ERROR, WARNING, Diagnostic, TaxonomyError
from supertax.errors import ConfigError, InputError, InputNotFoundError, OutputError, run_cli
from supertax.taxonomy import (Coverage, DataSource, Label, Taxonomy, coverage, label_columns,
                               label_mask, missing_mask)
from supertax.taxset import TaxonomySet, Validation, discover, load, validate_files
from supertax.tree import SuperClass, SuperTaxonomy

__all__ = [
    "ERROR", "WARNING", "Diagnostic", "TaxonomyError", "InputError", "ConfigError",
    "InputNotFoundError", "OutputError", "run_cli", "Coverage", "DataSource", "Label",
    "Taxonomy", "coverage", "label_columns", "label_mask", "missing_mask", "TaxonomySet",
    "Validation", "discover", "load", "validate_files", "SuperClass", "SuperTaxonomy",
]
