"""Benchmarks and experiments, run from the checkout as ``python -m benchmarks.<name>`` (not
installed): reference comparisons and the taxonomy ablations."""

import warnings

# effdet decorates functions with torch.jit.script at import; torch >= 2.10 warns about it.
warnings.filterwarnings("ignore", message=r".*torch.jit.script.*", category=FutureWarning)
