"""The packed int16 store (ssl_audio/packed.py) and the pipeline reading from it."""

import os

import numpy as np
import soundfile as sf

from ssl_audio import frontend as fe
from ssl_audio import input_pipeline, manifest, packed, tasks
from ssl_audio.audio import load_audio, to_int16
from tests import helpers

CFG = fe.FrontendConfig()


def _task(window=4.0):
  return tasks.make_task(helpers.load_config("temporal_gap", **{"task.window_seconds": window}), CFG)


def test_store_holds_every_row_decoded_at_the_target_rate(tmp_path):
  helpers.write_clips(tmp_path, n=2, seconds=3.0)
  t = np.arange(44100 * 2) / 44100
  stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], 1) * 0.3
  sf.write(tmp_path / "stereo44k.wav", stereo.astype(np.float32), 44100)
  sf.write(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000)
  manifest.write_manifest(tmp_path / "m.csv", [
      {"path": "clip0.wav"}, {"path": "stereo44k.wav"}, {"path": "silent.wav"},
      {"path": "clip1.wav", "start": 0.5, "end": 2.0}])
  m = manifest.read_manifest(tmp_path / "m.csv")
  store = packed.ensure(m, np.arange(4), 16000, root=str(tmp_path / "cache"), workers=2)
  for row in (0, 1, 3):
    start, end = m.segment(row)
    want = to_int16(load_audio(m.path(row), 16000, start, end))
    got = store.audio[store.offsets[store.slot(row)]:][:store.length(row)]
    np.testing.assert_array_equal(got, want)          # exactly what decoding gives
  assert store.length(3) == 24000                     # the segment, not the file
  assert store.length(2) == 0 and "silent" in store.meta["bad"][m.path(2)]
  w = store.window(0, 100, 50)
  assert w.dtype == np.float32 and len(w) == 50
  np.testing.assert_array_equal(w, got_f := (to_int16(load_audio(m.path(0)))[100:150] / 32768))
  assert np.abs(got_f).max() > 0
  assert len(store.window(0, store.length(0) - 10, 50)) == 10   # clipped at the row's end


def test_store_is_reused_and_rebuilt_when_a_file_changes(tmp_path):
  helpers.write_clips(tmp_path, n=2, seconds=2.0)
  m = manifest.resolve(str(tmp_path / ""))
  root = str(tmp_path / "cache")
  a = packed.ensure(m, np.arange(2), 16000, root=root)
  assert packed.ensure(m, np.arange(2), 16000, root=root).folder == a.folder   # found, not rebuilt
  assert packed.ensure(m, np.arange(1), 16000, root=root).folder != a.folder   # other rows
  x = np.random.default_rng(5).standard_normal(16000 * 3).astype(np.float32) * 0.1
  sf.write(m.path(0), x, 16000)                       # the file is re-written: a new store
  b = packed.ensure(m, np.arange(2), 16000, root=root)
  assert b.folder != a.folder and b.length(0) == 48000
  stores = [d for d in os.listdir(root) if not d.endswith(".lock")]
  assert len(stores) == 3 and not any(".tmp" in d for d in stores)


def test_packed_pipeline_gives_windows_of_the_same_audio(audio_folder, tmp_path):
  # Same rows, same seeds: each packed example is a window of the decoded file, the
  # batches are shaped and typed as the decoding pipeline's, and resuming is exact.
  m = manifest.resolve(str(audio_folder))
  task = tasks.make_task(helpers.load_config(
      "temporal_gap", **{"task.window_seconds": 4.0, "task.gain_jitter_db": 0.0}), CFG)
  make = lambda: input_pipeline.make_train_iterator(m, task, 4, seed=3,
                                                    packed_root=str(tmp_path / "cache"))
  a = make()
  ref = next(input_pipeline.make_train_iterator(m, task, 4, seed=3))
  first = next(a)
  assert first["audio"].shape == ref["audio"].shape and first["audio"].dtype == np.int16
  state = a.get_state()
  nxt = next(a)
  b = make()
  b.set_state(state)
  np.testing.assert_array_equal(next(b)["audio"], nxt["audio"])
  # every slice of every example is a window of one of the files, sample for sample
  files = [to_int16(load_audio(m.path(i))) for i in range(len(m))]
  for ex in first["audio"]:
    for s in ex:
      assert any(_is_window_of(f, s) for f in files)


def _is_window_of(f: np.ndarray, s: np.ndarray) -> bool:
  n = len(s)
  return any(np.array_equal(f[t:t + n], s) for t in np.flatnonzero(f[:len(f) - n + 1] == s[0]))


def test_rows_that_fail_to_pack_are_left_out_and_named(tmp_path):
  helpers.write_clips(tmp_path, n=2, seconds=6.0)
  sf.write(tmp_path / "silent.wav", np.zeros(16000 * 6, np.float32), 16000)
  m = manifest.resolve(str(tmp_path))
  it = input_pipeline.make_train_iterator(m, _task(), 4, seed=0, packed_root=str(tmp_path / "c"))
  assert [p.rsplit("/", 1)[-1] for p in it.filtered] == ["silent.wav"]
  assert "silent" in next(iter(it.filtered.values()))
  b = next(it)
  assert it.skipped == 0 and np.abs(b["audio"]).max() > 0


def test_a_damaged_store_is_moved_aside_and_rebuilt(tmp_path, caplog):
  import logging as pylogging
  helpers.write_clips(tmp_path, n=2, seconds=2.0)
  m = manifest.resolve(str(tmp_path))
  root = str(tmp_path / "cache")
  a = packed.ensure(m, np.arange(2), 16000, root=root)
  want = np.array(a.audio)
  with open(os.path.join(a.folder, packed.AUDIO_FILE), "r+b") as f:   # a half-written file
    f.truncate(1000)
  packed.open_store.cache_clear()
  with caplog.at_level(pylogging.WARNING):
    b = packed.ensure(m, np.arange(2), 16000, root=root)
  assert b.folder == a.folder
  np.testing.assert_array_equal(np.array(b.audio), want)
  assert any("damaged" in r.getMessage() for r in caplog.records)
  assert any(".damaged" in d for d in os.listdir(root))
