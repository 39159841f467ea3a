"""The mobile path (issue 10): export to TFLite (ssl_audio.export: BatchNorm folding,
the in-graph front-end, fp32 and int8 parity against JAX, the metadata JSON, the CLI's
errors), int8 in JAX (ssl_audio.quant: qwix PTQ and QAT through the one trainer) and
distillation (ssl_audio/tasks/distill.py).

The checkpoint is the Untrained one of a COLA config at width 0.5 (a 0-step run:
training steps would cost a minute of compilation); BatchNorm folding is tested
separately on random statistics. Conversion takes about 1 s per model. The slow
test repeats the parity on real audio of the built suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssl_audio import frontend as fe
from tests import helpers

pytest.importorskip("litert_converter", reason="needs requirements-export.txt")
pytest.importorskip("ai_edge_litert", reason="needs requirements-export.txt")

from ssl_audio import export as ex  # noqa: E402

FP32_ATOL = 1e-5       # the bound for the fp32 embedding
FRONTEND_ATOL = 1e-4   # log units: the TFLite RFFT vs XLA's, on bins above 1e-3 of the max


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, audio_folder) -> Path:
  from ssl_audio import train
  wd = tmp_path_factory.mktemp("export") / "cola"
  c = helpers.tiny(helpers.load_config("cola"), str(audio_folder), steps=0)
  c.encoder.width = 0.5
  train.train_and_evaluate(c, str(wd))
  return wd


@pytest.fixture(scope="module")
def pre(workdir):
  from ssl_audio import pretrained
  return pretrained.load_pretrained(str(workdir))


def _slices(audio_folder, n: int = 12) -> np.ndarray:
  from ssl_audio import manifest, normalization
  return normalization.random_slices(manifest.resolve(str(audio_folder)), fe.FrontendConfig(), n)


def test_fold_batchnorm_is_the_inference_function(pre):
  rng = np.random.default_rng(0)
  stats = jax.tree.map(lambda a: np.asarray(rng.uniform(0.2, 2.0, a.shape), np.float32),
                       pre.variables["batch_stats"])
  params = jax.tree_util.tree_map_with_path(
      lambda p, a: (np.asarray(rng.normal(0, 0.5, a.shape), np.float32)
                    if "bn" in jax.tree_util.keystr(p) else a), pre.variables["params"])
  variables = {"params": params, "batch_stats": stats}
  mel = rng.normal(-6.0, 2.0, (4, 96, 64)).astype(np.float32)
  plain, folded = ex.fold_batchnorm(pre.encoder, variables)
  assert plain.norm == "none" and "batch_stats" not in folded
  want = pre.encoder.apply(variables, mel, train=False)
  got = plain.apply(folded, mel, train=False)
  assert np.abs(want).max() > 0.1
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_gather_free_framing_is_exact():
  rng = np.random.default_rng(0)
  for cfg, n in ((fe.FrontendConfig(), 15600), (fe.FrontendConfig(), 17000),
                 (fe.FrontendConfig(win_length=320, hop_length=160), 15600),
                 (fe.FrontendConfig(win_length=400, hop_length=100), 9999)):
    x = rng.standard_normal((2, n)).astype(np.float32) * 0.1
    np.testing.assert_array_equal(fe.log_mel(x, cfg, gather_free=True), fe.log_mel(x, cfg))


def test_frontend_inside_tflite_matches_ssl_audio_frontend(audio_folder):
  cfg = fe.FrontendConfig()
  model = ex.to_tflite(lambda a: fe.log_mel(a, cfg, gather_free=True), (cfg.slice_samples,),
                       "waveform", batch_signature=True)
  x = _slices(audio_folder, 6)
  want = np.asarray(fe.log_mel(x, cfg))
  from ai_edge_litert.interpreter import Interpreter
  runner = Interpreter(model_content=model).get_signature_runner("batch")
  got = runner(waveform=x)["embedding"]
  assert got.shape == want.shape == (6, 96, 64)
  loud = want > np.log(1e-3) + want.max()
  assert loud.mean() > 0.2
  assert np.abs(got - want)[loud].max() < FRONTEND_ATOL
  assert np.abs(got - want).max() < 1e-2   # near the floor the log magnifies float noise


def test_export_waveform_fp32_parity_and_metadata(workdir, pre, audio_folder, tmp_path):
  out = tmp_path / "m.tflite"
  meta = ex.export_checkpoint(str(workdir), str(out))
  assert out.stat().st_size == meta["bytes"] > 10_000
  side = json.loads(Path(str(out) + ".json").read_text())
  assert side == json.loads(json.dumps(meta))
  assert (side["sample_rate"], side["slice_samples"], side["hop_length"], side["n_mels"],
          side["embedding_size"]) == (16000, 15600, 160, 64, 128)
  assert side["checkpoint"]["step"] == 0 and side["checkpoint"]["task"] == "cola"
  assert side["checkpoint"]["width"] == 0.5 and side["input_shape"] == [1, 15600]
  assert set(side["signatures"]) == {"serving_default", "batch"}

  x = _slices(audio_folder, 8)
  want = pre.embed_batch(x)
  one = ex.run_tflite(str(out), x, signature="serving_default")
  batch = ex.run_tflite(str(out), x, signature="batch")
  assert one.shape == batch.shape == (8, 128)
  assert np.abs(one - want).max() <= FP32_ATOL
  assert np.abs(batch - want).max() <= FP32_ATOL
  # the probe's view of the file (python -m eval.linear_eval --tflite=...)
  emb = ex.tflite_embedder(pre, str(out))
  assert emb.identity == "step0-tflite-m.tflite" and emb.info == pre.info
  from ssl_audio.audio import to_int16
  x16 = to_int16(x)
  assert np.abs(emb.embed_batch(x16) - pre.embed_batch(x16)).max() <= FP32_ATOL


def test_export_logmel_input(pre, audio_folder):
  fn = ex.inference_fn(pre.encoder, pre.variables, pre.frontend, "logmel")
  model = ex.to_tflite(fn, ex.input_shape(pre.frontend, "logmel"), "logmel", batch_signature=False)
  x = _slices(audio_folder, 4)
  mel = np.asarray(fe.log_mel(x, pre.frontend))
  got = ex.run_tflite(model, mel)
  assert np.abs(got - pre.embed_batch(x)).max() <= FP32_ATOL


@pytest.mark.parametrize("mode,bound", [("dynamic", 0.05), ("int8", 0.10)])
def test_int8_error_against_fp32_is_bounded(pre, audio_folder, mode, bound):
  """Relative L2 error of the embeddings (measured: about 1-2% dynamic, 2-4% static)."""
  fn = ex.inference_fn(pre.encoder, pre.variables, pre.frontend, "waveform")
  fp32 = ex.to_tflite(fn, ex.input_shape(pre.frontend, "waveform"), "waveform")
  x = _slices(audio_folder, 36)
  cal, test = x[:24], x[24:]
  q = ex.quantize(fp32, mode, cal if mode == "int8" else None, "waveform")
  assert len(q) < 0.75 * len(fp32)   # the float front-end's mel matrix is not quantized
  want = ex.run_tflite(fp32, test, signature="serving_default")
  got = ex.run_tflite(q, test, signature="serving_default")
  rel = np.linalg.norm(got - want) / np.linalg.norm(want)
  assert 0 < rel < bound, rel
  from ai_edge_litert.interpreter import Interpreter
  interp = Interpreter(model_content=q)
  dtypes = {d["dtype"] for d in interp.get_tensor_details()}
  assert np.int8 in dtypes
  assert interp.get_input_details()[0]["dtype"] == np.float32   # the front-end stays float


def test_errors_name_the_problem(tmp_path, pre, workdir):
  with pytest.raises(FileNotFoundError, match="no checkpoints"):
    ex.export_checkpoint(str(tmp_path / "nothing"), str(tmp_path / "m.tflite"))
  with pytest.raises(ex.ExportError, match="--quantize='int4'"):
    ex.export_checkpoint(str(workdir), str(tmp_path / "m.tflite"), quantize_mode="int4")
  with pytest.raises(ex.ExportError, match="--input='spectrogram'"):
    ex.export_checkpoint(str(workdir), str(tmp_path / "m.tflite"), input_kind="spectrogram")
  import dataclasses
  with pytest.raises(ex.ExportError, match="encoder.norm='layer'"):
    ex.fold_batchnorm(dataclasses.replace(pre.encoder, norm="layer"), pre.variables)
  with pytest.raises(ex.ExportError, match="no BatchNorm statistics"):
    ex.fold_batchnorm(pre.encoder, {"params": pre.variables["params"]})
  with pytest.raises(ex.ExportError, match="int8 needs calibration"):
    ex.quantize(b"", "int8", None)
  # A graph the converter cannot lower: an op with no TFLite kernel.
  with pytest.raises(ex.ExportError):
    ex.to_tflite(lambda x: jax.lax.cummax(x, axis=1), (16,), "x", batch_signature=False)


def test_cli(workdir, tmp_path):
  out = tmp_path / "cli.tflite"
  r = subprocess.run([sys.executable, "-m", "ssl_audio.export", f"--workdir={workdir}",
                      f"--out={out}", "--nobatch_signature"], capture_output=True, text=True,
                     cwd=helpers.REPO, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  assert json.loads(r.stdout.strip().splitlines()[-1])["signatures"] == ["serving_default"]
  assert out.is_file() and Path(str(out) + ".json").is_file()
  # bench/tflite_latency.py runs on it (3 calls: a smoke test, not a measurement)
  r = subprocess.run([sys.executable, "bench/tflite_latency.py", f"--models={out}", "--runs=3",
                      "--warmup=1", f"--out={tmp_path / 'lat.json'}"], capture_output=True,
                     text=True, cwd=helpers.REPO, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  row = json.loads(r.stdout.strip().splitlines()[-1])["models"][0]
  assert row["bytes"] == out.stat().st_size and row["median_ms"] > 0 and row["step"] == 0
  assert row["params"] > 0 and row["flops_per_slice"] > 0
  assert json.loads((tmp_path / "lat.json").read_text())["models"][0]["model"] == str(out)
  r = subprocess.run([sys.executable, "-m", "ssl_audio.export", f"--workdir={tmp_path}",
                      f"--out={out}"], capture_output=True, text=True, cwd=helpers.REPO,
                     timeout=300)
  assert r.returncode != 0 and "no checkpoints under" in r.stderr


@pytest.mark.slow
def test_fp32_and_int8_parity_on_real_audio(pre, tmp_path):
  """The built suite's pretraining pool: fp32 within 1e-5, static int8 calibrated on it."""
  from ssl_audio import manifest, normalization
  path = helpers.find_real_audio()
  if path is None:
    pytest.skip("the offline suite is not built")
  m = manifest.resolve("suite:pretrain")
  x = normalization.random_slices(m, pre.frontend, 96, seed=1)
  fn = ex.inference_fn(pre.encoder, pre.variables, pre.frontend, "waveform")
  fp32 = ex.to_tflite(fn, ex.input_shape(pre.frontend, "waveform"), "waveform")
  want = pre.embed_batch(x[64:])
  assert np.abs(ex.run_tflite(fp32, x[64:]) - want).max() <= FP32_ATOL
  q = ex.quantize(fp32, "int8", x[:64], "waveform")
  got = ex.run_tflite(q, x[64:], signature="serving_default")
  assert np.linalg.norm(got - want) / np.linalg.norm(want) < 0.10


