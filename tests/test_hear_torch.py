"""ssl_audio.hear_torch (the HEAR API as a torch module) and the HEAR task export; the real
HEAR tools (hearvalidator, heareval) run on them in a slow test, in their own venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import helpers
from tests.test_pretrained_hear import build_trained_workdir


@pytest.fixture(scope="module")
def trained(tmp_path_factory, audio_folder, labelled_folder) -> Path:
  return build_trained_workdir(tmp_path_factory, audio_folder, labelled_folder)


def test_core_does_not_import_torch():
  code = ("import sys; import ssl_audio.train, ssl_audio.hear, ssl_audio.pretrained, data.suite, "
          "eval.linear_eval; print('torch' in sys.modules)")
  r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=helpers.REPO,
                     env=dict(os.environ, JAX_PLATFORMS="cpu"), timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  assert r.stdout.strip().splitlines()[-1] == "False"


def test_torch_module_gives_the_hear_embeddings(trained):
  torch = pytest.importorskip("torch", reason="pip install -r requirements-hear.txt")
  from ssl_audio import hear, hear_torch
  model = hear_torch.load_model(str(trained))
  assert isinstance(model, torch.nn.Module) and model.sample_rate == 16000
  assert model.scene_embedding_size == model.timestamp_embedding_size == 128
  model.to("cpu")                                        # what the HEAR tools do first
  audio = torch.rand(3, 24000) * 2 - 1
  scene = hear_torch.get_scene_embeddings(audio, model)
  emb, ts = hear_torch.get_timestamp_embeddings(audio, model)
  assert scene.dtype == emb.dtype == ts.dtype == torch.float32
  assert scene.shape == (3, 128) and emb.shape[:2] == ts.shape and emb.shape[0] == 3
  ref = hear.load_model(str(trained))
  np.testing.assert_array_equal(scene.numpy(), hear.get_scene_embeddings(audio.numpy(), ref))
  ref_emb, ref_ts = hear.get_timestamp_embeddings(audio.numpy(), ref)
  np.testing.assert_array_equal(emb.numpy(), ref_emb)
  np.testing.assert_array_equal(ts.numpy(), ref_ts)
  assert torch.equal(model(audio), scene)


def test_export_hear_task_format(labelled_folder, tmp_path):
  from data import hear_export
  from ssl_audio import manifest as manifest_lib
  m = manifest_lib.resolve(f"folder:{labelled_folder}")
  task = hear_export.export(m, tmp_path, "toy")
  meta = json.loads((task / "task_metadata.json").read_text())
  assert meta["embedding_type"] == "scene" and meta["prediction_type"] == "multiclass"
  assert meta["split_mode"] == "trainvaltest" and meta["splits"] == ["train", "valid", "test"]
  assert meta["sample_duration"] == pytest.approx(2.0)
  assert (task / "labelvocabulary.csv").read_text().splitlines() == ["idx,label", "0,high", "1,low"]
  names = []
  for s in ("train", "valid", "test"):
    targets = json.loads((task / f"{s}.json").read_text())
    assert targets, f"empty {s}"
    for name, labels in targets.items():
      assert labels in (["high"], ["low"])
      info = __import__("soundfile").info(str(task / "16000" / s / name))
      assert info.samplerate == 16000 and info.channels == 1 and info.frames == 32000
    names += list(targets)
  assert len(names) == len(set(names)) == len(m)       # every clip once, in one split


def hear_venv() -> Path | None:
  v = Path(os.environ.get("HEAR_VENV", Path.home() / ".cache/ssl_audio/hear-venv"))
  return v if (v / "bin" / "hear-validator").exists() else None


@pytest.mark.slow
def test_real_hear_tools(trained, tmp_path):
  """tools/hear_validate.sh: the real hear-validator accepts the module, and heareval's
  embedding runner writes embeddings of an exported suite task."""
  venv = hear_venv()
  if venv is None:
    pytest.skip("no HEAR venv (tools/hear_validate.sh creates one; set HEAR_VENV)")
  from data import suite
  if not suite.Builder().done("instrument"):
    pytest.skip("suite not built: python -m data.suite build")
  env = dict(os.environ, HEAR_VENV=str(venv), HEAR_OUT=str(tmp_path))
  r = subprocess.run(["bash", "tools/hear_validate.sh", str(trained), "instrument", "12"],
                     capture_output=True, text=True, cwd=helpers.REPO, env=env, timeout=1200)
  assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
  assert "Looks good!" in r.stdout
  task = tmp_path / "embeddings" / "ssl_audio.hear_torch" / "ssl_audio_instrument"
  assert (task / ".done.embeddings").exists()
  for s in ("train", "valid", "test"):
    n, d = json.loads((task / f"{s}.embedding-dimensions.json").read_text())
    assert (n, d) == (12, 128)
    e = np.memmap(task / f"{s}.embeddings.npy", dtype=np.float32, mode="r", shape=(n, d))
    assert np.isfinite(e).all() and np.abs(e).max() > 0
