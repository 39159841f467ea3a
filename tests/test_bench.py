"""Smoke test of the bench scripts' contract: the last stdout line is one JSON summary."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import REPO


def test_scale_bench_prints_json_summary_last():
  # 2,000 rows: a few seconds; the real figures come from `python bench/scale.py`.
  p = subprocess.run([sys.executable, str(REPO / "bench" / "scale.py"), "--rows", "2000"],
                     capture_output=True, text=True, cwd=REPO, timeout=300)
  assert p.returncode == 0, p.stderr[-2000:]
  out = json.loads(p.stdout.strip().splitlines()[-1])
  assert out["bench"] == "scale"
  assert out["rows"] == 2000
  assert out["load"]["rows"] == 2000
  assert out["first_batch"]["batch_shape"][0] == 64
  assert out["machine"]["cores"] >= 1 and out["command"].startswith("python bench/scale.py")
