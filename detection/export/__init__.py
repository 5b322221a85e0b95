"""Per-customer model export: ONNX / TorchScript graphs of the predict network, sliced class
heads, and the NumPy post-processing that turns their outputs into detections.

* ``sliced_head``: a customer's columns and a class head cut to them.
* ``export_net``: the exported graph (normalisation + network + per-anchor box decoding).
* ``postprocess``: top-k + per-class NMS + original pixels, NumPy only.
* ``exporter``: checkpoint -> ``ExportNet`` -> file + label map JSON.
* ``runtime``: run an exported file (onnxruntime or ``torch.jit.load``).

See docs/evaluation.md, "Exporting a model".
"""
