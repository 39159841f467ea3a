"""Faults injected into tiny runs: killed trainers, damaged checkpoints, non-finite losses,
a full disk. Each test names a row of the README's Reliability table."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests import helpers


def _env():
  return {**os.environ, "PYTHONPATH": str(helpers.REPO), "JAX_PLATFORMS": "cpu"}


def _train_cmd(workdir, data, steps, *extra):
  return [sys.executable, "main.py", "--config=configs/temporal_gap.py", f"--workdir={workdir}",
          f"--config.data.pretrain={data}", f"--config.num_train_steps={steps}",
          "--config.batch_size=4", "--config.log_every_steps=1",
          "--config.task.window_seconds=4.0", *extra]


def _alive(procs):
  import psutil
  out = []
  for p in procs:
    try:
      if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
        out.append(p)
    except psutil.NoSuchProcess:
      pass
  return out


_ITERATE_FOREVER = """
import sys
from ssl_audio import input_pipeline, manifest, tasks
from tests import helpers
c = helpers.tiny(helpers.load_config("temporal_gap"), sys.argv[1])
from ssl_audio.state import build_task
task = build_task(c)
it = input_pipeline.make_train_iterator(manifest.resolve(sys.argv[1]), task, 4, 0, num_workers=2)
while True:
  next(it)
"""


def _kill_and_check_children(p):
  """Waits for p's Grain workers, SIGKILLs p, asserts every child of p exits."""
  psutil = pytest.importorskip("psutil")
  try:
    deadline = time.time() + 300
    children = []
    while len(children) < 2 and p.poll() is None and time.time() < deadline:
      time.sleep(0.2)
      children = [c for c in psutil.Process(p.pid).children(recursive=True)
                  if "resource_tracker" not in " ".join(c.cmdline())]
    assert p.poll() is None, "the run ended before it could be killed"
    children = psutil.Process(p.pid).children(recursive=True)
    assert len(children) >= 2, f"expected Grain workers, found {children}"
  finally:
    p.send_signal(signal.SIGKILL)
    p.wait()
  deadline = time.time() + 60   # a worker still importing exits when it reaches its init
  while _alive(children) and time.time() < deadline:
    time.sleep(0.2)
  survivors = _alive(children)
  for s in survivors:   # do not leak them into the rest of the test session
    s.kill()
  assert not survivors, f"orphaned workers: {[s.pid for s in survivors]}"


def test_sigkill_of_a_pipeline_leaves_no_grain_workers(audio_folder):
  """No orphans (fast): a process iterating a 2-worker pipeline is SIGKILLed."""
  p = subprocess.Popen([sys.executable, "-c", _ITERATE_FOREVER, str(audio_folder)],
                       cwd=helpers.REPO, env=_env(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
  _kill_and_check_children(p)


@pytest.mark.slow
def test_sigkill_of_the_trainer_leaves_no_grain_workers(audio_folder, tmp_path):
  """No orphans: SIGKILL of main.py (data.num_workers=2) takes its workers down with it."""
  p = subprocess.Popen(_train_cmd(tmp_path / "wd", audio_folder, 100000,
                                  "--config.data.num_workers=2",
                                  "--config.checkpoint_every_steps=100000"),
                       cwd=helpers.REPO, env=_env(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
  _kill_and_check_children(p)