# ============================================================================ int8 in JAX (qwix)

@pytest.mark.slow   # ~35 s: qwix's quantize_params runs eagerly, two extra compiles
def test_fake_quant_is_the_ptq_forward(pre):
  """encoder.quant=w8a8 (fake quant, what QAT trains) computes what qwix's PTQ model
  with int8 QArray weights computes, within 2-5% of float."""
  pytest.importorskip("qwix")
  from ssl_audio import encoder as encoder_lib, quant
  import qwix
  cfg = dict(pre.meta["config"]["encoder"], quant="w8a8")
  q_enc = encoder_lib.from_config(cfg)
  assert isinstance(q_enc, encoder_lib.Encoder) and type(q_enc) is not encoder_lib.Encoder
  mel = np.random.default_rng(0).normal(-6.0, 2.0, (8, 96, 64)).astype(np.float32)
  want = np.asarray(jax.jit(pre.encoder.apply)(pre.variables, mel))   # jit: qwix is slow eagerly
  fake = np.asarray(jax.jit(q_enc.apply)(pre.variables, mel))
  ptq, qparams = quant.ptq_params(pre.encoder, pre.variables, mel[:1])
  assert any(isinstance(l, qwix.QArray) for l in jax.tree.leaves(
      qparams, is_leaf=lambda x: isinstance(x, qwix.QArray)))
  real = np.asarray(jax.jit(ptq.apply)(dict(pre.variables, params=qparams), mel))
  np.testing.assert_allclose(fake, real, atol=1e-5)
  rel = np.linalg.norm(fake - want) / np.linalg.norm(want)
  assert 0.001 < rel < 0.1, rel


