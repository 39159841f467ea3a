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


def write_bad_inputs(folder: Path, seconds: float = 5.0, sr: int = 16000) -> dict[str, dict]:
  """Writes one file of every bad kind into ``folder`` (fuzzing the input pipeline).

  Returns {file name: {"kind", "train", "eval"}}: what training does with it ("left out"
  once when the pipeline is built, "skipped" at each draw and named once, or "used"), and
  what the evaluation does ("skipped" and counted, or "used").
  """
  folder.mkdir(parents=True, exist_ok=True)
  n = int(seconds * sr)
  rng = np.random.default_rng(7)
  noise = (0.1 * rng.standard_normal(n)).astype(np.float32)
  out = {}

  def add(name, kind, train, eval_):
    out[name] = {"kind": kind, "train": train, "eval": eval_}

  sf.write(folder / "full.wav", noise, sr)
  (folder / "truncated_header.wav").write_bytes((folder / "full.wav").read_bytes()[:30])
  (folder / "full.wav").unlink()
  add("truncated_header.wav", "truncated header", "left out", "skipped")
  (folder / "zero_length.wav").write_bytes(b"")
  add("zero_length.wav", "zero-length file", "left out", "skipped")
  for name, value in (("nan.wav", np.nan), ("inf.wav", np.inf)):
    x = noise.copy()
    x[n // 2] = value
    sf.write(folder / name, x, sr, subtype="FLOAT")
    add(name, f"{value} sample", "skipped", "skipped")
  sf.write(folder / "huge_amplitude.wav", noise * 1e7, sr, subtype="FLOAT")
  add("huge_amplitude.wav", "amplitude 1e6 (float WAV)", "skipped", "skipped")
  sf.write(folder / "eight_channel_96k.wav",
           (0.1 * rng.standard_normal((int(seconds * 96000), 8))).astype(np.float32), 96000)
  add("eight_channel_96k.wav", "8 channels at 96 kHz", "used", "used")
  sf.write(folder / "one_sample.wav", np.array([0.5], np.float32), sr)
  add("one_sample.wav", "1 sample", "left out", "used")   # eval pads a short clip to a slice
  (folder / "text.wav").write_text("this is not audio\n")
  add("text.wav", "a text file named .wav", "left out", "skipped")
  sf.write(folder / "unreadable.wav", noise, sr)
  os.chmod(folder / "unreadable.wav", 0)
  readable = os.access(folder / "unreadable.wav", os.R_OK)   # root reads it anyway
  add("unreadable.wav", "mode 000" + (" (readable: root)" if readable else ""),
      "used" if readable else "left out", "used" if readable else "skipped")
  (folder / "directory.flac").mkdir()
  add("directory.flac", "a directory named .flac", "left out", "skipped")
  (folder / "broken_link.wav").symlink_to(folder / "missing_target.wav")
  add("broken_link.wav", "a broken symlink", "left out", "skipped")
  return out


def bad_input_manifest(folder: Path, good: int = 6, seconds: float = 12.0
                       ) -> tuple[Path, dict[str, dict]]:
  """Good clips plus every bad kind in one folder, and a labelled manifest of all of them
  (a folder scan would not list the directory nor the broken symlink)."""
  folder.mkdir(parents=True, exist_ok=True)
  good_paths = write_clips(folder, n=good, seconds=seconds)
  bad = write_bad_inputs(folder)
  from ssl_audio.manifest import write_manifest
  names = [p.name for p in good_paths] + sorted(bad)
  rows = [{"path": name, "label": "ab"[k % 2]} for k, name in enumerate(names)]
  return write_manifest(folder / "manifest.csv", rows), bad
