"""The HEAR 2021 API as a ``torch.nn.Module``, for the HEAR tools themselves.

``hearvalidator`` and ``heareval`` accept only a torch or TensorFlow module, and hand
it torch tensors. This module wraps the same JAX encoder as ``ssl_audio.hear`` (same
embeddings, same timestamps; the numbers are computed by JAX): tensors in, numpy to
JAX and back, tensors out on the input's device. Needs torch
(``pip install -r requirements-hear.txt``); nothing else in ssl_audio imports it.

    hear-validator ssl_audio.hear_torch -m runs/cola            # the real validator
    python -m heareval.embeddings.runner ssl_audio.hear_torch --model runs/cola --tasks-dir hear_tasks

``tools/hear_validate.sh`` runs both in a throw-away environment (they import TensorFlow).
"""

from __future__ import annotations

import numpy as np
import torch

from ssl_audio import hear


class HearTorchModel(torch.nn.Module):
  """A torch module holding a ``hear.HearModel``; it has no torch parameters."""

  def __init__(self, model: hear.HearModel):
    super().__init__()
    self.model = model
    self.sample_rate = model.sample_rate
    self.scene_embedding_size = model.scene_embedding_size
    self.timestamp_embedding_size = model.timestamp_embedding_size

  def forward(self, audio: torch.Tensor) -> torch.Tensor:
    return get_scene_embeddings(audio, self)

  def extra_repr(self) -> str:
    return repr(self.model)


def load_model(model_file_path: str = "", hop_ms: float = 50.0) -> HearTorchModel:
  """A pretraining workdir, or one of its ``checkpoints/<step>`` folders."""
  return HearTorchModel(hear.load_model(model_file_path, hop_ms=hop_ms))


def _numpy(audio) -> np.ndarray:
  if isinstance(audio, torch.Tensor):
    return audio.detach().to("cpu", torch.float32).numpy()
  return np.asarray(audio, np.float32)


def _tensor(x: np.ndarray, like) -> torch.Tensor:
  t = torch.from_numpy(np.ascontiguousarray(x, np.float32))
  return t.to(like.device) if isinstance(like, torch.Tensor) else t


def get_scene_embeddings(audio, model: HearTorchModel) -> torch.Tensor:
  """[n, samples] -> [n, D] float32 tensor (see ``ssl_audio.hear``)."""
  return _tensor(hear.get_scene_embeddings(_numpy(audio), model.model), audio)


def get_timestamp_embeddings(audio, model: HearTorchModel) -> tuple[torch.Tensor, torch.Tensor]:
  """[n, samples] -> ([n, T, D] float32, [n, T] ms float32) tensors (see ``ssl_audio.hear``)."""
  emb, ts = hear.get_timestamp_embeddings(_numpy(audio), model.model)
  return _tensor(emb, audio), _tensor(ts, audio)
