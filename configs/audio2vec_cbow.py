r"""Audio2Vec-CBoW pretraining: rebuild the middle log-mel slice from 2 + 2 context slices.

Command:
  python main.py --config=configs/audio2vec_cbow.py --workdir=runs/cbow

Result: (2026-11-25, 2-core CPU shared with other jobs, timings noisy; width 1, batch 16;
  suite:pretrain was being rebuilt, so pretrained on its 31 drascula-music tracks
  (decoded from the suite's staging copy; the other pool files are < 4.8 s)):
  at step 240 of 300 MSE 1.44 vs batch-mean-slice baseline 1.98 (below the baseline
  from step ~100 on; the loss starts at ~21 because the decoder starts at 0 while
  log-mel targets sit near -5); about 0.42 steps/s. Width 4 not measured (no time).

Paper-silent choices made here (paper.md §4, §9), all overridable:
  task.context         2      2 past + 2 future slices of 96 frames (5-slice block, 4.8 s)
  task.gap_frames      0      no frames skipped between consecutive slices
  task.aggregation     mean   element-wise mean of the 4 context embeddings ("concat": in order)
  task.window_seconds  10     the block sits at a uniformly random offset in a 10-s window
  decoder                     SliceDecoder (Dense -> mirrored upsampling blocks), MSE on log-mel
"""

from configs import default


def get_config():
  c = default.get_config()
  c.task.name = "audio2vec_cbow"
  c.task.context = 2
  c.task.gap_frames = 0
  c.task.aggregation = "mean"
  c.task.window_seconds = 10.0
  c.task.decoder_bias_init = -6.5   # decoder output starts at the typical log-mel level
  return c
