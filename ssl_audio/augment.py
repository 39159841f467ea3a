"""Log-mel augmentations shared by every task (``config.augment``), applied in training only.

The encoder applies them to its input when it runs in train mode and the step
passes an ``augment`` RNG (``ssl_audio.train`` does), so every pretext task gets
them without a line of its own, reconstruction targets are never augmented, and
evaluation (train=False) never sees them. Each slice gets its own draws, keyed by
its GLOBAL index in the batch, so 1 and N devices draw the same (mixup aside).

* ``gain_db``: a random level offset of up to ±gain_db (a multiplicative gain on
  the mel energies is an additive constant in log-mel).
* ``mixup_ratio`` (log-mixup-exp, BYOL-A): x <- log((1 - l) e^x + l e^y), l ~ U(0, ratio),
  y another slice of the same device's batch (half a batch away: another example).
  The partner depends on the device's share of the batch, so with mixup 1 and N
  devices differ.
* ``time_masks`` x ``time_mask_frames`` and ``freq_masks`` x ``freq_mask_bins``
  (SpecAugment): bands of random width up to the given size, set to the slice's mean.
* ``band_limit_prob``: with this probability the mel bins above a random cutoff
  between ``band_limit_min_hz`` and the top bin fall to the log floor, as in
  band-limited recordings (4-kHz telephone speech), so a model pretrained on
  full-band audio also serves band-limited benchmarks.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import librosa
import numpy as np


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
  gain_db: float = 0.0
  mixup_ratio: float = 0.0
  time_masks: int = 0
  time_mask_frames: int = 10
  freq_masks: int = 0
  freq_mask_bins: int = 8
  band_limit_prob: float = 0.0
  band_limit_min_hz: float = 3500.0

  @property
  def enabled(self) -> bool:
    return bool(self.gain_db or self.mixup_ratio or self.time_masks or self.freq_masks
                or self.band_limit_prob)

  @classmethod
  def from_config(cls, c) -> "AugmentConfig":
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: c[k] for k in c if k in names})

  def check(self) -> None:
    def need(ok, key, msg):
      if not ok:
        raise ValueError(f"config.augment.{key}: {msg}")
    need(self.gain_db >= 0, "gain_db", f"must be >= 0, got {self.gain_db}")
    need(0 <= self.mixup_ratio < 1, "mixup_ratio", f"must be in [0, 1), got {self.mixup_ratio}")
    for k in ("time_masks", "time_mask_frames", "freq_masks", "freq_mask_bins"):
      v = getattr(self, k)
      need(isinstance(v, int) and v >= 0, k, f"must be an integer >= 0, got {v!r}")
    need(0 <= self.band_limit_prob <= 1, "band_limit_prob",
         f"must be in [0, 1], got {self.band_limit_prob}")
    need(self.band_limit_min_hz > 0, "band_limit_min_hz", "must be positive")


def _band_masks(key, n: int, size: int, max_width: int) -> jax.Array:
  """[size] bool: ``n`` bands of uniform width in [0, max_width] at uniform positions."""
  pos = jnp.arange(size)
  mask = jnp.zeros(size, bool)
  for k in jax.random.split(key, n):
    kw, ks = jax.random.split(k)
    w = jax.random.randint(kw, (), 0, max_width + 1)
    s = jax.random.randint(ks, (), 0, jnp.maximum(size - w, 0) + 1)
    mask = mask | ((pos >= s) & (pos < s + w))
  return mask


def apply(x: jax.Array, cfg: AugmentConfig, key: jax.Array, first_index: jax.Array,
          mel_hz: np.ndarray, log_floor: float) -> jax.Array:
  """Augments log-mel slices x [N, frames, mels] (N local slices whose global indices
  start at ``first_index``); ``mel_hz``: the centre frequency of each mel bin."""
  n, frames, mels = x.shape
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(first_index + jnp.arange(n))

  def one(k, xi, partner):
    kg, km, kt, kf, kb, kc = jax.random.split(k, 6)
    if cfg.mixup_ratio:
      lam = jax.random.uniform(km, (), maxval=cfg.mixup_ratio)
      xi = jnp.log((1 - lam) * jnp.exp(xi) + lam * jnp.exp(partner))
    if cfg.gain_db:
      # ln(10^(dB/20)) = dB * ln(10) / 20 on the magnitude-mel scale
      xi = xi + jax.random.uniform(kg, (), minval=-cfg.gain_db, maxval=cfg.gain_db) * np.log(10) / 20
    if cfg.band_limit_prob:
      cut = jax.random.uniform(kc, (), minval=cfg.band_limit_min_hz, maxval=float(mel_hz[-1]))
      on = jax.random.bernoulli(kb, cfg.band_limit_prob)
      xi = jnp.where(on & (jnp.asarray(mel_hz) > cut)[None, :], np.log(log_floor), xi)
    fill = jnp.mean(xi)
    if cfg.time_masks:
      xi = jnp.where(_band_masks(kt, cfg.time_masks, frames, cfg.time_mask_frames)[:, None], fill, xi)
    if cfg.freq_masks:
      xi = jnp.where(_band_masks(kf, cfg.freq_masks, mels, cfg.freq_mask_bins)[None, :], fill, xi)
    return xi

  partners = jnp.roll(x, max(n // 2, 1), axis=0) if cfg.mixup_ratio else x
  return jax.vmap(one)(keys, x, partners)


def mel_centres(n_mels: int, fmin: float, fmax: float) -> np.ndarray:
  """Centre frequency (Hz) of each Slaney mel bin, as librosa's filterbank places them."""
  return librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax)[1:-1].astype(np.float32)
