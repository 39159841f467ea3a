r"""COLA pretraining (Saeed, Grangier, Zeghidour 2021: contrastive crops of one clip).

Command:
  python main.py --config=configs/cola.py --workdir=runs/cola

Result (2026-12-01, 2-core Xeon CPU, width 1, batch 64, suite:pretrain, 1000 steps; means
over steps 901-1000 of metrics.jsonl): loss 1.128 vs log(64) = 4.159 for all-equal
similarities; the positive is retrieved among 64 in 59% of cases (chance 1.6%); 2.5
steps/s (161 examples/s). Downstream (python -m eval.linear_eval
--workdir=runs/cola,runs/tg --benchmarks=suite:all --baselines=untrained; clip-level test
accuracy %, 3 probe seeds; Untrained over 3 init seeds): digits 31.1 +- 2.4 vs Untrained
17.7 +- 5.3 (paired difference +14.1 +- 2.4), language 31.9 vs 28.9, msn 78.1 vs 79.0,
instrument 47.9 vs 50.3 (the last three within the intervals). The first method here
to beat the random encoder on a benchmark. Re-run of the same command on 2026-12-02 (a
2-core AMD EPYC; another float reduction order): loss 1.163 at step 1000, 1.7 steps/s,
downstream 22.0 / 28.8 / 78.9 / 47.5: the digits gain is one run's (README "Results").
Width 4 (--config.encoder.width=4, 400 steps): 0.30 steps/s, 20.3 / 21.7 / 76.1 / 53.0.

At 4.6x the examples (2026-12-04, one H200, README "Results at 4.6x the examples": batch 128,
2,300 steps, the pool as 20-kbit/s Opus; `--config.batch_size=128 --config.num_train_steps=2300
--config.data.packed=True`): loss 1.209 vs ln 128 = 4.852, positive retrieved among 128 in 60%.
Downstream (default protocol): digits 22.6, language 38.6, msn 75.5, instrument 42.2 (mean
44.7) vs Untrained 17.7 / 28.9 / 79.0 / 50.5: language +9.4 +- 5.8 paired; behind on msn and
instrument. Probing the pooled features: 23.7 / 39.8 / 78.3 / 45.5.

Against the Untrained baseline with the pool's BatchNorm statistics (2026-12-05, 2-core CPU,
README "The Untrained baseline's BatchNorm statistics"; `--config.num_train_steps=1000`,
then `python -m eval.linear_eval ... --baselines=untrained,untrained_init_bn`):
loss 1.150 / 1.122 (seeds 0 / 1) vs 4.159; digits 20.9 / 15.8, language 34.8 / 33.5, msn
80.0 / 75.6, instrument 43.9 / 50.1 vs Untrained 17.7 / 29.5 / 71.7 / 41.6: ahead by +2 to +8
everywhere except digits in seed 1, no gain outside its interval.

With 5 probe seeds and 5 init seeds (the eval CLI's defaults since 2026-12-05; same
checkpoints): digits 18.6 / 15.9, language 34.4 / 33.7, msn 80.6 / 75.7, instrument 43.7 /
50.2 vs Untrained 16.1 / 29.6 / 72.3 / 43.2. Seed 0 beats it on 3 of 4 (digits +3.4 +- 2.6,
language +4.8 +- 2.8, msn +8.3 +- 3.1 paired); seed 1 on 2 (msn +3.5 +- 1.8, instrument
+7.1 +- 4.4; language +4.0 +- 4.0 on the edge).

A third pretraining seed (`--config.seed=2`, loss 1.139): digits 24.4, language 33.5, msn 80.6,
instrument 45.6: ahead on digits (+9.2 +- 3.2) and msn (+8.4 +- 1.8). One seed of three (seed
0) beats Untrained on 3 of 4. Over the 3 seeds (README "Three pretraining seeds of every
method"; Welch vs the 5 inits): digits +3.6 +- 8.5, language +4.3 +- 2.6, msn +6.7 +- 5.7,
instrument +3.3 +- 6.6; mean 44.7: wins 2 of 4.

Five seeds (seeds 3, 4: loss 1.166 / 1.136; 22.0 / 30.2, 28.6 / 24.7, 72.4 / 75.1, 44.6 / 45.8;
README "Five pretraining seeds of every method"): Welch vs the 5 inits +6.2 +- 7.0 / +1.4 +- 5.2
/ +4.6 +- 4.5 / +2.8 +- 4.3; suite mean 44.0, +3.7 +- 1.8 over random: wins msn and the
average; the three-seed language win is gone.

Against 10 Untrained inits (2026-12-06, night; README "The random baseline over ten inits"):
+7.3 +- 6.8 / +3.1 +- 5.3 / +4.0 +- 4.4 / +3.6 +- 3.3, mean +4.5 +- 2.2: digits, instrument
and the average; msn falls inside the interval.

Choices (paper.md §10, COLA's code), all overridable:
  task.window_seconds   10     both crops drawn inside a 10-s window of the clip
  task.min_gap_seconds  0.0    independent crops, as COLA (0.975: never overlapping)
  task.positive_noise   0.001  Gaussian noise std on the positive's waveform (COLA's value)
  task.gain_jitter_db   0.0    COLA has none; 6 gives each crop a gain in +-6 dB
  task.head_dim         512    embedding -> Dense(512) -> LayerNorm -> tanh, shared head
  task.temperature      0.2    bilinear similarity g(x)^T W g(y) / (512 * 0.2), W init N(0, 1)
  negatives: every other example's positive of the GLOBAL batch (all-gathered across
  devices); softmax cross-entropy, baseline log(global batch).
"""

from configs import default


def get_config():
  c = default.get_config()
  c.task.name = "cola"
  c.task.window_seconds = 10.0
  c.task.min_gap_seconds = 0.0
  c.task.positive_noise = 0.001
  c.task.gain_jitter_db = 0.0
  c.task.head_dim = 512
  c.task.temperature = 0.2
  return c
