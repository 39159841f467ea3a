"""Linear probe: clip-statistics pooling and dead-unit standardisation (eval/probe.py)."""

from __future__ import annotations

import numpy as np
import pytest

from eval import embeddings as E
from eval import probe


def _embedded(emb, clip, y, n_tr, n_va):
  """An Embedded from slice features, per-slice clip index and per-clip class index."""
  n_clips = len(y)
  splits = np.array(["train"] * n_tr + ["valid"] * n_va + ["test"] * (n_clips - n_tr - n_va), object)
  return E.Embedded(emb=np.asarray(emb, np.float32), clip=np.asarray(clip, np.int32),
                    labels=np.array([f"c{i}" for i in y], object), splits=splits,
                    groups=np.array([f"spk{i % 30}" for i in range(n_clips)], object),
                    paths=np.array([f"f{i}.wav" for i in range(n_clips)], object))


def _centres(n_clips=120, classes=4, slices=3, dim=16, sep=2.0, seed=0):
  """Classes differ in the mean of their slices (as tests/test_eval.py builds them)."""
  rng = np.random.default_rng(seed)
  y = np.arange(n_clips) % classes
  clip = np.repeat(np.arange(n_clips), slices)
  emb = rng.normal(size=(classes, dim))[y[clip]] * sep + rng.normal(size=(len(clip), dim))
  return _embedded(emb, clip, y, int(0.6 * n_clips), int(0.15 * n_clips))


def _variance_only(n_clips=400, slices=8, dim=8, seed=0):
  """Two classes whose clip means have one distribution: only the within-clip spread differs.

  Each clip's slices are its mean (N(0, I), whatever the class) plus deviations
  centred within the clip, of scale 0.5 or 2 by class. The clip's mean slice logit is
  a linear function of the clip mean alone, so "logits" pooling cannot beat chance
  (with uncentred deviations a bias would exploit the spread of the clip mean).
  """
  rng = np.random.default_rng(seed)
  y = np.arange(n_clips) % 2
  dev = rng.normal(size=(n_clips, slices, dim))
  dev -= dev.mean(1, keepdims=True)
  emb = rng.normal(size=(n_clips, 1, dim)) + dev * np.array([0.5, 2.0])[y][:, None, None]
  clip = np.repeat(np.arange(n_clips), slices)
  return _embedded(emb.reshape(-1, dim), clip, y, int(0.6 * n_clips), int(0.15 * n_clips))


