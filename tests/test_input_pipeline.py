import logging as pylogging

import numpy as np
import pytest
import soundfile as sf

from ssl_audio import frontend as fe
from ssl_audio import input_pipeline, manifest, tasks
from ssl_audio.audio import BadAudio, load_audio
from tests import helpers

CFG = fe.FrontendConfig()


def _task(window=4.0):
  return tasks.make_task(helpers.load_config("temporal_gap", **{"task.window_seconds": window}), CFG)


@pytest.fixture()
def mixed_folder(tmp_path):
  """Three good clips (one stereo 44.1 kHz) and one of each kind of bad file."""
  helpers.write_clips(tmp_path, n=2, seconds=5.0)
  t = np.arange(44100 * 5) / 44100
  stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], 1) * 0.3
  sf.write(tmp_path / "stereo44k.wav", stereo.astype(np.float32), 44100)
  (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 50)
  sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
  sf.write(tmp_path / "silent.wav", np.zeros(16000 * 3, np.float32), 16000)
  sf.write(tmp_path / "short.wav", np.random.default_rng(0).standard_normal(4000).astype(np.float32) * .1, 16000)
  nan = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * .1
  nan[100] = np.nan
  sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
  good = tmp_path / "clip0.wav"
  data = good.read_bytes()
  (tmp_path / "truncated.wav").write_bytes(data[:60])
  return tmp_path


def test_load_audio_downmixes_and_resamples(mixed_folder):
  x = load_audio(str(mixed_folder / "stereo44k.wav"))
  assert x.ndim == 1 and x.dtype == np.float32
  assert abs(len(x) - 16000 * 5) <= 2
  seg = load_audio(str(mixed_folder / "stereo44k.wav"), start=1.0, end=2.5)
  assert abs(len(seg) - 24000) <= 2


@pytest.mark.parametrize("name,reason", [("corrupt.wav", "decode"), ("empty.wav", "empty"),
                                         ("silent.wav", "silent"), ("short.wav", "too short"),
                                         ("nan.wav", "NaN"), ("truncated.wav", "decode|empty|too short")])
def test_bad_files_raise_bad_audio(mixed_folder, name, reason):
  with pytest.raises(BadAudio, match=reason):
    load_audio(str(mixed_folder / name), min_samples=CFG.slice_samples)


def test_bad_files_are_skipped_counted_and_named_once(mixed_folder, caplog):
  m = manifest.resolve(str(mixed_folder))
  assert len(m) == 9
  it = input_pipeline.make_train_iterator(m, _task(), batch_size=8, seed=0)
  with caplog.at_level(pylogging.WARNING):
    batches = [next(it) for _ in range(6)]
  for b in batches:
    assert b["audio"].shape == (8, 2, CFG.slice_samples) and b["audio"].dtype == np.int16
    assert np.isfinite(b["target"]).all()
  assert it.skipped > 0 and it.good == 48
  # too short or unreadable: left out once when the pipeline is built, never drawn
  assert sorted(p.rsplit("/", 1)[-1] for p in it.filtered) == [
      "corrupt.wav", "empty.wav", "short.wav", "truncated.wav"]
  # the others fail only when decoded: skipped at each draw, named once
  warned = [r.getMessage() for r in caplog.records if "skipping audio" in r.getMessage()]
  names = sorted({w.split()[2].rsplit("/", 1)[-1].rstrip(":") for w in warned})
  assert names == ["nan.wav", "silent.wav"]
  assert len(warned) == len(names)            # one warning per file, not per retry


def test_all_bad_files_stop_with_a_clear_error(tmp_path):
  (tmp_path / "a.wav").write_bytes(b"not audio")
  sf.write(tmp_path / "b.wav", np.zeros(16000 * 5, np.float32), 16000)
  it = input_pipeline.make_train_iterator(manifest.resolve(str(tmp_path)), _task(), 4, seed=0)
  with pytest.raises(input_pipeline.AllFilesBad, match="no usable audio"):
    next(it)


