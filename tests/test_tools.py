"""Run helpers: sweep.py --parallel, tools/timed_pretrain.py, data/transcode.py, bench/extract.py."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tarfile
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from ssl_audio import manifest
from tests import helpers
from tests.helpers import REPO


def test_run_parallel_runs_n_at_once_logs_each_and_names_failures(tmp_path):
  import sweep
  stamp = "import sys, time; print('start', time.time(), flush=True); time.sleep(1.0); sys.exit({})"
  jobs = [(f"j{i}", [sys.executable, "-c", stamp.format(1 if i == 2 else 0)]) for i in range(4)]
  t = time.time()
  failed = sweep.run_parallel(jobs, str(tmp_path), parallel=2)
  assert failed == ["j2"]
  starts = sorted(float((tmp_path / f"j{i}.log").read_text().split()[1]) - t for i in range(4))
  assert starts[1] < 0.9 and starts[2] > 0.9      # two at a time: the third waited for a slot


def test_run_parallel_passes_sigterm_on(tmp_path):
  # A preempted sweep stops its runs with SIGTERM (they checkpoint) and starts no more.
  import sweep
  code = ("import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: (print('TERM', flush=True),"
          " sys.exit(3)))\nprint('up', flush=True)\ntime.sleep(30)")
  jobs = [(f"j{i}", [sys.executable, "-c", code]) for i in range(3)]
  old = signal.getsignal(signal.SIGTERM)
  threading.Timer(2.0, lambda: signal.raise_signal(signal.SIGTERM)).start()
  try:
    failed = sweep.run_parallel(jobs, str(tmp_path), parallel=2)
  finally:
    signal.signal(signal.SIGTERM, old)
  assert sorted(failed) == ["j0", "j1"]               # both stopped through their handler
  assert all("TERM" in (tmp_path / f"j{i}.log").read_text() for i in (0, 1))
  assert not (tmp_path / "j2.log").exists()           # never started


def test_fitted_steps_follow_the_slowest_run():
  sys.path.insert(0, str(REPO / "tools"))
  import timed_pretrain as tp
  rates = {"a": (200, 10.0), "b": (300, 4.0)}
  assert tp.fitted_steps(rates, seconds_left=300, startup_s=50) == 1000   # 4 steps/s x 250 s
  assert tp.fitted_steps(rates, seconds_left=10, startup_s=50) == 100     # never below 100


def test_pack_keeps_the_newest_checkpoints_that_fit(tmp_path):
  sys.path.insert(0, str(REPO / "tools"))
  import timed_pretrain as tp
  wd = tmp_path / "run"
  for step in (100, 200):
    (wd / "checkpoints" / str(step)).mkdir(parents=True)
    (wd / "checkpoints" / str(step) / "w").write_bytes(b"x" * 600_000)
  (wd / "tensorboard").mkdir()
  (wd / "tensorboard" / "events").write_bytes(b"e" * 1000)
  (wd / "metrics.jsonl").write_text('{"step": 200, "loss": 1.0}\n')
  out = tmp_path / "out"
  out.mkdir()
  names = lambda p: sorted(tarfile.open(p).getnames())
  both = names(tp.pack(wd, out, max_mib=2.0))
  assert "run/checkpoints/100/w" in both and "run/checkpoints/200/w" in both
  assert not any("tensorboard" in n for n in both)
  newest = names(tp.pack(wd, out, max_mib=1.0))      # room for one: the newest
  assert "run/checkpoints/200/w" in newest and "run/checkpoints/100/w" not in newest
  assert tp.last_metrics(wd) == {"step": 200, "loss": 1.0}


def test_transcode_keeps_columns_cuts_segments_and_stays_close(tmp_path):
  from data import transcode
  (tmp_path / "src").mkdir()
  helpers.write_clips(tmp_path / "src", n=2, seconds=3.0)
  (tmp_path / "bad.wav").write_bytes(b"not audio")
  manifest.write_manifest(tmp_path / "m.csv", [
      {"path": "src/clip0.wav", "speaker": "s0", "label": "a"},
      {"path": "bad.wav", "speaker": "s2", "label": "a"},
      {"path": "src/clip1.wav", "speaker": "s1", "label": "b", "start": 0.5, "end": 2.0}])
  path = transcode.transcode(f"manifest:{tmp_path / 'm.csv'}", str(tmp_path / "out"), kbps=24)
  m = manifest.read_manifest(path)
  assert len(m) == 2                                  # the undecodable row is left out
  assert list(m.column("speaker")) == ["s0", "s1"] and list(m.column("label")) == ["a", "b"]
  assert all(p.endswith(".opus") for p in m.column("path"))
  assert sf.info(m.path(1)).frames == 24000            # the segment, not the file
  assert abs(float(m.column("duration")[0]) - 3.0) < 1e-3
  assert transcode.log_mel_error(f"manifest:{tmp_path / 'm.csv'}", path, n=2) < 0.6


@pytest.mark.slow   # a JAX compile of the encoder: ~20 s on 2 cores
def test_extract_bench_prints_json_summary_last():
  p = subprocess.run([sys.executable, str(REPO / "bench" / "extract.py"), "--widths", "1",
                      "--batch", "16", "--repeats", "1", "--number", "1", "--no-torch"],
                     capture_output=True, text=True, cwd=REPO, timeout=300)
  assert p.returncode == 0, p.stderr[-2000:]
  out = json.loads(p.stdout.strip().splitlines()[-1])
  assert out["bench"] == "extract" and out["results"][0]["jax_slices_per_s"] > 0
