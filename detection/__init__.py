"""EfficientDet for the super-taxonomy, one sub-package per job.

* ``taxdet.detection.engine``      the task-agnostic training engine: config machinery, run
  folder, checkpoints, DDP, the loop and its hooks, ``load_model``;
* ``taxdet.detection.model``       the network, the detector's ``TrainConfig`` and its train /
  predict benches;
* ``taxdet.detection.anchors``     anchor grids and the batched anchor labeler;
* ``taxdet.detection.training``    the detection task: its data, trainer, hooks and warm start;
* ``taxdet.detection.prediction``  run a checkpoint on images, draw the detections;
* ``taxdet.detection.evaluation``  COCO scoring: plain, federated, per customer (no torch).
* ``taxdet.detection.classification``  an image classifier on concatenated customer datasets,
  trained by ``taxdet.detection.engine``'s loop.
"""

import warnings

# effdet decorates functions with torch.jit.script at import; torch >= 2.10 warns about it on
# every run. Nothing here scripts models, so the warning is noise for users of this package.
warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated",
                        category=FutureWarning)
