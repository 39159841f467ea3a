"""COLA: the bilinear contrastive loss by hand, its baseline, the sampler's crops, the model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from ssl_audio import config_validation, tasks
from ssl_audio import frontend as fe
from ssl_audio.parallel import DATA_AXIS
from ssl_audio.tasks import cola as cola_lib
from tests import helpers

CFG = fe.FrontendConfig()
S = CFG.slice_samples


def _task(**overrides):
  c = helpers.load_config("cola", **overrides)
  return tasks.make_task(c, fe.FrontendConfig.from_dict(c.frontend))


def _task_loss(task, anchor, positive, w):
  """task.loss under shard_map on a one-device mesh (it all-gathers over DATA_AXIS)."""
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), (DATA_AXIS,))
  fn = lambda a, p, w: task.loss({"anchor": a, "positive": p, "bilinear": w}, {})
  f = jax.shard_map(fn, mesh=mesh, in_specs=(P(DATA_AXIS), P(DATA_AXIS), P()), out_specs=P(),
                    check_vma=False)
  return jax.jit(f)(anchor, positive, w)


def _by_hand(anchor, positive, w, temperature, target):
  a, p, w = (np.asarray(x, np.float64) for x in (anchor, positive, w))
  d = a.shape[1]   # the similarity is scaled by 1 / head_dim (see cola.py)
  logits = np.array([[a[i] @ w @ p[j] for j in range(len(p))] for i in range(len(a))]) / (d * temperature)
  logsm = logits - np.log(np.sum(np.exp(logits - logits.max(1, keepdims=True)), 1,
                                 keepdims=True)) - logits.max(1, keepdims=True)
  loss = -np.mean([logsm[i, target[i]] for i in range(len(a))])
  acc = np.mean([logits[i, target[i]] > np.delete(logits[i], target[i]).max() for i in range(len(a))])
  return loss, acc


def test_cola_loss_matches_the_hand_computation():
  rng = np.random.default_rng(0)
  a = np.tanh(rng.standard_normal((4, 6))).astype(np.float32)
  p = np.tanh(rng.standard_normal((7, 6))).astype(np.float32)   # more candidates than anchors
  w = rng.standard_normal((6, 6)).astype(np.float32) * 3.0     # not symmetric: order matters
  target = np.array([0, 3, 5, 6])
  for temperature in (0.2, 1.0):
    loss, m = cola_lib.cola_loss(jnp.asarray(a), jnp.asarray(p), jnp.asarray(w), temperature,
                                 jnp.asarray(target))
    want, acc = _by_hand(a, p, w, temperature, target)
    assert float(loss) == pytest.approx(want, rel=1e-5)
    assert float(m["accuracy"]) == pytest.approx(acc)
  # s(x, y) = x^T W y, not y^T W x
  loss_t, _ = cola_lib.cola_loss(jnp.asarray(a), jnp.asarray(p), jnp.asarray(w.T), 1.0,
                                 jnp.asarray(target))
  assert float(loss_t) == pytest.approx(_by_hand(a, p, w.T, 1.0, target)[0], rel=1e-5)
  assert abs(float(loss_t) - _by_hand(a, p, w, 1.0, target)[0]) > 1e-3


def test_task_loss_is_the_diagonal_cross_entropy_with_log_b_baseline():
  task = _task()
  assert task.config.task.temperature == 0.2
  rng = np.random.default_rng(1)
  b, d = 5, 8
  a = np.tanh(rng.standard_normal((b, d))).astype(np.float32)
  p = np.tanh(rng.standard_normal((b, d))).astype(np.float32)
  w = rng.standard_normal((d, d)).astype(np.float32) * 2.0
  loss, m = _task_loss(task, a, p, w)
  want, acc = _by_hand(a, p, w, 0.2, np.arange(b))
  assert float(loss) == pytest.approx(want, rel=1e-5)
  assert float(m["accuracy"]) == pytest.approx(acc)
  assert float(m["baseline_loss"]) == pytest.approx(np.log(b), rel=1e-6)
  # all embeddings equal: every similarity ties, the loss is the baseline, nothing retrieved
  same = np.tile(a[:1], (b, 1))
  loss, m = _task_loss(task, same, same, w)
  assert float(loss) == pytest.approx(np.log(b), rel=1e-5)
  assert float(m["accuracy"]) == 0.0
  # separated: distinct one-hot positives, W = identity -> the diagonal wins, loss near 0
  eye = np.eye(b, d, dtype=np.float32)
  loss, m = _task_loss(task, eye, eye, 5.0 * d * np.eye(d, dtype=np.float32))
  assert float(m["accuracy"]) == 1.0 and float(loss) < 1e-8 + b * np.exp(-25.0)


def _crops(task, clip, n, seed=0):
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(n):
    ex = task.sample(clip, rng)
    assert ex["audio"].shape == (2, S) and ex["audio"].dtype == np.float32
    out.append(ex["audio"])
  return np.array(out)


@pytest.mark.parametrize("min_gap_s", [0.0, 0.975, 2.0])
def test_sampler_crops_one_clip_at_the_minimum_distance(min_gap_s):
  task = _task(**{"task.min_gap_seconds": min_gap_s, "task.positive_noise": 0.0})
  g = round(min_gap_s * 16000)
  assert task.min_samples == S + g + CFG.hop_length
  clip = np.arange(task.clip_samples, dtype=np.float32)   # each sample holds its index
  audio = _crops(task, clip, 1500)
  starts = audio[:, :, 0].astype(int)
  for k in range(2):   # both crops are contiguous cuts of this clip
    np.testing.assert_array_equal(audio[:, k], starts[:, k, None] + np.arange(S))
  gaps = np.abs(starts[:, 0] - starts[:, 1])
  assert gaps.min() >= g and starts.max() <= task.clip_samples - S
  if g == 0:
    assert gaps.min() < S          # independent crops (COLA's) may overlap
  else:
    assert gaps.min() < g + 2000   # the minimum is reachable
  # a shorter clip (used whole) still gives valid pairs; below min_samples it is refused
  short = np.arange(task.min_samples, dtype=np.float32)
  a = _crops(task, short, 50)
  assert np.all(np.abs(a[:, 0, 0] - a[:, 1, 0]) >= g) and a[:, :, -1].max() <= len(short) - 1
  with pytest.raises(ValueError):
    task.sample(np.zeros(task.min_samples - 1, np.float32), np.random.default_rng(0))


def test_positive_noise_and_gain_jitter():
  task = _task(**{"task.positive_noise": 0.001, "task.gain_jitter_db": 0.0})
  assert helpers.load_config("cola").task.positive_noise == 0.001    # COLA's value, the default
  clip = np.full(task.clip_samples, 0.5, np.float32)   # a constant clip: what differs is noise
  audio = _crops(task, clip, 40)
  assert np.all(audio[:, 0] == 0.5)                    # the anchor is untouched
  noise = audio[:, 1] - 0.5
  assert abs(noise.std() - 0.001) < 0.00005 and abs(noise.mean()) < 0.00005
  assert abs(np.corrcoef(noise[:, :-1].ravel(), noise[:, 1:].ravel())[0, 1]) < 0.02   # white
  # gain jitter: each crop scaled independently within ±6 dB
  task = _task(**{"task.positive_noise": 0.0, "task.gain_jitter_db": 6.0})
  ramp = np.arange(1, task.clip_samples + 1, dtype=np.float32)
  db = []
  for a in _crops(task, ramp, 200):
    for w in a:
      t = int(round((S - 1) * w[0] / (w[-1] - w[0]))) - 1
      gain = w[0] / ramp[t]
      np.testing.assert_allclose(w, gain * ramp[t:t + S], rtol=1e-5)
      db.append(20 * np.log10(gain))
  db = np.array(db)
  assert db.min() >= -6.001 and db.max() <= 6.001 and db.min() < -5.0 and db.max() > 5.0


def test_model_outputs_and_encoder_key():
  c = helpers.load_config("cola")
  c.frontend.slice_frames, c.frontend.n_mels = 32, 32
  c.encoder.width, c.encoder.embedding_dim = 0.25, 16
  c.task.head_dim = 24
  task = tasks.make_task(c, fe.FrontendConfig.from_dict(c.frontend))
  batch = task.example_batch(3)
  assert batch["audio"].shape == (3, 2, task.frontend.slice_samples)
  model = task.model()
  # jitted: op-by-op, the init and forward took ~60 s of dispatch
  v = jax.jit(lambda k: model.init(k, batch, train=False))(jax.random.PRNGKey(0))
  assert set(v["params"]) == {"encoder", "head", "head_norm", "bilinear"}
  out = jax.jit(lambda v: model.apply(v, batch, train=False))(v)
  assert out["anchor"].shape == (3, 24) and out["positive"].shape == (3, 24)
  assert out["bilinear"].shape == (24, 24)
  assert float(jnp.max(jnp.abs(out["anchor"]))) <= 1.0   # tanh
  # W starts N(0, 1) (the similarity divides by head_dim)
  assert float(jnp.std(v["params"]["bilinear"])) == pytest.approx(1.0, rel=0.2)


@pytest.mark.parametrize("key,value", [
    ("task.temperature", 0.0), ("task.head_dim", 0), ("task.positive_noise", -0.1),
    ("task.gain_jitter_db", -2.0), ("task.min_gap_seconds", -1.0), ("task.min_gap_seconds", 9.5),
    ("batch_size", 1)])
def test_bad_config_names_the_key(key, value):
  config_validation.check_config(helpers.load_config("cola"))
  with pytest.raises(ValueError, match=f"config.{key}"):
    config_validation.check_config(helpers.load_config("cola", **{key: value}))
