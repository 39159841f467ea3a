"""Log-mel augmentations (ssl_audio.augment): what each one does, that they run in
training only, and that they draw per global slice index."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssl_audio import augment
from ssl_audio import frontend as fe

FCFG = fe.FrontendConfig()
HZ = augment.mel_centres(FCFG.n_mels, FCFG.fmin, FCFG.fmax)


def mel(n=6, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(-6.5, 2.0, (n, 96, 64)), jnp.float32)


def run(x, first=0, key=0, **kw):
  return np.asarray(augment.apply(x, augment.AugmentConfig(**kw), jax.random.key(key),
                                  jnp.asarray(first), HZ, FCFG.log_floor))


def test_gain_is_a_constant_offset_within_the_bound():
  x = mel()
  y = run(x, gain_db=6.0)
  d = y - np.asarray(x)
  per = d.reshape(len(d), -1)
  np.testing.assert_allclose(per, per[:, :1] * np.ones_like(per), atol=1e-5)   # one offset per slice
  assert np.all(np.abs(per[:, 0]) <= 6.0 * np.log(10) / 20 + 1e-6)
  assert len(np.unique(np.round(per[:, 0], 5))) == len(d)                      # independent draws


def test_band_limit_floors_only_high_bins():
  x = mel()
  y = run(x, band_limit_prob=1.0, band_limit_min_hz=3500.0)
  floor = np.float32(np.log(FCFG.log_floor))
  for i in range(len(y)):
    low = HZ <= 3500.0
    np.testing.assert_array_equal(y[i][:, low], np.asarray(x)[i][:, low])      # below every cutoff
    cut = np.flatnonzero(np.all(y[i] == floor, axis=0))
    assert len(cut) and np.all(HZ[cut] > 3500.0)
    assert cut[-1] == 63 and np.all(np.diff(cut) == 1)                         # a top band


def test_masks_cover_bands_of_at_most_the_given_width():
  x = mel()
  y = run(x, time_masks=1, time_mask_frames=10, freq_masks=1, freq_mask_bins=8)
  changed = y != np.asarray(x)
  for i in range(len(y)):
    rows = np.flatnonzero(changed[i].all(axis=1))
    cols = np.flatnonzero(changed[i].all(axis=0))
    assert len(rows) <= 10 and len(cols) <= 8
    if len(rows):
      assert np.all(np.diff(rows) == 1)


def test_mixup_stays_between_the_two_slices_and_draws_by_global_index():
  x = mel()
  y = run(x, mixup_ratio=0.4)
  partner = np.roll(np.asarray(x), 3, axis=0)
  lo, hi = np.minimum(np.asarray(x), partner), np.maximum(np.asarray(x), partner)
  assert np.all(y >= lo - 1e-4) and np.all(y <= hi + 1e-4)
  # The same slice at the same global index draws the same, whatever its local position.
  a = run(x, first=0, gain_db=6.0)
  b = run(x[3:], first=3, gain_db=6.0)
  np.testing.assert_allclose(a[3:], b, atol=1e-6)


def test_encoder_augments_in_training_only():
  from ssl_audio import encoder as encoder_lib
  cfg = augment.AugmentConfig(gain_db=6.0, time_masks=2)
  enc = encoder_lib.Encoder(width=0.25, embedding_dim=8, augment=cfg, augment_mel_hz=tuple(HZ))
  x = mel(4)
  v = enc.init(jax.random.key(0), x)
  e1 = enc.apply(v, x)                                          # eval: no augmentation
  e2 = enc.apply(v, x, rngs={"augment": jax.random.key(1)})
  np.testing.assert_array_equal(e1, e2)
  t1, _ = enc.apply(v, x, train=True, mutable=["batch_stats"], rngs={"augment": jax.random.key(1)})
  t0, _ = enc.apply(v, x, train=True, mutable=["batch_stats"])  # no RNG: no augmentation
  plain = encoder_lib.Encoder(width=0.25, embedding_dim=8)
  tp, _ = plain.apply(v, x, train=True, mutable=["batch_stats"])
  np.testing.assert_array_equal(t0, tp)
  assert not np.allclose(t1, tp)


def test_bad_augment_config_names_the_key():
  with pytest.raises(ValueError, match="config.augment.mixup_ratio"):
    augment.AugmentConfig(mixup_ratio=1.5).check()
  with pytest.raises(ValueError, match="config.augment.time_masks"):
    augment.AugmentConfig(time_masks=-1).check()
