"""EfficientDet for the super-taxonomy, one sub-package per job.

* ``detection.model``       the network and its train / predict benches;
* ``detection.anchors``     anchor grids and the batched anchor labeler;
* ``detection.training``    config, loaders, the loop, the trainer, checkpoints, DDP;
* ``detection.prediction``  run a checkpoint on images, draw the detections;
* ``detection.evaluation``  COCO scoring: plain, federated, per customer (no torch).
* ``detection.classification``  an image classifier on concatenated customer datasets,
  trained by ``detection.training``'s loop.
"""

import warnings

# effdet decorates functions with torch.jit.script at import; torch >= 2.10 warns about it on
# every run. Nothing here scripts models, so the warning is noise for users of this package.
warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated",
                        category=FutureWarning)
