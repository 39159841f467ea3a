"""Kill a run with SIGKILL after a checkpoint, resume it, and get the same parameters."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests import helpers

STEPS = 12


def _cmd(workdir, data):
  return [sys.executable, "main.py", "--config=configs/temporal_gap.py", f"--workdir={workdir}",
          f"--config.data.pretrain={data}", f"--config.num_train_steps={STEPS}",
          "--config.batch_size=8", "--config.checkpoint_every_steps=3",
          "--config.log_every_steps=1", "--config.data.num_workers=0",
          "--config.task.window_seconds=4.0", "--config.keep_checkpoints=10",
          # augmentation draws and the pool's input statistics must resume exactly too
          "--config.augment.gain_db=6", "--config.augment.time_masks=1",
          "--config.augment.mixup_ratio=0.2", "--config.encoder.input_norm=pool"]


def _env():
  return {**os.environ, "PYTHONPATH": str(helpers.REPO), "JAX_PLATFORMS": "cpu"}


@pytest.mark.slow   # ~90 s: two training processes; the SIGTERM test below stays in the default run
def test_sigkill_then_resume_is_bit_exact(audio_folder, tmp_path):
  ref, killed = tmp_path / "ref", tmp_path / "killed"
  subprocess.run(_cmd(ref, audio_folder), check=True, cwd=helpers.REPO, env=_env(),
                 capture_output=True, timeout=600)

  p = subprocess.Popen(_cmd(killed, audio_folder), cwd=helpers.REPO, env=_env(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  first_ckpt = killed / "checkpoints" / "3"
  deadline = time.time() + 600
  while not first_ckpt.is_dir() and p.poll() is None and time.time() < deadline:
    time.sleep(0.02)
  p.send_signal(signal.SIGKILL)
  p.wait()
  assert p.returncode == -signal.SIGKILL, "the run ended before it could be killed"
  killed_at = helpers.final_state(killed)[0]
  assert killed_at < STEPS

  subprocess.run(_cmd(killed, audio_folder), check=True, cwd=helpers.REPO, env=_env(),
                 capture_output=True, timeout=600)
  step_a, a = helpers.final_state(ref)
  step_b, b = helpers.final_state(killed)
  assert step_a == step_b == STEPS
  assert helpers.max_abs_diff(a["params"], b["params"]) == 0.0
  assert helpers.max_abs_diff(a["opt_state"], b["opt_state"]) == 0.0
  # the logged losses after the resume point match the uninterrupted run
  import json
  la = {r["step"]: r["loss"] for r in map(json.loads, open(ref / "metrics.jsonl"))}
  lb = {r["step"]: r["loss"] for r in map(json.loads, open(killed / "metrics.jsonl"))}
  for s in range(killed_at + 1, STEPS + 1):
    assert la[s] == lb[s]


def test_sigterm_saves_a_checkpoint_and_exits(audio_folder, tmp_path):
  wd = tmp_path / "term"
  cmd = _cmd(wd, audio_folder)
  cmd[cmd.index(f"--config.num_train_steps={STEPS}")] = "--config.num_train_steps=100000"
  cmd[cmd.index("--config.checkpoint_every_steps=3")] = "--config.checkpoint_every_steps=100000"
  p = subprocess.Popen(cmd, cwd=helpers.REPO, env=_env(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
  metrics = wd / "metrics.jsonl"
  deadline = time.time() + 600
  while (not metrics.exists() or metrics.stat().st_size == 0) and time.time() < deadline:
    time.sleep(0.05)
  p.send_signal(signal.SIGTERM)
  assert p.wait(timeout=120) == 0
  step, state = helpers.final_state(wd)
  assert 1 <= step < 100000
  assert int(np.asarray(state["step"])) == step
