"""Helpers for tests: tiny configs, synthetic clips, subprocess runs with fake devices."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]


def write_clips(folder: Path, n: int = 6, seconds: float = 12.0, sr: int = 16000,
                prefix: str = "clip") -> list[Path]:
  """Clips whose spectra drift over time (so a temporal task has something to learn)."""
  rng = np.random.default_rng(0)
  paths = []
  t = np.arange(int(seconds * sr)) / sr
  for i in range(n):
    f0 = 150.0 * (1 + i)
    phase = 2 * np.pi * f0 * (t + 0.5 * t ** 2 / seconds)        # rising chirp
    x = 0.3 * np.sin(phase) * (0.6 + 0.4 * np.sin(2 * np.pi * t / seconds))
    x += 0.02 * rng.standard_normal(len(t))
    p = folder / f"{prefix}{i}.wav"
    sf.write(p, x.astype(np.float32), sr)
    paths.append(p)
  return paths


def load_config(name: str, **overrides):
  """configs/<name>.py's get_config() with dotted-key overrides."""
  spec = importlib.util.spec_from_file_location(f"configs.{name}", REPO / "configs" / f"{name}.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  c = mod.get_config()
  for key, value in overrides.items():
    node = c
    parts = key.split(".")
    for p in parts[:-1]:
      node = node[p]
    node[parts[-1]] = value
  return c


def tiny(c, data: str, steps: int = 3, batch: int = 8):
  """Shrinks a config to a test size: few steps, small batch, in-process decoding."""
  c.num_train_steps = steps
  c.batch_size = batch
  c.log_every_steps = 1
  c.checkpoint_every_steps = 1000
  c.data.num_workers = 0
  if c.task.name and "window_seconds" in c.task:
    c.task.window_seconds = 4.0
  if c.get("data") and c.data.get("train") is not None and c.data.train:
    c.data.train = data
  c.data.pretrain = data
  return c


def run_python(code: str, devices: int = 1, timeout: int = 600, env: dict | None = None) -> dict:
  """Runs code in a fresh interpreter with N fake CPU devices; returns its last stdout line as JSON."""
  e = dict(os.environ)
  e["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  e["JAX_PLATFORMS"] = "cpu"
  e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
  e.update(env or {})
  r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                     timeout=timeout, env=e, cwd=REPO)
  if r.returncode != 0:
    raise RuntimeError(f"subprocess failed ({r.returncode}):\n{r.stderr[-4000:]}")
  return json.loads(r.stdout.strip().splitlines()[-1])


def find_real_audio() -> Path | None:
  """A file from the built offline suite's pretraining pool, if the suite is there."""
  root = Path(os.environ.get("SSL_AUDIO_DATA", Path.home() / ".cache" / "ssl_audio"))
  for pattern in ("**/pretrain*.csv", "**/*.csv"):
    for manifest in sorted(root.glob(pattern)):
      try:
        from ssl_audio.manifest import read_manifest
        m = read_manifest(manifest)
      except Exception:
        continue
      for i in range(min(len(m), 50)):
        p = Path(m.path(i))
        if p.is_file() and sf.info(p).duration >= 2.0:
          return p
  return None


def final_state(workdir) -> tuple[int, dict]:
  """(step, state as nested dicts of numpy arrays) of the latest checkpoint in workdir."""
  import orbax.checkpoint as ocp
  from ssl_audio import checkpoint
  mgr = checkpoint.manager(str(workdir), read_only=True)
  step = mgr.latest_step()
  with ocp.StandardCheckpointer() as c:
    tree = c.restore(os.path.join(checkpoint.checkpoint_dir(str(workdir)), str(step), "state"))
  return step, tree


def max_abs_diff(a, b) -> float:
  import jax
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb) and len(la) > 0
  return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
             for x, y in zip(la, lb))
