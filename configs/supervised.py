r"""Supervised baseline: the same encoder + a Dense classifier trained on one labelled task.

Command (any labelled source: suite:TASK, manifest:PATH.csv with a label column,
folder:PATH as a folder-per-class tree):
  python main.py --config=configs/supervised.py --workdir=runs/sup_msn --config.data.train=suite:msn

Result: (2026-11-25, 2-core CPU shared with other jobs, so timings are noisy; width 1, batch 16, 300 steps):
  suite:msn (snapshot copy): loss 0.174 vs class-prior baseline 0.939, accuracy 0.93,
  about 0.9 steps/s; on suite:instrument: loss 0.190 vs 2.367, accuracy 0.94, about
  2.3 steps/s. Width 4: about 0.35 steps/s (6 steps on synthetic data).

Paper-silent choices made here (paper.md §4), all overridable:
  data.train        suite:msn   music / speech / noise of the offline suite, split == "train"
  input                         one random 96-frame slice; shorter clips zero-padded at a
                                random offset
  task.min_seconds  0.1         shorter files are skipped
  task.head_hidden  0           Dense(num_classes) on the embedding, softmax cross-entropy
  baseline_loss                 cross-entropy of the training rows' class prior
"""

from configs import default


def get_config():
  c = default.get_config()
  c.task.name = "supervised"
  c.task.min_seconds = 0.1
  c.task.head_hidden = 0
  c.data.train = "suite:msn"
  return c
