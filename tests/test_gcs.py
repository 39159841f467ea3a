"""gs:// workdirs, manifests and audio against a local GCS emulator (tests/gcs_emulator.py).

Everything a Cloud TPU run reads or writes in a bucket is exercised here on
127.0.0.1: manifests with gs:// and relative rows, decoding, the Grain iterator
(with a worker process), metrics.jsonl / TensorBoard / config.json, Orbax
checkpoints (arrays through tensorstore), load_pretrained, HEAR, linear eval, a
SIGKILL + resume, and the errors for a missing bucket or missing credentials.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests import gcs_emulator, helpers

needs_gcs = pytest.mark.skipif(gcs_emulator.missing() is not None,
                               reason=gcs_emulator.missing() or "")


@pytest.fixture(scope="module")
def gcs():
  """The emulator's environment in os.environ (restored after), and one bucket."""
  if gcs_emulator.missing():
    pytest.skip(gcs_emulator.missing())
  emu = gcs_emulator.Emulator()
  saved = {k: os.environ.get(k) for k in emu.env}
  os.environ.update(emu.env)
  try:
    yield emu, emu.create_bucket("ssl-audio-test")
  finally:
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
    emu.stop()


def _upload(local, url: str) -> str:
  from ssl_audio import paths
  paths.path(url).write_bytes(open(local, "rb").read())
  return url


@pytest.fixture(scope="module")
def gcs_data(gcs, tmp_path_factory):
  """Six clips in the bucket (a real suite file in place of one when the suite is built)
  and a manifest naming them by gs:// URL and relative path, plus one missing object."""
  _, bucket = gcs
  folder = tmp_path_factory.mktemp("gcs_src")
  files = helpers.write_clips(folder, n=6, seconds=12.0)
  real = helpers.find_real_audio()
  if real is not None:
    files[-1] = real
  urls = [_upload(f, f"{bucket}/data/audio/{i}{os.path.splitext(f)[1]}")
          for i, f in enumerate(files)]
  rows = [{"path": u if i % 2 == 0 else u.split("/data/", 1)[1]} for i, u in enumerate(urls)]
  from ssl_audio import manifest as manifest_lib
  local = manifest_lib.write_manifest(folder / "pool.csv", rows)
  _upload(local, f"{bucket}/data/pool.csv")
  missing = manifest_lib.write_manifest(folder / "with_missing.csv",
                                        rows + [{"path": "audio/missing.wav"}])
  _upload(missing, f"{bucket}/data/with_missing.csv")
  return {"bucket": bucket, "files": files, "urls": urls, "pool": f"{bucket}/data/pool.csv",
          "with_missing": f"{bucket}/data/with_missing.csv"}


def test_local_paths_are_plain_paths(tmp_path):
  from ssl_audio import paths
  assert not paths.is_remote(tmp_path) and paths.is_remote("gs://b/x")
  assert paths.absolute("runs/x") == os.path.abspath("runs/x")
  assert paths.absolute("gs://b/run/") == "gs://b/run/"
  assert paths.join("/data", "a.wav") == "/data/a.wav"
  assert paths.join("gs://b/d", "a.wav") == "gs://b/d/a.wav"
  assert paths.join("gs://b/d", "gs://c/a.wav") == "gs://c/a.wav"
  assert paths.join("gs://b/d", "/local/a.wav") == "/local/a.wav"
  paths.write_atomic(tmp_path / "x.txt", "hi")
  assert (tmp_path / "x.txt").read_text() == "hi" and os.listdir(tmp_path) == ["x.txt"]


