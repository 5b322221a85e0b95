"""Which customer a Label Studio project is: by ``--project ID=CUSTOMER``, else by its labels.

A project's ``RectangleLabels`` values must equal one customer's label names as a set (the
labels with ``maps_to: null`` included: annotators draw them, the model does not predict
them). No customer or several: an error naming the candidates, never a guess.

Label Studio names a project ``"<id>.<created-at timestamp>"``; the id is the part before the
dot.
"""

from __future__ import annotations

from taxdet.core.errors import InputError
from taxdet.supertax import TaxonomySet


class CustomerMatchError(InputError, ValueError):
    """A project whose labels match no customer, or several."""


def project_id(project: object) -> str | None:
    """``"12.1700000000"`` -> ``"12"``; None for a missing project."""
    if project is None or project == "":
        return None
    return str(project).split(".", 1)[0]


def parse_project_flags(flags: list[str], customers: list[str]) -> dict[str, str]:
    """``["3=customer_b", ...]`` -> ``{"3": "customer_b"}`` (``CustomerMatchError`` for a bad
    entry or an unknown customer)."""
    out: dict[str, str] = {}
    for flag in flags:
        pid, sep, customer = flag.partition("=")
        if not sep or not pid.strip() or not customer.strip():
            raise CustomerMatchError(f"--project {flag!r}: expected ID=CUSTOMER")
        if customer.strip() not in customers:
            raise CustomerMatchError(f"--project {flag!r}: {customer.strip()!r} is not a "
                                     f"customer of the checkpoint ({', '.join(customers)})")
        out[pid.strip()] = customer.strip()
    return out


class CustomerMap:
    """Project -> customer (module docstring). ``label_sets``: customer -> its label names."""

    def __init__(self, label_sets: dict[str, frozenset[str]], projects: dict[str, str]):
        self.label_sets = label_sets
        self.projects = projects

    @classmethod
    def from_taxonomies(cls, taxset: TaxonomySet, customers: list[str],
                        projects: dict[str, str]) -> CustomerMap:
        return cls({c: frozenset(taxset.label_columns(c)) for c in customers}, projects)

    def by_labels(self, labels: tuple[str, ...] | frozenset[str]) -> str:
        """The one customer whose label names equal ``labels`` as a set."""
        wanted = frozenset(labels)
        hits = [c for c, names in self.label_sets.items() if names == wanted]
        if len(hits) == 1:
            return hits[0]
        if hits:
            raise CustomerMatchError(f"labels {sorted(wanted)} are ambiguous: customers "
                                     f"{', '.join(hits)} all have them; pass --project ID=CUSTOMER")
        known = "; ".join(f"{c}: {sorted(n)}" for c, n in self.label_sets.items())
        raise CustomerMatchError(f"labels {sorted(wanted)} are no customer's label set "
                                 f"({known}); pass --project ID=CUSTOMER")

    def resolve(self, project: object, labels: tuple[str, ...] | None) -> str:
        """``--project`` first, else the labels (``CustomerMatchError`` without either)."""
        pid = project_id(project)
        if pid is not None and pid in self.projects:
            return self.projects[pid]
        if labels is None:
            raise CustomerMatchError(f"project {pid!r}: no labeling config to match a customer "
                                     "by, and no --project for it")
        return self.by_labels(labels)
