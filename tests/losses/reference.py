"""Independent references for the loss tests: the certain-cell rules by walking the tree."""


def cell_counts(rule, c, k, labeled, ancestors):
    """Does cell (sample of class ``c`` or BACKGROUND (< 0), column ``k``) train under
    ``rule``? ``labeled`` the sample's labeled columns, ``ancestors[j, i]``: i is j or an
    ancestor of j. Decided cell by cell, as docs/losses.md states the rules."""
    if labeled[k] or rule == "none":
        return bool(labeled[k])
    if c >= 0:
        is_ancestor_or_self = bool(ancestors[c, k])
        is_strict_descendant = bool(ancestors[k, c]) and k != c
        return is_ancestor_or_self or (rule != "positives" and not is_strict_descendant)
    return rule == "all" and any(labeled[j] and ancestors[k, j] for j in range(len(labeled)))