def test_manifest_and_decoding_from_the_bucket(gcs_data):
  from ssl_audio import audio as audio_lib
  from ssl_audio import manifest as manifest_lib
  m = manifest_lib.resolve(f"manifest:{gcs_data['pool']}")
  assert list(m.paths()) == gcs_data["urls"]          # gs:// rows kept, relative rows joined
  assert [m.path(i) for i in range(len(m))] == gcs_data["urls"]
  assert list(manifest_lib.resolve(gcs_data["pool"]).paths()) == gcs_data["urls"]   # bare URL
  for url, local in zip(gcs_data["urls"][:2], gcs_data["files"][:2]):
    np.testing.assert_array_equal(audio_lib.load_audio(url, start=1.5, end=3.0),
                                  audio_lib.load_audio(str(local), start=1.5, end=3.0))
    assert audio_lib.info(url).frames == audio_lib.info(str(local)).frames
  with pytest.raises(audio_lib.BadAudio, match="cannot decode"):
    audio_lib.load_audio(f"{gcs_data['bucket']}/data/audio/missing.wav")
  with pytest.raises(manifest_lib.ManifestError, match="manifest not found"):
    manifest_lib.resolve(f"manifest:{gcs_data['bucket']}/data/nope.csv")
  with pytest.raises(manifest_lib.ManifestError, match="folders must be local"):
    manifest_lib.resolve(f"folder:{gcs_data['bucket']}/data/audio")


@pytest.mark.parametrize("workers", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_grain_iterator_reads_the_bucket_and_counts_a_missing_object(gcs_data, workers):
  from ssl_audio import input_pipeline, manifest as manifest_lib
  from ssl_audio.state import build_task
  task = build_task(helpers.tiny(helpers.load_config("temporal_gap"), "unused"), [], [])
  m = manifest_lib.resolve(f"manifest:{gcs_data['with_missing']}")
  it = input_pipeline.make_train_iterator(m, task, 4, seed=0, num_workers=workers)
  # the missing object's header cannot be read: left out once, when the pipeline is built
  assert list(it.filtered) == [f"{gcs_data['bucket']}/data/audio/missing.wav"]
  for _ in range(4):   # 16 good examples from the 6 rows left
    batch = next(it)
  assert batch["audio"].shape[0] == 4 and it.skipped == 0 and it.good == 16
  state = it.get_state()
  nxt = next(it)
  it2 = input_pipeline.make_train_iterator(m, task, 4, seed=0, num_workers=workers)
  it2.set_state(state)
  np.testing.assert_array_equal(next(it2)["audio"], nxt["audio"])


def test_metric_writer_on_gcs_appends_across_runs(gcs):
  from ssl_audio import paths
  from ssl_audio.metric_writer import MetricWriter
  _, bucket = gcs
  wd = f"{bucket}/writer"
  for step in (1, 2):
    w = MetricWriter(wd, flush_secs=3600)
    w.write(step, {"loss": 1.0 / step})
    w.close()
  rows = [json.loads(l) for l in paths.path(f"{wd}/metrics.jsonl").read_text().splitlines()]
  assert rows == [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5}]
  events = sorted(paths.path(f"{wd}/tensorboard").iterdir())
  assert events and all("tfevents" in p.name for p in events)
  assert (2, 0.5) in _scalars(events[-1].read_bytes(), "loss")


def _scalars(data: bytes, tag: str) -> list[tuple[int, float]]:
  """(step, value) of ``tag`` in a TensorBoard event file (TFRecord framing)."""
  import struct
  from tensorboardX.proto import event_pb2
  out, i = [], 0
  while i < len(data):
    n = struct.unpack("Q", data[i:i + 8])[0]
    ev = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
    i += 12 + n + 4
    out += [(ev.step, v.simple_value) for v in ev.summary.value if v.tag == tag]
  return out


def test_orbax_checkpoint_round_trip_in_the_bucket(gcs):
  """State (arrays through tensorstore's gcs driver), data-iterator state and meta."""
  import jax.numpy as jnp
  from ssl_audio import checkpoint as ckpt
  _, bucket = gcs
  state = {"w": jnp.arange(6.0).reshape(2, 3), "step": jnp.int32(7)}
  mgr = ckpt.manager(f"{bucket}/ckpt_rt", async_save=True)
  ckpt.save(mgr, 7, state, {"grain": "x"}, {"task": "t"})
  mgr.wait_until_finished()
  mgr.close()
  ro = ckpt.manager(f"{bucket}/ckpt_rt", read_only=True)
  assert ro.latest_step() == 7
  got, data, meta = ckpt.restore(ro, 7, ckpt.abstract(state))
  ro.close()
  np.testing.assert_array_equal(got["w"], state["w"])
  assert data == {"grain": "x"} and meta == {"task": "t"}