def test_deterministic_and_resumable(audio_folder):
  m = manifest.resolve(str(audio_folder))
  make = lambda: input_pipeline.make_train_iterator(m, _task(), batch_size=4, seed=3)
  a = make()
  first = [next(a) for _ in range(3)]
  state = a.get_state()
  rest = [next(a) for _ in range(3)]
  b = make()
  for x, y in zip(first, [next(b) for _ in range(3)]):
    np.testing.assert_array_equal(x["audio"], y["audio"])
  c = make()
  c.set_state(state)
  for x, y in zip(rest, [next(c) for _ in range(3)]):
    np.testing.assert_array_equal(x["audio"], y["audio"])
    np.testing.assert_array_equal(x["target"], y["target"])
  other = input_pipeline.make_train_iterator(m, _task(), batch_size=4, seed=4)
  assert not np.array_equal(next(other)["audio"], first[0]["audio"])


def test_worker_processes_give_the_same_batches(audio_folder):
  m = manifest.resolve(str(audio_folder))
  a = input_pipeline.make_train_iterator(m, _task(), batch_size=4, seed=0, num_workers=0)
  b = input_pipeline.make_train_iterator(m, _task(), batch_size=4, seed=0, num_workers=2)
  for _ in range(2):
    np.testing.assert_array_equal(next(a)["audio"], next(b)["audio"])


def test_manifest_segments_are_respected(tmp_path):
  helpers.write_clips(tmp_path, n=1, seconds=12.0)
  manifest.write_manifest(tmp_path / "m.csv", [{"path": "clip0.wav", "start": 2.0, "end": 6.5}])
  m = manifest.read_manifest(tmp_path / "m.csv")
  maker = input_pipeline.ExampleMaker(paths=m.paths(), segments=m.segments(), labels=None,
                                      task=_task(window=10.0), sample_rate=16000)
  for seed in range(5):
    start, end = maker.window(0, np.random.default_rng(seed))
    assert start == 2.0 and end == 6.5          # shorter than the window: the whole segment


def test_manifest_columns_share_repeated_strings(tmp_path, monkeypatch):
  # A 1M-row manifest fits in memory because a label, split or speaker is one string object
  # however many rows repeat it; a column of mostly distinct values (paths) stops sharing.
  monkeypatch.setattr(manifest, "_SHARED_VALUES_MAX", 8)
  rows = [{"path": f"d/clip{i}.wav", "label": f"c{i % 3}", "split": "train"} for i in range(40)]
  manifest.write_manifest(tmp_path / "m.csv", rows)
  m = manifest.read_manifest(tmp_path / "m.csv")
  assert list(m.column("path")) == [r["path"] for r in rows]
  assert list(m.column("label")) == [r["label"] for r in rows]
  labels = m.column("label")
  assert len({id(v) for v in labels}) == 3                    # one object per distinct label
  assert len({id(v) for v in m.column("split")}) == 1
  assert len({id(v) for v in m.column("path")}) == 40


def test_relative_paths_are_joined_per_draw(tmp_path):
  # make_train_iterator keeps the manifest's relative paths and joins them when a row is
  # drawn (no second array of full paths); the batches equal those of absolute paths.
  sub = tmp_path / "audio"
  sub.mkdir()
  helpers.write_clips(sub, n=3, seconds=6.0)
  names = sorted(p.name for p in sub.glob("*.wav"))
  manifest.write_manifest(tmp_path / "rel.csv", [{"path": f"audio/{n}"} for n in names])
  manifest.write_manifest(tmp_path / "abs.csv", [{"path": str(sub / n)} for n in names])
  rel, ab = (manifest.read_manifest(tmp_path / f"{k}.csv") for k in ("rel", "abs"))
  assert rel.columns["path"][0] == f"audio/{names[0]}"
  b_rel = next(input_pipeline.make_train_iterator(rel, _task(), 4, seed=3))
  b_abs = next(input_pipeline.make_train_iterator(ab, _task(), 4, seed=3))
  np.testing.assert_array_equal(b_rel["audio"], b_abs["audio"])
  assert np.abs(b_rel["audio"]).max() > 0
