r"""Log-mel front-end speed: our jitted JAX log-mel vs librosa vs plain torch.

Command:
  python bench/frontend.py [--quick]

64 clips x 10 s of 16 kHz audio (synthetic chirps + noise, 640 s), the default
FrontendConfig (win 400, hop 160, n_fft 1024, magnitude, 64 Slaney mels 60-7800 Hz,
log floor 1e-5, no centring). Figures: seconds of audio per second of wall time
(best of N, implementations timed round-robin) and max |delta log-mel| against
librosa on bins whose librosa value is above the floor. Torch: torch.stft + the same
mel matrix, eager, torch.set_num_threads(2) (skipped when torch is not installed).
"""

from __future__ import annotations

import argparse

import numpy as np

from common import emit, interleaved_best, log

import jax
import jax.numpy as jnp

from ssl_audio import frontend as fe


def synthetic_audio(n: int, seconds: float, sr: int, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * sr)) / sr
  out = np.empty((n, len(t)), np.float32)
  for i in range(n):
    f0, f1 = rng.uniform(100, 600), rng.uniform(1000, 6000)
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * seconds))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 2) * t)
    out[i] = 0.3 * env * np.sin(phase) + 0.02 * rng.standard_normal(len(t))
  return out


def torch_log_mel_fn(cfg: fe.FrontendConfig):
  """Plain torch (no torchaudio): stft + mel matrix, same settings as librosa_log_mel."""
  import torch
  torch.set_num_threads(2)
  window, mel_t = fe._constants(cfg)  # noqa: SLF001 (the same Hann window and Slaney mel bank)
  win = torch.from_numpy(window)
  mel = torch.from_numpy(mel_t)       # [n_fft//2+1, n_mels]

  def f(audio: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
      x = torch.from_numpy(audio)
      # center=False + a window shorter than n_fft: torch centres the window in the
      # n_fft frame; padding (n_fft - win)/2 each side makes frame i start at i*hop.
      pad = (cfg.n_fft - cfg.win_length) // 2
      x = torch.nn.functional.pad(x, (pad, cfg.n_fft - cfg.win_length - pad))
      spec = torch.stft(x, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                        window=win, center=False, return_complex=True).abs()  # [B, F, T]
      if cfg.power == 2.0:
        spec = spec * spec
      m = torch.matmul(spec.transpose(-1, -2), mel)                          # [B, T, n_mels]
      return torch.log(torch.clamp(m, min=cfg.log_floor)).numpy()
  return f


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--quick", action="store_true", help="fewer repeats (< 1 min)")
  ap.add_argument("--clips", type=int, default=64)
  ap.add_argument("--seconds", type=float, default=10.0)
  args = ap.parse_args(argv)
  repeats = 3 if args.quick else 7

  cfg = fe.FrontendConfig()
  audio = synthetic_audio(args.clips, args.seconds, cfg.sample_rate)
  total_s = args.clips * args.seconds

  jfn = jax.jit(lambda a: fe.log_mel(a, cfg))
  audio_dev = jax.device_put(audio)
  ours = np.asarray(jfn(audio_dev))
  ref = fe.librosa_log_mel(audio, cfg)
  fns = {"jax": lambda: jfn(audio_dev).block_until_ready(),
         "librosa": lambda: fe.librosa_log_mel(audio, cfg)}
  try:
    tfn = torch_log_mel_fn(cfg)
    theirs = tfn(audio)
    fns["torch"] = lambda: tfn(audio)
  except ImportError:
    theirs = None
  log(f"frontend: {args.clips} clips x {args.seconds} s, shape {ours.shape}, timing {list(fns)} x{repeats}")
  best = interleaved_best(fns, repeats)

  above = ref > np.log(cfg.log_floor) + 1e-6           # bins not clipped at the floor
  figs = {"clips": args.clips, "seconds_per_clip": args.seconds, "repeats": repeats,
          "config": cfg.to_dict(),
          "fraction_bins_above_floor": float(above.mean())}
  for k, t in best.items():
    figs[f"{k}_ms_per_batch"] = t * 1e3
    figs[f"{k}_audio_s_per_s"] = total_s / t
  figs["jax_vs_librosa"] = best["librosa"] / best["jax"]
  figs["max_abs_dlogmel_jax_vs_librosa"] = float(np.max(np.abs(ours - ref)[above]))
  if theirs is not None:
    figs["jax_vs_torch"] = best["torch"] / best["jax"]
    figs["torch_vs_librosa"] = best["librosa"] / best["torch"]
    figs["max_abs_dlogmel_torch_vs_librosa"] = float(np.max(np.abs(theirs - ref)[above]))
  figs["target_jax_vs_librosa_ge_3"] = bool(figs["jax_vs_librosa"] >= 3.0)   # issue 14
  emit("frontend", figs, argv)


if __name__ == "__main__":
  main()