def test_load_pretrained_quant_override(workdir, pre, audio_folder):
  pytest.importorskip("qwix")
  from ssl_audio import pretrained
  q = pretrained.load_pretrained(str(workdir), quant="w8a8")
  assert q.identity == "step0-w8a8" != pre.identity          # caches never mix the two
  x = _slices(audio_folder, 4)
  a, b = pre.embed_batch(x), q.embed_batch(x)
  assert 0 < np.linalg.norm(a - b) / np.linalg.norm(a) < 0.1
  with pytest.raises(ValueError, match="quant"):
    pretrained.load_pretrained(str(workdir), quant="int3")


def test_init_from_a_mismatched_encoder_names_the_key(workdir):
  from ssl_audio import pretrained, state as state_lib
  c = helpers.load_config("cola")
  c.encoder.width = 0.25                                       # the checkpoint is 0.5
  task = state_lib.build_task(c)
  model = state_lib.build_model(task)
  abstract = jax.eval_shape(lambda: state_lib.create_train_state(c, task, model)[0])
  state = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), abstract)
  tx, _ = state_lib.make_optimizer(c)
  with pytest.raises(ValueError, match="config.init_from: the encoder of .* does not match"):
    pretrained.with_encoder_from(state, tx, str(workdir))
  with pytest.raises(ValueError, match="config.init_from: no checkpoints"):
    pretrained.with_encoder_from(state, tx, str(workdir) + "_missing")


