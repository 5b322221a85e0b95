"""An image classifier across concatenated customer datasets (docs/classification.md).

* ``config``      ``ClassifierConfig`` (torch-free) and the ``CLASSIFIER`` command line;
* ``model``       a timm backbone by name, local weights files;
* ``bench``       network + masked loss (softmax, bce, focal, hierarchical);
* ``loaders``     the concatenated data, split, sampler and loaders;
* ``trainer``     ``ClassifierTrainer``: the detector's loop on the above;
* ``metrics``, ``evaluation``, ``plots``, ``predictor``: top-n, calibration, OOD scores;
  loading and scoring a checkpoint.
"""
