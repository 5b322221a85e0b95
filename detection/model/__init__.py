"""The network: EfficientDet with a K-class head (``build``), per-taxonomy heads
(``multihead``), and the train / predict benches around it (``benches``)."""
