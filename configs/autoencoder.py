r"""AutoEncoder baseline: rebuild the same log-mel slice through the 128-d embedding.

Command:
  python main.py --config=configs/autoencoder.py --workdir=runs/ae

Result: RESULT_PLACEHOLDER

Paper-silent choices made here (paper.md §4), all overridable:
  task.window_seconds  10     the slice is drawn uniformly inside a 10-s window
  decoder                     SliceDecoder (shared with Audio2Vec), MSE on log-mel
"""

from configs import default


def get_config():
  c = default.get_config()
  c.task.name = "autoencoder"
  c.task.window_seconds = 10.0
  return c
