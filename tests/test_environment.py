"""The environment a run was trained on: described, stored in every checkpoint, and a resume on
another one recorded (from the step it took over) and logged."""

import jax
import pytest

from tests import helpers


def test_describe_names_this_process():
  from ssl_audio import environment
  e = environment.describe()
  assert isinstance(e["cpu"], str) and e["cpu"]
  assert e["jax"] == jax.__version__
  assert e["backend"] == jax.default_backend()
  assert e["devices"] == len(jax.devices()) and e["processes"] == jax.process_count()
  assert set(e["cpu_flags"]) <= set(environment._ISA)
  assert set(environment.NUMERIC_KEYS) <= set(e)


def test_history_appends_only_a_different_environment(caplog):
  from ssl_audio import environment
  a = {"cpu": "AMD EPYC", "cpu_flags": ["avx2"], "jax": "0.7.0", "cores": 2}
  first = environment.history(None, 0, a)
  assert first == [dict(a, from_step=0)]
  # context keys (cores) do not make a new entry; numeric ones do, from the resume step
  assert environment.history({"environment": first}, 500, dict(a, cores=16)) == first
  assert not caplog.records
  b = dict(a, cpu="Intel Xeon", cpu_flags=["avx2", "avx512f"])
  with caplog.at_level("WARNING"):
    second = environment.history({"environment": first}, 500, b)
  assert second == first + [dict(b, from_step=500)]
  assert "step 500" in caplog.text and "'AMD EPYC' -> 'Intel Xeon'" in caplog.text
  assert "cpu_flags" in caplog.text and "jax" not in environment.differences(a, b)
  # a checkpoint written before environments were stored: the list starts at the resume step
  assert environment.history({"config": {}}, 750, a) == [dict(a, from_step=750)]


@pytest.mark.slow   # ~30 s: two tiny trainings (the default run checks the fixture's run instead)
def test_checkpoints_keep_the_environments_of_a_resumed_run(audio_folder, tmp_path, monkeypatch,
                                                            caplog):
  """A tiny run, resumed with a (patched) other CPU: the newest checkpoint lists both environments
  with the step each took over; load_pretrained shows them; the first checkpoint keeps one."""
  from ssl_audio import checkpoint as ckpt
  from ssl_audio import environment, pretrained, train
  c = helpers.tiny(helpers.load_config("temporal_gap"), str(audio_folder), steps=2, batch=4)
  c.checkpoint_every_steps = 2
  c.keep_checkpoints = 10
  train.train_and_evaluate(c, str(tmp_path))
  here = environment.describe()
  monkeypatch.setattr(environment, "describe", lambda: dict(here, cpu="Other CPU 9000"))
  c.num_train_steps = 4
  with caplog.at_level("WARNING"):
    train.train_and_evaluate(c, str(tmp_path))
  assert "resuming at step 2 in another environment" in caplog.text
  assert "'Other CPU 9000'" in caplog.text
  envs = pretrained.load_pretrained(str(tmp_path)).info["environment"]
  assert [(e["cpu"], e["from_step"]) for e in envs] == [(here["cpu"], 0), ("Other CPU 9000", 2)]
  assert envs[0]["jax"] == jax.__version__
  meta2, _ = ckpt.read_meta(str(tmp_path), 2)
  assert [e["from_step"] for e in meta2["environment"]] == [0]


_GRAD = """
import sys, numpy as np, jax, jax.numpy as jnp
from ssl_audio import encoder as encoder_lib
enc = encoder_lib.Encoder()
x = jax.random.normal(jax.random.key(0), (16, 96, 64, 1))
v = enc.init(jax.random.key(1), x)
g = jax.jit(jax.grad(lambda p: jnp.mean(enc.apply({**v, "params": p}, x) ** 2)))(v["params"])
np.save(sys.argv[1], np.concatenate([np.asarray(a).ravel() for a in jax.tree.leaves(g)]))
"""


@pytest.mark.slow   # ~30 s: three processes
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's instruction-set cap")
def test_another_instruction_set_rounds_the_gradient_otherwise(tmp_path):
  """Why the environment is stored: one encoder gradient, computed twice in fresh processes, is
  bit-identical; with XLA:CPU capped to SSE4.2 (another CPU, in effect) it differs by rounding."""
  import os
  import subprocess
  import sys
  import numpy as np
  from ssl_audio import environment
  if "avx2" not in environment.describe()["cpu_flags"]:
    pytest.skip("this CPU has no AVX2 to compare SSE4.2 against")

  def grad(name, xla_flags=""):
    env = {**os.environ, "PYTHONPATH": str(helpers.REPO), "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": xla_flags}
    subprocess.run([sys.executable, "-c", _GRAD, str(tmp_path / name)], check=True, env=env,
                   capture_output=True, timeout=300)
    return np.load(tmp_path / f"{name}.npy")

  a, b, c = grad("a"), grad("b"), grad("c", "--xla_cpu_max_isa=SSE4_2")
  assert np.array_equal(a, b)
  assert not np.array_equal(a, c)
  assert np.max(np.abs(a - c)) < 1e-5 * np.max(np.abs(a))   # rounding, not another computation


def test_bench_machine_builds_on_it():
  import sys
  sys.path.insert(0, str(helpers.REPO / "bench"))
  try:
    import common
  finally:
    sys.path.remove(str(helpers.REPO / "bench"))
  from ssl_audio import environment
  m = common.machine()
  e = environment.describe()
  assert {k: m[k] for k in e} == e
  assert m["mem_gib"] is None or m["mem_gib"] > 0
  assert "date" in m and "torch" in m


if __name__ == "__main__":
  pytest.main([__file__, "-q"])
