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


def test_package_holdout_on_a_case_worked_by_hand():
  # P holds a and b (30 rows), Q a (10), R b (10), S a, b and c (60), T c (10), U only d (5).
  # target 0.25 * 125 = 31.25 rows, cap 1.5x = 46.9. S is over the cap; U is d's only
  # package. P adds two classes (taken first: 30 < target), then only a package that adds
  # a class may follow: T (c) -> 40 rows. Q and R add nothing new, so they stay in train.
  domains = np.array(["P"] * 30 + ["Q"] * 10 + ["R"] * 10 + ["S"] * 60 + ["T"] * 10 + ["U"] * 5)
  labels = np.array(["a", "b"] * 15 + ["a"] * 10 + ["b"] * 10 + ["a", "b", "c"] * 20
                    + ["c"] * 10 + ["d"] * 5)
  part = probe.package_holdout(domains, labels, 0.25)
  assert set(domains[part == "valid"]) == {"P", "T"}
  assert set(labels[part == "train"]) == {"a", "b", "c", "d"}   # train keeps every class
  # Whole packages only: no package on both sides.
  assert set(domains[part == "train"]).isdisjoint(domains[part == "valid"])


def test_package_holdout_avoids_the_one_voice_per_family_trap():
  """suite:language's train split (names and counts of data/SUITE.md): each family has one
  voice per language. Holding out speakers takes single voices of one family, which the
  probe then "predicts" as the family's other languages (the trap data/SUITE.md documents);
  holding out packages takes the tuxpaint family whole and leaves train two families that
  each speak every language."""
  asterisk = {"en": "en_US_f_Allison", "es": "es_MX_f_Allison", "fr": "fr_CA_f_June",
              "it": "it_IT_m_Carlo", "ru": "ru_RU_f_IvrvoiceRU"}
  rows = [(f"asterisk-core-sounds-{l}-wav", f"asterisk-{v}", l, 200) for l, v in asterisk.items()]
  rows += [("klettres-data", f"klettres-{l}", l, n)
           for l, n in zip(asterisk, (45, 144, 54, 100, 94))]
  rows += [("tuxpaint-stamps-default", f"tuxpaint-{l}", l, n)
           for l, n in zip(("es", "fr", "it"), (200, 200, 9))]
  domains, speakers, labels = (np.array(sum([[r[k]] * r[3] for r in rows], [])) for k in range(3))
  part = probe.package_holdout(domains, labels, 0.15)
  assert set(domains[part == "valid"]) == {"tuxpaint-stamps-default"}
  assert set(labels[part == "train"]) == set(asterisk)
  held = set(speakers[probe.group_holdout(speakers, 0.15) == "valid"])
  assert held == {"klettres-es", "klettres-fr", "klettres-ru"}   # one family's single voices


def test_make_splits_package_holdout_and_its_fallbacks():
  e = _centres(n_clips=120, classes=2)
  e.splits = np.where(e.splits == "valid", "train", e.splits)
  n_train = int((e.splits == "train").sum())
  # Eight packages of train (about 11 clips each, under the 1.5 x 15 % cap), both classes in each.
  e.domains = np.array([f"pkg{i % 8}" for i in range(e.n_clips)], object)
  splits, _, how = probe.make_splits(e, holdout="package")
  assert how == "held-out packages of train"
  part = probe.package_holdout(e.domains[e.splits == "train"], e.labels[e.splits == "train"], 0.15)
  assert splits["valid"].n_clips == int((part == "valid").sum()) > 0
  assert splits["train"].n_clips + splits["valid"].n_clips == n_train
  r = probe.linear_probe(e, seeds=(0,), steps=100, valid_holdout="package")
  assert r["valid_from"] == how and r["probe"]["valid_holdout"] == "package"
  # One package: nothing can be held out whole, so speakers are.
  e.domains = np.array(["one"] * e.n_clips, object)
  assert probe.make_splits(e, holdout="package")[2] == "held-out group-disjoint part of train"
  # A task's own valid split wins over any holdout.
  assert probe.make_splits(_centres(), holdout="package")[2] == "valid split"
  with pytest.raises(ValueError, match="valid holdout"):
    probe.make_splits(e, holdout="speakers")


