"""COLA: contrastive learning of audio crops (Saeed, Grangier, Zeghidour, ICASSP 2021).

paper.md §10 and COLA's code (google-research ``cola/``): two crops of one clip are
an anchor and its positive; every other example's positive in the batch is a
negative. Config keys:

* ``task.window_seconds`` (10): the window of the clip the pipeline loads.
* ``task.min_gap_seconds`` (0): the two crops (one slice each) are uniform over the
  ordered start pairs at least this far apart (``random_pair_starts``); 0 draws them
  independently, as COLA does, so they may overlap; 0.975 (one slice) never does.
* ``task.positive_noise`` (0.001, COLA's value): std of Gaussian noise added to the
  positive's waveform on the host. COLA adds it to an L2-normalised waveform (samples
  ~0.008 for 1 s), here to the raw [-1, 1] waveform, so it is relatively weaker.
* ``task.gain_jitter_db`` (0, COLA has none; 6 removes loudness as a same-clip cue):
  independent gain per crop, uniform in ±dB.
* head: the encoder's embedding -> Dense(``task.head_dim``: 512) -> LayerNorm -> tanh,
  shared by anchor and positive; the probe reads the encoder's embedding, below it.
* similarity s(x, y) = g(x)^T W g(y) / (head_dim * ``task.temperature``) with a
  learned W [head_dim, head_dim], initialised N(0, 1); at init s has std ~0.4 / T = 2.
  The fixed 1 / head_dim keeps COLA's function class (it is W / head_dim) but bounds
  what one Adam step (±lr per entry of W) does to a similarity: lr * head_dim / T
  (2.6 at 1e-3, 512, 0.2) instead of lr * head_dim^2 / T. Unscaled (W of std 1/512,
  the same start), SGD at lr 0.01 took the loss from 3.0 to 370 in one step in the
  1-vs-8-device test, and the two runs drifted apart. COLA's code divides only its
  cosine similarity by the temperature (0.2), not the bilinear one; with a learned W
  the temperature only sets W's initial scale and step size. We keep 0.2 (§10).
* loss: softmax cross-entropy of each anchor over the positives of the GLOBAL batch,
  its own positive as the target; ``accuracy``: the fraction of anchors whose own
  positive scores strictly highest. ``baseline_loss`` = log(global batch): the loss
  when every similarity is equal.

Across devices (as in triplet.py): each device gathers every device's head outputs of
the positives with ``jax.lax.all_gather(..., DATA_AXIS, tiled=True)`` (device order =
global batch order), so a local anchor is scored against the same B candidates as on
one device; its target is its GLOBAL index (``axis_index * B/N + i``). The per-device
mean over its B/N anchors, pmean'd by the trainer, is the global mean; the gradient
flows back through the gather (a reduce-scatter sums every device's cotangent for the
local positives), so after the trainer's pmean the update equals one device's.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ssl_audio import tasks
from ssl_audio.parallel import DATA_AXIS
from ssl_audio.tasks.base import (SlicePairTask, check_window_fits_pair, check_window_fits_two_slices,
                                  embed_windows)


class ColaModel(nn.Module):
  task: "Cola"

  @nn.compact
  def __call__(self, batch, train: bool = False):
    emb = embed_windows(self.task.make_encoder(), batch["audio"], self.task.frontend, train)
    d = self.task.config.task.head_dim
    g = nn.tanh(nn.LayerNorm(name="head_norm")(nn.Dense(d, name="head")(emb)))   # [b, 2, d]
    w = self.param("bilinear", nn.initializers.normal(1.0), (d, d))   # s divides by d
    return {"anchor": g[:, 0], "positive": g[:, 1], "bilinear": w}


def cola_loss(anchor: jax.Array, positive: jax.Array, w: jax.Array, temperature: float,
              target: jax.Array) -> tuple[jax.Array, dict]:
  """Bilinear contrastive loss of anchors [n, d] over candidates [m, d].

  logits[i, j] = anchor[i]^T w positive[j] / (d * temperature); ``target`` [n]: the
  row of ``positive`` that is each anchor's own positive.
  """
  d = anchor.shape[-1]
  logits = (anchor @ w) @ positive.T / (d * temperature)                 # [n, m]
  own = jax.nn.one_hot(target, positive.shape[0], dtype=bool)
  logp = jax.nn.log_softmax(logits, axis=-1)
  loss = -jnp.mean(jnp.sum(jnp.where(own, logp, 0.0), axis=-1))
  pos = jnp.sum(jnp.where(own, logits, 0.0), axis=-1)
  best_other = jnp.max(jnp.where(own, -jnp.inf, logits), axis=-1)
  # strict: all-equal similarities (collapse) retrieve nothing
  return loss, {"accuracy": jnp.mean((pos > best_other).astype(jnp.float32))}


@tasks.register
class Cola(SlicePairTask):
  name = "cola"

  @classmethod
  def check_config(cls, config):
    t = config.task
    check_window_fits_two_slices(config)
    check_window_fits_pair(config, "min_gap_seconds")
    if not isinstance(t.head_dim, int) or t.head_dim < 1:
      raise ValueError(f"config.task.head_dim: must be an integer >= 1, got {t.head_dim!r}")
    if not t.temperature > 0:
      raise ValueError(f"config.task.temperature: must be > 0, got {t.temperature}")
    if not t.positive_noise >= 0:
      raise ValueError(f"config.task.positive_noise: must be >= 0, got {t.positive_noise}")
    if not t.gain_jitter_db >= 0:
      raise ValueError(f"config.task.gain_jitter_db: must be >= 0, got {t.gain_jitter_db}")
    if config.batch_size < 2:
      raise ValueError("config.batch_size: the contrastive loss needs >= 2 examples (negatives "
                       f"come from other examples), got {config.batch_size}")

  def sample(self, clip, rng):
    """audio [2, samples]: the anchor crop, then the positive crop (plus noise)."""
    audio, _, _ = self.sample_pair(clip, rng)
    t = self.config.task
    if t.positive_noise:
      audio[1] += t.positive_noise * rng.standard_normal(audio.shape[1]).astype(np.float32)
    return {"audio": audio.astype(np.float32)}

  def model(self, num_classes=None):
    return ColaModel(self)

  def loss(self, outputs, batch):
    anchor = outputs["anchor"].astype(jnp.float32)                    # [b, d], local
    b = anchor.shape[0]
    g_pos = jax.lax.all_gather(outputs["positive"].astype(jnp.float32), DATA_AXIS,
                               tiled=True)                             # [B, d], device order
    target = jax.lax.axis_index(DATA_AXIS) * b + jnp.arange(b)
    loss, metrics = cola_loss(anchor, g_pos, outputs["bilinear"].astype(jnp.float32),
                              self.config.task.temperature, target)
    metrics["baseline_loss"] = jnp.log(jnp.float32(g_pos.shape[0]))
    return loss, metrics
