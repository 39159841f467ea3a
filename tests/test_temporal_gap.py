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


def test_sampler_targets_match_known_offsets():
  task = _task()
  clip = np.arange(task.clip_samples, dtype=np.float32)   # each sample holds its index
  rng = np.random.default_rng(0)
  targets = []
  for _ in range(200):
    ex = task.sample(clip, rng)
    assert ex["audio"].shape == (2, CFG.slice_samples)
    s1, s2 = int(ex["audio"][0, 0]), int(ex["audio"][1, 0])
    # windows are contiguous cuts starting at those offsets
    np.testing.assert_array_equal(ex["audio"][0], np.arange(s1, s1 + CFG.slice_samples))
    assert ex["target"] == pytest.approx(abs(s1 - s2) / (task.clip_samples - CFG.slice_samples))
    targets.append(float(ex["target"]))
  targets = np.array(targets)
  assert targets.min() >= 0 and targets.max() <= 1
  # |U1 - U2| has mean 1/3 for independent uniform starts
  assert abs(targets.mean() - 1 / 3) < 0.06


def test_short_clip_keeps_the_nominal_normaliser():
  task = _task()
  clip = np.arange(CFG.slice_samples + 1000, dtype=np.float32)
  ex = task.sample(clip, np.random.default_rng(1))
  assert ex["target"] <= 1000 / (task.clip_samples - CFG.slice_samples) + 1e-9


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
  from ssl_audio.config_validation import ConfigError, validate
  c = helpers.load_config("temporal_gap", **{"task.window_seconds": 0.5})
  with pytest.raises(ConfigError, match="config.task.window_seconds"):
    validate(c)
  c = helpers.load_config("temporal_gap", **{"task.loss": "hinge"})
  with pytest.raises(ConfigError, match="config.task.loss"):
    validate(c)
