"""The evaluation protocol's options: features, their cache key, BatchNorm
re-estimation, Untrained over several init seeds, and the input normalisation
stored in (and read back from) the checkpoint."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssl_audio import embed as embed_lib
from ssl_audio import encoder as encoder_lib
from ssl_audio import frontend as fe
from tests import helpers

FCFG = fe.FrontendConfig()


def small_embedder(features="embedding", seed=0):
  enc = encoder_lib.Encoder(width=0.25, embedding_dim=16)
  v = enc.init(jax.random.key(seed), jnp.zeros((1, FCFG.slice_frames, FCFG.n_mels)))
  # Non-trivial BatchNorm statistics, so re-estimation has something to change.
  v = jax.tree_util.tree_map_with_path(
      lambda p, x: x + 0.3 if "mean" in str(p[-1]) else x, jax.device_get(v))
  return embed_lib.Embedder(enc, v, FCFG, identity="t", features=features)


def audio(n, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(FCFG.slice_samples)
  x = [0.2 * np.sin(2 * np.pi * (200 + 150 * k) * t / 16000) + 0.05 * rng.standard_normal(len(t))
       for k in range(n)]
  return np.asarray(x, np.float32)


def test_feature_options_shapes_and_values():
  x = audio(3)
  e = small_embedder()
  ch = e.encoder.block_channels()
  out = {f: e.with_features(f).embed_batch(x) for f in embed_lib.FEATURES}
  assert out["embedding"].shape == (3, 16)
  assert out["pooled"].shape == (3, ch[-1])
  assert out["blocks"].shape == (3, 2 * sum(ch))
  # pooled is the global max of the last block; blocks ends with its mean and max.
  mel = fe.log_mel(jnp.asarray(x), FCFG)
  _, feats = e.encoder.apply(jax.device_get(e.variables), mel, return_blocks=True)
  last = np.asarray(feats[-1])
  np.testing.assert_allclose(out["pooled"], last.max(axis=(1, 2)), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out["blocks"][:, -ch[-1]:], last.max(axis=(1, 2)), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out["blocks"][:, -2 * ch[-1]:-ch[-1]], last.mean(axis=(1, 2)),
                             rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="features"):
    e.with_features("nope")


def test_cache_key_holds_the_features_and_keeps_the_default_name(labelled_folder, tmp_path):
  import hashlib
  from eval import embeddings as E
  bench = f"folder:{labelled_folder}"
  m = E.load_benchmark(bench)
  paths = {f: E.cache_path(tmp_path, bench, "step1", m, FCFG.to_dict(), None, f)
           for f in embed_lib.FEATURES}
  assert len(set(paths.values())) == 3
  # The default's key is the one written before the option existed (old caches still hit).
  old = json.dumps({"v": E.CACHE_VERSION, "weights": "step1", "task": bench,
                    "manifest": E.manifest_hash(m), "frontend": FCFG.to_dict(), "max_clips": 0},
                   sort_keys=True)
  assert paths["embedding"].name.endswith(hashlib.sha1(old.encode()).hexdigest()[:12] + ".npz")


def test_bn_reestimation_matches_the_population_statistics():
  x = audio(12, seed=1)
  e = small_embedder()
  r = embed_lib.reestimate_batch_stats(e, x, batch_size=64)
  assert r.identity != e.identity   # a new cache identity
  # block0's BatchNorm input does not depend on any BatchNorm: its statistics are exact.
  mel = fe.log_mel(jnp.asarray(x), FCFG)[..., None]
  p = jax.device_get(e.variables["params"])["block0"]
  import flax.linen as nn
  y = nn.Conv(p["conv_time"]["kernel"].shape[-1], (3, 1), padding="SAME").apply(
      {"params": p["conv_time"]}, mel)
  y = nn.Conv(p["conv_freq"]["kernel"].shape[-1], (1, 3), padding="SAME", use_bias=False).apply(
      {"params": p["conv_freq"]}, nn.relu(y))
  y = np.asarray(y, np.float64).reshape(-1, y.shape[-1])
  st = jax.device_get(r.variables["batch_stats"])["block0"]["bn"]
  np.testing.assert_allclose(st["mean"], y.mean(0), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(st["var"], y.var(0), rtol=1e-3, atol=1e-5)
  # Deeper layers changed too, and the embeddings with them.
  before = jax.device_get(e.variables["batch_stats"])["block3"]["bn"]["mean"]
  assert not np.allclose(before, jax.device_get(r.variables["batch_stats"])["block3"]["bn"]["mean"])
  assert not np.allclose(e.embed_batch(x), r.embed_batch(x))


def test_untrained_over_init_seeds_and_paired_difference(tmp_path):
  from eval import linear_eval
  def res(accs, valid=0.3):
    return {"task": "b", "linear_probe": {"per_seed": [{"accuracy": a} for a in accs],
                                          "valid_accuracy": {"mean": valid, "half_width": 0.0}},
            "accuracy": {"mean": float(np.mean(accs)), "half_width": 0.0},
            "balanced_accuracy": {"mean": float(np.mean(accs)), "half_width": 0.0},
            "chance": {"accuracy": 0.5},
            "checkpoint_step": 0, "finetune": {}}
  per_init = [{"b": res([0.50, 0.52, 0.54], 0.41)}, {"b": res([0.60, 0.60, 0.60], 0.43)},
              {"b": res([0.40, 0.44, 0.42], 0.45)}]
  u = linear_eval.combine_untrained(per_init)["b"]
  assert u["accuracy"]["n"] == 3 and u["accuracy"]["over"] == "init seeds"
  assert u["accuracy"]["mean"] == pytest.approx(np.mean([0.52, 0.60, 0.42]))
  assert u["accuracy"]["half_width"] > 0
  assert u["valid_accuracy"]["mean"] == pytest.approx(0.43)   # over init seeds, like test
  model = res([0.70, 0.72, 0.71], 0.25)
  d = linear_eval.paired_difference(model, u)
  assert d["n"] == 3
  assert d["mean"] == pytest.approx(np.mean([0.70 - 0.50, 0.72 - 0.60, 0.71 - 0.42]))
  # The comparison shows valid accuracy beside test: here the model wins test, loses valid.
  md, _ = linear_eval.write_comparison(tmp_path, {"m": {"b": model}, "Untrained": {"b": u}}, ["b"])
  text = md.read_text()
  valid = text.split("Valid accuracy")[1].split("Paired difference")[0]
  assert "| m | 25.0 ± 0.0 |" in valid and "| Untrained | 43.0 ± " in valid


def _one_seed_result(acc, task="b"):
  """An eval result of one probe seed with accuracy ``acc``."""
  return {"task": task, "linear_probe": {"per_seed": [{"accuracy": acc}]},
          "accuracy": {"mean": acc, "half_width": 0.0},
          "balanced_accuracy": {"mean": acc, "half_width": 0.0},
          "chance": {"accuracy": 0.5}, "checkpoint_step": 10, "finetune": {}}


def test_pretraining_seeds_are_summarised_per_method_against_untrained_inits(tmp_path):
  from eval import linear_eval
  res = _one_seed_result
  names = ["A s0", "A s1", "A s2", "B s0", "C", "B"]
  assert linear_eval.seed_groups(names) == {"A": ["A s0", "A s1", "A s2"]}   # B has one seeded run
  u = linear_eval.combine_untrained([{"b": res(a)} for a in (0.40, 0.42, 0.38, 0.41, 0.39)])
  runs = {"A s0": {"b": res(0.60)}, "A s1": {"b": res(0.62)}, "A s2": {"b": res(0.58)}}
  summ = linear_eval.method_summary(list(runs.values()), u, ["b"])["b"]
  assert summ["mean"] == pytest.approx(0.60) and summ["n"] == 3
  assert summ["half_width"] == pytest.approx(4.302653 * 0.02 / np.sqrt(3), rel=1e-4)
  v = summ["vs_untrained"]
  assert v["mean"] == pytest.approx(0.20) and v["beats"] and not v["loses"]
  # A method whose seeds disagree more than the gap does not beat it.
  wide = [{"b": res(a)} for a in (0.30, 0.60, 0.45)]
  v = linear_eval.method_summary(wide, u, ["b"])["b"]["vs_untrained"]
  assert v["mean"] == pytest.approx(0.05) and not v["beats"] and not v["loses"]
  md, _ = linear_eval.write_comparison(tmp_path, dict(runs, Untrained=u), ["b"])
  row = next(l for l in md.read_text().splitlines() if l.startswith("| A | 3 |"))
  assert "60.0 ± " in row and "**+20.0 ± " in row and row.endswith("| 1 |")


def test_method_summary_averages_each_run_and_each_init_over_tasks(tmp_path):
  from eval import linear_eval, probe
  def res(task, acc):
    return _one_seed_result(acc, task)
  # Init k's suite mean is the mean of init k on b and on c (paired by init, not shuffled).
  u_b, u_c = (0.40, 0.50, 0.30), (0.60, 0.50, 0.70)
  u = linear_eval.combine_untrained([{"b": res("b", x), "c": res("c", y)} for x, y in zip(u_b, u_c)])
  r_b, r_c = (0.55, 0.45, 0.50), (0.58, 0.62, 0.60)
  runs = {f"A s{k}": {"b": res("b", x), "c": res("c", y)} for k, (x, y) in enumerate(zip(r_b, r_c))}
  summ = linear_eval.method_summary(list(runs.values()), u, ["b", "c"])
  avg = summ[linear_eval.SUITE_MEAN]
  run_means, init_means = [0.565, 0.535, 0.55], [0.50, 0.50, 0.50]
  assert avg["mean"] == pytest.approx(0.55) and avg["n"] == 3
  d, lo, hi = probe.welch_interval(run_means, init_means)
  assert avg["vs_untrained"]["mean"] == pytest.approx(0.05)
  assert avg["vs_untrained"]["half_width"] == pytest.approx((hi - lo) / 2)
  # The inits' per-task spread (0.30-0.50) cancels in their suite means, so the average is
  # decided where neither task is: b's interval spans 0, the suite mean's does not.
  assert not summ["b"]["vs_untrained"]["beats"] and avg["vs_untrained"]["beats"]
  md, _ = linear_eval.write_comparison(tmp_path, dict(runs, Untrained=u), ["b", "c"])
  lines = md.read_text().splitlines()
  assert any(l.startswith("| method | runs | b | c | mean | beats Untrained on |") for l in lines)
  row = next(l for l in lines if l.startswith("| A | 3 |"))
  assert "| 55.0 ± " in row and "**+5.0 ± " in row
  wins = int(row.rstrip(" |").rsplit("|", 1)[1])   # tasks only: the mean column is not a win
  assert wins == int(summ["b"]["vs_untrained"]["beats"]) + int(summ["c"]["vs_untrained"]["beats"])


def test_input_normalisation_is_measured_stored_and_read_back(audio_folder, tmp_path):
  from ssl_audio import manifest, normalization, pretrained, train
  c = helpers.tiny(helpers.load_config("temporal_gap"), str(audio_folder), steps=1)
  c.encoder.width = 0.25
  c.encoder.input_norm = "pool"
  wd = tmp_path / "run"
  train.train_and_evaluate(c, str(wd))
  assert c.encoder.input_mean == 0.0     # the caller's config is not changed
  pre = pretrained.load_pretrained(str(wd))
  enc = pre.meta["config"]["encoder"]
  mean, std = normalization.log_mel_stats(manifest.resolve(str(audio_folder)), FCFG, seed=c.seed)
  assert enc["input_mean"] == pytest.approx(mean) and enc["input_std"] == pytest.approx(std)
  assert enc["input_mean"] < -1.0 and enc["input_std"] > 0.1     # real log-mel levels
  assert pre.encoder.input_mean == enc["input_mean"]             # the loaded encoder applies them
  saved = json.loads((wd / "config.json").read_text())["encoder"]
  assert saved["input_mean"] == enc["input_mean"]
  # Resuming reads the stored values (not a new measurement of possibly changed data).
  c2 = helpers.tiny(helpers.load_config("temporal_gap"), str(audio_folder), steps=2)
  c2.encoder.width, c2.encoder.input_norm, c2.seed = 0.25, "pool", 7
  train.train_and_evaluate(c2, str(wd))
  assert pretrained.load_pretrained(str(wd)).meta["config"]["encoder"]["input_mean"] == enc["input_mean"]


def test_seed_table_recomputes_the_method_rows_from_comparison_files(tmp_path):
  """eval.seed_table reads back what write_comparison wrote (runs split over two files,
  a seed-0 row renamed, the inits' own table) and gives the same method row."""
  from eval import linear_eval, seed_table
  def res(task, acc):
    return _one_seed_result(acc, task)
  tasks = ["b", "c"]
  u = linear_eval.combine_untrained([{"b": res("b", x), "c": res("c", y)}
                                     for x, y in ((0.40, 0.60), (0.45, 0.55), (0.35, 0.65), (0.42, 0.50))])
  runs = {f"A s{k}": {"b": res("b", x), "c": res("c", y)}
          for k, (x, y) in enumerate(((0.551, 0.582), (0.457, 0.624), (0.503, 0.601)))}
  runs["A s0"]["b"]["valid_accuracy"] = {"mean": 0.30, "half_width": 0.01}
  runs["A s0"]["c"]["valid_accuracy"] = {"mean": 0.45, "half_width": 0.02}
  md1, _ = linear_eval.write_comparison(tmp_path / "one", {"A": runs["A s0"], "Untrained": u}, tasks)
  md2, _ = linear_eval.write_comparison(tmp_path / "two", {k: runs[k] for k in ("A s1", "A s2")}, tasks)
  text = md1.read_text()
  assert "| Untrained init 3 | 42.00 | 50.00 |" in text
  valid = text.split("Valid accuracy")[1].split("Paired difference")[0]
  assert "| A | 30.0 ± 1.0 | 45.0 ± 2.0 | 37.5 |" in valid   # the valid average recipes are chosen on
  assert "| Untrained | - | - | - |" in valid                  # no valid numbers: no average
  r_tasks, r_runs = seed_table.read_runs([str(md1), str(md2)], {"A": "A s0"})
  assert r_tasks == tasks and sorted(r_runs) == ["A s0", "A s1", "A s2"]
  assert r_runs["A s1"] == pytest.approx([0.457, 0.624])
  inits = seed_table.read_inits(str(md1), tasks)
  np.testing.assert_allclose(inits, [[0.40, 0.60], [0.45, 0.55], [0.35, 0.65], [0.42, 0.50]])
  got = next(l for l in seed_table.method_table(r_runs, inits, tasks) if l.startswith("| A | 3 |"))
  want = next(l for l in linear_eval.method_table_lines(dict(runs, Untrained=u), tasks, tasks)
              if l.startswith("| A | 3 |"))
  assert got == want
  # Two tables that disagree on one run are an error, not a silent choice.
  bad = tmp_path / "bad.md"
  bad.write_text(md2.read_text().replace("| A s1 | 10 | 45.7", "| A s1 | 10 | 47.7"))
  with pytest.raises(ValueError, match="A s1"):
    seed_table.read_runs([str(md2), str(bad)], {})


def test_valid_agreement_correlates_valid_and_test_across_models(tmp_path, capsys):
  from eval import valid_agreement
  # Four models; digits' valid tracks test exactly (r = 1), language's runs against it (r = -1);
  # model d has no language result: left out of language and of the mean, kept in digits.
  acc = {"a": ((20, 10), (30, 40)), "b": ((30, 15), (20, 50)), "c": ((40, 20), (10, 60)),
         "d": ((50, 25), None)}
  for name, (dig, lang) in acc.items():
    for task, vt in (("digits", dig), ("language", lang)):
      if vt is None:
        continue
      (tmp_path / name).mkdir(exist_ok=True)
      (tmp_path / name / f"{task}.json").write_text(json.dumps(
          {"accuracy": {"mean": vt[1] / 100}, "linear_probe": {"valid_accuracy": {"mean": vt[0] / 100}}}))
  scores = valid_agreement.load([str(tmp_path / n) for n in acc], ("digits", "language"))
  rows = {r["task"]: r for r in valid_agreement.agreement(scores, ("digits", "language"))}
  assert rows["digits"]["n"] == 4 and rows["digits"]["r"] == pytest.approx(1.0)
  assert rows["language"]["n"] == 3 and rows["language"]["r"] == pytest.approx(-1.0)
  # mean over tasks of a, b, c: valid 25, 25, 25 -> no spread -> r undefined
  assert rows["mean"]["n"] == 3 and rows["mean"]["valid"] == pytest.approx(25.0)
  assert np.isnan(rows["mean"]["r"])
  assert valid_agreement.main([f"--evals={tmp_path}/*", "--tasks=digits,language"]) == 0
  assert "| language | 3 | 20.0 | 50.0 | -1.00 |" in capsys.readouterr().out
  assert valid_agreement.main([f"--evals={tmp_path}/none*"]) == 1
