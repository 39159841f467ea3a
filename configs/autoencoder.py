r"""AutoEncoder baseline: rebuild the same log-mel slice through the 128-d embedding.

Command:
  python main.py --config=configs/autoencoder.py --workdir=runs/ae

Result: (2026-11-25, 2-core CPU shared with other jobs, so timings are noisy; width 1, batch 16, 300 steps;
  pretraining on the suite's pretrain packages as for configs/triplet.py): MSE 2.48
  vs the batch-mean-slice baseline 4.28 (the loss starts far above the baseline,
  ~37, and crosses it near step 100); about 0.45 steps/s at width 1, 0.15 steps/s
  at width 4. At width 4 with lr 1e-3 the first steps diverged (MSE 161 at step 6,
  grad norm 3e3): consider optimizer.grad_clip_norm there.

At the shared budget (2026-12-02, width 1, batch 64, 1000 steps, `--workdir=runs/ae
--config.num_train_steps=1000`, means over steps 901-1000): MSE 1.17 vs 6.75 for the
batch-mean slice; 2.29 steps/s. Downstream (`python -m eval.linear_eval --workdir=runs/ae
--benchmarks=suite:all`): digits 26.6 +- 2.4, language 26.8 +- 0.7, msn 77.0 +- 0.6,
instrument 40.9 +- 0.5 vs Untrained 17.7 / 28.9 / 79.0 / 50.3: ahead on digits only.

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
  c.task.target_norm = "none"       # none | slice | bin (per-slice normalised targets)
  return c
