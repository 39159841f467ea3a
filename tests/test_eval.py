"""Downstream evaluation: linear probe, clip averaging, embedding cache, task sources, CLI."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from eval import embeddings as E
from eval import probe
from ssl_audio import manifest as manifest_lib
from tests import helpers


def _embedded(n_clips=120, classes=4, slices=3, dim=16, sep=2.0, seed=0, valid=True):
  rng = np.random.default_rng(seed)
  y = np.arange(n_clips) % classes
  clip = np.repeat(np.arange(n_clips), slices).astype(np.int32)
  centres = rng.normal(size=(classes, dim)) * sep
  emb = (centres[y[clip]] + rng.normal(size=(len(clip), dim))).astype(np.float32)
  n_tr, n_va = int(0.6 * n_clips), int(0.15 * n_clips) if valid else 0
  splits = np.array(["train"] * n_tr + ["valid"] * n_va + ["test"] * (n_clips - n_tr - n_va), object)
  return E.Embedded(emb=emb, clip=clip, labels=np.array([f"c{i}" for i in y], object),
                    splits=splits, groups=np.array([f"spk{i % 30}" for i in range(n_clips)], object),
                    paths=np.array([f"f{i}.wav" for i in range(n_clips)], object))


def test_probe_separable_reaches_100_and_shuffled_is_chance():
  e = _embedded()
  r = probe.linear_probe(e, seeds=(0, 1, 2), steps=300)
  assert r["accuracy"]["mean"] == pytest.approx(1.0)
  assert r["balanced_accuracy"]["mean"] == pytest.approx(1.0)
  assert len(r["per_seed"]) == 3 and r["valid_from"] == "valid split"
  assert r["valid_accuracy"]["mean"] == pytest.approx(np.mean([s["valid_accuracy"] for s in r["per_seed"]]))
  assert r["chance"]["balanced_accuracy"] == pytest.approx(0.25)
  # Shuffled labels: nothing to learn; mean accuracy near chance (1/4) over seeds and draws.
  accs = []
  for s in range(2):
    sh = _embedded(n_clips=200, seed=s)
    sh.labels = np.random.default_rng(10 + s).permutation(sh.labels)
    accs.append(probe.linear_probe(sh, seeds=(0, 1, 2), steps=300)["accuracy"]["mean"])
  assert np.mean(accs) < 0.45, accs


def test_probe_without_valid_holds_out_disjoint_groups():
  e = _embedded(valid=False)
  splits, classes, how = probe.make_splits(e, holdout="group")
  assert how == "held-out group-disjoint part of train"
  # Group-disjointness: recompute which clips went where.
  train_idx = np.flatnonzero(e.splits == "train")
  part = probe.group_holdout(e.groups[train_idx], 0.15)
  assert set(e.groups[train_idx][part == "train"]).isdisjoint(e.groups[train_idx][part == "valid"])
  assert splits["valid"].n_clips == int((part == "valid").sum()) > 0
  r = probe.linear_probe(e, seeds=(0, 1, 2), steps=300, valid_holdout="group")
  assert r["accuracy"]["mean"] > 0.95 and r["valid_from"] == how
  # A handful of groups (speakers): still one whole group held out, never all.
  few = probe.group_holdout(np.array(["a"] * 10 + ["b"] * 3 + ["c"] * 7), 0.15)
  assert (few == "valid").sum() in (3, 7, 10) and (few == "train").any()
  assert len(set(few[:10])) == len(set(few[10:13])) == len(set(few[13:])) == 1


def test_clip_averaging_differs_from_slice_votes():
  # One clip of class 1: two slices lean weakly to class 0, one strongly to class 1.
  logits = np.array([[0.2, 0.0], [0.2, 0.0], [0.0, 3.0],     # clip 0 (label 1)
                     [1.0, 0.0], [1.0, 0.0], [0.0, 0.5]],    # clip 1 (label 0)
                    np.float32)
  clip = np.array([0, 0, 0, 1, 1, 1])
  y = np.array([1, 0])
  slice_acc = probe.accuracy(logits.argmax(-1), y[clip])
  cl = probe.clip_logits(logits, clip, 2)
  np.testing.assert_allclose(cl[0], [0.4 / 3, 1.0], rtol=1e-6)
  assert slice_acc == pytest.approx(3 / 6)           # slice level: half wrong
  assert probe.accuracy(cl.argmax(-1), y) == 1.0     # clip level: both right
  # Batched over a leading (grid) axis too.
  assert probe.clip_logits(np.stack([logits, logits]), clip, 2).shape == (2, 2, 2)


def test_t_interval_and_balanced_accuracy():
  m, lo, hi = probe.t_interval([0.5, 0.6, 0.7])
  assert m == pytest.approx(0.6) and lo < m < hi
  assert hi - m == pytest.approx(4.302653 * 0.1 / np.sqrt(3), rel=1e-4)
  assert probe.t_interval([0.5]) == (0.5, 0.5, 0.5)
  # Welch, by hand: a = [1, 2, 3] (var 1), b = [0, 0, 1, 1] (var 1/3): se^2 = 1/3 + 1/12,
  # dof = (5/12)^2 / ((1/3)^2 / 2 + (1/12)^2 / 3) = 3, t(3) = 3.182446.
  d, lo, hi = probe.welch_interval([1, 2, 3], [0, 0, 1, 1])
  assert d == pytest.approx(1.5)
  assert hi - d == pytest.approx(3.182446 * np.sqrt(5 / 12), rel=1e-5) and d - lo == pytest.approx(hi - d)
  with pytest.raises(ValueError, match=">= 2 values"):
    probe.welch_interval([1.0], [0.0, 1.0])
  y = np.array([0, 0, 0, 1])
  assert probe.balanced_accuracy(np.array([0, 0, 0, 0]), y) == pytest.approx(0.5)


# ---------------------------------------------------------------- with an encoder

@pytest.fixture(scope="module")
def run_workdir(tmp_path_factory, audio_folder, labelled_folder) -> Path:
  """A workdir whose checkpoint 0 is a num_train_steps=0 run (then 2 steps; latest = 2)."""
  from tests.test_pretrained_hear import build_trained_workdir
  return build_trained_workdir(tmp_path_factory, audio_folder, labelled_folder)


def test_untrained_run_loads_and_matches_random_init(run_workdir):
  from ssl_audio import pretrained
  pre = pretrained.load_pretrained(str(run_workdir), step=0)
  assert pre.step == 0 and pre.info["width"] == 0.25
  ri = pretrained.random_init(pre.meta)
  x = np.random.default_rng(0).standard_normal((3, pre.slice_samples)).astype(np.float32) * 0.1
  np.testing.assert_allclose(pre.embed_batch(x), ri.embed_batch(x), rtol=1e-5, atol=1e-5)
  assert ri.identity != pre.identity


def test_untrained_with_pool_batch_stats(run_workdir, audio_folder):
  """The Untrained baseline's BatchNorm statistics come from the run's own pool (a random
  init has identity statistics: no normalisation), measured on real slices of it."""
  import jax
  from ssl_audio import pretrained
  ri = pretrained.random_init(pretrained.load_pretrained(str(run_workdir), step=0).meta)
  assert ri.meta["config"]["data"]["pretrain"] == str(audio_folder)
  pb = pretrained.with_pool_batch_stats(ri, n_slices=16)
  st0 = jax.device_get(ri.variables["batch_stats"])["block0"]["bn"]
  st = jax.device_get(pb.variables["batch_stats"])["block0"]["bn"]
  assert np.all(st0["mean"] == 0) and np.all(st0["var"] == 1)
  assert np.abs(st["mean"]).max() > 1e-3 and not np.allclose(st["var"], 1.0)
  assert np.all(st["var"] >= 0)
  np.testing.assert_array_equal(jax.device_get(pb.variables["params"])["block0"]["conv_time"]["kernel"],
                                jax.device_get(ri.variables["params"])["block0"]["conv_time"]["kernel"])
  assert pb.identity != ri.identity and "poolbn16" in pb.identity   # its own embedding cache
  x = np.random.default_rng(0).standard_normal((2, ri.slice_samples)).astype(np.float32) * 0.1
  assert not np.allclose(pb.embed_batch(x), ri.embed_batch(x))
  meta = dict(ri.meta, config=dict(ri.meta["config"], data=dict(ri.meta["config"]["data"],
                                                               pretrain="/nonexistent/pool")))
  with pytest.raises(ValueError, match="cannot read the run's pool"):
    pretrained.with_pool_batch_stats(pretrained.random_init(meta), n_slices=4)


def test_embedding_cache_reused_and_bad_files_counted(run_workdir, labelled_folder, tmp_path):
  from ssl_audio import pretrained
  folder = tmp_path / "lab"
  shutil.copytree(labelled_folder, folder)
  (folder / "low" / "broken.wav").write_bytes(b"not audio at all")
  pre = pretrained.load_pretrained(str(run_workdir))
  calls = []
  real = pre.embed_batch
  pre.embed_batch = lambda x: (calls.append(len(x)), real(x))[1]
  cache = tmp_path / "cache"
  e1 = E.embed_benchmark(pre, f"folder:{folder}", cache_dir=cache)
  assert calls and e1.skipped == 1 and e1.reasons == {"cannot decode": 1}
  assert e1.n_clips == 8 and len(e1.emb) == 8 * 2   # 2-s clips: two 0.975-s slices each
  files = list(cache.glob("*.npz"))
  assert len(files) == 1
  n = len(calls)
  e2 = E.embed_benchmark(pre, f"folder:{folder}", cache_dir=cache)
  assert len(calls) == n and e2.info["cached"]        # no encoder call the second time
  np.testing.assert_array_equal(e1.emb, e2.emb)
  np.testing.assert_array_equal(e1.labels, e2.labels)
  np.testing.assert_array_equal(e1.domain_keys(), e2.domains)   # stored for the package holdout
  # A cache file written before domains were stored is re-embedded, not misread.
  with np.load(files[0], allow_pickle=False) as z:
    old = {k: z[k] for k in z.files if k != "domains"}
  np.savez(files[0].with_suffix(""), **old)   # np.savez adds the .npz back
  e3 = E.embed_benchmark(pre, f"folder:{folder}", cache_dir=cache)
  assert len(calls) > n and not e3.info["cached"] and e3.domains is not None
  n = len(calls)
  # Another manifest content -> another key.
  (folder / "high" / "high0.wav").rename(folder / "high" / "high9.wav")
  E.embed_benchmark(pre, f"folder:{folder}", cache_dir=cache)
  assert len(list(cache.glob("*.npz"))) == 2 and len(calls) > n


def test_manifest_tasks_with_and_without_split(run_workdir, labelled_folder, tmp_path):
  from ssl_audio import pretrained
  pre = pretrained.load_pretrained(str(run_workdir))
  files = sorted(labelled_folder.rglob("*.wav"))
  rows = [{"path": str(p), "label": p.parent.name, "speaker": f"spk{i % 4}",
           "split": ["train", "train", "valid", "test"][i % 4]} for i, p in enumerate(files)]
  with_split = manifest_lib.write_manifest(tmp_path / "with.csv", rows)
  m = E.load_benchmark(f"manifest:{with_split}")
  assert list(m.column("split")) == [r["split"] for r in rows]
  e = E.embed_benchmark(pre, f"manifest:{with_split}", cache_dir=None)
  r = probe.linear_probe(e, seeds=(0,), steps=100)
  assert r["valid_from"] == "valid split" and r["counts"]["test"]["clips"] == 2

  no_split = [{k: v for k, v in r.items() if k != "split"} for r in rows]
  # Enough speakers that the 70/10/20 hash gives train and test rows.
  for i, r in enumerate(no_split):
    r["speaker"] = f"s{i}"
  path = manifest_lib.write_manifest(tmp_path / "nosplit.csv", no_split)
  m2 = E.load_benchmark(f"manifest:{path}")
  expect = manifest_lib.hash_split([r["speaker"] for r in no_split])
  assert list(m2.column("split")) == list(expect)
  # Folder tasks: labels from sub-folders, split by file-name hash.
  m3 = E.load_benchmark(f"folder:{labelled_folder}")
  assert sorted(set(m3.column("label"))) == ["high", "low"]
  assert list(m3.column("split")) == list(manifest_lib.hash_split(
      [os.path.basename(p) for p in m3.column("path")]))


def test_linear_eval_cli_folder_task_with_untrained_baseline(run_workdir, labelled_folder, tmp_path):
  from absl import flags
  from eval import linear_eval
  out = tmp_path / "cmp"
  argv = ["linear_eval", f"--workdir={run_workdir}", f"--tasks=folder:{labelled_folder}",
          "--seeds=2", "--probe_steps=100", "--baselines=untrained,untrained_init_bn", "--step=2",
          f"--out={out}", "--untrained_seeds=2"]
  flags.FLAGS.unparse_flags()
  flags.FLAGS(argv)
  linear_eval.main(argv[:1])
  name = manifest_lib.short_name(f"folder:{labelled_folder}", "file")
  res = json.loads((run_workdir / "eval" / f"{name}.json").read_text())
  assert res["checkpoint_step"] == 2 and len(res["linear_probe"]["per_seed"]) == 2
  assert {"mean", "low", "high"} <= set(res["accuracy"]) and "chance" in res
  assert (run_workdir / "eval" / "results.md").is_file()
  pool_bn = json.loads((run_workdir / "eval" / "untrained" / f"{name}.json").read_text())
  init_bn = json.loads((run_workdir / "eval" / "untrained_init_bn" / f"{name}.json").read_text())
  assert "-poolbn" in pool_bn["embeddings"]["weights"]
  assert "poolbn" not in init_bn["embeddings"]["weights"]
  assert (run_workdir / "eval" / "untrained" / "seed1" / f"{name}.json").is_file()
  md = (out / "comparison.md").read_text()
  assert "| Untrained | 0 |" in md and "| Untrained (init BN) | 0 |" in md and run_workdir.name in md
  assert (out / "comparison.png").stat().st_size > 1000
  flags.FLAGS.unparse_flags()


def test_finetune_reports_trained_flops_fraction(run_workdir, labelled_folder):
  from ssl_audio import pretrained
  from eval.linear_eval import _decode_clips
  pre = pretrained.load_pretrained(str(run_workdir))
  fl = probe.block_flops(pre.encoder, pre.variables, (96, 64))
  assert [n for n, _ in fl] == [f"block{i}" for i in range(6)] + ["embedding"]
  total = sum(f for _, f in fl)
  # Per-block costs add up to the whole encoder's XLA count (fusion aside).
  assert total == pytest.approx(pre.info["flops_per_slice"], rel=0.1)
  clips, labels, splits = _decode_clips(f"folder:{labelled_folder}", 16000, None)
  r = probe.finetune(pre, clips, labels, splits, 2, seeds=(0,), steps=3, batch=8)
  assert r["trained_modules"] == ["block4", "block5", "embedding"]
  assert 0 < r["trained_flops_fraction"] < 1
  assert probe.trainable_blocks(pre.encoder, "all")[0] == "block0"
  assert probe.trainable_blocks(pre.encoder, 0) == []
