"""The Task protocol: a pretext task is a sampler, a model (encoder + head) and a loss.

The trainer only ever calls these methods; it never branches on a task's name.

* ``sample(clip, rng)`` runs on the host in the input workers: it cuts raw-audio
  windows out of one decoded clip and computes the targets (cheap numpy).
* ``model()`` returns a linen module whose ``__call__(batch, train)`` maps the
  batch to outputs. It owns the front-end (log-mel runs on the accelerator) and
  keeps the encoder's parameters under the key ``encoder`` so every checkpoint
  loads the same way.
* ``loss(outputs, batch)`` returns (scalar loss, metrics). It runs per device
  under ``shard_map``; the trainer averages loss, gradients and metrics with
  ``lax.pmean``. A ``baseline_loss`` metric (the loss of a trivial predictor on
  the same batch) makes every curve readable on its own.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ssl_audio import frontend as fe
from ssl_audio.audio import to_int16  # also importable from here, as before
from ssl_audio import augment as augment_lib
from ssl_audio import encoder as encoder_lib
from ssl_audio.encoder import Encoder
from ssl_audio.parallel import DATA_AXIS


class Task:
  name: ClassVar[str] = ""
  needs_labels: ClassVar[bool] = False   # the pipeline adds an int32 "label" per example

  def __init__(self, config: ml_collections.ConfigDict, frontend: fe.FrontendConfig):
    self.config = config
    self.frontend = frontend

  @classmethod
  def check_config(cls, config: ml_collections.ConfigDict) -> None:
    """Raises ValueError("config.task.KEY: ...") for a bad task setting."""

  # --- host side -------------------------------------------------------------
  @property
  def clip_samples(self) -> int:
    """Samples the pipeline loads per example (a random window of the file).

    Default: ``config.task.window_seconds`` of audio.
    """
    return int(round(self.config.task.window_seconds * self.frontend.sample_rate))

  @property
  def min_samples(self) -> int:
    """Shortest clip the sampler can use; shorter files are skipped and counted."""
    raise NotImplementedError

  def sample(self, clip: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One example from one clip: at least ``audio`` [n_windows, samples] float32."""
    raise NotImplementedError

  def example_batch(self, batch_size: int, num_classes: int = 2) -> dict[str, np.ndarray]:
    """A batch with the right shapes and dtypes (for init and compilation)."""
    rng = np.random.default_rng(0)
    clip = rng.standard_normal(self.clip_samples).astype(np.float32) * 0.1
    ex = self.sample(clip, rng)
    batch = {k: np.stack([v] * batch_size) for k, v in ex.items()}
    batch["audio"] = to_int16(batch["audio"])
    if self.needs_labels:
      batch["label"] = np.arange(batch_size, dtype=np.int32) % num_classes
    return batch

  # --- accelerator side ------------------------------------------------------
  def model(self, num_classes: int | None = None) -> nn.Module:
    raise NotImplementedError

  def loss(self, outputs: Any, batch: dict[str, jax.Array]) -> tuple[jax.Array, dict[str, jax.Array]]:
    raise NotImplementedError

  # --- helpers shared by tasks -------------------------------------------------
  def make_encoder(self) -> Encoder:
    f = self.frontend
    return encoder_lib.from_config(
        self.config.encoder, quantize=False, axis_name=DATA_AXIS, name="encoder",
        # A checkpoint from before config.augment existed was trained without it.
        augment=augment_lib.AugmentConfig.from_config(self.config.augment)
        if "augment" in self.config else None,
        augment_mel_hz=tuple(float(h) for h in augment_lib.mel_centres(f.n_mels, f.fmin, f.fmax)),
        augment_log_floor=f.log_floor)


def check_window_fits_two_slices(config: ml_collections.ConfigDict) -> None:
  """config.task.window_seconds must exceed one slice by 5%, so two slices can differ."""
  f = fe.FrontendConfig.from_dict(config.frontend)
  slice_s = f.slice_samples / f.sample_rate
  if not config.task.window_seconds > slice_s * 1.05:
    raise ValueError(f"config.task.window_seconds: {config.task.window_seconds} must exceed one "
                     f"slice ({slice_s:.3f} s) by at least 5%")


def random_starts(rng: np.random.Generator, clip_len: int, window: int, n: int) -> np.ndarray:
  """n independent uniform start offsets of a window inside a clip."""
  return rng.integers(0, clip_len - window + 1, size=n)


