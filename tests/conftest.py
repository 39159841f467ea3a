"""Shared fixtures: small audio folders written on the fly, the built suite when present."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# One persistent XLA compilation cache per test run, shared by the xdist workers and the
# subprocesses they start (set before JAX is imported). Many tests train or embed the
# same tiny models; a compile of one already seen is read back: a 2-step run of one tiny
# config took 26 s the first time and 3 s the second. Keyed by the HLO, flags and
# versions, so a hit is the same executable (results are unchanged). The controller loads
# this file first; the workers inherit its variable.
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = str(
      Path(tempfile.gettempdir()) / f"ssl_audio_test_xla_cache_{os.getpid()}")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import numpy as np
import pytest
import soundfile as sf

import data.suite  # noqa: F401  registers suite: in every test process, as main.py does
import eval.evaluators  # noqa: F401  and the linear_probe evaluator
from tests import helpers


def pytest_sessionfinish(session, exitstatus):
  if _OWN_CACHE and not hasattr(session.config, "workerinput"):   # after every worker
    shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


@pytest.fixture(scope="session")
def audio_folder(tmp_path_factory) -> Path:
  """Six 12-s clips (chirps with a slow amplitude envelope plus noise), 16 kHz mono."""
  folder = tmp_path_factory.mktemp("audio")
  helpers.write_clips(folder, n=6, seconds=12.0)
  return folder


@pytest.fixture(scope="session")
def labelled_folder(tmp_path_factory) -> Path:
  """A folder-per-class tree: two classes of 4 clips of 2 s (low vs high tone)."""
  folder = tmp_path_factory.mktemp("labelled")
  rng = np.random.default_rng(1)
  t = np.arange(32000) / 16000
  for label, f0 in (("low", 220.0), ("high", 1760.0)):
    (folder / label).mkdir()
    for i in range(4):
      x = 0.3 * np.sin(2 * np.pi * f0 * (1 + 0.05 * i) * t) + 0.01 * rng.standard_normal(len(t))
      sf.write(folder / label / f"{label}{i}.wav", x.astype(np.float32), 16000)
  return folder


@pytest.fixture(scope="session")
def real_audio_file() -> Path:
  """A real recording from the offline suite; skips when the suite is not built."""
  path = helpers.find_real_audio()
  if path is None:
    pytest.skip("offline suite not built (python -m data.suite build)")
  return path
