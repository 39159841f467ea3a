r"""Audio2Vec skip-gram pretraining: rebuild the 2 + 2 context slices from the middle slice.

Command:
  python main.py --config=configs/audio2vec_skipgram.py --workdir=runs/sg

Result (2026-11-26, 2-core CPU shared with a CI run; width 1, batch 16, suite:pretrain,
  300 steps, means over steps 201-300): MSE 4.748 vs 6.293 for the batch's mean slice,
  1.62 steps/s. (Before the decoder started at the log-mel level, task.decoder_bias_init,
  300 steps only reached the baseline: 1.675 vs 1.678 on a music-only subset.)
  Width 4 not measured.

Result at batch 64, 1000 steps (2026-12-01, `--config.num_train_steps=1000`, means over
  steps 901-1000): MSE 4.316 vs 6.703, 2.0 steps/s. Downstream (README "Results"): digits
  17.5, language 22.0, msn 85.5, instrument 42.9 vs Untrained 17.7 / 28.9 / 79.0 / 50.3:
  ahead on msn only (+6.6 +- 3.1 paired).

Paper-silent choices made here (paper.md §4, §9), all overridable:
  task.context         2      2 past + 2 future target slices of 96 frames (5-slice block)
  task.gap_frames      0      no frames skipped between consecutive slices
  task.window_seconds  10     the block sits at a uniformly random offset in a 10-s window
  decoder                     ONE SliceDecoder with 4 output channels (one per context
                              position, past to future), no position conditioning; MSE
"""

from configs import default


def get_config():
  c = default.get_config()
  c.task.name = "audio2vec_skipgram"
  c.task.context = 2
  c.task.gap_frames = 0
  c.task.window_seconds = 10.0
  c.task.decoder_bias_init = -6.5   # decoder output starts at the typical log-mel level
  return c
