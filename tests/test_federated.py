"""Federated pretraining: clients, the client update, FedAvg, DP-FedAvg, the loop."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import flax.linen as nn
import optax
import pytest

from ssl_audio import manifest as manifest_lib
from ssl_audio import parallel
from ssl_audio import state as state_lib
from ssl_audio import train
from ssl_audio.config_validation import ConfigError
from ssl_audio.federated import clients as clients_lib
from ssl_audio.federated import config as fconfig
from ssl_audio.federated import dp
from ssl_audio.federated import loop
from ssl_audio.federated import server as server_lib
from ssl_audio.federated.client import make_client_update
from ssl_audio.parallel import DATA_AXIS
from tests import helpers


def small(c):
  """A test-size model (as tests/test_tasks.py): 32x32 slices, width 0.25, 16-d embedding."""
  c.frontend.slice_frames = 32
  c.frontend.n_mels = 32
  c.encoder.width = 0.25
  c.encoder.embedding_dim = 16
  return c


@pytest.fixture(scope="module")
def speakers(tmp_path_factory):
  """Six 5-s clips of three speakers (1, 2 and 3 clips), each speaker in its own folder."""
  root = tmp_path_factory.mktemp("fed")
  rows = []
  for spk, n in (("a", 1), ("b", 2), ("c", 3)):
    (root / spk).mkdir()
    for p in helpers.write_clips(root / spk, n=n, seconds=5.0, prefix=f"{spk}_"):
      rows.append({"path": f"{spk}/{p.name}", "speaker": spk})
  manifest_lib.write_manifest(root / "manifest.csv", rows)
  return root


def fed_config(data, **fed):
  c = small(helpers.tiny(helpers.load_config("federated_temporal_gap"), f"manifest:{data}", batch=4))
  c.federated.rounds = 2
  c.federated.clients_per_round = 2
  c.federated.log_every_rounds = 1
  for k, v in fed.items():
    node = c.federated
    *parents, leaf = k.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = v
  return c


# ============================================================================ clients

def test_clients_by_speaker_else_source_else_file(tmp_path):
  rows = [{"path": "x1.wav", "speaker": "s1", "source": "pkgA"},
          {"path": "x2.wav", "speaker": "s1", "source": "pkgB"},
          {"path": "x3.wav", "speaker": "", "source": "pkgA"},
          {"path": "x4.wav", "speaker": "", "source": ""}]
  m = manifest_lib.read_manifest(manifest_lib.write_manifest(tmp_path / "m.csv", rows))
  keys = clients_lib.client_keys(m, ["speaker", "source", "file"])
  assert list(keys) == ["speaker:s1", "speaker:s1", "source:pkgA", "file:x4.wav"]
  cl = clients_lib.partition(m, ["speaker", "source", "file"])
  assert sorted(cl.sizes.tolist()) == [1, 1, 2]
  with pytest.raises(ConfigError, match="federated.group_by"):
    clients_lib.client_keys(m, ["speaker", "source"])   # x4 has neither, no file fallback


def test_iid_keeps_client_sizes_and_deals_every_row_once(speakers):
  m = manifest_lib.resolve(f"manifest:{speakers / 'manifest.csv'}")
  non = clients_lib.partition(m, ["speaker"])
  iid = clients_lib.partition(m, ["speaker"], iid=True, seed=3)
  assert sorted(non.sizes) == sorted(iid.sizes) == [1, 2, 3]
  assert sorted(np.concatenate(iid.rows).tolist()) == list(range(len(m)))
  assert any(not np.array_equal(a, b) for a, b in zip(non.rows, iid.rows))


def test_a_client_never_reads_another_clients_clips(speakers, tmp_path):
  data = tmp_path / "data"
  shutil.copytree(speakers, data)
  c = fed_config(data / "manifest.csv")
  m = manifest_lib.resolve(f"manifest:{data / 'manifest.csv'}")
  cl = clients_lib.partition(m, ["speaker"])
  from ssl_audio import tasks
  from ssl_audio import frontend as fe
  task = tasks.make_task(c, fe.FrontendConfig.from_dict(c.frontend))
  b_id = cl.names.index("speaker:b")
  s = clients_lib.ClientSampler(m, task, cl, batch_size=4, local_steps=2, seed=0)
  read = []
  maker = s.maker
  s.maker = lambda i, rng: (read.append(int(i)), maker(i, rng))[1]
  before = s.batches(5, b_id)
  assert set(read) <= set(cl.rows[b_id].tolist()) and read
  for other in ("a", "c"):                                  # the other clients' audio is gone
    shutil.rmtree(data / other)
  after = s.batches(5, b_id)
  assert s.skipped == 0
  for k in before:
    np.testing.assert_array_equal(before[k], after[k])
  assert before["audio"].shape[:2] == (2, 4)
  s.close()


def test_uniform_cohorts_and_poisson_cohorts(speakers):
  m = manifest_lib.resolve(f"manifest:{speakers / 'manifest.csv'}")
  cl = clients_lib.Clients([str(k) for k in range(50)], [np.array([0])] * 50)
  from ssl_audio import tasks
  from ssl_audio import frontend as fe
  c = fed_config(speakers / "manifest.csv")
  s = clients_lib.ClientSampler(m, tasks.make_task(c, fe.FrontendConfig.from_dict(c.frontend)),
                                cl, 4, 1, seed=0)
  for r in range(5):
    ids = s.cohort(r, 10)
    assert len(set(ids.tolist())) == 10 and np.array_equal(ids, s.cohort(r, 10))
  sizes = [len(s.cohort(r, 10, poisson=True)) for r in range(200)]
  assert 9 < np.mean(sizes) < 11 and np.std(sizes) > 1   # Binomial(50, 0.2): mean 10, sd 2.8
  s.close()


# ============================================================================ server and DP

def test_fedavg_weights_by_examples():
  u1 = {"params": {"w": jnp.array([1.0, 2.0]), "b": jnp.array(4.0)}}
  u2 = {"params": {"w": jnp.array([5.0, -2.0]), "b": jnp.array(0.0)}}
  total = server_lib.zeros_like(u1)
  for u, w in ((u1, 1.0), (u2, 3.0)):
    total = server_lib.accumulate(total, u, jnp.float32(w))
  mean = server_lib.mean_update(total, 4.0)
  np.testing.assert_allclose(mean["params"]["w"], [(1 + 15) / 4, (2 - 6) / 4], rtol=1e-6)
  np.testing.assert_allclose(mean["params"]["b"], 1.0, rtol=1e-6)
  stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), u1, u2)
  total2 = server_lib.accumulate_stacked(server_lib.zeros_like(u1), stacked, jnp.array([1.0, 3.0]))
  assert helpers.max_abs_diff(total, total2) < 1e-6
  # FedAvg = server SGD at learning rate 1: the new weights are the weighted mean of the clients'
  params = {"w": jnp.array([0.5, 0.5]), "b": jnp.array(1.0)}
  tx = server_lib.server_optimizer(fconfig_ns(server_optimizer="sgd", server_learning_rate=1.0))
  new, _, _ = server_lib.make_apply(tx)(params, {}, tx.init(params), mean)
  clients = [jax.tree.map(jnp.add, params, u["params"]) for u in (u1, u2)]
  expect = jax.tree.map(lambda a, b: (1 * a + 3 * b) / 4, *clients)
  assert helpers.max_abs_diff(new, expect) < 1e-6
  # the loop's weights are the clients' clips
  cl = clients_lib.Clients(["x", "y"], [np.array([0]), np.array([1, 2, 3])])
  np.testing.assert_array_equal(cl.sizes, [1, 3])


def fconfig_ns(**kw):
  import ml_collections
  return ml_collections.ConfigDict(dict(dict(server_momentum=0.0), **kw))


def test_clipped_update_norms_never_exceed_the_bound():
  rng = np.random.default_rng(0)
  for scale in (1e-4, 0.3, 1.0, 7.0, 1e3):
    for clip in (0.01, 1.0, 5.0):
      tree = {"a": jnp.asarray(rng.standard_normal((30, 7)) * scale, jnp.float32),
              "b": {"c": jnp.asarray(rng.standard_normal(11) * scale, jnp.float32)}}
      norm = float(optax.tree.norm(tree))
      out = dp.clip(tree, clip)
      got = float(optax.tree.norm(out))
      assert got <= clip * (1 + 1e-6)
      if norm <= clip:
        assert helpers.max_abs_diff(out, tree) == 0.0
      else:
        np.testing.assert_allclose(got, clip, rtol=1e-5)


def test_noise_on_the_sum_has_the_stated_scale():
  tree = {"w": jnp.zeros((200, 100))}
  noisy = dp.add_noise(tree, jax.random.key(0), 0.7)
  np.testing.assert_allclose(float(jnp.std(noisy["w"])), 0.7, rtol=0.02)
  out = server_lib.mean_update(tree, 1.0, (jax.random.key(0), 0.7, 4.0))
  np.testing.assert_allclose(float(jnp.std(out["w"])), 0.7 / 4, rtol=0.02)


def test_epsilon_matches_dp_accounting():
  dpa = pytest.importorskip("dp_accounting")
  q, z, rounds, delta = 10 / 120, 1.1, 300, 1 / 120
  acc = dpa.rdp.RdpAccountant()
  acc.compose(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(z)), rounds)
  assert dp.epsilon(z, q, rounds, delta) == pytest.approx(acc.get_epsilon(delta), rel=1e-9)
  assert dp.epsilon(1.0, 50 / 1000, 500, 1e-5) == pytest.approx(8.302, abs=1e-3)  # stack.md §10
  # calibration: the smallest noise that stays within the target
  c = fed_config("unused.csv", rounds=rounds, clients_per_round=10, **{"dp.enabled": True,
                 "dp.target_epsilon": 8.0, "dp.noise_multiplier": 0.0})
  priv = loop.privacy(c, 120)
  assert priv["delta"] == pytest.approx(1 / 120)
  assert 7.9 <= priv["epsilon"] <= 8.0
  assert dp.epsilon(priv["noise_multiplier"] * 0.99, q, rounds, delta) > 8.0


# ============================================================================ bad settings

@pytest.mark.parametrize("fed, key", [
    ({"clients_per_round": 4}, "federated.clients_per_round"),     # 3 speakers
    ({"group_by": "speaker,source", "iid": False}, None),          # fine: every row has a speaker
    ({"group_by": "language"}, "federated.group_by"),              # no such column, no fallback
    ({"dp.enabled": True, "dp.clip_norm": 0.0}, "federated.dp.clip_norm"),
    ({"dp.enabled": True, "dp.clip_norm": -1.0}, "federated.dp.clip_norm"),
    ({"server_optimizer": "rmsprop"}, "federated.server_optimizer"),
    ({"batchnorm": "frozen"}, "federated.batchnorm"),
    ({"local_steps": 0}, "federated.local_steps"),
])
def test_bad_settings_fail_before_compiling_and_name_the_key(speakers, tmp_path, monkeypatch, fed, key):
  c = fed_config(speakers / "manifest.csv", **{"group_by": "speaker", **fed})
  if key is None:
    fconfig.check_config(c)
    return
  def no_compile(*a, **k):
    raise AssertionError("compiled before the config was checked")
  monkeypatch.setattr(state_lib, "init_variables", no_compile)
  with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
    loop.train_and_evaluate(c, str(tmp_path / "wd"))


# ============================================================================ the client update

class ToyTask:
  """A linear model with BatchNorm and an MSE loss: the real step and client code, compiled
  in a second (the real encoder: the slow test below)."""
  name = "toy"

  def loss(self, outputs, batch):
    loss = jnp.mean((outputs - batch["target"]) ** 2)
    return loss, {"baseline_loss": jnp.mean((batch["target"] - jnp.mean(batch["target"])) ** 2)}


class ToyModel(nn.Module):
  @nn.compact
  def __call__(self, batch, train: bool = False):
    x = nn.BatchNorm(use_running_average=not train, axis_name=DATA_AXIS, momentum=0.5)(batch["x"])
    if train:   # uses the augmentation key, as the tasks' augmentations do
      x = x + 0.1 * jax.random.normal(self.make_rng("augment"), x.shape)
    return nn.Dense(1)(x)[:, 0]


def _toy(optimizer):
  model = ToyModel()
  rng = np.random.default_rng(0)
  batch = {"x": rng.standard_normal((6, 5)).astype(np.float32), "target": rng.standard_normal(6).astype(np.float32)}
  variables = jax.jit(lambda k: model.init(k, batch, train=False))(jax.random.key(0))
  state = state_lib.state_from_variables(variables, optimizer)
  return model, ToyTask(), state, batch


@pytest.mark.parametrize("client_tx", [optax.sgd(0.1), optax.adam(0.01)], ids=["sgd", "adam"])
def test_one_client_one_step_is_one_centralised_step_toy(client_tx):
  model, task, state, batch = _toy(client_tx)
  mesh = parallel.make_mesh(1)
  schedule = optax.constant_schedule(0.1)
  central = train.make_train_step(model, task, client_tx, schedule, mesh, seed=3)
  ref, _ = central(jax.tree.map(jnp.copy, state), batch)
  update = make_client_update(model, task, client_tx, schedule, mesh, "average")
  batches = {k: v[None] for k, v in batch.items()}
  up, _, _ = update(state.variables(), batches, jax.random.key_data(jax.random.key(3)))
  tx = server_lib.server_optimizer(fconfig_ns(server_optimizer="sgd", server_learning_rate=1.0))
  mean = server_lib.mean_update(server_lib.accumulate(server_lib.zeros_like(up), up, 5.0), 5.0)
  params, stats, _ = server_lib.make_apply(tx)(state.params, state.batch_stats,
                                              tx.init(state.params), mean)
  assert helpers.max_abs_diff(params, ref.params) < 1e-6
  assert helpers.max_abs_diff(stats, ref.batch_stats) < 1e-6
  assert helpers.max_abs_diff(params, state.params) > 1e-3


def test_vmapped_clients_equal_sequential_clients_toy():
  model, task, state, batch = _toy(optax.adam(0.01))
  mesh = parallel.make_mesh(1)
  args = (model, task, optax.adam(0.01), optax.constant_schedule(0.01), mesh)
  rng = np.random.default_rng(1)
  clients = [{k: (v + rng.standard_normal(v.shape).astype(np.float32))[None].repeat(3, 0)
              for k, v in batch.items()} for _ in range(2)]
  keys = [jax.random.key_data(jax.random.key(k)) for k in (5, 6)]
  for bn in ("average", "local"):
    seq = make_client_update(*args, batchnorm=bn, clip_norm=0.05)
    vm = make_client_update(*args, batchnorm=bn, clip_norm=0.05, vmap=True)
    outs = [seq(state.variables(), b, k) for b, k in zip(clients, keys)]
    v = state.variables()
    if bn == "local":
      v = dict(v, batch_stats=jax.tree.map(lambda x: jnp.stack([x, x]), v["batch_stats"]))
    stacked = jax.tree.map(lambda *x: np.stack(x), *clients)
    up, stats, m = vm(v, stacked, np.stack(keys))
    for j, (u, st, mm) in enumerate(outs):
      assert helpers.max_abs_diff(jax.tree.map(lambda x: x[j], up), u) < 1e-6
      assert helpers.max_abs_diff(jax.tree.map(lambda x: x[j], stats), st) < 1e-6
      assert float(optax.tree.norm(u)) <= 0.05 * (1 + 1e-6)          # clipped
      assert float(mm["update_norm"]) > 0.05                          # the norm before clipping
    assert ("batch_stats" in outs[0][0]) == (bn == "average")         # local: statistics stay


@pytest.mark.slow   # the real encoder compiles three times (about a minute on 2 cores)
def test_one_client_one_step_is_one_centralised_sgd_step(speakers):
  """1 client, 1 local step, server SGD at lr 1 == one centralised step on the same batch,
  augmentation included (same key)."""
  c = fconfig.client_config(fed_config(speakers / "manifest.csv", local_steps=1))
  c.optimizer.name, c.optimizer.learning_rate, c.optimizer.momentum = "sgd", 0.05, 0.0
  c.augment.gain_db, c.augment.time_masks = 6.0, 1
  m = manifest_lib.resolve(c.data.pretrain)
  task = state_lib.build_task(c)
  model = state_lib.build_model(task)
  state, tx, schedule = state_lib.create_train_state(c, task, model)
  mesh = parallel.make_mesh(1)
  cl = clients_lib.partition(m, ["speaker"])
  s = clients_lib.ClientSampler(m, task, cl, 4, 1, seed=0)
  batches = s.batches(0, 2)
  s.close()
  key = jax.random.key(c.seed)

  central = train.make_train_step(model, task, tx, schedule, mesh, seed=c.seed)
  ref, _ = central(jax.tree.map(jnp.copy, state), {k: v[0] for k, v in batches.items()})

  update = make_client_update(model, task, tx, schedule, mesh, "average")
  up, _, metrics = update(state.variables(), batches, jax.random.key_data(key))
  f = fconfig_ns(server_optimizer="sgd", server_learning_rate=1.0)
  tx = server_lib.server_optimizer(f)
  total = server_lib.accumulate(server_lib.zeros_like(up), up, jnp.float32(3.0))
  mean = server_lib.mean_update(total, 3.0)
  params, stats, _ = server_lib.make_apply(tx)(state.params, state.batch_stats,
                                              tx.init(state.params), mean)
  assert helpers.max_abs_diff(params, ref.params) < 1e-6
  assert helpers.max_abs_diff(stats, ref.batch_stats) < 1e-5
  assert helpers.max_abs_diff(params, state.params) > 1e-4       # it did move
  assert np.isfinite(float(metrics["loss"]))


# ============================================================================ the loop

def _metrics(wd):
  return [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]


@pytest.mark.slow   # compiles the model three times (about a minute on 2 cores)
def test_federated_loop_runs_logs_and_loads(speakers, tmp_path):
  c = fed_config(speakers / "manifest.csv", local_steps=2, rounds=2, group_by="speaker")
  wd = str(tmp_path / "wd")
  last = loop.train_and_evaluate(c, wd)
  recs = _metrics(wd)
  assert [r["step"] for r in recs] == [1, 2]
  for r in recs:
    assert r["clients"] == 2 and r["examples"] == 2 * 2 * 4
    assert r["bytes_up"] > 0 and r["bytes_down"] >= r["bytes_up"]
    assert np.isfinite(r["loss"]) and np.isfinite(r["baseline_loss"])
  assert recs[-1]["examples_seen"] == 32 and last["examples_seen"] == 32
  from ssl_audio import load_pretrained
  pre = load_pretrained(wd)                                      # eval reads it as any run
  assert pre.step == 2
  emb, _ = pre.embed(np.zeros(16000 * 2, np.float32), 16000)
  assert emb.shape[1] == 16


def _fed_cmd(wd, data, extra=()):
  return [sys.executable, "main.py", "--config=configs/federated_temporal_gap.py",
          f"--workdir={wd}", f"--config.data.pretrain=manifest:{data}",
          "--config.federated.rounds=8", "--config.federated.clients_per_round=2",
          "--config.federated.local_steps=2", "--config.federated.checkpoint_every_rounds=2",
          "--config.federated.log_every_rounds=1", "--config.federated.group_by=speaker",
          "--config.batch_size=4", "--config.data.num_workers=0", "--config.keep_checkpoints=10",
          "--config.task.window_seconds=4.0", "--config.frontend.slice_frames=32",
          "--config.frontend.n_mels=32", "--config.encoder.width=0.25",
          "--config.encoder.embedding_dim=16", "--config.augment.gain_db=6",
          "--config.augment.time_masks=1", *extra]


@pytest.mark.slow
@pytest.mark.parametrize("extra", [
    (),
    ("--config.federated.dp.enabled=True", "--config.federated.dp.noise_multiplier=0.5",
     "--config.federated.dp.clip_norm=0.1", "--config.federated.batchnorm=local",
     "--config.federated.server_optimizer=adam", "--config.federated.server_learning_rate=0.01"),
], ids=["fedavg", "dp_local_bn_fedadam"])
def test_sigkill_then_resume_is_bit_exact(speakers, tmp_path, extra):
  if extra:
    pytest.importorskip("dp_accounting")
  data = speakers / "manifest.csv"
  env = {**os.environ, "PYTHONPATH": str(helpers.REPO), "JAX_PLATFORMS": "cpu"}
  ref, killed = tmp_path / "ref", tmp_path / "killed"
  subprocess.run(_fed_cmd(ref, data, extra), check=True, cwd=helpers.REPO, env=env,
                 capture_output=True, timeout=900)
  p = subprocess.Popen(_fed_cmd(killed, data, extra), cwd=helpers.REPO, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  first = killed / "checkpoints" / "2"
  deadline = time.time() + 900
  while not first.is_dir() and p.poll() is None and time.time() < deadline:
    time.sleep(0.02)
  p.send_signal(signal.SIGKILL)
  p.wait()
  assert p.returncode == -signal.SIGKILL, "the run ended before it could be killed"
  killed_at = helpers.final_state(killed)[0]
  assert killed_at < 8
  subprocess.run(_fed_cmd(killed, data, extra), check=True, cwd=helpers.REPO, env=env,
                 capture_output=True, timeout=900)
  step_a, a = helpers.final_state(ref)
  step_b, b = helpers.final_state(killed)
  assert step_a == step_b == 8
  assert helpers.max_abs_diff(a["params"], b["params"]) == 0.0
  assert helpers.max_abs_diff(a["batch_stats"], b["batch_stats"]) == 0.0
  la = {r["step"]: r["loss"] for r in _metrics(ref)}
  lb = {r["step"]: r["loss"] for r in _metrics(killed)}
  for s in range(killed_at + 1, 9):
    assert la[s] == lb[s]
  if extra:
    ea = {r["step"]: r["epsilon"] for r in _metrics(ref)}
    assert 0 < ea[1] < ea[8]
    meta = json.load(open(ref / "checkpoints" / "8" / "meta" / "metadata"))
    assert meta["federated"]["dp"]["epsilon"] == pytest.approx(ea[8])


# ============================================================================ Flower

@pytest.mark.slow
def test_flower_simulation_matches_the_in_process_loop(speakers, tmp_path):
  """2 clients x 2 rounds through Flower's simulation engine (Ray) == python main.py."""
  pytest.importorskip("flwr")
  pytest.importorskip("ray")
  from flwr.simulation import run_simulation
  from ssl_audio.federated import flower_app
  two = tmp_path / "two.csv"
  m = manifest_lib.read_manifest(speakers / "manifest.csv")
  manifest_lib.write_manifest(two, [{"path": m.path(i), "speaker": m.columns["speaker"][i]}
                                    for i in range(len(m)) if m.columns["speaker"][i] != "a"])
  overrides = " ".join([
      f"data.pretrain=manifest:{two}", "batch_size=4", "data.num_workers=0",
      "task.window_seconds=4.0", "frontend.slice_frames=32", "frontend.n_mels=32",
      "encoder.width=0.25", "encoder.embedding_dim=16", "federated.rounds=2",
      "federated.clients_per_round=2", "federated.local_steps=2", "federated.group_by=speaker",
      "federated.log_every_rounds=1",
      "federated.server_optimizer=adam", "federated.server_learning_rate=0.01"])
  cfg_file = str(helpers.REPO / "configs" / "federated_temporal_gap.py")
  ref = tmp_path / "ref"
  loop.train_and_evaluate(flower_app.load_config(cfg_file, overrides), str(ref))
  fl = tmp_path / "flower"
  server_app, client_app = flower_app.make_apps(**{"config-file": cfg_file, "overrides": overrides,
                                                   "workdir": str(fl)})
  run_simulation(server_app, client_app, num_supernodes=2,
                 backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}})
  a, b = _metrics(ref), _metrics(fl)
  assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2]
  for ra, rb in zip(a, b):
    assert rb["clients"] == 2
    for k in ("loss", "baseline_loss", "update_norm"):
      np.testing.assert_allclose(rb[k], ra[k], rtol=1e-5)
  _, sa = helpers.final_state(ref)
  _, sb = helpers.final_state(fl)
  assert helpers.max_abs_diff(sa["params"], sb["params"]) < 1e-5
