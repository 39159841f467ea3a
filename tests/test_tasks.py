"""Audio2Vec (CBoW, SG), Triplet, AutoEncoder, Supervised and MultiHead tasks.

Per task: the sampler cuts the right windows (clips whose samples hold their
index), the loss is minimal in a constructed case and finite on silence, a short
run through the one trainer gives a finite loss, and 1 vs 8 (fake) devices give
the same steps. Models are shrunk (32x32 slices, width 0.25) to keep compiles short.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf
from jax.sharding import PartitionSpec as P

from ssl_audio import config_validation, train
from ssl_audio import frontend as fe
from ssl_audio import tasks
from ssl_audio.parallel import DATA_AXIS
from ssl_audio.tasks import multihead as multihead_lib
from ssl_audio.tasks import triplet as triplet_lib
from tests import helpers

NAMES = ["audio2vec_cbow", "audio2vec_skipgram", "autoencoder", "triplet", "supervised", "multihead",
         "cola"]
CFG = fe.FrontendConfig()


def small(c):
  """A test-size model: 32-frame x 32-mel slices, channel width 0.25, 16-d embedding."""
  c.frontend.slice_frames = 32
  c.frontend.n_mels = 32
  c.encoder.width = 0.25
  c.encoder.embedding_dim = 16
  return c


def make_task(name, **overrides):
  c = helpers.load_config(name, **overrides)
  return tasks.make_task(c, fe.FrontendConfig.from_dict(c.frontend))


def index_clip(n):
  return np.arange(n, dtype=np.float32)   # each sample holds its index (exact below 2**24)


def assert_window(w, start):
  np.testing.assert_array_equal(w, np.arange(start, start + len(w), dtype=np.float32))


def on_one_device(fn, *args):
  """Runs per-device code (which may use collectives over DATA_AXIS) on a 1-device mesh."""
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), (DATA_AXIS,))
  f = jax.shard_map(fn, mesh=mesh, in_specs=tuple(P(DATA_AXIS) for _ in args), out_specs=P(),
                    check_vma=False)
  return jax.jit(f)(*args)


# --- samplers ----------------------------------------------------------------

@pytest.mark.parametrize("name,gap", [("audio2vec_cbow", 0), ("audio2vec_skipgram", 0),
                                      ("audio2vec_cbow", 7)])
def test_audio2vec_sampler_cuts_one_contiguous_block(name, gap):
  task = make_task(name, **{"task.gap_frames": gap})
  stride = (CFG.slice_frames + gap) * CFG.hop_length
  block = 4 * stride + CFG.slice_samples
  assert task.min_samples == block and task.clip_samples == 160000
  clip = index_clip(task.clip_samples)
  rng = np.random.default_rng(0)
  starts = []
  for _ in range(100):
    ex = task.sample(clip, rng)
    assert ex["audio"].shape == (5, CFG.slice_samples) and ex["audio"].dtype == np.float32
    s0 = int(ex["audio"][0, 0])
    for k in range(5):
      assert_window(ex["audio"][k], s0 + k * stride)
    assert 0 <= s0 <= len(clip) - block
    starts.append(s0)
  assert np.ptp(starts) > 0.5 * (len(clip) - block)   # the offset is random over the clip
  # a clip of exactly one block has one possible offset; a shorter one is refused
  ex = task.sample(index_clip(block), rng)
  assert int(ex["audio"][0, 0]) == 0
  with pytest.raises(ValueError):
    task.sample(index_clip(block - 1), rng)


def test_audio2vec_window_is_at_least_one_block():
  task = make_task("audio2vec_cbow", **{"task.window_seconds": 1.0, "task.context": 3})
  assert task.clip_samples == task.min_samples == 6 * CFG.slice_frames * CFG.hop_length + CFG.slice_samples


def test_autoencoder_sampler():
  task = make_task("autoencoder")
  clip = index_clip(task.clip_samples)
  rng = np.random.default_rng(0)
  for _ in range(20):
    ex = task.sample(clip, rng)
    assert ex["audio"].shape == (1, CFG.slice_samples)
    assert_window(ex["audio"][0], int(ex["audio"][0, 0]))


def test_triplet_sampler_positive_is_close_to_the_anchor():
  task = make_task("triplet", **{"task.max_positive_seconds": 0.5, "task.min_positive_seconds": 0.0,
                                  "task.gain_jitter_db": 0.0})
  clip = index_clip(task.clip_samples)
  rng = np.random.default_rng(0)
  shifts = []
  for _ in range(300):
    ex = task.sample(clip, rng)
    assert ex["audio"].shape == (2, CFG.slice_samples)
    a, p = int(ex["audio"][0, 0]), int(ex["audio"][1, 0])
    assert_window(ex["audio"][0], a)
    assert_window(ex["audio"][1], p)
    assert p + CFG.slice_samples <= len(clip)
    shifts.append(p - a)
  shifts = np.array(shifts)
  assert np.abs(shifts).max() <= 8000 and shifts.min() < -4000 and shifts.max() > 4000


@pytest.mark.parametrize("name", ["supervised", "multihead"])
def test_classifier_sampler_slices_or_pads(name):
  task = make_task(name)
  assert task.clip_samples == CFG.slice_samples and task.needs_labels
  rng = np.random.default_rng(0)
  long = index_clip(3 * CFG.slice_samples)
  ex = task.sample(long, rng)
  assert ex["audio"].shape == (1, CFG.slice_samples)
  assert_window(ex["audio"][0], int(ex["audio"][0, 0]))
  short = index_clip(4000) + 1.0
  for _ in range(5):
    x = task.sample(short, rng)["audio"][0]
    nz = np.flatnonzero(x)
    assert len(nz) == 4000 and np.array_equal(x[nz], short) and nz[-1] - nz[0] == 3999


def test_multihead_class_groups():
  srcs = ["suite:digits", "folder:/a/b", "folder:/a/b/c"]
  classes = sorted(["suite:digits/1", "suite:digits/2", "folder:/a/b/x", "folder:/a/b/c/y"])
  g = multihead_lib.class_groups(classes, srcs)
  assert dict(zip(classes, g.tolist())) == {"folder:/a/b/c/y": 2, "folder:/a/b/x": 1,
                                            "suite:digits/1": 0, "suite:digits/2": 0}
  assert multihead_lib.class_groups(["a", "b"], ["only"]).tolist() == [0, 0]
  assert [multihead_lib.short_name(n) for n in
          ("suite:msn", "folder:/x/birds/", "manifest:/x/birds/manifest.csv", "/y/cats.csv")] == [
              "msn", "birds", "birds", "cats"]
  with pytest.raises(ValueError):
    multihead_lib.class_groups(["other/x"], srcs)


# --- config validation -------------------------------------------------------

@pytest.mark.parametrize("name,key,value", [
    ("audio2vec_cbow", "task.context", 0), ("audio2vec_cbow", "task.aggregation", "max"),
    ("audio2vec_skipgram", "task.gap_frames", -1), ("audio2vec_skipgram", "task.window_seconds", 0.0),
    ("autoencoder", "task.window_seconds", 0.5), ("triplet", "task.margin", 0.0),
    ("triplet", "task.max_positive_seconds", -1.0), ("triplet", "task.fallback", "random"),
    ("supervised", "task.min_seconds", 0.0), ("multihead", "task.head_hidden", -2),
    ("audio2vec_skipgram", "task.target_norm", "global"), ("autoencoder", "task.target_norm", "")])
def test_bad_config_names_the_key(name, key, value):
  c = helpers.load_config(name, **{key: value})
  with pytest.raises(ValueError, match=f"config.{key}"):
    config_validation.check_config(c)


@pytest.mark.parametrize("name", NAMES + ["untrained"])
def test_configs_pass_their_checks(name):
  config_validation.check_config(helpers.load_config(name))


# --- losses at their minimum -------------------------------------------------

@pytest.mark.parametrize("name", ["audio2vec_cbow", "audio2vec_skipgram", "autoencoder"])
def test_reconstruction_loss_is_zero_at_the_target(name):
  task = make_task(name)
  rng = np.random.default_rng(0)
  k = 4 if name == "audio2vec_skipgram" else 1
  target = rng.standard_normal((3, 96, 64, k)).astype(np.float32)
  loss, m = on_one_device(lambda p, t: task.loss({"pred": p, "target": t}, {}), target, target)
  assert float(loss) == 0.0 and float(m["baseline_loss"]) > 0.5
  loss, _ = on_one_device(lambda p, t: task.loss({"pred": p, "target": t}, {}), target + 0.1, target)
  assert float(loss) == pytest.approx(0.01, rel=1e-4)


def test_normalised_targets_by_hand():
  """task.target_norm: "slice" removes the slice's level and scale, "bin" each bin's time mean."""
  from ssl_audio.tasks.base import normalised_target

  class Enc:                                    # the two attributes normalised_target reads
    input_mean, input_std = 2.0, 4.0

  # one slice, 2 frames x 2 mels, one channel: [[1, 3], [5, 7]] (frames x mels)
  mel = jnp.asarray([[[1.0, 3.0], [5.0, 7.0]]])[..., None]
  t, bias = normalised_target(Enc(), mel, -6.0, "none")
  np.testing.assert_allclose(np.asarray(t)[0, ..., 0], [[-0.25, 0.25], [0.75, 1.25]])
  assert bias == -2.0
  t, bias = normalised_target(Enc(), mel, -6.0, "slice")
  # mean 4, deviations -3 -1 1 3, rms sqrt(5)
  np.testing.assert_allclose(np.asarray(t)[0, ..., 0],
                             np.array([[-3.0, -1.0], [1.0, 3.0]]) / np.sqrt(5 + 1e-6), rtol=1e-6)
  assert bias == 0.0
  t, _ = normalised_target(Enc(), mel, -6.0, "bin")
  # per-mel time means 3 and 5, deviations -2 -2 2 2, rms 2: the envelope (3 vs 5) is gone
  np.testing.assert_allclose(np.asarray(t)[0, ..., 0], np.array([[-1.0, -1.0], [1.0, 1.0]]),
                             rtol=1e-6)
  # a constant (silent) slice gives zeros, not NaN; each channel is normalised on its own
  two = jnp.stack([jnp.full((2, 2), -11.5), jnp.asarray([[1.0, 3.0], [5.0, 7.0]])], -1)[None]
  for mode in ("slice", "bin"):
    t = np.asarray(normalised_target(Enc(), two, -6.0, mode)[0])
    assert np.all(t[..., 0] == 0.0) and np.isfinite(t).all() and np.abs(t[..., 1]).max() > 0.9


def test_triplet_loss_zero_when_separated_and_semihard_choice():
  task = make_task("triplet")
  emb = np.zeros((4, 2, 8), np.float32)
  for i in range(4):
    emb[i, :, i] = 3.0           # anchor == positive, examples orthogonal: d_ap 0, d_an 2
  loss, m = on_one_device(lambda e: task.loss(e, {}), emb)
  assert float(loss) == 0.0 and float(m["triplet_accuracy"]) == 1.0
  assert float(m["baseline_loss"]) == pytest.approx(0.1)
  # semi-hard mining by hand: d_ap = 0.5, negatives at 0.3 (hard), 0.55 (semi-hard), 0.9 (easy)
  a, p = jnp.zeros((1, 1)), jnp.full((1, 1), np.sqrt(0.5))
  cand = jnp.sqrt(jnp.array([[0.3], [0.55], [0.9], [0.0]]))
  ids, me = jnp.array([1, 2, 3, 0]), jnp.array([0])
  loss, _ = triplet_lib.triplet_semihard(a, p, cand, triplet_lib.negative_mask(ids, me), 0.1)
  assert float(loss) == pytest.approx(0.05, abs=1e-6)
  # no negative farther than the positive: fall back to the hardest (0.3) or the easiest (0.4)
  cand2 = jnp.sqrt(jnp.array([[0.3], [0.4], [0.0]]))
  ids2 = jnp.array([1, 2, 0])
  neg2 = triplet_lib.negative_mask(ids2, me)
  hard, _ = triplet_lib.triplet_semihard(a, p, cand2, neg2, 0.1, "hardest")
  easy, _ = triplet_lib.triplet_semihard(a, p, cand2, neg2, 0.1, "easiest")
  assert float(hard) == pytest.approx(0.3, abs=1e-6) and float(easy) == pytest.approx(0.2, abs=1e-6)


def test_supervised_loss_minimal_and_prior_baseline():
  task = make_task("supervised")
  task.set_classes(["a", "b", "c"], np.array([2, 1, 1]))
  labels = np.array([0, 1, 2, 0], np.int32)
  logits = 30.0 * np.eye(3, dtype=np.float32)[labels]
  loss, m = on_one_device(lambda o, y: task.loss(o, {"label": y}), logits, labels)
  assert float(loss) < 1e-6 and float(m["accuracy"]) == 1.0
  expected = -np.mean(np.log(np.array([0.5, 0.25, 0.25, 0.5])))
  assert float(m["baseline_loss"]) == pytest.approx(expected, rel=1e-6)


def test_multihead_loss_ignores_other_heads():
  task = make_task("multihead", **{"data.train": "A,B"})
  task.sources = ["A", "B"]
  task.set_classes(["A/x", "A/y", "B/u", "B/v", "B/w"], np.array([1, 1, 1, 1, 2]))
  labels = np.array([0, 1, 2, 4], np.int32)
  logits = 20.0 * np.eye(5, dtype=np.float32)[labels]
  logits[:2, 4] = 100.0          # another head's class scores highest: masked, no effect
  logits[2:, 0] = 100.0
  loss, m = on_one_device(lambda o, y: task.loss(o, {"label": y}), logits, labels)
  assert float(loss) < 1e-6 and float(m["accuracy"]) == 1.0
  assert float(m["accuracy_A"]) == 1.0 and float(m["accuracy_B"]) == 1.0
  # baseline: within-head priors (A: 1/2, 1/2; B: 1/4, 1/4, 1/2)
  expected = -np.mean(np.log([0.5, 0.5, 0.25, 0.5]))
  assert float(m["baseline_loss"]) == pytest.approx(expected, rel=1e-6)


# --- helpers for the model-level tests ------------------------------------------

def labelled_task(name, classes=("A/x", "A/y", "B/u"), **overrides):
  """A small task; labelled ones get a 3-class list over two heads (A, B) without data."""
  c = small(helpers.load_config(name, **overrides))
  c.data.train = "A,B"
  task = tasks.make_task(c, fe.FrontendConfig.from_dict(c.frontend))
  if task.needs_labels:
    task.set_classes(list(classes), np.ones(len(classes)))
  return task, (len(classes) if task.needs_labels else None)


# --- short runs through the one trainer ---------------------------------------

@pytest.fixture(scope="module")
def second_labelled_folder(tmp_path_factory):
  """Another folder-per-class tree (three classes of 1-s tones) for the multihead run."""
  folder = tmp_path_factory.mktemp("labelled_b")
  t = np.arange(16000) / 16000
  for label, f0 in (("a", 330.0), ("b", 660.0), ("c", 990.0)):
    (folder / label).mkdir()
    for i in range(4):
      sf.write(folder / label / f"{label}{i}.wav",
               (0.3 * np.sin(2 * np.pi * f0 * (1 + 0.03 * i) * t)).astype(np.float32), 16000)
  return folder


# In the slow pass: skip-gram (it shares CBoW's module, ssl_audio/tasks/audio2vec.py) and
# supervised (test_labelled_checkpoint_loads_without_its_training_data trains it by default).
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow)
                                  if n in ("audio2vec_skipgram", "supervised") else n for n in NAMES])
def test_short_training_run(name, audio_folder, labelled_folder, second_labelled_folder, tmp_path):
  c = small(helpers.tiny(helpers.load_config(name), str(audio_folder), steps=2))
  if name == "supervised":
    c.data.train = f"folder:{labelled_folder}"
  if name == "multihead":
    c.data.train = f"folder:{labelled_folder},folder:{second_labelled_folder}"
  m = train.train_and_evaluate(c, str(tmp_path))
  assert np.isfinite(m["loss"]) and np.isfinite(m["baseline_loss"]) and m["nonfinite"] == 0.0
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows if "loss" in r][-1] == 2
  if name == "multihead":   # one accuracy per dataset (head)
    assert sum(k.startswith("accuracy_") for k in m) == 2, sorted(m)


@pytest.mark.parametrize("name", ["supervised", "multihead"])
def test_labelled_checkpoint_loads_without_its_training_data(name, audio_folder, labelled_folder,
                                                              second_labelled_folder, tmp_path):
  """A checkpoint rebuilds its model from its own metadata: the training data may be gone."""
  import shutil
  from ssl_audio import pretrained
  a, b = tmp_path / "a", tmp_path / "b"
  shutil.copytree(labelled_folder, a)
  shutil.copytree(second_labelled_folder, b)
  c = small(helpers.tiny(helpers.load_config(name), str(audio_folder), steps=1))
  c.data.train = f"folder:{a}" if name == "supervised" else f"folder:{a},folder:{b}"
  wd = tmp_path / "run"
  train.train_and_evaluate(c, str(wd))
  shutil.rmtree(a)
  shutil.rmtree(b)
  pre = pretrained.load_pretrained(str(wd))
  assert pre.meta["classes"] and len(pre.meta["class_counts"]) == len(pre.meta["classes"])
  emb, _ = pre.embed(np.sin(np.arange(20000) * 0.05).astype(np.float32), 16000)
  assert emb.shape == (20000 // pre.slice_samples, 16) and np.all(np.isfinite(emb))
  ri = pretrained.random_init(pre.meta)   # the Untrained baseline of the same model, too
  assert ri.embed_batch(np.zeros((2, pre.slice_samples), np.float32)).shape == (2, 16)


# --- 1 vs 8 devices ------------------------------------------------------------

# every task's config, and the options that change what crosses devices (name: (config, overrides))
EQUALITY_CASES = {n: (n, {}) for n in NAMES} | {
    "triplet_far": ("triplet", {"task.far_negative_seconds": 3.0})}

EQUALITY_CODE = r"""
import json, sys
import jax, jax.numpy as jnp, numpy as np
from ssl_audio import frontend as fe, parallel, state as state_lib, tasks, train
from ssl_audio.audio import to_int16
from tests import helpers
from tests.test_tasks import small, labelled_task

