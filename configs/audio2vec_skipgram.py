r"""Audio2Vec skip-gram pretraining: rebuild the 2 + 2 context slices from the middle slice.

Command:
  python main.py --config=configs/audio2vec_skipgram.py --workdir=runs/sg

Since 2026-12-06 (evening) the decoder rebuilds per-slice normalised log-mel
(task.target_norm = "slice"), chosen on the four-task valid average (README "A recipe
chosen on valid"). Every result below before that paragraph ran with the raw log-mel
target: add --config.task.target_norm=none to reproduce them.

Result (2026-11-26, 2-core CPU shared with a CI run; width 1, batch 16, suite:pretrain,
  300 steps, means over steps 201-300): MSE 4.748 vs 6.293 for the batch's mean slice,
  1.62 steps/s. (Before the decoder started at the log-mel level, task.decoder_bias_init,
  300 steps only reached the baseline: 1.675 vs 1.678 on a music-only subset.)
  Width 4 not measured.

Result at batch 64, 1000 steps (2026-12-01, `--config.num_train_steps=1000`, means over
  steps 901-1000): MSE 4.316 vs 6.703, 2.0 steps/s. Downstream (README "Results"): digits
  17.5, language 22.0, msn 85.5, instrument 42.9 vs Untrained 17.7 / 28.9 / 79.0 / 50.3:
  ahead on msn only (+6.6 +- 3.1 paired).

At 4.6x the examples (2026-12-04, one H200, README "Results at 4.6x the examples": batch 128,
2,300 steps, the pool as 20-kbit/s Opus; `--config.batch_size=128 --config.num_train_steps=2300
--config.data.packed=True`): MSE 3.41 / 3.21 (seeds 0 / 1) vs 6.04 / 6.03. Downstream (default
protocol): digits 20.3 / 24.9, language 31.8 / 33.0, msn 84.1 / 79.0, instrument 44.5 / 41.6
vs Untrained 17.7 / 28.9 / 79.0 / 50.5: ahead on msn in seed 0 (+5.1 +- 3.3) and digits in
seed 1 (+7.9 +- 6.4), behind on instrument.

Against the Untrained baseline with the pool's BatchNorm statistics (2026-12-05, 2-core CPU,
README "The Untrained baseline's BatchNorm statistics"; `--config.num_train_steps=1000`,
then `python -m eval.linear_eval ... --baselines=untrained,untrained_init_bn`):
MSE 4.310 / 4.070 (seeds 0 / 1) vs 6.67 / 6.64; digits 20.9 / 16.9, language 21.1 / 33.2,
msn 87.7 / 82.3, instrument 42.8 / 45.2 vs Untrained 17.7 / 29.5 / 71.7 / 41.6: ahead on msn in
both seeds (+15.9 +- 4.9, +10.5 +- 4.8 paired), level elsewhere.

With 5 probe seeds and 5 init seeds (the eval CLI's defaults since 2026-12-05) and a third
pretraining seed (`--config.seed=2`, MSE 4.110; README "A third pretraining seed"): seeds 0 / 1 / 2
digits 20.3 / 17.6 / 20.7, language 21.1 / 33.4 / 35.5, msn 87.7 / 82.3 / 85.8, instrument
42.8 / 45.6 / 46.1 vs Untrained 16.1 / 29.6 / 72.3 / 43.2. Seed 2 beats it on 3 of 4 (digits
+5.4 +- 4.0, language +5.9 +- 3.2, msn +13.5 +- 1.9; mean 47.0); seeds 0 and 1 on 2, and seed 0
is below it on language (-8.6 +- 3.4). 3,000 steps (`--config.num_train_steps=3000`, MSE
3.785): 12.9 / 31.8 / 86.2 / 40.4, ahead on msn only.

Over the 3 seeds (README "Three pretraining seeds of every method"; Welch vs the 5 inits):
digits +3.5 +- 4.8, language +0.4 +- 18.3, msn +13.0 +- 5.5, instrument +1.7 +- 4.4; mean 44.9
(Supervised 54.2; above MFCC on 3 of 4).

Five seeds (seeds 3, 4: MSE 4.190 / 4.105; 14.6 / 19.7, 35.7 / 28.0, 84.7 / 83.6, 44.0 / 42.2;
README "Five pretraining seeds of every method"): Welch vs the 5 inits +2.5 +- 4.8 / +1.1 +- 7.6
/ +12.5 +- 2.9 / +1.0 +- 4.1; suite mean 44.6, +4.3 +- 1.9 over random: wins msn and the
average, not 3 of 4 tasks.

Normalised targets (2026-12-06, 2-core CPU, README "A recipe chosen on valid"; seeds 0-4,
`--config.num_train_steps=1000 --config.seed=S`; MSE 0.509-0.529 vs 0.646-0.647 for the
batch's mean slice): valid average 49.6 vs 49.2 for the raw target (the rule that chose it);
test digits 20.5 +- 3.2, language 34.4 +- 2.2, msn 81.9 +- 2.3, instrument 47.7 +- 3.8, suite
mean 46.1 +- 1.3; Welch vs the 5 Untrained inits +4.4 +- 4.8 / +4.8 +- 2.9 / +9.6 +- 2.8 /
+4.5 +- 4.6, mean +5.8 +- 1.4: beats random on language, msn and the average, all 20 paired
differences above 0, digits and instrument within 0.4 of their intervals. Against the raw
target (Welch over the 5 + 5 runs): mean +1.5 (-0.5, +3.6), msn -2.9 (-5.7, -0.04).

Against 10 Untrained inits (2026-12-06, night; README "The random baseline over ten inits";
the same five runs re-scored with `python -m eval.seed_table`): +5.6 +- 4.0 / +6.5 +- 3.4 /
+9.1 +- 2.5 / +5.3 +- 3.8, mean +6.6 +- 1.9: beats the random encoder on all four tasks (also
without the sub-chance init 9, and against inits 5-9 alone). Band-limiting on top
(`--config.augment.band_limit_prob=0.5`, seeds 0 / 1, MSE 0.530 / 0.506 vs 0.647): valid
average 48.5 < 49.6, not adopted.

Under the probe's new default, held-out packages then a refit (2026-12-07; README "Skip-gram
under the new default"): seeds 0 and 1 trained again (MSE 0.528 / 0.509, as before, though
the probe numbers moved by up to 2 points), `python -m eval.linear_eval
--workdir=runs/sg_slice_s0,runs/sg_slice_s1 --benchmarks=suite:all`: digits 20.3 / 21.0,
language 33.9 / 37.9, msn 82.4 / 82.4, instrument 43.7 / 45.1; Welch vs the 10 inits +5.8 +- 3.3
/ +10.1 +- 8.5 / +6.5 +- 1.7 / +2.1 +- 2.9, mean +6.1 +- 3.1: 3 of 4 (the same checkpoints
under the old protocol: 2 of 4, language +4.6 +- 4.9).

Five seeds under that default (2026-12-07, seeds 2-4 trained on a later VM, MSE 0.513 / 0.516
/ 0.513; `python -m eval.seed_table --tables=docs/results/comparison_sgslice_vpackage.md,
docs/results/comparison_sgslice234_vpackage.md --untrained=docs/results/comparison_vpackage.md`):
digits 21.6, language 35.1, msn 83.1, instrument 45.3, mean 46.3 +- 1.3; Welch vs the 10 inits
+6.7 +- 3.7 / +9.3 +- 5.1 / +7.2 +- 2.4 / +2.9 +- 2.5, mean +6.5 +- 1.9: beats the random
encoder on all four tasks; 7.9 below Supervised, above MFCC on 3 of 4 (not language).

Paper-silent choices made here (paper.md §4, §9), all overridable:
  task.context         2      2 past + 2 future target slices of 96 frames (5-slice block)
  task.gap_frames      0      no frames skipped between consecutive slices
  task.window_seconds  10     the block sits at a uniformly random offset in a 10-s window
  decoder                     ONE SliceDecoder with 4 output channels (one per context
                              position, past to future), no position conditioning; MSE
  task.target_norm     slice  each target slice minus its mean, over its std (not the paper's)
"""

from configs import default


def get_config():
  c = default.get_config()
  c.task.name = "audio2vec_skipgram"
  c.task.context = 2
  c.task.gap_frames = 0
  c.task.window_seconds = 10.0
  c.task.decoder_bias_init = -6.5   # decoder output starts at the typical log-mel level
  c.task.target_norm = "slice"      # none (the paper's raw log-mel) | slice | bin; README
  return c
