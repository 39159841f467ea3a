"""A SoundFont 2 note renderer in numpy, for the suite's instrument task.

It follows TinySoundFont's voice model (tsf.h, MIT licence; the renderer the suite used
before, through the `tinysoundfont` wheel whose PyAudio dependency has no wheel here) rule
for rule, so that the rendered notes, and with them the task, stay the same:

* preset -> instrument -> sample zones; preset generators add to instrument ones, key and
  velocity ranges of the preset zone filter (and clip) those of the instrument zone;
  global zones are the defaults of the zones after them; modulators are ignored;
* pitch: root key (or the sample's original pitch), coarse/fine tune, pitch correction,
  scale tuning; played by linear interpolation from the sample rate to the output rate;
* loops (continuous, or until note-off), sample start/end offsets;
* volume envelope (delay, attack, hold, exponential decay to the sustain gain,
  exponential release), modulation envelope and the two LFOs (pitch, filter, volume), a
  resonant low-pass (biquad), all updated every 64 output samples as tsf does;
* gain: -attenuation, linear in velocity; pan with the square-root law.

`render_note` returns the stereo float32 waveform tsf gives for one note on a fresh
channel: note-on, ``on`` samples, note-off, the rest. Deterministic; tested against the
C renderer (tests/test_sf2.py) where that is installed.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
from scipy import signal

BLOCK = 64                  # TSF_RENDER_EFFECTSAMPLEBLOCK: effects update every 64 samples
FAST_RELEASE = 0.01         # seconds (TSF_FASTRELEASETIME)
LOOP_NONE, LOOP_CONTINUOUS, LOOP_SUSTAIN = 0, 1, 2
(SEG_NONE, SEG_DELAY, SEG_ATTACK, SEG_HOLD, SEG_DECAY, SEG_SUSTAIN, SEG_RELEASE,
 SEG_DONE) = range(8)

_F32 = np.float32

_PHDR = np.dtype([("name", "S20"), ("preset", "<u2"), ("bank", "<u2"), ("bag", "<u2"),
                  ("library", "<u4"), ("genre", "<u4"), ("morphology", "<u4")])
_BAG = np.dtype([("gen", "<u2"), ("mod", "<u2")])
_GEN = np.dtype([("oper", "<u2"), ("amount", "<i2")])
_INST = np.dtype([("name", "S20"), ("bag", "<u2")])
_SHDR = np.dtype([("name", "S20"), ("start", "<u4"), ("end", "<u4"), ("loop_start", "<u4"),
                  ("loop_end", "<u4"), ("rate", "<u4"), ("pitch", "u1"), ("correction", "i1"),
                  ("link", "<u2"), ("type", "<u2")])
_HYDRA = {b"phdr": _PHDR, b"pbag": _BAG, b"pgen": _GEN, b"inst": _INST, b"ibag": _BAG,
          b"igen": _GEN, b"shdr": _SHDR}

# ---------------------------------------------------------------- generators
# (kind, field, limit) per generator number, as tsf's genMetas table. Limits: (scale applied
# after summing preset + instrument, min, max). Attenuation: centibels -> dB (0.1), as in the
# tsf that tinysoundfont 0.3.7 ships and the suite was built with (measured: a later tsf.h
# scales by 0.01).
_ENV = ("delay", "attack", "hold", "decay", "sustain", "release", "key_hold", "key_decay")
_LIM = {"12k": (1.0, -12000, 12000), "fc": (1.0, 1500, 13500), "q": (1.0, 0, 960),
        "960": (1.0, -960, 960), "16k4500": (1.0, -16000, 4500),
        "12k5k": (1.0, -12000.0, 5000.0), "12k8k": (1.0, -12000.0, 8000.0),
        "1200": (1.0, -1200.0, 1200.0), "pan": (0.001, -0.5, 0.5), "attn": (0.1, 0.0, 144.0),
        "1000": (1.0, 0.0, 1000.0), "1440": (1.0, 0.0, 1440.0)}


def _env_gens(prefix: str, first: int, sustain_limit: str) -> dict:
  limits = ("12k5k", "12k8k", "12k5k", "12k8k", sustain_limit, "12k8k", "1200", "1200")
  return {first + i: ("float", f"{prefix}_{k}", lim) for i, (k, lim) in enumerate(zip(_ENV, limits))}


_GENS = {
    0: ("uadd", "offset", None), 1: ("uadd", "end", None), 2: ("uadd", "loop_start", None),
    3: ("uadd", "loop_end", None), 4: ("uadd15", "offset", None),
    5: ("int", "mod_lfo_to_pitch", "12k"), 6: ("int", "vib_lfo_to_pitch", "12k"),
    7: ("int", "mod_env_to_pitch", "12k"), 8: ("int", "filter_fc", "fc"),
    9: ("int", "filter_q", "q"), 10: ("int", "mod_lfo_to_fc", "12k"),
    11: ("int", "mod_env_to_fc", "12k"), 12: ("uadd15", "end", None),
    13: ("int", "mod_lfo_to_volume", "960"), 17: ("float", "pan", "pan"),
    21: ("float", "mod_lfo_delay", "12k5k"), 22: ("int", "mod_lfo_freq", "16k4500"),
    23: ("float", "vib_lfo_delay", "12k5k"), 24: ("int", "vib_lfo_freq", "16k4500"),
    **_env_gens("modenv", 25, "1000"), **_env_gens("ampenv", 33, "1440"),
    43: ("keyrange", None, None), 44: ("velrange", None, None),
    45: ("uadd15", "loop_start", None), 48: ("float", "attenuation", "attn"),
    50: ("uadd15", "loop_end", None), 51: ("int", "transpose", None), 52: ("int", "tune", None),
    54: ("loopmode", "loop_mode", None), 56: ("int", "keytrack", None),
    57: ("group", "group", None), 58: ("keycenter", "keycenter", None),
}
GEN_INSTRUMENT, GEN_SAMPLE = 41, 53


def _cleared(relative: bool) -> dict:
  """tsf_region_clear: zeros; an instrument zone (not relative) gets the SF2 defaults."""
  r = {f: (0.0 if kind == "float" else 0) for kind, f, _ in _GENS.values() if f}
  r.update(lokey=0, hikey=127, lovel=0, hivel=127, keycenter=60, sample_rate=0)
  if relative:
    return r
  r.update(keytrack=100, keycenter=-1, filter_fc=13500, mod_lfo_delay=-12000.0,
           vib_lfo_delay=-12000.0)
  for env in ("ampenv", "modenv"):
    for k in ("delay", "attack", "hold", "decay", "release"):
      r[f"{env}_{k}"] = -12000.0
  return r


def _apply(r: dict, oper: int, amount: int) -> None:
  """One generator (tsf_region_operator with an amount)."""
  if oper not in _GENS:
    return
  kind, field, _ = _GENS[oper]
  word = amount & 0xFFFF
  if kind == "float":
    r[field] = float(amount)
  elif kind == "int":
    r[field] = amount
  elif kind == "uadd":
    r[field] += amount
  elif kind == "uadd15":
    r[field] += amount << 15
  elif kind == "keyrange":
    r["lokey"], r["hikey"] = word & 0xFF, word >> 8
  elif kind == "velrange":
    r["lovel"], r["hivel"] = word & 0xFF, word >> 8
  elif kind == "loopmode":
    m = word & 3
    r[field] = LOOP_SUSTAIN if m == 3 else (LOOP_CONTINUOUS if m == 1 else LOOP_NONE)
  elif kind == "group":
    r[field] = word
  elif kind == "keycenter":
    r[field] = amount


def _merge(r: dict, preset: dict) -> None:
  """Adds the preset zone to an instrument zone, scaling and clamping (tsf's merge)."""
  for kind, field, lim in _GENS.values():
    if kind not in ("float", "int", "uadd"):   # ranges, loop mode, class, root key: not summed
      continue
    if kind == "float":
      v = _F32(r[field]) + _F32(preset[field])
      if lim:
        f, lo, hi = _LIM[lim]
        v = min(max(_F32(v * _F32(f)), _F32(lo)), _F32(hi))
      r[field] = float(v)
    else:
      v = r[field] + preset[field]
      if lim:
        _, lo, hi = _LIM[lim]
        v = min(max(v, lo), hi)
      r[field] = v


def _tc2s(tc: float) -> float:
  return float(_F32(2.0) ** (_F32(tc) / _F32(1200.0)))


def _env_to_secs(r: dict, env: str, sustain_is_gain: bool) -> None:
  """tsf_region_envtosecs: timecents -> seconds; sustain to a level."""
  for k in ("delay", "attack", "release"):
    r[f"{env}_{k}"] = 0.0 if r[f"{env}_{k}"] < -11950.0 else _tc2s(r[f"{env}_{k}"])
  for k, key in (("hold", "key_hold"), ("decay", "key_decay")):
    if not r[f"{env}_{key}"]:
      r[f"{env}_{k}"] = 0.0 if r[f"{env}_{k}"] < -11950.0 else _tc2s(r[f"{env}_{k}"])
  s = r[f"{env}_sustain"]
  if s < 0.0:
    r[f"{env}_sustain"] = 0.0
  elif sustain_is_gain:
    r[f"{env}_sustain"] = _db_to_gain(-s / 10.0)
  else:
    r[f"{env}_sustain"] = 1.0 - s / 1000.0


def _db_to_gain(db: float) -> float:
  return float(_F32(10.0) ** (_F32(db) * _F32(0.05))) if db > -100.0 else 0.0


def _gain_to_db(g: float) -> float:
  return -100.0 if g <= 0.00001 else float(_F32(20.0 * math.log10(g)))


def _cents_to_hz(c: float) -> float:
  return float(_F32(8.176) * _F32(2.0) ** (_F32(c) / _F32(1200.0)))


# ---------------------------------------------------------------- the file

class SoundFont:
  """The presets of one .sf2 file; sample data stays memory-mapped."""

  def __init__(self, path: str | Path):
    self.path = Path(path)
    raw = np.memmap(self.path, dtype=np.uint8, mode="r")
    if raw[:4].tobytes() != b"RIFF" or raw[8:12].tobytes() != b"sfbk":
      raise ValueError(f"{self.path}: not a SoundFont 2 file (no RIFF sfbk header)")
    hydra, smpl = {}, None
    size = min(len(raw), 8 + int(raw[4:8].view("<u4")[0]))
    pos = 12
    while pos + 12 <= size:
      cid, n = raw[pos:pos + 4].tobytes(), int(raw[pos + 4:pos + 8].view("<u4")[0])
      if cid == b"LIST":
        kind, sub, end = raw[pos + 8:pos + 12].tobytes(), pos + 12, min(pos + 8 + n, size)
        while sub + 8 <= end:
          sid, m = raw[sub:sub + 4].tobytes(), int(raw[sub + 4:sub + 8].view("<u4")[0])
          body = raw[sub + 8:sub + 8 + m]
          if kind == b"pdta" and sid in _HYDRA and m % _HYDRA[sid].itemsize == 0:
            hydra[sid] = np.frombuffer(body.tobytes(), dtype=_HYDRA[sid])
          elif kind == b"sdta" and sid == b"smpl" and smpl is None and m >= 2:
            smpl = np.frombuffer(raw, dtype="<i2", count=m // 2, offset=sub + 8)
          sub += 8 + m + (m & 1)
      pos += 8 + n + (n & 1)
    missing = [k.decode() for k in _HYDRA if k not in hydra]
    if missing or smpl is None:
      raise ValueError(f"{self.path}: incomplete SoundFont (missing {missing or ['smpl']})")
    self.samples = smpl                     # int16; tsf's float is value / 32767
    self._hydra = self._lists(hydra)
    # (bank, preset) -> phdr index; the first in file order wins, as in tsf's sorted list
    self.index: dict = {}
    for p, h in enumerate(self._hydra[0][:-1]):
      self.index.setdefault((h["bank"], h["preset"]), p)
    self._regions: dict = {}

  @staticmethod
  def _lists(h: dict) -> tuple:
    # Python lists: element access on numpy records is ~50x slower.
    phdr, pbag, pgen, inst, ibag, igen, shdr = (h[k].tolist() for k in (
        b"phdr", b"pbag", b"pgen", b"inst", b"ibag", b"igen", b"shdr"))
    phdr = [dict(zip(_PHDR.names, p)) for p in phdr]
    pbag, ibag = [{"gen": b[0]} for b in pbag], [{"gen": b[0]} for b in ibag]
    pgen, igen = [{"oper": g[0], "amount": g[1]} for g in pgen], [{"oper": g[0], "amount": g[1]} for g in igen]
    inst = [{"bag": i[1]} for i in inst]
    shdr = [dict(zip(_SHDR.names, x)) for x in shdr]
    return phdr, pbag, pgen, inst, ibag, igen, shdr

  def regions(self, bank: int, program: int) -> list[dict]:
    """The sample zones of one preset (tsf_load_presets for that preset; cached)."""
    if (bank, program) not in self.index:
      bank = 0       # tsf falls back to bank 0
    if (bank, program) not in self.index:
      raise KeyError(f"{self.path.name}: no preset {program}")
    p = self.index[(bank, program)]
    if p not in self._regions:
      self._regions[p] = self._preset(p)
    return self._regions[p]

  def _preset(self, p: int) -> list[dict]:
    phdr, pbag, pgen, inst, ibag, igen, shdr = self._hydra
    count = len(self.samples)
    regions = []
    glob = _cleared(relative=True)
    first_bag = int(phdr[p]["bag"])
    for b in range(first_bag, int(phdr[p + 1]["bag"])):
      pr = dict(glob)
      had_inst = False
      for g in range(int(pbag[b]["gen"]), int(pbag[b + 1]["gen"])):
        oper, amount = int(pgen[g]["oper"]), int(pgen[g]["amount"])
        if oper != GEN_INSTRUMENT:
          _apply(pr, oper, amount)
          continue
        which = amount & 0xFFFF
        if which >= len(inst):
          continue
        regions += self._instrument(which, pr, inst, ibag, igen, shdr, count)
        had_inst = True
      if b == first_bag and not had_inst:
        glob = pr
    return regions

  @staticmethod
  def _instrument(which, pr, inst, ibag, igen, shdr, count) -> list[dict]:
    out = []
    ireg = _cleared(relative=False)
    first_bag = int(inst[which]["bag"])
    for b in range(first_bag, int(inst[which + 1]["bag"])):
      z = dict(ireg)
      had_sample = False
      for g in range(int(ibag[b]["gen"]), int(ibag[b + 1]["gen"])):
        oper, amount = int(igen[g]["oper"]), int(igen[g]["amount"])
        if oper != GEN_SAMPLE:
          _apply(z, oper, amount)
          continue
        if z["hikey"] < pr["lokey"] or z["lokey"] > pr["hikey"]:
          continue
        if z["hivel"] < pr["lovel"] or z["lovel"] > pr["hivel"]:
          continue
        z["lokey"], z["hikey"] = max(z["lokey"], pr["lokey"]), min(z["hikey"], pr["hikey"])
        z["lovel"], z["hivel"] = max(z["lovel"], pr["lovel"]), min(z["hivel"], pr["hivel"])
        _merge(z, pr)
        _env_to_secs(z, "ampenv", True)
        _env_to_secs(z, "modenv", False)
        for lfo in ("mod_lfo_delay", "vib_lfo_delay"):
          z[lfo] = 0.0 if z[lfo] < -11950.0 else _tc2s(z[lfo])
        s = shdr[amount & 0xFFFF]
        z["offset"] = (z["offset"] + int(s["start"])) & 0xFFFFFFFF
        z["end"] = (z["end"] + int(s["end"])) & 0xFFFFFFFF
        z["loop_start"] = (z["loop_start"] + int(s["loop_start"])) & 0xFFFFFFFF
        z["loop_end"] = (z["loop_end"] + int(s["loop_end"])) & 0xFFFFFFFF
        if int(s["loop_end"]) > 0:
          z["loop_end"] = (z["loop_end"] - 1) & 0xFFFFFFFF
        z["loop_end"] = min(z["loop_end"], count)
        if z["keycenter"] == -1:
          z["keycenter"] = int(s["pitch"])
        z["tune"] += int(s["correction"])
        z["sample_rate"] = int(s["rate"])
        z["end"] = z["end"] + 1 if 0 < z["end"] < count else count
        out.append(dict(z))
        had_sample = True
      if b == first_bag and not had_sample:
        ireg = z
    return out

  def render_note(self, program: int, key: int, velocity: int, on: int, total: int,
                  sample_rate: int = 16000, bank: int = 0) -> np.ndarray:
    """[total, 2] float32: ``key`` at MIDI ``velocity`` held for ``on`` samples of ``total``."""
    regions = self.regions(bank, program)
    vel = _F32(velocity / 127.0)
    midi_vel = int(vel * _F32(127))
    out = np.zeros((total, 2), np.float64)
    voices = [r for r in regions if r["lokey"] <= key <= r["hikey"]
              and r["lovel"] <= midi_vel <= r["hivel"]]
    # A region of an exclusive class ends (quickly) the earlier voices of its class.
    quick = [any(v["group"] and v["group"] == w["group"] for w in voices[i + 1:])
             for i, v in enumerate(voices)]
    for r, q in zip(voices, quick):
      _Voice(self.samples, r, key, vel, midi_vel, sample_rate, quick_off=q).render(out, on)
    return out.astype(np.float32)


# ---------------------------------------------------------------- one voice

@dataclasses.dataclass
class _Env:
  """tsf_voice_envelope: the segment state machine, advanced one block at a time."""
  p: dict
  amp: bool
  vel: int
  sr: float
  segment: int = SEG_NONE
  exponential: bool = False
  level: float = 0.0
  slope: float = 0.0
  left: int = 0

  def release_samples(self) -> int:
    r = self.p["release"]
    return int(_F32(FAST_RELEASE if r <= 0 else r) * _F32(self.sr))

  def next(self, active: int) -> None:
    p, sr = self.p, _F32(self.sr)
    if active == SEG_NONE:
      self.left = int(_F32(p["delay"]) * sr)
      if self.left > 0:
        self.segment, self.exponential, self.level, self.slope = SEG_DELAY, False, 0.0, 0.0
        return
      active = SEG_DELAY
    if active == SEG_DELAY:
      self.left = int(_F32(p["attack"]) * sr)
      if self.left > 0:
        if not self.amp:   # the mod envelope's attack shortens with velocity
          self.left = int(_F32(p["attack"]) * _F32((145 - self.vel) / _F32(144.0)) * sr)
        self.segment, self.exponential, self.level = SEG_ATTACK, False, 0.0
        self.slope = float(_F32(1.0) / _F32(self.left)) if self.left else math.inf
        return
      active = SEG_ATTACK
    if active == SEG_ATTACK:
      self.left = int(_F32(p["hold"]) * sr)
      if self.left > 0:
        self.segment, self.exponential, self.level, self.slope = SEG_HOLD, False, 1.0, 0.0
        return
      active = SEG_HOLD
    if active == SEG_HOLD:
      self.left = int(_F32(p["decay"]) * sr)
      if self.left > 0:
        self.segment, self.level = SEG_DECAY, 1.0
        if self.amp:
          mystery = _F32(-9.226) / _F32(self.left)
          self.slope, self.exponential = float(np.exp(mystery)), True
          if p["sustain"] > 0.0:
            self.left = int(math.log(_F32(p["sustain"])) / mystery)
        else:
          self.slope = float(_F32(-1.0) / _F32(self.left))
          self.left = int(_F32(p["decay"]) * (_F32(1.0) - _F32(p["sustain"])) * sr)
          self.exponential = False
        return
      active = SEG_DECAY
    if active == SEG_DECAY:
      self.segment, self.level, self.slope = SEG_SUSTAIN, p["sustain"], 0.0
      self.left, self.exponential = 0x7FFFFFFF, False
      return
    if active == SEG_SUSTAIN:
      self.segment, self.left = SEG_RELEASE, self.release_samples()
      if self.amp:
        self.slope, self.exponential = float(np.exp(_F32(-9.226) / _F32(self.left))), True
      else:
        self.slope, self.exponential = float(_F32(-self.level) / _F32(self.left)), False
      return
    self.segment, self.exponential, self.level, self.slope = SEG_DONE, False, 0.0, 0.0
    self.left = 0x7FFFFFF

  def process(self, n: int) -> None:
    if self.slope:
      if self.exponential:
        self.level = float(_F32(self.level) * _F32(self.slope) ** _F32(n))
      else:
        self.level = float(_F32(self.level) + _F32(self.slope) * _F32(n))
    self.left -= n
    if self.left <= 0:
      self.next(self.segment)


class _Lfo:
  def __init__(self, delay: float, cents: int, sr: float):
    self.until = int(_F32(delay) * _F32(sr))
    self.delta = float(_F32(4.0) * _F32(_cents_to_hz(cents)) / _F32(sr))
    self.level = 0.0

  def process(self, n: int) -> None:
    if self.until > n:
      self.until -= n
      return
    self.level = float(_F32(self.level) + _F32(self.delta) * _F32(n))
    if self.level > 1.0:
      self.delta, self.level = -self.delta, 2.0 - self.level
    elif self.level < -1.0:
      self.delta, self.level = -self.delta, -2.0 - self.level


def _lowpass(fc: float, q_inv: float) -> tuple[np.ndarray, np.ndarray]:
  """tsf's biquad (earlevel.com), as lfilter coefficients (the same transposed form II)."""
  k = math.tan(math.pi * fc)
  kk = k * k
  norm = 1 / (1 + k * q_inv + kk)
  a0 = kk * norm
  return np.array([a0, 2 * a0, a0]), np.array([1.0, 2 * (kk - 1) * norm, (1 - k * q_inv + kk) * norm])


class _Voice:
  """One region playing one key (tsf_note_on's voice set-up, then tsf_voice_render)."""

  def __init__(self, samples, r, key, vel, midi_vel, sr, quick_off=False):
    self.samples, self.r, self.sr = samples, r, float(sr)
    note = key + r["transpose"] + r["tune"] / 100.0
    pitch = r["keycenter"] + (note - r["keycenter"]) * (r["keytrack"] / 100.0)
    self.pitch_tc = pitch * 100.0
    self.out_factor = r["sample_rate"] / (2.0 ** (r["keycenter"] * 100.0 / 1200.0) * self.sr)
    self.gain_db = float(_F32(0.0 - r["attenuation"]) - _F32(_gain_to_db(float(_F32(1.0) / vel))))
    pan = r["pan"]
    if pan <= -0.5:
      self.pan = (1.0, 0.0)
    elif pan >= 0.5:
      self.pan = (0.0, 1.0)
    else:
      self.pan = (math.sqrt(_F32(0.5) - _F32(pan)), math.sqrt(_F32(0.5) + _F32(pan)))
    loop = r["loop_mode"] != LOOP_NONE and r["loop_start"] < r["loop_end"]
    self.loop = (r["loop_start"], r["loop_end"]) if loop else (0, 0)
    self.ampenv = self._env("ampenv", True, key, midi_vel)
    self.modenv = self._env("modenv", False, key, midi_vel)
    fc = _cents_to_hz(r["filter_fc"]) / self.sr if r["filter_fc"] <= 13500 else 1.0
    self.q_inv = 1.0 / 10.0 ** ((r["filter_q"] / 10.0) / 20.0)
    self.filter = _lowpass(fc, self.q_inv) if fc < 0.499 else None
    self.modlfo = _Lfo(r["mod_lfo_delay"], r["mod_lfo_freq"], self.sr)
    self.viblfo = _Lfo(r["vib_lfo_delay"], r["vib_lfo_freq"], self.sr)
    if quick_off:
      self._end(quick=True)

  def _env(self, name, amp, key, midi_vel) -> _Env:
    p = {k: self.r[f"{name}_{k}"] for k in _ENV}
    for k, kk in (("hold", "key_hold"), ("decay", "key_decay")):
      if p[kk]:
        tc = _F32(p[k]) + _F32(p[kk]) * (_F32(60.0) - _F32(key))
        p[k] = 0.0 if tc < -10000.0 else _tc2s(tc)
    e = _Env(p, amp, midi_vel, self.sr)
    e.next(SEG_NONE)
    return e

  def _end(self, quick: bool = False) -> None:
    """Note-off (tsf_voice_end), or a quick end (tsf_voice_endquick)."""
    for e in (self.ampenv, self.modenv):
      if quick:
        e.p = dict(e.p, release=0.0)
      e.next(SEG_SUSTAIN)
    if not quick and self.r["loop_mode"] == LOOP_SUSTAIN:
      self.loop = (self.loop[0], self.loop[0])   # play on, stop looping

  def _controls(self, sizes: list[int]):
    """Per block of ``sizes``: the gain, the pitch ratio and the filter cut-off (None when
    static), as tsf updates them before rendering a block; stops when the volume envelope ends."""
    r = self.r
    upd_modenv = bool(r["mod_env_to_pitch"] or r["mod_env_to_fc"])
    upd_modlfo = bool(self.modlfo.delta and (r["mod_lfo_to_pitch"] or r["mod_lfo_to_fc"]
                                             or r["mod_lfo_to_volume"]))
    upd_viblfo = bool(self.viblfo.delta and r["vib_lfo_to_pitch"])
    dyn_fc = bool(r["mod_lfo_to_fc"] or r["mod_env_to_fc"])
    dyn_pitch = bool(r["mod_lfo_to_pitch"] or r["mod_env_to_pitch"] or r["vib_lfo_to_pitch"])
    dyn_gain = r["mod_lfo_to_volume"] != 0
    static_ratio = 2.0 ** (self.pitch_tc / 1200.0) * self.out_factor
    static_gain = _db_to_gain(self.gain_db)
    gains, ratios, fcs = [], [], []
    done = False
    for n in sizes:
      if dyn_fc:
        fres = (_F32(r["filter_fc"]) + _F32(self.modlfo.level) * _F32(r["mod_lfo_to_fc"])
                + _F32(self.modenv.level) * _F32(r["mod_env_to_fc"]))
        fcs.append(_cents_to_hz(fres) / _F32(self.sr) if fres <= 13500 else 1.0)
      if dyn_pitch:
        ratios.append(2.0 ** ((self.pitch_tc + float(
            _F32(self.modlfo.level) * _F32(r["mod_lfo_to_pitch"])
            + _F32(self.viblfo.level) * _F32(r["vib_lfo_to_pitch"])
            + _F32(self.modenv.level) * _F32(r["mod_env_to_pitch"]))) / 1200.0) * self.out_factor)
      else:
        ratios.append(static_ratio)
      gain = (_db_to_gain(self.gain_db + self.modlfo.level * float(_F32(r["mod_lfo_to_volume"]) * _F32(0.1)))
              if dyn_gain else static_gain)
      gains.append(float(_F32(gain) * _F32(self.ampenv.level)))
      self.ampenv.process(n)
      if upd_modenv:
        self.modenv.process(n)
      if upd_modlfo:
        self.modlfo.process(n)
      if upd_viblfo:
        self.viblfo.process(n)
      if self.ampenv.segment == SEG_DONE:
        done = True
        break
    return np.array(gains), np.array(ratios), (np.array(fcs) if dyn_fc else None), done

  def _positions(self, start: float, steps: np.ndarray):
    """Source positions of every output sample (``steps``: the pitch ratio per sample), with
    the loop's wrap-around; and the position after the last."""
    lo, hi = self.loop
    pos = start + np.concatenate([[0.0], np.cumsum(steps)])
    if lo < hi:
      top, length = hi + 1.0, hi - lo + 1.0
      if steps.max(initial=0.0) >= length:  # a step longer than the loop: tsf's own recurrence
        p, out = start, np.empty(len(steps) + 1)
        for i, s in enumerate(steps):
          out[i] = p
          p += s
          if p >= top:
            p -= length
        out[-1] = p
        pos = out
      else:
        wrap = pos >= top
        pos[wrap] = lo + np.fmod(pos[wrap] - lo, length)
    return pos[:-1], pos[-1]

  def _play(self, pos: np.ndarray) -> np.ndarray:
    lo, hi = self.loop
    idx = pos.astype(np.int64)
    nxt = np.where((idx >= hi) & (lo < hi), lo, idx + 1)
    n = len(self.samples)
    a = self.samples[np.minimum(idx, n - 1)].astype(np.float32) / _F32(32767.0)
    b = self.samples[np.minimum(nxt, n - 1)].astype(np.float32) / _F32(32767.0)
    alpha = (pos - idx).astype(np.float32)
    return a * (_F32(1.0) - alpha) + b * alpha

  def render(self, out: np.ndarray, on: int) -> None:
    """Adds this voice to ``out`` [total, 2], with the note-off after ``on`` samples."""
    total = len(out)
    end = float(self.r["end"])
    t, start, zi = 0, float(self.r["offset"]), np.zeros(2)
    for phase_end in (on, total):   # one tsf render call before the note-off, one after
      if t >= phase_end:
        continue
      n = phase_end - t
      sizes = [BLOCK] * (n // BLOCK) + ([n % BLOCK] if n % BLOCK else [])
      gains, ratios, fcs, done = self._controls(sizes)
      sizes = np.array(sizes[:len(gains)])
      pos, start = self._positions(start, np.repeat(ratios, sizes))
      stop = np.flatnonzero(pos >= end)
      if len(stop):                       # the sample ran out: the voice ends
        pos, done = pos[:stop[0]], True
      x = self._play(pos).astype(np.float64)
      if fcs is not None:                 # the cut-off moves: filter block by block
        edges = np.concatenate([[0], np.cumsum(sizes)])
        for b, fc in enumerate(fcs):
          lo, hi = edges[b], min(edges[b + 1], len(x))
          if fc < 0.499 and hi > lo:      # else bypassed, the state kept
            x[lo:hi], zi = signal.lfilter(*_lowpass(fc, self.q_inv), x[lo:hi], zi=zi)
      elif self.filter is not None:
        x, zi = signal.lfilter(*self.filter, x, zi=zi)
      g = np.repeat(gains, sizes)[:len(x)].astype(np.float32) * x.astype(np.float32)
      out[t:t + len(x), 0] += g * _F32(self.pan[0])
      out[t:t + len(x), 1] += g * _F32(self.pan[1])
      if done:
        return
      t = phase_end
      if t == on:
        self._end()
