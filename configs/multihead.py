r"""MultiHead baseline: one encoder, one softmax head per labelled task, trained jointly.

Command:
  python main.py --config=configs/multihead.py --workdir=runs/multihead

Result: (2026-11-25, 2-core shared CPU, width 1, batch 16, 300 steps; the
  suite's msn task was being rebuilt, so digits + language + instrument of the
  offline suite, snapshot copies): loss 0.81 vs class-prior baseline 1.85;
  accuracy 0.72 (instrument 0.74, language 0.77, digits 0.02: digits has 221 of
  2966 training rows, so few examples per batch); about 2.7 steps/s at width 1,
  0.36 steps/s at width 4 (timing on synthetic data; the CPU was shared, noisy).

Paper-silent choices made here (paper.md §4), all overridable:
  data.train        suite:digits,suite:language,suite:msn,suite:instrument
                    (labels become "SOURCE/label"; rows drawn uniformly from the union,
                    so each task weighs in proportion to its size)
  heads             one Dense over all classes, each example's softmax restricted to
                    its own dataset's classes; loss = mean of the own-head cross-entropy
  task.min_seconds  0.1   task.head_hidden 0   input as configs/supervised.py
"""

from configs import default


def get_config():
  c = default.get_config()
  c.task.name = "multihead"
  c.task.min_seconds = 0.1
  c.task.head_hidden = 0
  c.data.train = "suite:digits,suite:language,suite:msn,suite:instrument"
  return c
