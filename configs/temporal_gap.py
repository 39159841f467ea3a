r"""TemporalGap pretraining (the paper's TemporalGap task) on the offline suite.

Command:
  python main.py --config=configs/temporal_gap.py --workdir=runs/tg

Result (2026-11-25, 2-core Xeon CPU, width 1, batch 64): see the README's results
table; the loss falls well below the constant-prediction baseline within 300 steps.

Paper-silent choices made here (paper.md §9), all overridable:
  task.window_seconds  10    slices drawn uniformly inside a 10-s window
  task.loss            bce   cross-entropy against the soft normalised gap
  task.head_hidden     0     Dense + sigmoid on the concatenated embeddings
"""

from configs import default


def get_config():
  c = default.get_config()
  c.task.name = "temporal_gap"
  c.task.window_seconds = 10.0
  c.task.loss = "bce"
  c.task.head_hidden = 0
  return c
