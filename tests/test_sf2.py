"""The numpy SoundFont renderer (data/sf2.py) on a SoundFont written here: zones by key
range, root key -> pitch, loops, the release, velocity; and against TinySoundFont (the C
renderer the suite used before) where that is installed."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from data import sf2

SR = 16000
SAMPLE_RATE = 22000           # 440 Hz is exactly 50 samples: the loop closes on a period
LENGTH, LOOP = 2200, (1100, 2200)


def _chunk(cid: bytes, body: bytes) -> bytes:
  return cid + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")


def _list(kind: bytes, *chunks: bytes) -> bytes:
  return _chunk(b"LIST", kind + b"".join(chunks))


def write_sf2(path: Path, release_s: float = 0.1) -> Path:
  """One preset (0) -> one instrument with two zones, each a 440-Hz sine:
  keys 0-71 with root key 69, keys 72-127 with root key 57 (so one octave higher)."""
  t = np.arange(LENGTH)
  sine = (0.5 * 32767 * np.sin(2 * np.pi * 440 * t / SAMPLE_RATE)).astype("<i2")
  pad = np.zeros(46, "<i2")
  smpl = np.concatenate([sine, pad, sine, pad]).tobytes()
  gen = lambda oper, amount: struct.pack("<Hh", oper, amount)            # noqa: E731
  rng = lambda oper, lo, hi: struct.pack("<HBB", oper, lo, hi)           # noqa: E731
  release_tc = int(round(1200 * np.log2(release_s)))
  zone = lambda lo, hi, root, sample: (rng(43, lo, hi) + gen(54, 1) + gen(58, root)  # noqa: E731
                                       + gen(38, release_tc) + gen(53, sample))
  igen = zone(0, 71, 69, 0) + zone(72, 127, 57, 1) + gen(0, 0)
  ibag = struct.pack("<HH", 0, 0) + struct.pack("<HH", 5, 0) + struct.pack("<HH", 10, 0)
  inst = struct.pack("<20sH", b"Sine", 0) + struct.pack("<20sH", b"EOI", 2)
  pgen = gen(41, 0) + gen(0, 0)
  pbag = struct.pack("<HH", 0, 0) + struct.pack("<HH", 1, 0)
  phdr = (struct.pack("<20sHHHIII", b"Sine", 0, 0, 0, 0, 0, 0)
          + struct.pack("<20sHHHIII", b"EOP", 0, 0, 1, 0, 0, 0))
  mod = b"\0" * 10
  start2 = LENGTH + 46
  shdr = (struct.pack("<20sIIIIIBbHH", b"A", 0, LENGTH, *LOOP, SAMPLE_RATE, 60, 0, 0, 1)
          + struct.pack("<20sIIIIIBbHH", b"B", start2, start2 + LENGTH, LOOP[0] + start2,
                        LOOP[1] + start2, SAMPLE_RATE, 60, 0, 0, 1)
          + struct.pack("<20sIIIIIBbHH", b"EOS", 0, 0, 0, 0, 0, 0, 0, 0, 0))
  body = b"sfbk" + _list(b"INFO", _chunk(b"ifil", struct.pack("<HH", 2, 1))) + \
      _list(b"sdta", _chunk(b"smpl", smpl)) + \
      _list(b"pdta", _chunk(b"phdr", phdr), _chunk(b"pbag", pbag), _chunk(b"pmod", mod),
            _chunk(b"pgen", pgen), _chunk(b"inst", inst), _chunk(b"ibag", ibag),
            _chunk(b"imod", mod), _chunk(b"igen", igen), _chunk(b"shdr", shdr))
  path.write_bytes(_chunk(b"RIFF", body))
  return path


def peak_hz(x: np.ndarray) -> float:
  x = x[:8000]
  spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=8 * len(x)))
  return float(np.argmax(spec) * SR / (8 * len(x)))


def rms(x):
  return float(np.sqrt(np.mean(np.square(x))))


@pytest.fixture(scope="module")
def font(tmp_path_factory):
  return sf2.SoundFont(write_sf2(tmp_path_factory.mktemp("sf2") / "sine.sf2"))


@pytest.mark.parametrize("key,hz", [(69, 440.0), (60, 440 * 2 ** (-9 / 12)),   # zone A, root 69
                                    (81, 1760.0), (72, 440 * 2 ** (15 / 12))])  # zone B, root 57
def test_pitch_follows_root_key_and_zone(font, key, hz):
  y = font.render_note(0, key, 100, on=8000, total=16000, sample_rate=SR)
  assert y.shape == (16000, 2) and y.dtype == np.float32
  assert rms(y[:8000]) > 0.05                              # audible while held
  assert peak_hz(y[:, 0]) == pytest.approx(hz, rel=0.005)


def test_loop_sustains_then_release_decays(font):
  # The sample lasts 0.1 s at its own rate; the loop holds the note for the 0.5 s key press.
  y = font.render_note(0, 69, 127, on=8000, total=16000, sample_rate=SR)[:, 0]
  held = [rms(y[i:i + 800]) for i in range(0, 8000, 800)]
  assert min(held) > 0.9 * max(held)
  assert rms(y[-1600:]) < 0.01 * held[-1]                  # 0.1-s release, 0.4 s later


def test_velocity_is_linear_gain_and_render_is_deterministic(font):
  loud = font.render_note(0, 69, 127, 8000, 16000, SR)
  soft = font.render_note(0, 69, 64, 8000, 16000, SR)
  assert rms(soft) / rms(loud) == pytest.approx(64 / 127, rel=0.01)
  np.testing.assert_array_equal(loud, font.render_note(0, 69, 127, 8000, 16000, SR))


def test_missing_preset_and_bad_file(font, tmp_path):
  with pytest.raises(KeyError, match="no preset 5"):
    font.render_note(5, 60, 100, 8000, 16000, SR)
  bad = tmp_path / "x.sf2"
  bad.write_bytes(b"RIFF\x04\0\0\0WAVE")
  with pytest.raises(ValueError, match="not a SoundFont"):
    sf2.SoundFont(bad)


def _tsf_note(path, program, key, vel, on, total):
  tsf = pytest.importorskip("tinysoundfont")
  synth = tsf.Synth(samplerate=SR)
  sfid = synth.sfload(str(path))
  synth.program_select(0, sfid, 0, program)
  synth.noteon(0, key, vel)
  a = np.frombuffer(synth.generate(on), dtype=np.float32)
  synth.noteoff(0, key)
  b = np.frombuffer(synth.generate(total - on), dtype=np.float32)
  return np.concatenate([a, b]).reshape(-1, 2)


def test_matches_tinysoundfont(font):
  for key in (60, 69, 81):
    ref = _tsf_note(font.path, 0, key, 100, 8000, 16000)
    y = font.render_note(0, key, 100, 8000, 16000, SR)
    assert np.max(np.abs(y - ref)) < 1e-3 * np.max(np.abs(ref))


@pytest.mark.parametrize("program,key,vel", [(0, 60, 80), (25, 43, 115), (33, 49, 115),
                                             (73, 87, 80), (80, 57, 115)])
def test_matches_tinysoundfont_on_a_gm_soundfont(program, key, vel):
  path = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
  if not path.exists():
    pytest.skip("no GM soundfont installed (apt-get install timgm6mb-soundfont)")
  ref = _tsf_note(path, program, key, vel, 24000, 32000)
  y = sf2.SoundFont(path).render_note(program, key, vel, 24000, 32000, SR)
  assert np.max(np.abs(y - ref)) < 1e-3 * np.max(np.abs(ref))
