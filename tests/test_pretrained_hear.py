"""The notebook API (load_pretrained) and the HEAR 2021 API, on a 2-step run
that also runs the in-training probe."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest

from tests import helpers


def build_trained_workdir(tmp_path_factory, audio_folder, labelled_folder) -> Path:
  """A num_train_steps=0 run (the Untrained checkpoint, step 0), resumed for 2
  TemporalGap steps on the audio_folder fixture with an in-training probe every 2
  steps. Built once per session (test_eval.py reuses it)."""
  wd = tmp_path_factory.getbasetemp() / "shared_tg_workdir"
  done = wd / "DONE"
  if done.exists():
    return wd
  from ssl_audio import train
  for steps in (0, 2):
    c = helpers.tiny(helpers.load_config("temporal_gap"), str(audio_folder), steps=steps)
    c.encoder.width = 0.25
    c.keep_checkpoints = 5
    c.evals.probe = ml_collections.ConfigDict(dict(task=f"folder:{labelled_folder}", every_steps=2,
                                                   probe_steps=100))
    train.train_and_evaluate(c, str(wd))
  done.write_text("ok")
  return wd


@pytest.fixture(scope="module")
def trained(tmp_path_factory, audio_folder, labelled_folder) -> Path:
  return build_trained_workdir(tmp_path_factory, audio_folder, labelled_folder)


def test_in_training_probe_writes_metrics(trained):
  rows = [json.loads(l) for l in (trained / "metrics.jsonl").read_text().splitlines()]
  probes = [r for r in rows if "probe/accuracy" in r]
  assert probes and probes[-1]["step"] == 2
  assert probes[0]["step"] == 0   # the curve starts at the random init
  assert 0.0 <= probes[-1]["probe/accuracy"] <= 1.0
  assert 0.0 <= probes[-1]["probe/balanced_accuracy"] <= 1.0
  assert 0.0 <= probes[-1]["probe/valid_accuracy"] <= 1.0   # what a recipe is chosen on
  steps = [r for r in rows if "examples_per_s" in r]
  # time blocked on the input pipeline: a fraction of the interval, and it does block
  assert steps and all(0.0 < r["input_wait_frac"] <= 1.0 for r in steps), steps


def test_checkpoint_names_its_environment(trained):
  """The fixture's run was resumed (0 then 2 steps) on this machine: one environment, from step 0."""
  from ssl_audio import environment, pretrained
  envs = pretrained.load_pretrained(str(trained)).info["environment"]
  here = environment.describe()
  assert [e["from_step"] for e in envs] == [0]
  assert not environment.differences(envs[0], here)


def test_in_training_probe_caches_audio(trained, labelled_folder):
  from eval.evaluators import LinearProbeEvaluator
  from ssl_audio import pretrained
  pre = pretrained.load_pretrained(str(trained))
  ev = LinearProbeEvaluator("p", ml_collections.ConfigDict(
      dict(benchmark=f"folder:{labelled_folder}", every_steps=5, probe_steps=50)))
  r1 = ev.run(pre, 1)
  decoded = ev._decoded
  r2 = ev.run(pre, 2)
  assert ev._decoded is decoded                       # decoded once, reused
  assert set(r1) >= {"p/accuracy", "p/balanced_accuracy"} and r1["p/accuracy"] == r2["p/accuracy"]
  assert ev.every_steps == 5


def test_in_training_probe_equals_the_cli_probe(trained, labelled_folder, tmp_path):
  """One code path: the trainer's evaluator and the CLI's give the same probe on the same weights."""
  from eval import linear_eval
  from eval.evaluators import LinearProbeEvaluator
  from ssl_audio import pretrained
  pre = pretrained.load_pretrained(str(trained))
  bench = f"folder:{labelled_folder}"
  ev = LinearProbeEvaluator("p", dict(benchmark=bench, seeds=1, probe_steps=50))
  _, r_train = ev.evaluate(pre)
  ev_cli = LinearProbeEvaluator("p", dict(benchmark=bench, seeds=1, probe_steps=50),
                                cache_dir=tmp_path, keep_audio=False)
  _, r_cli = ev_cli.evaluate(pre)
  assert [r["accuracy"] for r in r_train["per_seed"]] == [r["accuracy"] for r in r_cli["per_seed"]]
  assert r_train["probe"] == r_cli["probe"]


def test_unknown_evaluator_type_names_the_key(audio_folder, tmp_path):
  from ssl_audio import config_validation, train
  c = helpers.tiny(helpers.load_config("temporal_gap"), str(audio_folder))
  c.evals.p = ml_collections.ConfigDict(dict(type="nope", benchmark="suite:msn"))
  with pytest.raises(config_validation.ConfigError, match="config.evals.p.type"):
    train.train_and_evaluate(c, str(tmp_path))


