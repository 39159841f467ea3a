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


def test_step_profile_sums_kernels_by_name_and_reads_hlo_shapes(tmp_path, monkeypatch):
  # The parsing half of bench/step_profile.py, on a small hand-made Perfetto trace.
  import gzip
  monkeypatch.syspath_prepend(str(REPO / "bench"))
  import step_profile as sp
  events = [{"ph": "X", "name": "ynn_fusion.3", "dur": 40}, {"ph": "X", "name": "ynn_fusion.3", "dur": 60},
            {"ph": "X", "name": "transpose_copy_fusion", "dur": 25},
            {"ph": "X", "name": "ThunkExecutor::Execute", "dur": 999},   # a wrapper, not a kernel
            {"ph": "X", "name": "$cmp.py:79 run", "dur": 999},           # a Python frame
            {"ph": "i", "name": "ynn_fusion.3"}]                         # an instant: no duration
  (tmp_path / "plugins").mkdir()
  with gzip.open(tmp_path / "plugins" / "host.trace.json.gz", "wt") as f:
    json.dump({"traceEvents": events}, f)
  assert sp.kernel_times(str(tmp_path)) == {"ynn_fusion.3": 100, "transpose_copy_fusion": 25}
  hlo = ("  %ynn_fusion.3 = f32[8,1,3,8]{3,2,1,0} fusion(%a, %b), kind=kCustom\n"
         "  ROOT %tuple.1 = (f32[2]{0}) tuple(%c)\n")
  assert sp.hlo_shapes(hlo) == {"ynn_fusion.3": "f32[8,1,3,8]{3,2,1,0}", "tuple.1": "(f32[2]{0})"}
