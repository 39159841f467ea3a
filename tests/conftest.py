"""Shared fixtures: small audio folders written on the fly, the built suite when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import data.suite  # noqa: F401  registers suite: in every test process, as main.py does
import eval.evaluators  # noqa: F401  and the linear_probe evaluator
from tests import helpers


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
