"""A training run on disk: its configuration and its checkpoints, shared by training and tools.

    config.py      TrainConfig: the original train.py's flags (frozen), validated, -> Glow's
                   arguments
    plan.py        resolve(config, data, workers) -> the resolved config + its RunPlan (batches
                   per worker, iterations per epoch, beta2, notes)
    checkpoint_format.py  the on-disk format: the log directory layout, checkpoint variable
                   groups, finding a checkpoint that loads, weights.json (raw or Polyak-averaged
                   weights)
    load.py        load_model(logdir): rebuild a trained Glow

Training writes runs, the tools (sampling, manipulation, export, the editor) read them; both
import this package, so the tools never import training.
"""
