r"""Audio2Vec-CBoW pretraining: rebuild the middle log-mel slice from 2 + 2 context slices.

Command:
  python main.py --config=configs/audio2vec_cbow.py --workdir=runs/cbow

Result: (2026-11-25, 2-core CPU shared with other jobs, timings noisy; width 1, batch 16;
  suite:pretrain was being rebuilt, so pretrained on its 31 drascula-music tracks
  (decoded from the suite's staging copy; the other pool files are < 4.8 s)):
  at step 240 of 300 MSE 1.44 vs batch-mean-slice baseline 1.98 (below the baseline
  from step ~100 on; the loss starts at ~21 because the decoder starts at 0 while
  log-mel targets sit near -5); about 0.42 steps/s. Width 4 not measured (no time).

At the shared budget (2026-12-02, width 1, batch 64, suite:pretrain, 1000 steps,
`--workdir=runs/cbow --config.num_train_steps=1000`, means over steps 901-1000): MSE 3.82
vs 6.74 for the batch-mean slice; 0.45 steps/s with four other jobs on the 2 cores.
Downstream (`python -m eval.linear_eval --workdir=runs/cbow --benchmarks=suite:all`):
digits 23.2 +- 2.4, language 26.7 +- 0.7, msn 85.6 +- 0.2, instrument 36.8 +- 1.1 vs
Untrained 17.7 / 28.9 / 79.0 / 50.3: ahead on digits and msn, behind on instrument.
Re-run of the same command (2026-12-02 evening, idle, `--workdir=runs/cbow_s0`): MSE again
3.823, downstream 20.9 / 24.5 / 83.3 / 40.4 (paired vs Untrained +4.0 +- 4.9, -4.6 +- 7.3,
+4.4 +- 3.7, -9.8 +- 7.3: no benchmark ahead by more than the interval); 0.46 steps/s.

At 4.6x the examples (2026-12-04, one H200, README "Results at 4.6x the examples": batch 128,
2,300 steps, the pool as 20-kbit/s Opus; `--config.batch_size=128 --config.num_train_steps=2300
--config.data.packed=True`): MSE 2.98 / 2.95 (seeds 0 / 1) vs 6.10 / 6.08. Downstream (default
protocol): digits 11.9 / 12.4, language 34.0 / 32.0, msn 80.1 / 84.0, instrument 42.1 / 46.9
vs Untrained 17.7 / 28.9 / 79.0 / 50.5: ahead only on msn in seed 1 (+5.1 +- 3.4 paired),
at chance on digits in both seeds.

Against the Untrained baseline with the pool's BatchNorm statistics (2026-12-05, 2-core CPU,
README "The Untrained baseline's BatchNorm statistics"; `--config.num_train_steps=1000`,
then `python -m eval.linear_eval ... --baselines=untrained,untrained_init_bn`):
MSE 3.823 vs 6.728 (0.91 steps/s); digits 20.9, language 24.5, msn 83.3, instrument
40.4 vs Untrained 17.7 / 29.5 / 71.7 / 41.6: ahead on msn (+11.5 +- 5.3 paired), level elsewhere.

With 5 probe seeds and 5 init seeds (the eval CLI's defaults since 2026-12-05; same
checkpoint): digits 21.4, language 24.3, msn 83.4, instrument 40.4 vs Untrained 16.1 / 29.6
/ 72.3 / 43.2: ahead on digits (+6.1 +- 5.3) and msn (+11.1 +- 2.0), behind on language
(-5.3 +- 3.3).

Seeds 1 and 2 (2026-12-06, `--config.seed=S`; MSE 3.780 / 3.720; README "Three pretraining
seeds of every method"): digits 12.5 / 22.7, language 26.4 / 26.7, msn 79.0 / 79.1, instrument
42.6 / 44.1: msn in both, digits in seed 2. Over the 3 seeds (Welch vs the 5 inits): digits
+2.8 +- 11.3, language -3.8 +- 3.0 (below random), msn +8.2 +- 5.0, instrument -0.8 +- 4.5;
mean 41.9.

Five seeds (seeds 3, 4: MSE 3.779 / 3.732; 12.5 / 19.0, 34.0 / 29.2, 82.2 / 81.3, 38.8 / 40.8;
README "Five pretraining seeds of every method"): Welch vs the 5 inits +1.6 +- 6.4 / -1.5 +- 4.6
/ +8.7 +- 2.8 / -1.8 +- 4.2; suite mean 42.0, +1.7 +- 1.5 over random: wins msn and the
average; the three-seed language loss is gone.

Against 10 Untrained inits (2026-12-06, night; README "The random baseline over ten inits"):
+2.7 +- 6.1 / +0.3 +- 4.9 / +8.1 +- 2.6 / -1.0 +- 2.9, mean +2.5 +- 2.0: msn and the average.

Slice-normalised targets (`--config.task.target_norm=slice`, seeds 0 / 1, README "CBoW with
slice targets"): MSE 0.487 / 0.480 vs 0.651 / 0.652; valid average 43.4 / 45.7 -> 44.6 < 47.3
for the raw target, so the default stays "none" (test means 41.8 / 47.5, read after).

Under the probe's new default, held-out packages then a refit (2026-12-07, night; README
"TemporalGap, CBoW and a fifth Triplet seed under the new default"): the default (raw target)
trained again for seed 0 (MSE 3.820 vs 6.728, 0.57 steps/s): valid average 53.3 against 46.7 /
49.0 for slice targets (seeds 0 / 1 under the same protocol), so "none" stays the default; test
digits 18.0, language 22.6, msn 86.7, instrument 44.6 against the 10 inits' 14.9 / 25.8 / 75.9 /
42.3: msn above every init (the highest 79.5), language below their mean. One seed: no verdict.

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
  c.task.target_norm = "none"       # none | slice | bin (per-slice normalised targets)
  return c
