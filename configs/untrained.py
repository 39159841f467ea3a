r"""Untrained baseline: the random-init encoder (no training step), probed like the others.

Command (writes the step-0 checkpoint and stops; no data is read beyond the manifest):
  python main.py --config=configs/untrained.py --workdir=runs/untrained

It is the TemporalGap config with num_train_steps = 0: the trainer saves the
random initialisation (seed = config.seed) as checkpoint 0, encoder under the key
"encoder" (the TemporalGap head is saved too and ignored by the probes). Any other
config with --config.num_train_steps=0 also writes a random-init checkpoint; this
file fixes which one the results table uses.

Paper-silent choices (paper.md §4 "Untrained" [U, med]): the init is flax's default
(lecun-normal kernels, zero biases), BatchNorm statistics are the initial 0 / 1.
"""

from configs import temporal_gap


def get_config():
  c = temporal_gap.get_config()
  c.num_train_steps = 0
  return c