def test_valid_holdout_is_a_checked_protocol_option():
  from eval import linear_eval
  from eval.evaluators import LinearProbeEvaluator
  with pytest.raises(ValueError, match="config.evals.p.valid_holdout"):
    LinearProbeEvaluator("p", dict(benchmark="suite:msn", valid_holdout="speakers"))
  ev = LinearProbeEvaluator("p", dict(benchmark="suite:msn", valid_holdout="package"))
  assert ev.protocol["valid_holdout"] == "package"
  assert LinearProbeEvaluator("p", dict(benchmark="suite:msn")).protocol["valid_holdout"] == "package"
  # Results of the speaker holdout (the default before 2026-12-07) go beside the default ones.
  base = {"features": "embedding", "clip_pooling": "logits", "bn_reestimate": False}
  assert linear_eval.protocol_dir({**base, "valid_holdout": "package"}) == ""
  assert linear_eval.protocol_dir({**base, "valid_holdout": "group"}) == "vgroup"
  assert linear_eval.protocol_dir({**base, "bn_reestimate": True, "valid_holdout": "group"}) == "bn-vgroup"


def test_package_holdout_refits_on_all_of_train():
  """The held-out package is the only one whose clips look like test's (the class is in
  unit 0 there, in unit 1 elsewhere): the probe that chose lr / wd without it is at chance
  on it, and only the refit on all of train (that package back in) scores test."""
  rng = np.random.default_rng(0)
  domains = ["Z"] * 24 + [f"D{i}" for i in range(4) for _ in range(44)]   # 200 train clips
  n_train, n_test = len(domains), 60
  y = np.arange(n_train + n_test) % 2
  sign = 3.0 * (2 * y - 1)
  emb = rng.normal(size=(n_train + n_test, 6))
  like_test = np.array([d == "Z" for d in domains] + [True] * n_test)
  emb[like_test, 0] += sign[like_test]
  emb[~like_test, 1] += sign[~like_test]
  e = E.Embedded(emb=emb.astype(np.float32), clip=np.arange(n_train + n_test, dtype=np.int32),
                 labels=np.array([f"c{c}" for c in y], object),
                 splits=np.array(["train"] * n_train + ["test"] * n_test, object),
                 groups=np.array([f"spk{i}" for i in range(n_train + n_test)], object),
                 paths=np.array([f"f{i}.wav" for i in range(n_train + n_test)], object),
                 domains=np.array(domains + ["T"] * n_test, object))
  part = probe.package_holdout(e.domains[:n_train], e.labels[:n_train], 0.15)
  assert set(e.domains[:n_train][part == "valid"]) == {"Z"}
  r = probe.linear_probe(e, seeds=(0, 1), steps=300, valid_holdout="package")
  assert r["probe"]["refit_on_train_and_valid"] and r["valid_from"] == "held-out packages of train"
  assert r["valid_accuracy"]["mean"] < 0.75, r["per_seed"]
  assert r["accuracy"]["mean"] > 0.9, r["per_seed"]
  assert r["counts"]["train"]["clips"] == 176 and r["counts"]["valid"]["clips"] == 24
  # The speaker holdout keeps the protocol of the tables before 2026-12-07: no refit.
  r = probe.linear_probe(e, seeds=(0,), steps=100, valid_holdout="group")
  assert not r["probe"]["refit_on_train_and_valid"]


def test_hear_export_holds_out_whole_packages_as_the_probe_does(tmp_path):
  from data import hear_export
  from ssl_audio import manifest as manifest_lib
  # Family C (3 of the 5 classes) is the one package that can go whole (as suite:language's tuxpaint).
  pkgs = ["A"] * 100 + ["B"] * 100 + ["C"] * 40 + ["T"] * 60
  labels = [f"l{i % 5}" for i in range(200)] + [f"l{i % 3}" for i in range(40)] + [f"l{i % 5}" for i in range(60)]
  cols = {"path": np.array([f"f{i}.wav" for i in range(300)], object),
          "label": np.array(labels, object), "package": np.array(pkgs, object),
          "speaker": np.array([f"{p}-{l}" for p, l in zip(pkgs, labels)], object),
          "split": np.array(["train"] * 240 + ["test"] * 60, object)}
  split = hear_export.splits_of(manifest_lib.Manifest(cols, tmp_path, "toy"))
  assert set(np.array(pkgs)[split == "valid"]) == {"C"}
  assert (split[240:] == "test").all() and (split[:200] == "train").all()
