"""The task-agnostic training engine: typed configs of sections and their command line, the
run folder, checkpoints (atomic, digest-checked, tied to a taxonomy set), distributed set-up,
the progress bar, worker seeding, the loop (``TrainerBase`` with ``HookBase`` hooks: EMA,
metric logging, validation schedule, checkpoints, TensorBoard, ``curves.png``) and
``load_model`` (a checkpoint's model rebuilt for prediction). A task (the detector in
``taxdet.detection.training``, the classifier in ``taxdet.detection.classification``) supplies
the data, the model and its loss bench, validation and the summary."""