@pytest.mark.slow
def test_qat_fine_tunes_through_the_trainer(workdir, tmp_path, audio_folder):
  """configs/qat.py: starts from the checkpoint's encoder, trains with fake quant,
  and its checkpoint loads quantized."""
  pytest.importorskip("qwix")
  from ssl_audio import pretrained, train
  c = helpers.tiny(helpers.load_config("qat"), str(audio_folder), steps=2)
  c.encoder.width = 0.5
  c.init_from = str(workdir)
  out = train.train_and_evaluate(c, str(tmp_path / "qat"))
  assert np.isfinite(out["loss"]) and out["nonfinite"] == 0.0
  q = pretrained.load_pretrained(str(tmp_path / "qat"))
  src = pretrained.load_pretrained(str(workdir))
  assert q.step == 2 and q.identity == "step2-w8a8"
  assert type(q.encoder) is not type(src.encoder)
  d = helpers.max_abs_diff(q.variables["params"], src.variables["params"])
  assert 0 < d < 0.05                      # moved from the source, by two small steps


# ============================================================================ distillation

def _distill_config(audio_folder, teacher, steps, **kw):
  c = helpers.tiny(helpers.load_config("distill"), str(audio_folder), steps=steps)
  c.distill.teacher = str(teacher)
  c.encoder.width = 0.25
  for k, v in kw.items():
    node = c
    *path, last = k.split(".")
    for p in path:
      node = node[p]
    node[last] = v
  return c


def test_distill_config_errors_name_the_key(workdir, audio_folder, tmp_path):
  from ssl_audio import config_validation
  check = lambda **kw: config_validation.check_config(_distill_config(audio_folder, workdir, 1, **kw))
  check()   # valid
  with pytest.raises(ValueError, match="config.distill.teacher: the teacher checkpoint"):
    check(**{"distill.teacher": ""})
  with pytest.raises(ValueError, match="config.distill.teacher: .*no checkpoints"):
    check(**{"distill.teacher": str(tmp_path / "none")})
  with pytest.raises(ValueError, match="config.distill.loss"):
    check(**{"distill.loss": "kl"})
  with pytest.raises(ValueError, match="config.distill.teacher_dim: the teacher's embedding has 128"):
    check(**{"encoder.embedding_dim": 64})
  check(**{"encoder.embedding_dim": 64, "distill.teacher_dim": 128})   # a head bridges them
  with pytest.raises(ValueError, match="config.distill.teacher: its front-end"):
    check(**{"frontend.n_mels": 40})


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["mse", "cosine"])
def test_distill_run_learns_the_teacher_and_loads(workdir, audio_folder, tmp_path, loss):
  """A 40-step student (width 0.25) of the width-0.5 teacher: the distillation loss
  falls by 30%; the checkpoint loads with
  load_pretrained (the teacher is not needed), and its embeddings moved towards the
  teacher's."""
  from ssl_audio import pretrained, train
  # norm "none": 40 steps leave BatchNorm's running statistics (momentum 0.99) near their
  # init, so a BatchNorm student's inference embeddings would not show what it learnt.
  c = _distill_config(audio_folder, workdir, 40, **{"distill.loss": loss, "encoder.norm": "none"})
  c.optimizer.schedule, c.optimizer.warmup_steps = "constant", 0
  wd = tmp_path / f"distill_{loss}"
  train.train_and_evaluate(c, str(wd))
  rows = [json.loads(l) for l in (wd / "metrics.jsonl").read_text().splitlines()]
  rows = [r for r in rows if "loss" in r]
  first = np.mean([r["loss"] for r in rows[:3]])
  last = np.mean([r["loss"] for r in rows[-5:]])
  assert last < 0.7 * first, (first, last)
  # (no comparison with baseline_loss: an untrained teacher's embeddings barely vary
  # between inputs, so the batch mean predicts them to 1e-5 here)
  assert all(np.isfinite(r["baseline_loss"]) for r in rows)
  student = pretrained.load_pretrained(str(wd))
  assert student.info["task"] == "distill" and student.encoder.width == 0.25 and student.step == 40
  teacher = pretrained.load_pretrained(str(workdir))
  init = pretrained.random_init(student.meta)
  x = _slices(audio_folder, 16)
  t = teacher.embed_batch(x)
  dist = lambda e: float(np.mean(np.asarray(_cos(e, t))))
  assert dist(student.embed_batch(x)) < dist(init.embed_batch(x))


def _cos(a, b):
  from ssl_audio.tasks.distill import cosine_distance
  return cosine_distance(jnp.asarray(a), jnp.asarray(b))