def test_a_listing_sees_what_another_process_wrote(gcs):
  """gcsfs caches listings unless told not to; new checkpoint steps must show up."""
  from ssl_audio import paths
  _, bucket = gcs
  paths.path(f"{bucket}/fresh/checkpoints/1/x").write_text("1")
  assert [p.name for p in paths.path(f"{bucket}/fresh/checkpoints").iterdir()] == ["1"]
  code = f"from ssl_audio import paths; paths.path('{bucket}/fresh/checkpoints/2/x').write_text('2')"
  subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=helpers.REPO,
                 env={**os.environ, "PYTHONPATH": str(helpers.REPO)})
  assert sorted(p.name for p in paths.path(f"{bucket}/fresh/checkpoints").iterdir()) == ["1", "2"]


def test_bad_bucket_gets_a_clear_error(gcs, audio_folder):
  from ssl_audio import paths, pretrained, train
  with pytest.raises(paths.RemotePathError, match="bucket not found"):
    paths.path("gs://no-such-bucket-xyz/run")
  c = helpers.tiny(helpers.load_config("temporal_gap"), str(audio_folder))
  with pytest.raises(paths.RemotePathError, match="gs://no-such-bucket-xyz: bucket not found"):
    train.train_and_evaluate(c, "gs://no-such-bucket-xyz/run")
  with pytest.raises(paths.RemotePathError, match="bucket not found"):
    pretrained.load_pretrained("gs://no-such-bucket-xyz/run")


@needs_gcs
def test_gs_without_credentials_or_emulator_gets_a_clear_error(tmp_path):
  env = {k: v for k, v in os.environ.items()
         if k not in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS",
                      "CLOUDSDK_CONFIG", "TENSORSTORE_GCS_HTTP_URL")}
  env.update(HOME=str(tmp_path), GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9",
             PYTHONPATH=str(helpers.REPO))
  r = subprocess.run([sys.executable, "-c", "from ssl_audio import paths; paths.path('gs://b-x/run')"],
                     capture_output=True, text=True, env=env, timeout=120, cwd=helpers.REPO)
  assert r.returncode != 0
  assert "RemotePathError: gs://b-x: no Google Cloud credentials found" in r.stderr, r.stderr[-2000:]


@pytest.fixture(scope="module")
def gcs_run(gcs_data, labelled_folder, tmp_path_factory):
  """A 2-step TemporalGap run with a gs:// workdir on the bucket's manifest, and a
  labelled benchmark in the bucket (gs:// rows) for the linear probe."""
  from ssl_audio import manifest as manifest_lib, train
  bucket = gcs_data["bucket"]
  files = sorted(labelled_folder.rglob("*.wav"))
  rows = [{"path": _upload(p, f"{bucket}/lab/{p.parent.name}/{p.name}"), "label": p.parent.name,
           "split": ["train", "train", "valid", "test"][i % 4]} for i, p in enumerate(files)]
  local = manifest_lib.write_manifest(tmp_path_factory.mktemp("lab") / "lab.csv", rows)
  bench = f"manifest:{_upload(local, f'{bucket}/lab/lab.csv')}"
  wd = f"{bucket}/runs/tg"
  c = helpers.tiny(helpers.load_config("temporal_gap"), f"manifest:{gcs_data['pool']}", steps=2)
  c.encoder.width = 0.25
  last = train.train_and_evaluate(c, wd)
  return {"workdir": wd, "bench": bench, "last": last}


