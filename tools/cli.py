"""``taxdet <verb> ...``: the installed command; each verb runs the same ``main`` as
``tools/<tool>.py``.

    taxdet validate taxonomies/driving
    taxdet train --config benchmarks/recipes/demo.yaml --taxonomies taxonomies/driving \\
        --output runs/x
    taxdet predict --checkpoint runs/x/last.pt --images DIR --customer customer_b --out pre.json

``taxdet --help`` lists the verbs; ``taxdet <verb> --help`` a verb's options (without importing
torch). Exit codes are the tool's own.
"""

from __future__ import annotations

import importlib
import sys

# verb -> (tool module in taxdet.tools, one line of help)
VERBS: dict[str, tuple[str, str]] = {
    "validate": ("validate_taxonomies", "check taxonomy YAML files, print the coverage matrix"),
    "merge": ("merge_datasets", "merge customer COCO files into one super.json with label masks"),
    "fit-anchors": ("fit_anchors", "best-possible recall of the anchors, and better settings"),
    "train": ("train", "train one EfficientDet across every customer dataset"),
    "evaluate": ("evaluate", "COCO scores: plain, federated, per customer, per cohort"),
    "predict": ("predict", "pre-labels for a customer's images, in its own labels and ids"),
    "export": ("export", "export a checkpoint to ONNX or TorchScript"),
    "serve": ("serve", "pre-labels for Label Studio (its ML backend protocol), every customer"),
    "lint": ("lint_labels", "rank likely annotation errors per customer"),
    "train-classifier": ("train_classifier",
                         "train one image classifier across customer datasets"),
    "evaluate-classifier": ("evaluate_classifier",
                            "top-n, calibration and OOD scores of a classifier"),
    "upgrade-checkpoint": ("upgrade_checkpoint", "rewrite an old checkpoint in the current format"),
    "demo-data": ("make_demo_data", "generate the synthetic demo customers"),
}


def usage() -> str:
    width = max(map(len, VERBS))
    rows = "\n".join(f"  {verb:<{width}}  {text}" for verb, (_, text) in VERBS.items())
    return (f"usage: taxdet <verb> [options]   (taxdet <verb> --help for a verb's options)\n\n"
            f"verbs:\n{rows}\n")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), end="")
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        from taxdet.core.names import did_you_mean
        print(f"{usage()}\ntaxdet: error: unknown verb {verb!r}{did_you_mean(verb, list(VERBS))}",
              file=sys.stderr)
        return 2
    tool = importlib.import_module(f"taxdet.tools.{VERBS[verb][0]}")
    return int(tool.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
