"""TemporalGap: predict the normalised time gap between two slices of one clip.

Paper [A]: "estimate the time gap between two short segments drawn at random from
one clip". Choices the paper leaves open (paper.md §4, §9) are config keys:

* ``task.window_seconds`` (10): the window of the clip the two slices are drawn
  from, uniformly and independently.
* target = |start_1 - start_2| / (window - slice), in [0, 1]. The normaliser is the
  largest gap of the *nominal* window, so on a shorter clip the target keeps its
  meaning (seconds / constant) and simply cannot reach 1.
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
from ssl_audio.tasks.base import Task, check_window_fits_two_slices, embed_windows, random_starts


class TemporalGapModel(nn.Module):
  task: "TemporalGap"

  @nn.compact
  def __call__(self, batch, train: bool = False):
    emb = embed_windows(self.task.make_encoder(), batch["audio"], self.task.frontend, train)
    t = self.task.config.task
    if t.get("head_features", "concat") == "symmetric":   # the target |gap| is symmetric too
      h = jnp.concatenate([jnp.abs(emb[:, 0] - emb[:, 1]), emb[:, 0] * emb[:, 1]], axis=-1)
    else:
      h = emb.reshape(emb.shape[0], -1)                     # concatenate the two embeddings
    hidden = t.get("head_hidden", 0)
    if hidden:
      h = nn.relu(nn.Dense(hidden, name="head_hidden")(h))
    return nn.Dense(1, name="head")(h)[:, 0]                # logit of the normalised gap


@tasks.register
class TemporalGap(Task):
  name = "temporal_gap"

  @classmethod
  def validate_config(cls, config):
    t = config.task
    check_window_fits_two_slices(config)
    if t.loss not in ("bce", "mse"):
      raise ValueError(f"config.task.loss: {t.loss!r} is not 'bce' or 'mse'")
    if t.get("head_features", "concat") not in ("concat", "symmetric"):
      raise ValueError(f"config.task.head_features: {t.head_features!r} is not 'concat' or 'symmetric'")
    if t.head_hidden < 0:
      raise ValueError(f"config.task.head_hidden: must be >= 0, got {t.head_hidden}")

  @property
  def min_samples(self) -> int:
    return self.frontend.slice_samples + self.frontend.hop_length  # room for a non-zero gap

  @property
  def max_gap(self) -> int:
    return self.clip_samples - self.frontend.slice_samples

  def sample(self, clip, rng):
    s = self.frontend.slice_samples
    starts = random_starts(rng, len(clip), s, 2)
    audio = np.stack([clip[t:t + s] for t in starts])
    gap = abs(int(starts[0]) - int(starts[1])) / self.max_gap
    return {"audio": audio.astype(np.float32), "target": np.float32(gap)}

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