@pytest.mark.slow
def test_training_writes_everything_to_the_bucket(gcs_run):
  from ssl_audio import paths
  wd = paths.path(gcs_run["workdir"])
  assert json.loads((wd / "config.json").read_text())["num_train_steps"] == 2
  rows = [json.loads(l) for l in (wd / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == [1, 2] and np.isfinite(rows[-1]["loss"])
  assert (wd / "checkpoints" / "2" / "state").is_dir()
  assert next((wd / "tensorboard").iterdir()).name.startswith("events.out.tfevents")
  assert not os.path.exists("gs:")   # nothing landed in a local folder named "gs:"


@pytest.mark.slow
def test_load_pretrained_hear_and_linear_eval_from_the_bucket(gcs_run):
  import ssl_audio
  from eval import linear_eval
  from ssl_audio import hear, manifest as manifest_lib, paths
  wd = gcs_run["workdir"]
  pre = ssl_audio.load_pretrained(wd)
  assert pre.step == 2 and pre.workdir == wd
  wave = (0.1 * np.random.default_rng(0).standard_normal(2 * 16000)).astype(np.float32)
  emb, _ = pre.embed(wave, 16000)
  model = hear.load_model(f"{wd}/checkpoints/2")
  np.testing.assert_allclose(hear.get_scene_embeddings(wave[None], model)[0], emb.mean(0),
                             rtol=1e-5, atol=1e-6)
  protocol = {"features": "embedding", "clip_pooling": "logits", "bn_reestimate": False}
  eval_dir, cache = paths.path(wd) / "eval", paths.path(wd) / "eval" / "cache"
  common = dict(tasks=[gcs_run["bench"]], seeds=1, finetune_blocks=["0"], finetune_steps=0,
                max_clips=None, probe_steps=50, refresh=False, protocol=protocol)
  r1 = linear_eval.evaluate_model("tg", pre, eval_dir, cache, **common)[gcs_run["bench"]]
  name = manifest_lib.short_name(gcs_run["bench"], "file")
  saved = json.loads((eval_dir / f"{name}.json").read_text())
  assert saved["checkpoint_step"] == 2 and saved["embeddings"]["clips"] == 8
  assert "| " + gcs_run["bench"] in (eval_dir / "results.md").read_text()
  assert len(list(cache.glob("*.npz"))) == 1 and not r1["embeddings"].get("cached")
  r2 = linear_eval.evaluate_model("tg", pre, eval_dir, cache, **common)[gcs_run["bench"]]
  assert r2["embeddings"]["cached"] and r2["accuracy"] == r1["accuracy"]
  md, png = linear_eval.write_comparison(eval_dir / "cmp", {"a": {gcs_run["bench"]: r1},
                                                            "b": {gcs_run["bench"]: r2}},
                                         [gcs_run["bench"]])
  assert "| a |" in md.read_text() and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_sigkill_then_resume_in_the_bucket_is_bit_exact(gcs_data, tmp_path):
  """A gs:// run killed after its first checkpoint and resumed ends with exactly the
  parameters of an uninterrupted run in a local workdir (same gs:// data)."""
  from ssl_audio import paths
  steps = 6

  def cmd(wd):
    return [sys.executable, "main.py", "--config=configs/temporal_gap.py", f"--workdir={wd}",
            f"--config.data.pretrain=manifest:{gcs_data['with_missing']}",
            f"--config.num_train_steps={steps}", "--config.batch_size=8",
            "--config.checkpoint_every_steps=2", "--config.log_every_steps=1",
            "--config.data.num_workers=0", "--config.task.window_seconds=4.0",
            "--config.keep_checkpoints=10", "--config.encoder.width=0.25",
            "--config.augment.gain_db=6", "--config.encoder.input_norm=pool"]

  env = {**os.environ, "PYTHONPATH": str(helpers.REPO), "JAX_PLATFORMS": "cpu"}
  ref, killed = tmp_path / "ref", f"{gcs_data['bucket']}/runs/killed"
  subprocess.run(cmd(ref), check=True, cwd=helpers.REPO, env=env, capture_output=True, timeout=900)
  p = subprocess.Popen(cmd(killed), cwd=helpers.REPO, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
  first = paths.path(f"{killed}/checkpoints/2/commit_success.txt")   # Orbax's GCS commit marker
  deadline = time.time() + 900
  while not first.exists() and p.poll() is None and time.time() < deadline:
    time.sleep(0.2)
  p.send_signal(signal.SIGKILL)
  p.wait()
  assert p.returncode == -signal.SIGKILL, "the run ended before it could be killed"
  killed_at = helpers.final_state(killed)[0]
  assert killed_at < steps
  subprocess.run(cmd(killed), check=True, cwd=helpers.REPO, env=env, capture_output=True,
                 timeout=900)
  step_a, a = helpers.final_state(ref)
  step_b, b = helpers.final_state(killed)
  assert step_a == step_b == steps
  assert helpers.max_abs_diff(a["params"], b["params"]) == 0.0
  assert helpers.max_abs_diff(a["opt_state"], b["opt_state"]) == 0.0
  la = {r["step"]: r for r in map(json.loads, open(ref / "metrics.jsonl"))}
  lb = {r["step"]: r for r in map(json.loads,
                                  paths.path(f"{killed}/metrics.jsonl").read_text().splitlines())}
  for s in range(killed_at + 1, steps + 1):
    assert la[s]["loss"] == lb[s]["loss"]
  assert la[steps]["filtered_files"] == lb[steps]["filtered_files"] == 1   # the missing object


@pytest.mark.slow
def test_two_processes_share_a_gs_workdir(gcs, tmp_path):
  """jax.distributed on localhost, 2 processes, one gs:// workdir: Orbax writes one
  checkpoint from both hosts, only process 0 writes metrics.jsonl, the parameters equal
  a 1-process local run's (the tests/test_reliability.py set-up), and a re-run reads the
  same latest step on both hosts (nothing left to train, nothing rewritten)."""
  from ssl_audio import checkpoint as ckpt
  from ssl_audio import manifest, paths, pretrained
  from tests.test_reliability import _ONE_HOST, run_two_hosts
  _, bucket = gcs
  (tmp_path / "audio").mkdir()
  clips = helpers.write_clips(tmp_path / "audio", n=4, seconds=12.0)
  once = manifest.write_manifest(tmp_path / "once.csv", [{"path": str(p)} for p in clips])
  twice = manifest.write_manifest(tmp_path / "twice.csv",
                                  [{"path": str(p)} for p in clips for _ in range(2)])
  env = {**os.environ, "PYTHONPATH": str(helpers.REPO), "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
  one = subprocess.run([sys.executable, "-c", _ONE_HOST, f"manifest:{once}",
                        str(tmp_path / "one"), "4"], cwd=helpers.REPO, env=env,
                       capture_output=True, text=True, timeout=1200)
  assert one.returncode == 0, one.stderr[-3000:]
  wd = f"{bucket}/runs/two_hosts"

  def two_hosts():
    return run_two_hosts(f"manifest:{twice}", wd, env)

  assert all(r["loss"] is not None and r["count"] == 2 for r in two_hosts())
  rows = [json.loads(l) for l in paths.path(f"{wd}/metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3]   # one writer, no duplicates
  mgr = ckpt.manager(wd, read_only=True)
  assert mgr.all_steps() == [3]
  mgr.close()
  step_a, a = helpers.final_state(tmp_path / "one")
  pre = pretrained.load_pretrained(wd)
  assert pre.step == step_a == 3
  # reduction order, as in tests/test_reliability.py::test_two_processes_equal_one (measured 1.6e-5)
  assert helpers.max_abs_diff(a["params"]["encoder"], pre.variables["params"]) <= 1e-4
  # both hosts resume from the same latest step (3 of 3): nothing is trained or logged
  assert [r["loss"] for r in two_hosts()] == [None, None]
  assert len(paths.path(f"{wd}/metrics.jsonl").read_text().splitlines()) == len(rows)


def test_sweep_tpu_prints_setup_and_gs_workdirs():
  import sweep
  setup = sweep.tpu_setup("my-tpu", "us-central2-b", "~/ssl-audio")
  assert sweep.TPU_INSTALL in setup[-1] and "--worker=all" in setup[-1]
  readme = (helpers.REPO / "README.md").read_text()
  assert sweep.TPU_INSTALL in readme   # one install line: the README's
  r = subprocess.run([sys.executable, "sweep.py", "--tpu=my-tpu", "--zone=us-central2-b",
                      "--root=gs://my-bucket/sweep", "--grid=seed=0,1"], capture_output=True,
                     text=True, cwd=helpers.REPO, timeout=120)
  assert r.returncode == 0, r.stderr
  runs = [l for l in r.stdout.splitlines() if "main.py" in l]
  assert len(runs) == 2 and all("--workdir=gs://my-bucket/sweep/temporal_gap_seed" in l and
                                "--config.distributed=True" in l for l in runs)
  bad = subprocess.run([sys.executable, "sweep.py", "--tpu=my-tpu", "--zone=z", "--root=runs/x"],
                       capture_output=True, text=True, cwd=helpers.REPO, timeout=120)
  assert bad.returncode != 0 and "--root must be a bucket" in bad.stderr
