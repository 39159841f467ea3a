"""Triplet loss on temporal proximity (Jansen et al. 2018, arXiv:1711.02209 style).

paper.md §4 ([U, low] for [A]): anchor and positive are two slices of one clip
close in time; negatives are slices of other clips; hinge loss with a margin.
Choices the paper leaves open, all config keys:

* ``task.window_seconds`` (10): the window of the clip the pipeline loads.
* positives: the anchor-positive start distance is uniform in
  [``task.min_positive_seconds``, ``task.max_positive_seconds``] (0.975 = one slice,
  2.0) either side of the anchor, drawn exactly inside the window: the anchor is
  uniform over the starts that have at least one valid positive, the positive uniform
  over that anchor's valid starts (both sides pooled; near an edge only one side fits).
  With min >= slice the two slices never overlap (with the old 0 .. 1 s almost every
  pair overlapped, and an overlap can be matched sample by sample); min 0 and max
  1.0 restore the old sampler's distribution.
* ``task.gain_jitter_db`` (6; 0 disables): independent gain per slice, uniform in
  ±dB, so two slices of one clip cannot be paired by their level.
* distances are SQUARED Euclidean distances between L2-normalised embeddings
  (so in [0, 4]); ``task.margin`` (0.1) is on that scale.
* negatives: every anchor and positive of every OTHER example of the GLOBAL batch
  (2 (B - 1) candidates). Examples are assumed to come from different clips: the
  sampler sees one clip at a time and cannot tell two windows of the same file
  apart, which only happens when the batch is large next to the data set.
* ``task.far_negative_seconds`` (0: off, the default): TRILL-style (Shor et al. 2020)
  negatives from the anchor's own clip. Each example gets a third slice whose start is
  at least this far from the anchor's (uniform over those starts in the window), a
  negative of its own anchor and, like every slice of another clip, of every other
  anchor. With negatives from other clips only, telling 200 files apart by their
  recording (band, channel colour) solves the task; a negative from the same recording
  is not told apart that way. Must exceed ``max_positive_seconds`` (a negative nearer
  than a positive would contradict it). A window with no such start (a clip shorter
  than the distance) gets ``far_valid`` 0 and its third slice counts for no anchor
  of its own.
* mining (FaceNet's semi-hard): per anchor, the closest negative that is farther
  than the positive (d_ap < d_an; it is "semi-hard" when also d_an < d_ap + margin,
  otherwise its hinge is 0). When no negative is farther than the positive, fall
  back to ``task.fallback``: "hardest" (closest negative, default) or "easiest"
  (farthest negative, TF-Addons' choice, which is gentler against collapse).
  Loss = mean over anchors of max(0, d_ap - d_an + margin).
* ``baseline_loss`` = margin: the loss when every embedding is the same (all
  distances 0), the trivial solution the hinge must beat.

Negatives across devices: the loss runs per device under ``shard_map``, so each
device sees only its B / N examples. It gathers every device's anchors and
positives with ``jax.lax.all_gather(emb, DATA_AXIS, tiled=True)`` (device order =
global batch order), so each local anchor mines from exactly the same 2 (B - 1)
candidates as on one device; its own example is masked by its GLOBAL index
(``axis_index * B/N + i``). The per-device mean over B/N anchors, pmean'd by the
trainer, is the global mean. The gradient flows back through the gather (its
transpose, a reduce-scatter, sums every device's cotangent for the local
embeddings), so after the trainer's pmean the update equals one device's.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ssl_audio import tasks
from ssl_audio.parallel import DATA_AXIS
from ssl_audio.tasks.base import (Task, check_window_fits_pair, check_window_fits_two_slices,
                                  cut_slices, embed_windows)


class TripletModel(nn.Module):
  task: "Triplet"

  @nn.compact
  def __call__(self, batch, train: bool = False):
    return embed_windows(self.task.make_encoder(), batch["audio"], self.task.frontend, train)


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  return x * jax.lax.rsqrt(jnp.sum(x * x, axis=-1, keepdims=True) + eps)


def negative_mask(cand_example: jax.Array, anchor_example: jax.Array,
                  cand_own_negative: jax.Array | None = None) -> jax.Array:
  """[n, m]: candidate j is a negative of anchor i when it belongs to another example,
  or when ``cand_own_negative[j]`` (a far slice of i's own clip)."""
  neg = cand_example[None, :] != anchor_example[:, None]
  if cand_own_negative is not None:
    neg = neg | cand_own_negative[None, :]
  return neg


def triplet_semihard(anchor: jax.Array, positive: jax.Array, cand: jax.Array, neg: jax.Array,
                     margin: float, fallback: str = "hardest") -> tuple[jax.Array, dict]:
  """Semi-hard triplet loss of anchors [n, D] against candidates [m, D] (normalised);
  ``neg`` [n, m] says which candidates are negatives of which anchor (``negative_mask``)."""
  d_ap = jnp.sum((anchor - positive) ** 2, axis=-1)                          # [n]
  d_an = jnp.sum((anchor[:, None, :] - cand[None, :, :]) ** 2, axis=-1)      # [n, m]
  big = jnp.float32(1e9)
  farther = neg & (d_an > d_ap[:, None])
  d_semi = jnp.min(jnp.where(farther, d_an, big), axis=1)
  hardest = jnp.min(jnp.where(neg, d_an, big), axis=1)
  easiest = jnp.max(jnp.where(neg, d_an, -big), axis=1)
  d_fall = hardest if fallback == "hardest" else easiest
  d_neg = jnp.where(jnp.any(farther, axis=1), d_semi, d_fall)
  has_neg = jnp.any(neg, axis=1)
  per = jnp.where(has_neg, jax.nn.relu(d_ap - d_neg + margin), 0.0)
  metrics = {
      "d_ap": jnp.mean(d_ap),
      "d_an": jnp.mean(jnp.where(has_neg, d_neg, 0.0)),
      "active_fraction": jnp.mean((per > 0).astype(jnp.float32)),
      # top-1 retrieval: the positive is closer than every negative
      "triplet_accuracy": jnp.mean((d_ap < hardest).astype(jnp.float32)),
  }
  return jnp.mean(per), metrics


def uniform_in(rng: np.random.Generator, intervals: list[tuple[int, int]]) -> int:
  """One integer uniform over a union of disjoint inclusive intervals."""
  sizes = [hi - lo + 1 for lo, hi in intervals]
  k = int(rng.integers(0, sum(sizes)))
  for (lo, _), n in zip(intervals, sizes):
    if k < n:
      return lo + k
    k -= n
  raise AssertionError("unreachable")


@tasks.register
class Triplet(Task):
  name = "triplet"

  @classmethod
  def check_config(cls, config):
    t = config.task
    check_window_fits_two_slices(config)
    if not t.max_positive_seconds > 0:
      raise ValueError(f"config.task.max_positive_seconds: must be > 0, got {t.max_positive_seconds}")
    check_window_fits_pair(config, "min_positive_seconds")
    if not t.max_positive_seconds >= t.min_positive_seconds:
      raise ValueError(f"config.task.max_positive_seconds: {t.max_positive_seconds} is below "
                       f"config.task.min_positive_seconds ({t.min_positive_seconds})")
    if not t.gain_jitter_db >= 0:
      raise ValueError(f"config.task.gain_jitter_db: must be >= 0, got {t.gain_jitter_db}")
    if not t.margin > 0:
      raise ValueError(f"config.task.margin: must be > 0, got {t.margin}")
    if t.fallback not in ("hardest", "easiest"):
      raise ValueError(f"config.task.fallback: {t.fallback!r} is not 'hardest' or 'easiest'")
    far = t.get("far_negative_seconds", 0.0)
    if far != 0:
      if not far > t.max_positive_seconds:
        raise ValueError(f"config.task.far_negative_seconds: must be 0 (off) or above "
                         f"config.task.max_positive_seconds ({t.max_positive_seconds}), got {far}")
      check_window_fits_pair(config, "far_negative_seconds")
    if config.batch_size < 2:
      raise ValueError("config.batch_size: the triplet loss needs >= 2 examples (negatives "
                       f"come from other examples), got {config.batch_size}")

  @property
  def min_shift(self) -> int:
    return int(round(self.config.task.min_positive_seconds * self.frontend.sample_rate))

  @property
  def max_shift(self) -> int:
    return int(round(self.config.task.max_positive_seconds * self.frontend.sample_rate))

  @property
  def far_shift(self) -> int:
    """Samples from the anchor's start to a same-clip negative's (0: none drawn)."""
    return int(round(self.config.task.get("far_negative_seconds", 0.0) * self.frontend.sample_rate))

  @property
  def min_samples(self) -> int:
    # slice + min distance + a hop: every usable file has an anchor with a positive
    return self.frontend.slice_samples + self.min_shift + self.frontend.hop_length

  def positive_range(self, a: int, last: int) -> list[tuple[int, int]]:
    """The positive starts valid for anchor start a: inclusive intervals, either side."""
    lo_d, hi_d = self.min_shift, self.max_shift
    left = (max(0, a - hi_d), a - max(lo_d, 1))     # distance 0 (min 0) counted once, right
    right = (a + lo_d, min(last, a + hi_d))
    return [r for r in (left, right) if r[0] <= r[1]]

  def sample(self, clip, rng):
    """audio [2, samples]: anchor, then a positive min..max_positive from it; with
    ``far_negative_seconds``, [3, samples] (then a same-clip negative) and ``far_valid``."""
    s = self.frontend.slice_samples
    last = len(clip) - s
    if last < self.min_shift:
      raise ValueError(f"clip of {len(clip)} samples has no two slices ({s}) "
                       f"{self.min_shift} samples apart")
    # Anchors with a valid positive: all, except (last - min, min) when the clip is short.
    a = uniform_in(rng, [(0, last)] if last - self.min_shift >= self.min_shift - 1 else
                   [(0, last - self.min_shift), (self.min_shift, last)])
    p = uniform_in(rng, self.positive_range(a, last))
    gain_db = self.config.task.gain_jitter_db
    if not self.far_shift:
      return {"audio": cut_slices(clip, (a, p), s, rng, gain_db)}
    far = [r for r in ((0, a - self.far_shift), (a + self.far_shift, last)) if r[0] <= r[1]]
    f = uniform_in(rng, far) if far else a       # none: a placeholder that counts for no one
    return {"audio": cut_slices(clip, (a, p, f), s, rng, gain_db),
            "far_valid": np.float32(bool(far))}

  def model(self, num_classes=None):
    return TripletModel(self)

  def loss(self, outputs, batch):
    emb = l2_normalize(outputs.astype(jnp.float32))               # [b, 2, D]
    anchor, positive = emb[:, 0], emb[:, 1]
    b = anchor.shape[0]
    g_anchor = jax.lax.all_gather(anchor, DATA_AXIS, tiled=True)   # [B, D], device order
    g_pos = jax.lax.all_gather(positive, DATA_AXIS, tiled=True)
    n_global = g_anchor.shape[0]
    cand = [g_anchor, g_pos]
    cand_example = jnp.concatenate([jnp.arange(n_global)] * 2)
    own = None
    if emb.shape[1] == 3:                                          # same-clip far negatives
      cand.append(jax.lax.all_gather(emb[:, 2], DATA_AXIS, tiled=True))
      valid = jax.lax.all_gather(batch["far_valid"], DATA_AXIS, tiled=True) > 0
      cand_example = jnp.concatenate([cand_example, jnp.arange(n_global)])
      own = jnp.concatenate([jnp.zeros(2 * n_global, bool), valid])
    anchor_example = jax.lax.axis_index(DATA_AXIS) * b + jnp.arange(b)
    neg = negative_mask(cand_example, anchor_example, own)
    t = self.config.task
    loss, metrics = triplet_semihard(anchor, positive, jnp.concatenate(cand, axis=0), neg,
                                     t.margin, t.fallback)
    metrics["baseline_loss"] = jnp.asarray(t.margin, jnp.float32)
    return loss, metrics
