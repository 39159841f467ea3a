import jax
import numpy as np
import pytest

from ssl_audio import frontend as fe
from ssl_audio import tasks
from tests import helpers

CFG = fe.FrontendConfig()


def _task(**overrides):
  c = helpers.load_config("temporal_gap", **overrides)
  return tasks.make_task(c, CFG)


S = CFG.slice_samples


def _pairs(task, clip, n, seed=0):
  """n examples from an index-coded clip: (starts [n, 2], targets [n], audio of the last)."""
  rng = np.random.default_rng(seed)
  starts, targets = [], []
  for _ in range(n):
    ex = task.sample(clip, rng)
    assert ex["audio"].shape == (2, S) and ex["audio"].dtype == np.float32
    s1, s2 = int(ex["audio"][0, 0]), int(ex["audio"][1, 0])
    # contiguous cuts starting at those offsets (no gain: the samples are the indices)
    np.testing.assert_array_equal(ex["audio"][0], np.arange(s1, s1 + S))
    np.testing.assert_array_equal(ex["audio"][1], np.arange(s2, s2 + S))
    starts.append((s1, s2))
    targets.append(float(ex["target"]))
  return np.array(starts), np.array(targets)


@pytest.mark.parametrize("min_gap_s", [0.975, 3.0])
def test_pairs_keep_the_minimum_gap_and_cover_the_range(min_gap_s):
  task = _task(**{"task.gain_jitter_db": 0.0, "task.min_gap_seconds": min_gap_s})
  g = round(min_gap_s * 16000)
  assert task.min_samples == S + g + CFG.hop_length
  clip = np.arange(task.clip_samples, dtype=np.float32)   # each sample holds its index
  starts, targets = _pairs(task, clip, 3000)
  m = task.clip_samples - S
  gaps = np.abs(starts[:, 0] - starts[:, 1])
  assert starts.min() >= 0 and starts.max() <= m
  assert gaps.min() >= g                                    # never closer, never overlapping
  np.testing.assert_allclose(targets, gaps / m, rtol=1e-6)
  # uniform over the valid pairs: the gap density is triangular, ∝ (m - k), on [g, m]
  gam = g / m
  assert gaps.min() < g + 0.01 * m and gaps.max() > m - 0.05 * m  # both ends reachable
  assert abs(targets.mean() - (gam + (1 - gam) / 3)) < 0.02
  assert abs(np.mean(targets < (1 + gam) / 2) - 0.75) < 0.03   # P(below the midpoint) = 3/4
  # order and position are uniform: the first slice is the earlier one half the time
  assert abs(np.mean(starts[:, 0] < starts[:, 1]) - 0.5) < 0.04


def test_min_gap_zero_restores_independent_starts():
  task = _task(**{"task.gain_jitter_db": 0.0, "task.min_gap_seconds": 0.0})
  assert task.min_samples == S + CFG.hop_length
  clip = np.arange(task.clip_samples, dtype=np.float32)
  starts, targets = _pairs(task, clip, 2000)
  gaps = np.abs(starts[:, 0] - starts[:, 1])
  assert gaps.min() < S                         # overlapping pairs do happen
  assert abs(targets.mean() - 1 / 3) < 0.03     # |U1 - U2| has mean 1/3


def test_exact_gap_distribution_on_a_tiny_clip():
  """All ordered pairs with |d| >= g equally likely (small enough to count every pair)."""
  from ssl_audio.tasks.base import random_pair_starts
  rng = np.random.default_rng(3)
  m, g = 6, 2                                  # starts 0..6, window 10, clip 16
  counts = {}
  n = 42000
  for _ in range(n):
    t1, t2 = (int(x) for x in random_pair_starts(rng, m + 10, 10, g))
    counts[(t1, t2)] = counts.get((t1, t2), 0) + 1
  valid = {(a, b) for a in range(m + 1) for b in range(m + 1) if abs(a - b) >= g}
  assert set(counts) == valid
  freq = np.array([counts[k] for k in sorted(valid)]) / n
  np.testing.assert_allclose(freq, 1 / len(valid), atol=0.004)
  with pytest.raises(ValueError):
    random_pair_starts(rng, 10 + 1, 10, 2)


