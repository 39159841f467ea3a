r"""MultiHead baseline: one encoder, one softmax head per labelled task, trained jointly.

Command:
  python main.py --config=configs/multihead.py --workdir=runs/multihead

Result: RESULT_PLACEHOLDER

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
