r"""Triplet-loss pretraining on temporal proximity (Jansen et al. 2018 style).

Command:
  python main.py --config=configs/triplet.py --workdir=runs/triplet

Result: (2026-11-25, 2-core CPU shared with other jobs, so timings are noisy; width 1, batch 16, 300 steps;
  pretraining on the suite's pretrain packages (drascula-music, tuxpaint-stamps,
  ufoai-sound, decoded from the suite's staging copy while suite:pretrain was being
  rebuilt)): loss 0.011 vs baseline (margin) 0.100; about 0.44 steps/s at width 1,
  0.14 steps/s at width 4 (6 steps, synthetic data).

Paper-silent choices made here (paper.md §4, §9), all overridable:
  task.window_seconds        10       anchor drawn uniformly inside a 10-s window
  task.max_positive_seconds  1.0      positive starts within 1 s of the anchor
  task.margin                0.1      on SQUARED distances of L2-normalised embeddings
  task.fallback              hardest  when no negative is farther than the positive
  negatives: all other examples' anchors and positives of the GLOBAL batch
  (all-gathered across devices), semi-hard mining.
"""

from configs import default


def get_config():
  c = default.get_config()
  c.task.name = "triplet"
  c.task.window_seconds = 10.0
  c.task.max_positive_seconds = 1.0
  c.task.margin = 0.1
  c.task.fallback = "hardest"
  return c