def embed_windows(encoder: Encoder, audio: jax.Array, frontend: fe.FrontendConfig,
                  train: bool) -> jax.Array:
  """Raw windows [B, n, samples] -> embeddings [B, n, D] (one log-mel slice per window)."""
  b, n, s = audio.shape
  mel = fe.log_mel(audio.reshape(b * n, s), frontend)        # [B*n, frames, mels]
  return encoder(mel, train=train).reshape(b, n, -1)


class SliceDecoder(nn.Module):
  """Embedding -> a [frames, mels] log-mel slice; mirrors the encoder's blocks.

  Dense to a small feature map, then blocks of nearest-neighbour 2x upsampling,
  Conv(3x1) and Conv(1x3) with ReLU, channels decreasing, and a 1x1 conv to one
  channel. Shared by Audio2Vec (CBoW and skip-gram) and the AutoEncoder.
  """
  frames: int = 96
  mels: int = 64
  width: float = 1.0
  channels: tuple[int, ...] = (128, 64, 32, 16, 8)
  outputs: int = 1   # number of slices decoded at once (skip-gram: one per context position)
  # Initial output level: log-mel slices sit around -6.5 on real audio (suite pretrain
  # pool: mean -6.5, 10-90% of clips -8.4 to -4.8), so an output starting at 0 spends
  # the first ~100 steps learning a constant (MSE ~21 at step 0).
  out_bias: float = 0.0

  @nn.compact
  def __call__(self, z):
    n_up = len(self.channels)
    h0, w0 = -(-self.frames // 2 ** n_up), -(-self.mels // 2 ** n_up)
    c0 = max(1, int(round(self.channels[0] * self.width)))
    x = nn.Dense(h0 * w0 * c0, name="project")(z).reshape(z.shape[0], h0, w0, c0)
    x = nn.relu(x)
    for i, c in enumerate(self.channels):
      c = max(1, int(round(c * self.width)))
      x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
      x = nn.relu(nn.Conv(c, (3, 1), padding="SAME", name=f"up{i}_time")(x))
      x = nn.relu(nn.Conv(c, (1, 3), padding="SAME", name=f"up{i}_freq")(x))
    x = nn.Conv(self.outputs, (1, 1), bias_init=nn.initializers.constant(self.out_bias),
                name="out")(x)
    return x[:, :self.frames, :self.mels, :]                   # [B, frames, mels, outputs]


TARGET_NORMS = ("none", "slice", "bin")


def target_norm(config) -> str:
  """``task.target_norm`` of the reconstruction tasks (absent in older configs: "none")."""
  return config.task.get("target_norm", "none")


def check_target_norm(config) -> None:
  mode = target_norm(config)
  if mode not in TARGET_NORMS:
    raise ValueError(f"config.task.target_norm: {mode!r} is not one of {TARGET_NORMS}")


def normalised_target(encoder: Encoder, mel: jax.Array, bias_init: float,
                      mode: str = "none") -> tuple[jax.Array, float]:
  """(the log-mel target [B, F, M, k], the decoder's initial output level).

  ``mode`` ("task.target_norm") decides what the decoder must rebuild:

  * "none": the log-mel in the units the encoder sees. ``bias_init`` is in raw
    log-mel units (``task.decoder_bias_init``), converted with the encoder's input
    statistics, so one key keeps its meaning with or without ``encoder.input_norm``.
  * "slice": each target slice minus its own mean, over its own std (MAE's
    normalised-pixel loss, one slice = one patch): level and loudness are no longer
    part of the error, the spectral envelope still is.
  * "bin": each mel bin minus its mean over the slice's frames (cepstral mean
    normalisation), then over the slice's std: level and spectral envelope are both
    gone, and what is left to predict is how the spectrum moves in time.

  The normalised modes start the decoder at 0, their mean. A constant (silent) slice
  becomes all zeros, not NaN.
  """
  if mode == "none":
    return ((mel - encoder.input_mean) / encoder.input_std,
            (bias_init - encoder.input_mean) / encoder.input_std)
  axes = (1,) if mode == "bin" else (1, 2)                  # frames; frames and mels
  centred = mel - jnp.mean(mel, axis=axes, keepdims=True)
  scale = jnp.sqrt(jnp.mean(centred ** 2, axis=(1, 2), keepdims=True) + 1e-6)
  return centred / scale, 0.0


def mse_with_baseline(pred: jax.Array, target: jax.Array) -> tuple[jax.Array, dict]:
  """MSE, and the MSE of predicting the batch-mean slice (the trivial baseline)."""
  loss = jnp.mean((pred - target) ** 2)
  mean_slice = jax.lax.pmean(jnp.mean(target, axis=0, keepdims=True), DATA_AXIS)
  baseline = jnp.mean((mean_slice - target) ** 2)
  return loss, {"mse": loss, "baseline_loss": baseline}


def random_pair_starts(rng: np.random.Generator, clip_len: int, window: int,
                       min_gap: int) -> np.ndarray:
  """Two window starts, uniform over the ordered pairs with |t1 - t2| >= min_gap.

  min_gap 0: two independent uniform starts (overlap allowed). Otherwise exact and
  without rejection: with M = clip_len - window, the gap k in [min_gap, M] has
  P(k) ∝ M + 1 - k (the number of pairs with that gap: the triangular density of the
  difference of two uniform starts, cut at min_gap), drawn by inverting its CDF; the
  lower start is then uniform in [0, M - k] and the order a coin flip.
  """
  m = clip_len - window
  if min_gap <= 0:
    return random_starts(rng, clip_len, window, 2)
  if m < min_gap:
    raise ValueError(f"clip of {clip_len} samples has no two windows of {window} samples "
                     f"{min_gap} samples apart")
  # j = M + 1 - k in [1, J] has P(j) ∝ j; u uniform in [0, J (J + 1) / 2) falls in block j,
  # [j (j - 1) / 2, j (j + 1) / 2), for j - 1 = (isqrt(8u + 1) - 1) // 2 (exact in ints).
  j_max = m + 1 - min_gap
  u = int(rng.integers(0, j_max * (j_max + 1) // 2))
  k = m + 1 - ((math.isqrt(8 * u + 1) - 1) // 2 + 1)
  lo = int(rng.integers(0, m - k + 1))
  return np.array([lo, lo + k] if rng.integers(0, 2) else [lo + k, lo])


def random_gain(rng: np.random.Generator, n: int, db: float) -> np.ndarray:
  """n independent linear gains, uniform in [-db, +db] decibels (db 0: ones, no draw).

  Applied per window on the host, so the level of two windows of one clip is no cue
  that they belong together (to_int16 clips what a gain pushes past full scale).
  """
  if db == 0:
    return np.ones(n, np.float32)
  return (10.0 ** (rng.uniform(-db, db, size=n) / 20.0)).astype(np.float32)


def cut_slices(clip: np.ndarray, starts, slice_samples: int, rng: np.random.Generator,
               gain_db: float) -> np.ndarray:
  """[len(starts), slice_samples] float32: the slices at ``starts``, each with a random gain."""
  gain = random_gain(rng, len(starts), gain_db)
  s = slice_samples
  return (np.stack([clip[t:t + s] for t in starts]) * gain[:, None]).astype(np.float32)


def check_window_fits_pair(config: ml_collections.ConfigDict, key: str) -> None:
  """config.task.KEY (a minimum distance in seconds, >= 0) must leave a pair of slices
  that far apart, plus one hop, inside config.task.window_seconds."""
  v = config.task[key]
  if not v >= 0:
    raise ValueError(f"config.task.{key}: must be >= 0, got {v}")
  f = fe.FrontendConfig.from_dict(config.frontend)
  need = f.slice_samples + int(round(v * f.sample_rate)) + f.hop_length
  if int(round(config.task.window_seconds * f.sample_rate)) < need:
    raise ValueError(f"config.task.{key}: {v} s leaves no pair of slices in a "
                     f"{config.task.window_seconds}-s window (needs slice + {key} + hop = "
                     f"{need / f.sample_rate:.3f} s)")


class SlicePairTask(Task):
  """A task on two slices of one clip, starts at least ``task.min_gap_seconds`` apart
  (uniform over the valid pairs), each with an independent random gain of up to
  ``task.gain_jitter_db`` (TemporalGap, COLA)."""

  @property
  def min_gap(self) -> int:
    return int(round(self.config.task.min_gap_seconds * self.frontend.sample_rate))

  @property
  def min_samples(self) -> int:
    # slice + min gap + a hop: a valid pair exists, and two crops can always differ
    return self.frontend.slice_samples + self.min_gap + self.frontend.hop_length

  def sample_pair(self, clip: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """(audio [2, slice_samples] float32, start 1, start 2)."""
    s = self.frontend.slice_samples
    if len(clip) < self.min_samples:
      raise ValueError(f"clip of {len(clip)} samples is shorter than {self.min_samples} "
                       "(slice + min gap + hop)")
    t1, t2 = (int(x) for x in random_pair_starts(rng, len(clip), s, self.min_gap))
    return cut_slices(clip, (t1, t2), s, rng, self.config.task.gain_jitter_db), t1, t2
