"""Tests of the offline suite builder (data/suite.py).

Fast tests use synthetic signals in tmp folders. Tests marked ``slow`` check the
built suite under data_root() and skip when it is not built
(``python -m data.suite build``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data import suite
from data import suite_sources as S

SR = 16000


def spectrum_db(x, sr=SR):
  f = np.fft.rfftfreq(len(x), 1 / sr)
  p = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
  return f, p


def noise(n, seed=0):
  return np.random.default_rng(seed).standard_normal(n).astype(np.float32) * 0.1


# ----------------------------------------------------------------------------- signal processing

def test_band_limit_removes_energy_above_limit():
  x = noise(SR * 2)
  y = suite.band_limit(x, 4000)
  assert y.shape == x.shape and y.dtype == np.float32
  f, p = spectrum_db(y)
  below = p[(f > 500) & (f < 3500)].mean()
  above = p[f > 4300].mean()
  assert above < below * 1e-5  # > 50 dB down
  # the pass band is kept
  f0, p0 = spectrum_db(x)
  band = (f > 500) & (f < 3500)
  assert 0.8 < p[band].sum() / p0[band].sum() < 1.2


def test_band_limit_noop_at_full_band():
  x = noise(1000)
  assert suite.band_limit(x, None) is x
  assert suite.band_limit(x, 8000) is x


def test_to_16k_band_limits_wideband_source():
  sr = 44100
  x = noise(sr, seed=1)
  y = suite.to_16k(x, sr, 4000)
  assert abs(len(y) - SR) <= 2
  f, p = spectrum_db(y)
  assert p[f > 4300].mean() < p[(f > 500) & (f < 3500)].mean() * 1e-5
  # without a limit, 16 kHz keeps energy up to ~8 kHz
  z = suite.to_16k(x, sr, None)
  f, p = spectrum_db(z)
  assert p[(f > 5000) & (f < 7000)].mean() > p[(f > 500) & (f < 3500)].mean() * 0.1


def test_normalise_sets_active_level_and_peak():
  t = np.arange(SR) / SR
  quiet = (0.001 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
  loud = np.concatenate([np.zeros(SR, np.float32), 0.9 * np.sign(np.sin(2 * np.pi * 3 * t))]).astype(np.float32)
  for x in (quiet, loud):
    y = suite.normalise(x)
    assert np.max(np.abs(y)) <= 0.95 + 1e-6
  y = suite.normalise(quiet)
  assert abs(20 * np.log10(suite.active_level(y)) - (-23)) < 0.5
  # silence before a sound does not lower the measured level
  padded = np.concatenate([np.zeros(3 * SR, np.float32), quiet])
  assert abs(suite.active_level(padded) - suite.active_level(quiet)) < 1e-4
  z = np.zeros(100, np.float32)
  assert np.all(suite.normalise(z) == 0)


def test_concatenate_and_grouping():
  a, b = np.ones(100, np.float32), 2 * np.ones(50, np.float32)
  y = suite.concatenate([a, b], gap=0.01, sr=1000)
  assert len(y) == 160 and np.all(y[100:110] == 0) and y[-1] == 2
  assert len(suite.concatenate([])) == 0
  assert suite.group_by_length([10, 20, 40, 5, 50, 200], 60) == [[0, 1], [2, 3], [4], [5]]
  groups = suite.group_by_length(list(np.random.default_rng(0).uniform(0.5, 3, 500)), 60)
  assert sorted(i for g in groups for i in g) == list(range(500))


def test_gsm_decoding(tmp_path):
  t = np.arange(8000) / 8000
  x = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
  p = tmp_path / "a.gsm"
  sf.write(str(p), x, 8000, format="RAW", subtype="GSM610")
  y, sr = suite.read_source(str(p))
  assert sr == 8000 and abs(len(y) - len(x)) <= 160
  assert abs(suite.source_duration(str(p)) - 1.0) < 0.03
  assert np.corrcoef(x[400:7000], y[400:7000])[0, 1] > 0.8


# ----------------------------------------------------------------------------- splits

def test_assign_splits_never_puts_a_group_in_two_splits():
  rng = np.random.default_rng(0)
  groups = [f"spk{i}" for i in range(50)]
  rules = {"spk1": "test", "spk2": "valid", "spk3*": "test"}
  m = S.assign_splits(groups, rules)
  assert m["spk1"] == "test" and m["spk2"] == "valid" and m["spk30"] == "test" and m["spk4"] == "train"
  rows = [groups[i] for i in rng.integers(0, 50, 2000)]
  per = {}
  for g in rows:
    per.setdefault(g, set()).add(m[g])
  assert all(len(v) == 1 for v in per.values())


def test_split_tables_are_consistent():
  for table in (S.DIGIT_SPLITS, S.LANGUAGE_SPLITS):
    assert set(table.values()) <= {"train", "valid", "test"}
  # every language has a test speaker, and a train speaker in another source family
  test_langs = {"es": "asterisk-es_CO", "fr": "asterisk-fr_Armelle", "it": "asterisk-it_IT_f_Menardi"}
  for spk in test_langs.values():
    assert S.LANGUAGE_SPLITS[spk] == "test"
  assert {S.instrument_split(p, f, q) for p in S.SOUNDFONTS for f, qs in S.GM_FAMILIES.items()
          for q in qs} == {"train", "valid", "test"}
  for f, qs in S.GM_FAMILIES.items():
    assert all(S.instrument_split("timgm6mb-soundfont", f, q) == "test" for q in qs)
    assert "test" not in {S.instrument_split("fluid-soundfont-gm", f, q) for q in qs}


def test_stable_sample_is_deterministic():
  items = [f"f{i}" for i in range(100)]
  a = S.stable_sample(items, 10)
  assert a == S.stable_sample(list(reversed(items)), 10) and len(a) == 10
  assert S.stable_sample(items, 1000) == sorted(items)


# ----------------------------------------------------------------------------- jobs, atomic writes, idempotence

def write_wav(path, x, sr):
  path.parent.mkdir(parents=True, exist_ok=True)
  sf.write(str(path), x, sr)
  return str(path)


def item(**kw):
  d = dict(out="pkg/a", srcs=[], origins=[], label="x", speaker="s", source="pkg", language="",
           split="train", kind="clip", crop_len=0.0, max_crops=0, max_len=0.0, extra={})
  d.update(kw)
  return d


def no_tmp_files(root):
  return not [p for p in Path(root).rglob("*") if p.name.endswith(".tmp")]


def test_clip_job_writes_once(tmp_path):
  src = write_wav(tmp_path / "in/a.wav", noise(44100), 44100)
  job = {"item": item(srcs=[src]), "task_dir": str(tmp_path / "task"), "band": 4000}
  rows = suite.run_item(job)
  out = tmp_path / "task/pkg/a.flac"
  assert len(rows) == 1 and out.exists() and rows[0]["path"] == "pkg/a.flac"
  info = sf.info(str(out))
  assert info.samplerate == SR and info.channels == 1 and info.subtype == "PCM_16"
  mtime = out.stat().st_mtime_ns
  assert suite.run_item(job) == rows  # second run: nothing rewritten
  assert out.stat().st_mtime_ns == mtime
  assert no_tmp_files(tmp_path)


def test_silent_clip_is_skipped(tmp_path):
  src = write_wav(tmp_path / "in/s.wav", np.zeros(8000, np.float32), 8000)
  job = {"item": item(srcs=[src]), "task_dir": str(tmp_path / "task"), "band": None}
  assert suite.run_item(job) == []


def test_crops_of_concatenated_short_clips(tmp_path):
  srcs = [write_wav(tmp_path / f"in/{i}.wav", noise(6000, i), 8000) for i in range(10)]  # 0.75 s each
  job = {"item": item(kind="crops", srcs=srcs, crop_len=2.0, max_crops=3, out="pkg/sp"),
         "task_dir": str(tmp_path / "task"), "band": 4000}
  rows = suite.run_item(job)
  assert len(rows) == 3
  for r in rows:
    assert sf.info(str(tmp_path / "task" / r["path"])).frames == 2 * SR
  assert (tmp_path / "task/pkg/sp.rows.json").exists()
  assert suite.run_item(job) == rows


def test_crops_of_one_long_file_skip_silence(tmp_path):
  x = noise(16000 * 20)
  x[16000 * 4:16000 * 16] = 0  # 12 s of digital silence
  src = write_wav(tmp_path / "in/long.wav", x, 16000)
  job = {"item": item(kind="crops", srcs=[src], crop_len=2.0, max_crops=10, out="pkg/m"),
         "task_dir": str(tmp_path / "task"), "band": None}
  rows = suite.run_item(job)
  assert len(rows) == 4  # only the 8 s of sound give crops


def test_stream_concatenates_into_long_files(tmp_path):
  srcs = [write_wav(tmp_path / f"in/{i}.wav", noise(16000 * 3, i), 16000) for i in range(10)]
  job = {"item": item(kind="stream", srcs=srcs, max_len=10.0, out="pkg/speech"),
         "task_dir": str(tmp_path / "task"), "band": None}
  rows = suite.run_item(job)
  durs = [float(r["duration"]) for r in rows]
  assert len(rows) == 4 and all(d <= 10.0 for d in durs)
  assert abs(sum(durs) - (30 + 0.3 * 6)) < 0.1  # 10 clips, gaps only inside each file


def test_write_audio_is_atomic(tmp_path, monkeypatch):
  out = tmp_path / "a.flac"

  def boom(*a, **k):
    Path(a[0]).write_bytes(b"half")
    raise OSError("disk full")
  monkeypatch.setattr(suite.sf, "write", boom)
  with pytest.raises(OSError):
    suite.write_audio(out, noise(100))
  assert not out.exists()


def test_complete_build_does_nothing(tmp_path, monkeypatch):
  b = suite.Builder(tmp_path)
  for step in b.steps():
    b.mark(step)
  assert b.complete()

  def fail(*a, **k):
    raise AssertionError("a complete suite must not fetch or build")
  monkeypatch.setattr(suite.Builder, "fetch", fail)
  monkeypatch.setattr(suite.Builder, "build_items", fail)
  def listing():
    return sorted((str(p), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.name != ".build.lock")
  before = listing()
  suite.Builder(tmp_path).build()
  assert listing() == before
  # a marker from another suite version does not count
  b.marker("msn").write_text("0\n")
  assert not suite.Builder(tmp_path).complete()


def test_manifest_path_api(tmp_path, monkeypatch):
  monkeypatch.setenv("SSL_AUDIO_DATA", str(tmp_path / "root"))
  assert suite.data_root() == tmp_path / "root"
  assert suite.manifest_path("digits", build=False) == tmp_path / "root/digits/manifest.csv"
  with pytest.raises(ValueError):
    suite.manifest_path("nope", build=False)
  assert suite.BENCHMARKS == ("digits", "language", "msn", "instrument")

  def fail(self):
    raise RuntimeError("apt-get download failed")
  monkeypatch.setattr(suite.Builder, "build", fail)
  with pytest.raises(RuntimeError, match=r"--config\.data\.pretrain="):
    suite.manifest_path("pretrain")


def test_render_notes(tmp_path):
  sf2 = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
  if not sf2.exists():
    pytest.skip("no soundfont installed (apt-get install timgm6mb-soundfont)")
  notes = [{"family": "guitar", "program": 24, "pitch": 60, "velocity": 100}]
  rows = suite.render_family({"task_dir": str(tmp_path), "pkg": "timgm6mb-soundfont", "sf2": str(sf2),
                              "family": "guitar", "notes": notes})
  assert len(rows) == 1 and rows[0]["pitch"] == 60 and rows[0]["split"] == "test"


def test_instrument_note_list():
  notes = S.instrument_notes()
  assert {n["family"] for n in notes} == set(S.GM_FAMILIES) and len(S.GM_FAMILIES) == 11
  assert all(0 <= n["pitch"] < 128 and 0 <= n["program"] < 128 for n in notes)


# ----------------------------------------------------------------------------- the built suite

def built(name):
  p = suite.manifest_path(name, build=False)
  if not suite.Builder().complete() or not p.exists():
    pytest.skip("suite not built: python -m data.suite build")
  from ssl_audio.manifest import read_manifest
  return read_manifest(p)


@pytest.mark.slow
@pytest.mark.parametrize("name", suite.BENCHMARKS)
def test_built_no_speaker_or_source_crosses_splits(name):
  m = built(name)
  split = m.column("split")
  for col in ("speaker", "source"):
    owner: dict[str, set] = {}
    for v, s in zip(m.column(col), split):
      owner.setdefault(v, set()).add(s)
    crossing = {v: s for v, s in owner.items() if {"train", "test"} <= s}
    assert not crossing, f"{name}: {col} in train and test: {crossing}"
  spk = {}
  for v, s in zip(m.column("speaker"), split):
    spk.setdefault(v, set()).add(s)
  assert all(len(s) == 1 for s in spk.values()), f"{name}: a speaker in two splits"


@pytest.mark.slow
@pytest.mark.parametrize("name", suite.NAMES)
def test_built_counts_match_committed_stats(name):
  m = built(name)
  stats = json.loads(suite.REPO_STATS.read_text())["tasks"][name]
  counts: dict = {}
  for s, l in zip(m.column("split"), m.column("label")):
    counts.setdefault(s, {}).setdefault(l, 0)
    counts[s][l] += 1
  assert counts == stats["counts"]
  assert len(m) == stats["clips"]


@pytest.mark.slow
def test_built_pretrain_has_no_test_file():
  built("pretrain")
  root = suite.data_root()
  test = set()
  for t in suite.BENCHMARKS:
    f = root / t / "origins.json"
    if f.exists():
      test |= set(json.loads(f.read_text()).get("test", []))
  used = set(json.loads((root / "pretrain/origins.json").read_text())["train"])
  assert used and not (used & test)


@pytest.mark.slow
@pytest.mark.parametrize("name", suite.NAMES)
def test_built_audio_loads(name):
  from ssl_audio.audio import load_audio
  m = built(name)
  idx = np.random.default_rng(0).choice(len(m), size=min(20, len(m)), replace=False)
  for i in idx:
    x = load_audio(m.path(int(i)))
    assert x.dtype == np.float32 and len(x) > 0
    info = sf.info(m.path(int(i)))
    assert info.samplerate == SR and info.channels == 1
  for pkg in set(m.column("package")):
    assert (Path(m.base_dir) / pkg / "copyright").exists(), f"{name}: no copyright file for {pkg}"


@pytest.mark.slow
def test_built_speech_tasks_are_band_limited():
  for name in ("digits", "language"):
    m = built(name)
    for i in np.random.default_rng(1).choice(len(m), size=10, replace=False):
      x, sr = sf.read(m.path(int(i)), dtype="float32")
      f, p = spectrum_db(x)
      assert p[f > 4300].sum() < 1e-4 * p.sum() + 1e-12, m.path(int(i))