def test_short_clip_is_normalised_by_the_window_used():
  task = _task(**{"task.gain_jitter_db": 0.0})
  g = task.min_gap
  for extra in (CFG.hop_length, 1000, 30000):
    n = S + g + extra
    clip = np.arange(n, dtype=np.float32)
    starts, targets = _pairs(task, clip, 1000, seed=extra)
    gaps = np.abs(starts[:, 0] - starts[:, 1])
    assert gaps.min() >= g and starts.max() <= n - S
    np.testing.assert_allclose(targets, gaps / (n - S), rtol=1e-6)
    assert targets.max() <= 1.0
    if extra == 30000:                         # the target spans [g / (n - S), 1] here too
      assert targets.max() > 0.9 and targets.min() < g / (n - S) + 0.02
  # below slice + min gap + hop the sampler refuses (the pipeline skips such files)
  with pytest.raises(ValueError):
    task.sample(np.zeros(task.min_samples - 1, np.float32), np.random.default_rng(0))


def test_gain_jitter_changes_level_within_the_bound():
  task = _task(**{"task.gain_jitter_db": 6.0})
  clip = np.arange(1, task.clip_samples + 1, dtype=np.float32)   # clip[i] = i + 1 > 0
  rng = np.random.default_rng(0)
  db = []
  for _ in range(500):
    ex = task.sample(clip, rng)
    starts = []
    for w in ex["audio"]:
      # a scaled ramp g * (t + 1 ... t + S): the start and the gain follow from its ends
      t = int(round((S - 1) * w[0] / (w[-1] - w[0]))) - 1
      gain = w[0] / clip[t]
      np.testing.assert_allclose(w, gain * clip[t:t + S], rtol=1e-5)
      starts.append(t)
      db.append(20 * np.log10(gain))
    assert abs(starts[0] - starts[1]) >= task.min_gap
    assert float(ex["target"]) == pytest.approx(abs(starts[0] - starts[1]) / (len(clip) - S))
  db = np.array(db)
  assert db.min() >= -6.0 - 1e-3 and db.max() <= 6.0 + 1e-3
  assert db.min() < -5.5 and db.max() > 5.5 and np.std(db) > 3.0   # uniform in ±6 dB: std 3.46
  d = db.reshape(-1, 2)
  assert abs(np.corrcoef(d[:, 0], d[:, 1])[0, 1]) < 0.15           # independent per slice
  # 0 dB: exactly the clip's samples
  ex = _task(**{"task.gain_jitter_db": 0.0}).sample(clip, np.random.default_rng(1))
  t = int(ex["audio"][0, 0]) - 1
  np.testing.assert_array_equal(ex["audio"][0], clip[t:t + S])


def _loss(task, logits, target):
  fn = lambda o, t: task.loss(o, {"target": t})
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
  from jax.sharding import PartitionSpec as P
  f = jax.shard_map(fn, mesh=mesh, in_specs=(P("data"), P("data")), out_specs=P(), check_vma=False)
  return jax.jit(f)(logits, target)


@pytest.mark.parametrize("kind", ["bce", "mse"])
def test_loss_is_minimal_at_the_target(kind):
  task = _task(**{"task.loss": kind})
  target = np.array([0.1, 0.5, 0.9, 0.3], np.float32)
  exact = np.log(target / (1 - target))
  l_exact, m = _loss(task, exact, target)
  for delta in (-0.5, 0.3):
    l_off, _ = _loss(task, exact + delta, target)
    assert l_off > l_exact
  assert float(m["gap_mae"]) < 1e-5
  if kind == "mse":
    assert float(l_exact) < 1e-10
  # a constant prediction of the mean is the baseline, and it is worse than exact
  assert float(m["baseline_loss"]) > float(l_exact)


def test_bad_task_config_names_the_key():
  from ssl_audio.config_validation import ConfigError, check_config
  c = helpers.load_config("temporal_gap", **{"task.window_seconds": 0.5})
  with pytest.raises(ConfigError, match="config.task.window_seconds"):
    check_config(c)
  c = helpers.load_config("temporal_gap", **{"task.loss": "hinge"})
  with pytest.raises(ConfigError, match="config.task.loss"):
    check_config(c)
  for key, value in [("task.min_gap_seconds", -0.1), ("task.min_gap_seconds", 9.5),
                     ("task.gain_jitter_db", -1.0), ("task.head_features", "sum"),
                     ("task.head_hidden", -1)]:
    with pytest.raises(ConfigError, match=f"config.{key}"):
      check_config(helpers.load_config("temporal_gap", **{key: value}))
