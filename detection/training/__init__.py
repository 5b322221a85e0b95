"""Training: typed config, data loaders, the step, the loop (``Trainer.fit``),
checkpoints, distributed set-up and the progress bar."""