out = {}
for name in CASES:
  res = {}
  for n_dev in (1, 8):
    task, n_cls = labelled_task(CASES[name][0], **CASES[name][1])
    c = task.config
    # SGD: an update is linear in the gradient, so a strict per-element tolerance on
    # the parameters checks the gradients (Adam would amplify rounding where grad ~ 0).
    c.batch_size, c.num_train_steps, c.optimizer.warmup_steps = 8, 3, 0
    c.optimizer.name, c.optimizer.learning_rate, c.optimizer.schedule = "sgd", 0.01, "constant"
    # Augmentation draws per GLOBAL slice index, so 1 and 8 devices augment alike (no mixup:
    # its partner comes from the device's own share of the batch; frequency masks are
    # checked in test_augment: with them too, triplet's hinge and mining turned float32
    # rounding into parameter differences above this test's strict tolerance).
    c.augment.gain_db, c.augment.time_masks = 3.0, 1
    # triplet's config band-limits and mixes by default; both are off here like the masks
    c.augment.mixup_ratio, c.augment.band_limit_prob = 0.0, 0.0
    model = task.model(n_cls)
    tx, sched = state_lib.make_optimizer(c)
    if n_dev == 1:
      v = jax.device_get(state_lib.init_variables(model, task, 0))  # same init for both
    mesh = parallel.make_mesh(n_dev)
    state = state_lib.state_from_variables(v, tx)
    state = jax.device_put(state, parallel.replicated(mesh))
    step = train.make_train_step(model, task, tx, sched, mesh)
    rng = np.random.default_rng(0)
    losses = []
    for s in range(2):
      exs = []
      for i in range(8):
        clip = (rng.standard_normal(task.clip_samples) * (0.02 + 0.03 * i)).astype(np.float32)
        clip += 0.2 * np.sin(np.arange(task.clip_samples) * (0.01 + 0.02 * i)).astype(np.float32)
        exs.append(task.sample(clip, rng))
      batch = {k: np.stack([e[k] for e in exs]) for k in exs[0]}
      batch["audio"] = to_int16(batch["audio"])
      if task.needs_labels:
        batch["label"] = np.array([0, 1, 2, 0, 1, 2, 2, 0], np.int32)
      state, m = step(state, parallel.global_batch(batch, mesh))
      losses.append(float(m["loss"]))
    res[n_dev] = (losses, jax.device_get(state.params), jax.device_get(state.batch_stats))
    if n_dev == 1:   # silence through model + loss (the compiled step; all-zero audio)
      batch = {k: np.zeros_like(v) if k == "audio" else v for k, v in batch.items()}
      _, m = step(state, parallel.global_batch(batch, mesh))
      m = {k: float(x) for k, x in jax.device_get(m).items()}
      silence = {"finite": all(np.isfinite(x) for x in m.values()), "metrics": m}
  (l1, p1, b1), (l8, p8, b8) = res[1], res[8]
  bad = 0
  worst = 0.0
  for a, b in zip(jax.tree.leaves((p1, b1)), jax.tree.leaves((p8, b8))):
    d = np.abs(np.asarray(a) - np.asarray(b))
    bad += int(np.sum(d > 1e-5 + 1e-5 * np.abs(np.asarray(a))))   # float32 reduction order
    worst = max(worst, float(d.max()))
  out[name] = {"loss1": l1, "loss8": l8, "bad": bad, "worst": worst, "silence": silence}
