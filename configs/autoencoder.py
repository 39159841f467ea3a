r"""AutoEncoder baseline: rebuild the same log-mel slice through the 128-d embedding.

Command:
  python main.py --config=configs/autoencoder.py --workdir=runs/ae

Result: (2026-11-25, 2-core CPU shared with other jobs, so timings are noisy; width 1, batch 16, 300 steps;
  pretraining on the suite's pretrain packages as for configs/triplet.py): MSE 2.48
  vs the batch-mean-slice baseline 4.28 (the loss starts far above the baseline,
  ~37, and crosses it near step 100); about 0.45 steps/s at width 1, 0.15 steps/s
  at width 4. At width 4 with lr 1e-3 the first steps diverged (MSE 161 at step 6,
  grad norm 3e3): consider optimizer.grad_clip_norm there.

Paper-silent choices made here (paper.md §4), all overridable:
  task.window_seconds  10     the slice is drawn uniformly inside a 10-s window
  decoder                     SliceDecoder (shared with Audio2Vec), MSE on log-mel
"""

from configs import default


def get_config():
  c = default.get_config()
  c.task.name = "autoencoder"
  c.task.window_seconds = 10.0
  c.task.decoder_bias_init = -6.5   # decoder output starts at the typical log-mel level
  return c
