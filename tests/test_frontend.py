import jax
import numpy as np
import pytest
import soundfile as sf

from ssl_audio import audio as audio_lib
from ssl_audio import frontend as fe

CFG = fe.FrontendConfig()


def _parity(x: np.ndarray) -> float:
  ours = np.asarray(jax.jit(lambda a: fe.log_mel(a, CFG))(x))
  ref = fe.librosa_log_mel(x, CFG)
  assert ours.shape == ref.shape
  # Bins at least 10x (20 dB) above the floor: closer to it, float32 FFT rounding in
  # XLA (not librosa's pocketfft) reaches 4e-4 on real recordings (quiet band-limited bins).
  above = ref > np.log(CFG.log_floor * 10)
  assert above.mean() > 0.2
  return float(np.abs(ours - ref)[above].max())


def test_slice_geometry():
  assert CFG.slice_samples == 15600                # 95 hops + one 400-sample window
  assert CFG.frames_for_samples(CFG.slice_samples) == 96
  assert CFG.frames_for_samples(CFG.slice_samples - 1) == 95
  assert CFG.frames_for_samples(399) == 0


def test_parity_with_librosa_on_random_audio():
  rng = np.random.default_rng(0)
  x = (rng.standard_normal((4, 16000)) * np.array([[1.0], [0.1], [0.01], [0.5]])).astype(np.float32)
  assert _parity(x) <= 1e-4


def test_parity_with_librosa_on_real_audio(real_audio_file):
  x = audio_lib.load_audio(str(real_audio_file))[:16000 * 5]
  assert _parity(x[None]) <= 1e-4


def test_shapes_and_int16_transport():
  rng = np.random.default_rng(1)
  x = (rng.standard_normal((2, 3, CFG.slice_samples)) * 0.1).astype(np.float32)
  y = fe.log_mel(x, CFG)
  assert y.shape == (2, 3, 96, 64)
  x16 = (np.clip(x, -1, 1) * 32767).astype(np.int16)
  y16 = fe.log_mel(x16, CFG)
  # int16 quantisation changes the log-mel only slightly on bins well above the floor
  big = np.asarray(y) > -6
  assert np.abs(np.asarray(y16) - np.asarray(y))[big].max() < 0.05


def test_silence_hits_the_floor_not_nan():
  y = np.asarray(fe.log_mel(np.zeros((1, CFG.slice_samples), np.float32), CFG))
  assert np.isfinite(y).all()
  np.testing.assert_allclose(y, np.log(CFG.log_floor), rtol=1e-6)


def test_too_short_audio_is_an_error():
  with pytest.raises(ValueError, match="shorter than one window"):
    fe.log_mel(np.zeros((1, 100), np.float32), CFG)


def test_bad_frontend_config_is_rejected():
  with pytest.raises(ValueError, match="frontend.fmax"):
    fe.FrontendConfig(fmax=9000.0).check()
