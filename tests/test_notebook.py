"""notebooks/quickstart.ipynb, executed end to end by a Jupyter kernel (nbclient), on the
tiny 2-step checkpoint of test_pretrained_hear and a synthetic folder-per-class task."""

from __future__ import annotations

import os

import pytest

from tests import helpers
from tests.test_pretrained_hear import build_trained_workdir

NOTEBOOK = helpers.REPO / "notebooks" / "quickstart.ipynb"


def run_notebook(env: dict, timeout: int = 600):
  nbformat = pytest.importorskip("nbformat", reason="pip install -r requirements-notebook.txt")
  nbclient = pytest.importorskip("nbclient", reason="pip install -r requirements-notebook.txt")
  pytest.importorskip("ipykernel", reason="pip install -r requirements-notebook.txt")
  nb = nbformat.read(NOTEBOOK, as_version=4)
  old = {k: os.environ.get(k) for k in env}
  os.environ.update(env)            # the kernel inherits the environment: the parameters
  try:
    nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
  finally:
    for k, v in old.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
  return nb


def outputs(nb) -> tuple[str, int]:
  """All text the cells printed, and the number of images they drew."""
  text, images = [], 0
  for cell in nb.cells:
    for o in cell.get("outputs", []):
      if o.get("output_type") == "error":
        raise AssertionError(f"cell failed: {o.get('ename')}: {o.get('evalue')}")
      text.append(o.get("text", "") or o.get("data", {}).get("text/plain", ""))
      images += "image/png" in o.get("data", {})
  return "\n".join(text), images


@pytest.mark.slow   # a kernel, imports and three jit compiles: 20-60 s on 2 shared cores
def test_quickstart_notebook_runs(tmp_path_factory, audio_folder, labelled_folder):
  wd = build_trained_workdir(tmp_path_factory, audio_folder, labelled_folder)
  nb = run_notebook({"QUICKSTART_WORKDIR": str(wd), "QUICKSTART_BENCHMARK": f"folder:{labelled_folder}",
                     "QUICKSTART_MAX_CLIPS": "8", "QUICKSTART_PROBE_STEPS": "50",
                     "QUICKSTART_BATCH_SIZE": "16", "JAX_PLATFORMS": "cpu"})
  text, images = outputs(nb)
  assert images == 3                                   # log-mel, PCA, probe bars
  assert "8 clips, classes: ['high', 'low']" in text
  assert "trained: test accuracy" in text and "untrained: test accuracy" in text
  assert "'step': 2" in text                           # the checkpoint it loaded


@pytest.mark.slow
def test_quickstart_notebook_on_the_suite(tmp_path_factory, audio_folder, labelled_folder):
  from data import suite
  if not suite.Builder().done("digits"):
    pytest.skip("suite not built: python -m data.suite build")
  wd = build_trained_workdir(tmp_path_factory, audio_folder, labelled_folder)
  nb = run_notebook({"QUICKSTART_WORKDIR": str(wd), "QUICKSTART_BENCHMARK": "",
                     "QUICKSTART_MAX_CLIPS": "60", "QUICKSTART_PROBE_STEPS": "100",
                     "QUICKSTART_BATCH_SIZE": "64", "JAX_PLATFORMS": "cpu"})
  text, images = outputs(nb)
  assert "suite:digits" in text and images == 3
