"""TemporalGap: predict the normalised time gap between two slices of one clip.

Paper [A]: "estimate the time gap between two short segments drawn at random from
one clip". Choices the paper leaves open (paper.md §4, §9) are config keys:

* ``task.window_seconds`` (10): the window of the clip the two slices are drawn from.
* ``task.min_gap_seconds`` (0.975, one slice): the pair is uniform over the ordered
  start pairs with |t1 - t2| >= this gap (``random_pair_starts``: exact, no
  rejection). Two independent starts (0, the old sampler) overlap in ~20% of pairs
  on a 10-s window, and an overlapping pair can be matched sample by sample.
* target = |t1 - t2| / (len(clip) - slice), in [min_gap / max_gap, 1]: the gap as a
  fraction of the largest gap in the audio actually used, so on a file shorter than
  the window (used whole) the target still spans the range, and its meaning does not
  depend on the file's length. ``min_samples`` = slice + min gap + one hop, so every
  usable file has a valid pair; shorter files are skipped by the pipeline.
* ``task.gain_jitter_db`` (6; 0 disables): each slice gets an independent gain,
  uniform in ±dB, on the host, so loudness is no cue for the gap.
* ``task.loss``: "bce" (cross-entropy between the sigmoid output and the soft
  target, our default) or "mse".
* head: ``task.head_features`` "symmetric" (default) feeds [|e1 - e2|, e1 * e2]
  to the head, "concat" feeds [e1, e2]; then ``task.head_hidden`` ReLU units (0 = a
  single Dense) and Dense(1) + sigmoid. A single Dense on the concatenation (the
  recalled "Dense + sigmoid") is a sum of one term per slice, so it cannot express
  how far apart two slices are; measured on the suite it only learned the mean gap
  (loss 0.634 vs 0.631 for a constant after 1000 steps).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import optax

from ssl_audio import tasks
from ssl_audio.tasks.base import (SlicePairTask, check_window_fits_pair, check_window_fits_two_slices,
                                  embed_windows)


class TemporalGapModel(nn.Module):
  task: "TemporalGap"

  @nn.compact
  def __call__(self, batch, train: bool = False):
    emb = embed_windows(self.task.make_encoder(), batch["audio"], self.task.frontend, train)
    t = self.task.config.task
    if t.head_features == "symmetric":                     # the target |gap| is symmetric too
      h = jnp.concatenate([jnp.abs(emb[:, 0] - emb[:, 1]), emb[:, 0] * emb[:, 1]], axis=-1)
    else:
      h = emb.reshape(emb.shape[0], -1)                     # concatenate the two embeddings
    if t.head_hidden:
      h = nn.relu(nn.Dense(t.head_hidden, name="head_hidden")(h))
    return nn.Dense(1, name="head")(h)[:, 0]                # logit of the normalised gap


@tasks.register
class TemporalGap(SlicePairTask):
  name = "temporal_gap"

  @classmethod
  def check_config(cls, config):
    t = config.task
    check_window_fits_two_slices(config)
    if t.loss not in ("bce", "mse"):
      raise ValueError(f"config.task.loss: {t.loss!r} is not 'bce' or 'mse'")
    if t.head_features not in ("concat", "symmetric"):
      raise ValueError(f"config.task.head_features: {t.head_features!r} is not 'concat' or 'symmetric'")
    if not isinstance(t.head_hidden, int) or t.head_hidden < 0:
      raise ValueError(f"config.task.head_hidden: must be an integer >= 0, got {t.head_hidden!r}")
    if not t.gain_jitter_db >= 0:
      raise ValueError(f"config.task.gain_jitter_db: must be >= 0, got {t.gain_jitter_db}")
    check_window_fits_pair(config, "min_gap_seconds")

  def sample(self, clip, rng):
    audio, t1, t2 = self.sample_pair(clip, rng)
    gap = abs(t1 - t2) / (len(clip) - self.frontend.slice_samples)  # of the window used: in [0, 1]
    return {"audio": audio, "target": np.float32(gap)}

  def model(self, num_classes=None):
    return TemporalGapModel(self)

  def loss(self, outputs, batch):
    target = batch["target"].astype(jnp.float32)
    pred = nn.sigmoid(outputs)
    mean_target = jnp.mean(target)
    if self.config.task.loss == "bce":
      loss = jnp.mean(optax.sigmoid_binary_cross_entropy(outputs, target))
      p = jnp.clip(mean_target, 1e-6, 1 - 1e-6)
      baseline = -jnp.mean(target * jnp.log(p) + (1 - target) * jnp.log1p(-p))
    elif self.config.task.loss == "mse":
      loss = jnp.mean((pred - target) ** 2)
      baseline = jnp.mean((mean_target - target) ** 2)
    else:
      raise ValueError(f"config.task.loss: {self.config.task.loss!r} is not 'bce' or 'mse'")
    return loss, {"baseline_loss": baseline, "gap_mae": jnp.mean(jnp.abs(pred - target)),
                  "baseline_gap_mae": jnp.mean(jnp.abs(mean_target - target))}
