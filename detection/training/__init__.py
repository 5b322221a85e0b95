"""The detection task on the engine (``taxdet.detection.engine``): the detector's command line
(``cli_options``), data and loaders (``train_data``), ``Trainer``, its hooks (pseudo-label
teacher, supervision coverage) and the warm start across taxonomy changes."""