print(json.dumps(out))
"""


@pytest.fixture(scope="module", autouse=True)
def _equality_process():
  """Starts the 8-device subprocess when the module starts, so it overlaps the other tests."""
  env = dict(os.environ)
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = str(helpers.REPO) + os.pathsep + env.get("PYTHONPATH", "")
  proc = subprocess.Popen([sys.executable, "-c", f"CASES = {EQUALITY_CASES!r}\n" + EQUALITY_CODE],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          cwd=helpers.REPO)
  yield proc
  if proc.poll() is None:
    proc.kill()
    proc.communicate()


@pytest.fixture(scope="module")
def equality_results(_equality_process):
  out, err = _equality_process.communicate(timeout=1200)
  if _equality_process.returncode != 0:
    raise RuntimeError(f"8-device subprocess failed ({_equality_process.returncode}):\n{err[-4000:]}")
  return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(EQUALITY_CASES))
def test_one_vs_eight_devices_same_steps(name, equality_results):
  r = equality_results[name]
  # atol 1e-5: the triplet hinge is a difference of O(1) float32 distances, ~1e-6 apart
  # between reduction orders; the parameters below are the strict check
  np.testing.assert_allclose(r["loss1"], r["loss8"], rtol=1e-5, atol=1e-5)
  assert r["bad"] == 0, r


@pytest.mark.parametrize("name", list(EQUALITY_CASES))
def test_silence_gives_a_finite_loss(name, equality_results):
  """All-zero audio through model + loss (run in the same subprocess, by the 1-device step)."""
  r = equality_results[name]["silence"]
  assert r["finite"] and r["metrics"]["nonfinite"] == 0.0, r


# --- triplet positives: distance bounds, incl. near the clip edges -------------

def _triplet_shifts(task, clip, n, seed=0):
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(n):
    ex = task.sample(clip, rng)
    a, p = int(ex["audio"][0, 0]), int(ex["audio"][1, 0])
    assert_window(ex["audio"][0], a)
    assert_window(ex["audio"][1], p)
    assert 0 <= min(a, p) and max(a, p) + CFG.slice_samples <= len(clip)
    out.append((a, p))
  return np.array(out)


@pytest.mark.parametrize("extra", [None, 2 * CFG.hop_length, 8000, 40000])
def test_triplet_positive_distance_within_min_and_max(extra):
  """Defaults (min one slice, max 2 s); extra: a clip of slice + min + extra samples (edges)."""
  task = make_task("triplet", **{"task.gain_jitter_db": 0.0})
  lo, hi, s = task.min_shift, task.max_shift, CFG.slice_samples
  assert (lo, hi) == (15600, 32000) and task.min_samples == s + lo + CFG.hop_length
  n = task.clip_samples if extra is None else s + lo + extra
  ap = _triplet_shifts(task, index_clip(n), 2000)
  d = ap[:, 1] - ap[:, 0]
  assert np.abs(d).min() >= lo and np.abs(d).max() <= hi        # never overlapping, never far
  last = n - s
  if extra is None:   # full window: uniform in [lo, hi] either side, both ends reachable
    assert np.abs(d).min() < lo + 500 and np.abs(d).max() > hi - 500
    assert abs(np.mean(d > 0) - 0.5) < 0.05
    assert abs(np.mean(np.abs(d)) - (lo + hi) / 2) < 400
    assert ap[:, 0].min() < 1000 and ap[:, 0].max() > last - 1000   # anchors reach both edges
  else:               # short clip: only anchors with room for a positive, on the side that fits
    a = ap[:, 0]
    assert np.all((a - lo >= 0) | (a + lo <= last))
    assert np.all(np.where(d > 0, a + lo <= last, a - lo >= 0))
    assert a.min() < 100 and a.max() > last - 100                    # both edges reachable
  # gain jitter off, so the cuts above were exact; a clip below min_samples - hop is refused
  with pytest.raises(ValueError):
    task.sample(index_clip(s + lo - 1), np.random.default_rng(0))


def test_triplet_exact_distribution_on_a_tiny_clip():
  """Anchor uniform over anchors with a valid positive; positive uniform over its valid ones."""
  task = make_task("triplet", **{"task.gain_jitter_db": 0.0})
  s = CFG.slice_samples
  task.config.task.min_positive_seconds = 2 / 16000     # min 2, max 3 samples, starts 0..4
  task.config.task.max_positive_seconds = 3 / 16000
  rng = np.random.default_rng(0)
  last = 4
  counts = {}
  n = 30000
  for _ in range(n):
    ex = task.sample(index_clip(s + last), rng)
    a, p = int(ex["audio"][0, 0]), int(ex["audio"][1, 0])
    counts[(a, p)] = counts.get((a, p), 0) + 1
  valid = {a: [p for p in range(last + 1) if 2 <= abs(p - a) <= 3] for a in range(last + 1)}
  assert all(valid.values())                              # every anchor has one here
  assert set(counts) == {(a, p) for a, ps in valid.items() for p in ps}
  for a, ps in valid.items():
    for p in ps:
      assert counts[(a, p)] / n == pytest.approx(1 / (len(valid) * len(ps)), abs=0.01)
  # a clip where the middle anchor has no positive: last = 2, min 2 -> anchors 0 and 2 only
  seen = {int(task.sample(index_clip(s + 2), rng)["audio"][0, 0]) for _ in range(200)}
  assert seen == {0, 2}


def test_triplet_gain_jitter_within_the_bound():
  task = make_task("triplet")
  assert task.config.task.gain_jitter_db == 6.0
  clip = index_clip(task.clip_samples) + 1.0
  rng = np.random.default_rng(0)
  db = []
  for _ in range(300):
    for w in task.sample(clip, rng)["audio"]:
      t = int(round((len(w) - 1) * w[0] / (w[-1] - w[0]))) - 1
      g = w[0] / clip[t]
      np.testing.assert_allclose(w, g * clip[t:t + len(w)], rtol=1e-5)
      db.append(20 * np.log10(g))
  db = np.array(db)
  assert db.min() >= -6.001 and db.max() <= 6.001 and db.min() < -5.5 and db.max() > 5.5


@pytest.mark.parametrize("extra", [None, 8000])
def test_triplet_far_negative_is_far_from_the_anchor(extra):
  """far_negative_seconds: a third slice of the clip at least that far from the anchor,
  reaching both edges; a clip with no such start marks it invalid (far_valid 0)."""
  task = make_task("triplet", **{"task.gain_jitter_db": 0.0, "task.far_negative_seconds": 3.0})
  s, far = CFG.slice_samples, task.far_shift
  assert far == 48000 and task.min_samples == s + task.min_shift + CFG.hop_length
  n = task.clip_samples if extra is None else s + task.min_shift + extra   # 1.5 s: no room
  rng = np.random.default_rng(0)
  fa = []
  for _ in range(2000):
    ex = task.sample(index_clip(n), rng)
    assert ex["audio"].shape == (3, s)
    a, p, f = (int(w[0]) for w in ex["audio"])
    for w, t in zip(ex["audio"], (a, p, f)):
      assert_window(w, t)
    assert task.min_shift <= abs(p - a) <= task.max_shift
    if extra is None:
      assert ex["far_valid"] == 1.0 and abs(f - a) >= far and 0 <= f <= n - s
    else:
      assert ex["far_valid"] == 0.0 and f == a
    fa.append((f, a))
  if extra is None:
    f = np.array(fa)[:, 0]
    assert f.min() < 1000 and f.max() > n - s - 1000                # both edges reachable
  # off (the default): two slices and no far_valid; on, the anchor and positive are drawn alike
  plain = make_task("triplet", **{"task.gain_jitter_db": 0.0})
  ex = plain.sample(index_clip(task.clip_samples), np.random.default_rng(5))
  ex3 = task.sample(index_clip(task.clip_samples), np.random.default_rng(5))
  assert set(ex) == {"audio"} and ex["audio"].shape == (2, s)
  np.testing.assert_array_equal(ex["audio"], ex3["audio"][:2])


def test_triplet_far_negative_counts_for_its_own_anchor_only_when_valid():
  """By hand, unit vectors: anchor i = e_i, positive at d_ap = 0.5, every other slice at
  d = 2 from it (orthogonal). Example 0's far slice at 0.55 is semi-hard for anchor 0
  (hinge 0.5 - 0.55 + 0.1); at 0.3 it beats the positive (retrieval fails) and the
  semi-hard choice is another clip (hinge 0). Marked invalid, it counts for no anchor
  of its own."""
  task = make_task("triplet", **{"task.far_negative_seconds": 3.0})

  def batch(d_far0):
    emb = np.zeros((4, 3, 8), np.float32)
    for i in range(4):
      emb[i, 0, i] = 1.0
      emb[i, 1, i], emb[i, 1, 4 + i] = 0.75, np.sqrt(1 - 0.75 ** 2)    # d_ap = 2 - 2 * 0.75
      emb[i, 2, 4 + (i + 1) % 4] = 1.0
    c = 1 - d_far0 / 2
    emb[0, 2] = 0.0
    emb[0, 2, 0], emb[0, 2, 5] = c, np.sqrt(1 - c * c)
    return emb

  def run(emb, valid):
    return on_one_device(lambda e, v: task.loss(e, {"far_valid": v}), emb, np.asarray(valid, np.float32))

  loss, m = run(batch(0.55), [1, 1, 1, 1])
  assert float(loss) == pytest.approx(0.05 / 4, abs=1e-6) and float(m["triplet_accuracy"]) == 1.0
  loss, _ = run(batch(0.55), [0, 1, 1, 1])
  assert float(loss) == pytest.approx(0.0, abs=1e-6)
  loss, m = run(batch(0.3), [1, 1, 1, 1])
  assert float(loss) == pytest.approx(0.0, abs=1e-6) and float(m["triplet_accuracy"]) == 0.75
  _, m = run(batch(0.3), [0, 1, 1, 1])
  assert float(m["triplet_accuracy"]) == 1.0


@pytest.mark.parametrize("value", [1.5, 2.0, 9.5])
def test_triplet_far_negative_must_be_beyond_the_positives_and_fit(value):
  c = helpers.load_config("triplet", **{"task.far_negative_seconds": value})
  with pytest.raises(ValueError, match="config.task.far_negative_seconds"):
    config_validation.check_config(c)


@pytest.mark.parametrize("key,value", [("task.min_positive_seconds", -0.5),
                                       ("task.min_positive_seconds", 9.5),
                                       ("task.max_positive_seconds", 0.5),
                                       ("task.gain_jitter_db", -1.0)])
def test_triplet_bad_positive_config_names_the_key(key, value):
  c = helpers.load_config("triplet", **{key: value})
  with pytest.raises(ValueError, match=f"config.{key}"):
    config_validation.check_config(c)