def test_pool_clip_stats_is_numpy_mean_and_std_per_clip():
  rng = np.random.default_rng(0)
  # Clips of 3, 1 and 4 slices, slices not grouped by clip.
  clip = np.array([2, 0, 2, 1, 0, 2, 0, 2], np.int32)
  x = rng.normal(size=(len(clip), 5)).astype(np.float32) * 3 + 7
  s = probe.Split(x=x, clip=clip, y=np.array([1, 0, 1], np.int32))
  p = probe.pool_clip_stats(s)
  assert p.x.shape == (3, 10) and p.n_clips == 3
  np.testing.assert_array_equal(p.clip, np.arange(3))
  np.testing.assert_array_equal(p.y, s.y)
  np.testing.assert_array_equal(p.y_slice, s.y)
  for c in range(3):
    rows = x[clip == c].astype(np.float64)
    np.testing.assert_allclose(p.x[c, :5], rows.mean(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(p.x[c, 5:], rows.std(0), rtol=1e-5, atol=1e-6)
  assert np.all(p.x[1, 5:] == 0)     # a one-slice clip: std 0


def test_stats_pooling_sees_within_clip_variance_logits_do_not():
  e = _variance_only()
  stats = probe.linear_probe(e, seeds=(0, 1, 2), steps=300, clip_pooling="stats")
  logits = probe.linear_probe(e, seeds=(0, 1, 2), steps=300, clip_pooling="logits")
  assert stats["chance"]["accuracy"] == pytest.approx(0.5)
  # The clip means carry no class: averaged slice logits are at chance ...
  assert logits["accuracy"]["mean"] < 0.62, logits["per_seed"]
  # ... while the per-clip std separates them.
  assert stats["accuracy"]["mean"] > 0.9, stats["per_seed"]
  assert stats["balanced_accuracy"]["mean"] > 0.9
  assert stats["clip_pooling"] == stats["probe"]["clip_pooling"] == "stats"
  assert stats["probe"]["clip_prediction"] == "mean+std of slice features per clip"
  assert logits["probe"]["clip_prediction"] == "mean of slice logits"
  assert "slice_accuracy" in logits["per_seed"][0]
  assert logits["dropped_units"] == stats["dropped_units"] == 0


def test_stats_pooling_keeps_valid_and_test_clip_counts():
  for valid in (True, False):
    e = _centres()
    if not valid:   # valid then held out of train by speaker
      e.splits = np.where(e.splits == "valid", "train", e.splits)
    splits, _, how = probe.make_splits(e)
    for k, s in splits.items():
      p = probe.pool_clip_stats(s)
      assert p.n_clips == len(p.x) == s.n_clips, k
      np.testing.assert_array_equal(p.y, s.y)
    r_stats = probe.linear_probe(e, seeds=(0,), steps=100, clip_pooling="stats")
    r_logits = probe.linear_probe(e, seeds=(0,), steps=100)
    assert r_stats["valid_from"] == r_logits["valid_from"] == how
    assert r_stats["counts"] == r_logits["counts"]
    for k, s in splits.items():
      assert r_stats["counts"][k] == {"clips": s.n_clips, "slices": len(s.x)}
    # Class means differ: both poolings find them.
    assert r_stats["accuracy"]["mean"] > 0.95 and r_logits["accuracy"]["mean"] > 0.95
  # Every clip has three slices, so no std unit is constant: nothing dropped.
  assert r_stats["dropped_units"] == 0
  with pytest.raises(ValueError, match="clip_pooling"):
    probe.linear_probe(e, clip_pooling="max")


def test_one_slice_clips_stats_drop_the_zero_std_half():
  # One slice per clip: the std half is 0 everywhere, dead on train, so dropped.
  e = _centres(slices=1, dim=6)
  r = probe.linear_probe(e, seeds=(0,), steps=100, clip_pooling="stats")
  assert r["dropped_units"] == 6
  assert r["accuracy"]["mean"] > 0.9


def test_dead_unit_dropped_from_every_split_and_finite():
  rng = np.random.default_rng(0)
  tr = rng.normal(size=(50, 4))
  tr[:, 1] = 3.0                     # dead on train
  tr[:, 2] = 5.0 + 1e-5 * rng.normal(size=50)   # alive, but far below the typical std
  te = rng.normal(size=(10, 4))
  te[:, 1] = 1e6                     # ... and huge on test
  mk = lambda x: probe.Split(x=x.astype(np.float32), clip=np.arange(len(x), dtype=np.int32),
                             y=np.zeros(len(x), np.int32))
  out, dropped = probe.standardise({"train": mk(tr), "valid": mk(te), "test": mk(te)})
  assert dropped == 1
  assert all(s.x.shape[1] == 3 and np.all(np.isfinite(s.x)) for s in out.values())
  np.testing.assert_array_equal(out["valid"].x, out["test"].x)
  # The kept units are standardised with the train statistics, in order (0, 2, 3).
  for col, unit in ((0, 0), (2, 3)):
    ref = (te[:, unit] - tr[:, unit].mean()) / tr[:, unit].std()
    np.testing.assert_allclose(out["test"].x[:, col], ref, rtol=1e-4, atol=1e-5)
  # The near-dead unit is divided by the floor, not by its own 1e-5 std.
  floor = probe.STD_FLOOR * np.median(tr.std(0))
  assert tr[:, 2].std() < floor
  np.testing.assert_allclose(out["test"].x[:, 1], (te[:, 2] - tr[:, 2].mean()) / floor, rtol=1e-4)
  assert np.abs(out["train"].x[:, 1]).max() < 1.0


@pytest.mark.parametrize("clip_pooling", ["logits", "stats"])
def test_dead_train_unit_huge_on_test_does_not_change_predictions(clip_pooling):
  base = _centres(sep=0.6, seed=1)   # not perfectly separable: a change would show
  dead = base.emb.copy()
  dead[:, 0] = 1.5                   # constant on every split
  huge = dead.copy()
  off_train = base.splits[base.clip] != "train"
  huge[off_train, 0] = 1e6 * np.random.default_rng(2).normal(size=off_train.sum())
  runs = []
  for emb in (dead, huge):
    e = _embedded(emb, base.clip, np.array([int(l[1:]) for l in base.labels]),
                  int((base.splits == "train").sum()), int((base.splits == "valid").sum()))
    runs.append(probe.linear_probe(e, seeds=(0, 1), steps=200, clip_pooling=clip_pooling))
  a, b = runs
  # In "stats" mode both the mean and the std of unit 0 are constant on train.
  assert a["dropped_units"] == b["dropped_units"] == (1 if clip_pooling == "logits" else 2)
  assert a["per_seed"] == b["per_seed"]
  assert 0.3 < a["accuracy"]["mean"] < 1.0
