"""Paths into the checkout, found from this file (never from the working directory)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DRIVING = REPO / "taxonomies" / "driving"
WAREHOUSE = REPO / "taxonomies" / "warehouse"
