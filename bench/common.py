"""Shared helpers of the bench scripts: machine description, timing, JSON summary.

Every bench script prints a one-line JSON summary as its LAST stdout line
(``emit``), so ``bench/run_all.py`` can collect them from subprocesses.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))


def machine() -> dict:
  """CPU model, cores, memory, devices, versions: what every figure is measured on
  (``ssl_audio.environment.describe``, the description stored in checkpoints, plus memory,
  date and torch)."""
  from ssl_audio import environment
  info = environment.describe()
  info["mem_gib"] = None
  try:
    for line in open("/proc/meminfo"):
      if line.startswith("MemTotal"):
        info["mem_gib"] = round(int(line.split()[1]) / 2**20, 1)
        break
  except OSError:
    pass
  info["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
  try:
    import torch
    info["torch"] = torch.__version__
  except ImportError:
    info["torch"] = None
  return info


def best_of(fn, repeats: int, number: int = 1) -> float:
  """Best (smallest) wall time of ``number`` calls of fn, over ``repeats`` tries: seconds per call."""
  best = float("inf")
  for _ in range(repeats):
    t = time.perf_counter()
    for _ in range(number):
      fn()
    best = min(best, (time.perf_counter() - t) / number)
  return best


def interleaved_best(fns: dict, repeats: int, number: int = 1) -> dict:
  """Best seconds per call of each fn, timing them round-robin so load drifts hit all alike."""
  best = {k: float("inf") for k in fns}
  for _ in range(repeats):
    for k, fn in fns.items():
      t = time.perf_counter()
      for _ in range(number):
        fn()
      best[k] = min(best[k], (time.perf_counter() - t) / number)
  return best


def rnd(x, digits: int = 4):
  """Round floats to ``digits`` significant digits for a readable JSON line."""
  if isinstance(x, float):
    if x != x or x in (float("inf"), float("-inf")):
      return None
    return float(f"{x:.{digits}g}")
  if isinstance(x, dict):
    return {k: rnd(v, digits) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [rnd(v, digits) for v in x]
  return x


def emit(name: str, figures: dict, argv=None) -> None:
  """Prints the one-line JSON summary (must stay the last stdout line)."""
  out = {"bench": name, "command": "python " + " ".join([f"bench/{name}.py", *(argv or sys.argv[1:])]),
         "machine": machine(), **rnd(figures)}
  sys.stdout.flush()
  print(json.dumps(out, sort_keys=False), flush=True)


def log(msg: str) -> None:
  """Progress lines go to stderr, so the JSON summary stays the last stdout line."""
  print(msg, file=sys.stderr, flush=True)