def test_notebook_round_trip(trained):
  import ssl_audio
  from ssl_audio import checkpoint as ckpt
  from ssl_audio import frontend as fe
  from ssl_audio import encoder as encoder_lib
  pre = ssl_audio.load_pretrained(str(trained))
  assert pre.step == 2 and pre.info["task"] == "temporal_gap"
  assert pre.info["width"] == 0.25 and pre.info["params"] > 0 and pre.info["flops_per_slice"] > 0
  rng = np.random.default_rng(0)
  wave = (0.1 * rng.standard_normal(int(3.3 * 16000))).astype(np.float32)
  emb, times = pre.embed(wave, 16000)
  assert emb.shape == (3, 128) and emb.dtype == np.float32
  np.testing.assert_allclose(times, (np.arange(3) + 0.5) * 15600 / 16000)
  # The same numbers from the raw checkpoint and a direct apply of the encoder.
  mgr = ckpt.manager(str(trained), read_only=True)
  raw = mgr.restore(2, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
  mgr.close()
  enc = encoder_lib.Encoder(width=0.25, embedding_dim=128)
  variables = {"params": raw["params"]["encoder"], "batch_stats": raw["batch_stats"]["encoder"]}
  slices = wave[:3 * 15600].reshape(3, 15600)
  direct = enc.apply(variables, fe.log_mel(jnp.asarray(slices)), train=False)
  np.testing.assert_allclose(emb, np.asarray(direct), rtol=1e-4, atol=1e-4)
  # Step folder, resampling, stereo, a clip shorter than a slice.
  pre2 = ssl_audio.load_pretrained(str(trained / "checkpoints" / "2"))
  assert pre2.step == 2
  e8, _ = pre.embed(np.stack([wave[::2], wave[::2]], axis=1), 8000)
  assert e8.shape == (3, 128)
  short, t = pre.embed(wave[:4000], 16000)
  assert short.shape == (1, 128) and t.shape == (1,)
  assert pre.embed_batch(slices).shape == (3, 128)


def _check_timestamps(emb, ts, n, length_s, size):
  """The HEAR validator's rules for get_timestamp_embeddings."""
  assert emb.ndim == 3 and ts.ndim == 2 and emb.shape[0] == n
  assert emb.shape[:2] == ts.shape and emb.shape[2] == size
  assert emb.dtype == np.float32
  diff = np.diff(ts)
  avg = diff.mean()
  assert diff.max() <= 50.0
  assert np.max(np.abs(diff - avg)) <= 1.0            # regular hop
  assert np.all(diff > 0)                               # increasing
  assert ts.min() <= avg
  assert ts.max() <= 1000 * length_s
  assert ts.max() >= 1000 * length_s - 2 * avg


def test_hear_api_like_the_validator(trained):
  from ssl_audio import hear
  model = hear.load_model(str(trained))
  assert model.sample_rate == 16000
  assert isinstance(model.scene_embedding_size, int) and isinstance(model.timestamp_embedding_size, int)
  rng = np.random.default_rng(0)
  for length in (1.07, 1.98, 4.0):
    audio = (rng.random((2, int(length * 16000)), np.float32) * 2 - 1)
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    _check_timestamps(emb, ts, 2, length, model.timestamp_embedding_size)
  # JAX arrays in; scene embeddings [n, D] float32 = mean of the slice embeddings.
  audio = jnp.asarray(rng.random((4, int(2.74 * 16000)), np.float32) * 2 - 1)
  scene = hear.get_scene_embeddings(audio, model)
  assert scene.shape == (4, model.scene_embedding_size) and scene.dtype == np.float32
  e0, _ = model.pre.embed(np.asarray(audio[0]), 16000)
  np.testing.assert_allclose(scene[0], e0.mean(0), rtol=1e-4, atol=1e-5)


def test_hear_timestamp_embedding_is_the_centred_slice(trained):
  from ssl_audio import hear
  model = hear.load_model(str(trained / "checkpoints" / "2"))
  rng = np.random.default_rng(1)
  x = (0.2 * rng.standard_normal(24000)).astype(np.float32)
  emb, ts = hear.get_timestamp_embeddings(x[None], model)
  half = 7800
  padded = np.concatenate([np.zeros(half, np.float32), x, np.zeros(half, np.float32)])
  for k in (0, 7, len(ts[0]) - 1):
    c = int(ts[0, k] * 16)                               # ms -> samples at 16 kHz
    ref = model.pre.embed_batch(padded[c:c + 15600][None])
    np.testing.assert_allclose(emb[0, k], ref[0], rtol=1e-3, atol=1e-4)
