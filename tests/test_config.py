import subprocess
import sys

import pytest

from ssl_audio.config_validation import ConfigError, check_config
from tests import helpers


@pytest.mark.parametrize("key,value", [
    ("batch_size", 0), ("num_train_steps", -1), ("seed", -3),
    ("optimizer.name", "rmsprop"), ("optimizer.learning_rate", 0.0),
    ("optimizer.schedule", "linear"), ("encoder.width", 0.0), ("encoder.norm", "group"),
    ("frontend.fmax", 9000.0), ("frontend.slice_frames", 4), ("data.pretrain", ""),
    ("data.num_workers", -1), ("task.name", "word2vec"), ("log_every_steps", 0)])
def test_invalid_values_name_their_key(key, value):
  c = helpers.load_config("temporal_gap", **{key: value})
  with pytest.raises(ConfigError) as e:
    check_config(c)
  assert f"config.{key.split('.')[0]}" in str(e.value)
  if key != "task.name":
    assert f"config.{key}" in str(e.value)


def test_default_configs_are_valid():
  check_config(helpers.load_config("temporal_gap"))


def test_main_fails_fast_on_a_bad_value(tmp_path):
  r = subprocess.run([sys.executable, "main.py", "--config=configs/temporal_gap.py",
                      f"--workdir={tmp_path}", "--config.batch_size=-4"],
                     cwd=helpers.REPO, capture_output=True, text=True, timeout=120)
  assert r.returncode != 0
  assert "config.batch_size" in r.stderr
  assert not (tmp_path / "checkpoints").exists()     # stopped before building anything



def test_sweep_expands_the_grid():
  import sweep
  runs = sweep.points(["configs/temporal_gap.py"], sweep.parse_grid(["encoder.width=1,4", "seed=0,1,2"]),
                      ["num_train_steps=10"])
  assert len(runs) == 6
  names = [n for n, _ in runs]
  assert len(set(names)) == 6 and "temporal_gap_width4_seed2" in names
  args = dict(runs)["temporal_gap_width4_seed2"]
  assert "--config.encoder.width=4" in args and "--config.num_train_steps=10" in args
