"""Plain PyTorch (eager) reference of the encoder, the front-end and every task's head + loss.

Mirrors ssl_audio/encoder.py and ssl_audio/tasks/*.py shape for shape, so the
train step does the same FLOPs as the JAX one (bench/train_step.py checks the
parameter counts match and reports both FLOP counts):

* front-end: int16 -> float / 32768 -> torch.stft (Hann 400 zero-padded to n_fft,
  hop 160, no centring) -> |.| -> the same Slaney mel matrix -> log(max(., floor)).
  It is part of the step in both frameworks (the JAX model computes log-mel on
  the device from raw int16 windows too), outside autograd in both.
* encoder: per block Conv(3x1) -> ReLU -> Conv(1x3, no bias) -> BatchNorm
  (momentum 0.01 == flax 0.99, eps 1e-5) -> ReLU -> MaxPool 2x2 (ceil_mode ==
  SAME padding), global max over time and frequency, Linear to the embedding.
  Layout NCHW with H = frames, W = mels (JAX: NHWC).
* heads / losses: TemporalGap (concat + Dense(1) + BCE), Audio2Vec CBoW (mean of
  the context embeddings -> SliceDecoder -> MSE) and skip-gram (middle embedding
  -> SliceDecoder with 2P outputs -> MSE), AutoEncoder (SliceDecoder -> MSE),
  Triplet (L2-normalised, semi-hard mining, hinge), COLA (Dense + LayerNorm + tanh,
  bilinear similarity, in-batch cross-entropy), Supervised (Dense + CE) and
  MultiHead (Dense + per-head masked CE). The cheap metrics the JAX losses also
  compute (baselines, accuracies) are left out: they cost nothing next to the convs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as F

from ssl_audio import frontend as fe
from ssl_audio.encoder import BASE_CHANNELS


def _ch(c: int, width: float) -> int:
  return max(1, int(round(c * width)))


class LogMel(tnn.Module):
  def __init__(self, cfg: fe.FrontendConfig):
    super().__init__()
    window, mel_t = fe._constants(cfg)  # noqa: SLF001 (same window and mel bank as JAX)
    self.cfg = cfg
    self.register_buffer("window", torch.from_numpy(window))
    self.register_buffer("mel", torch.from_numpy(mel_t))

  @torch.no_grad()
  def forward(self, audio: torch.Tensor) -> torch.Tensor:   # [N, samples] int16 -> [N, T, M]
    cfg = self.cfg
    x = audio.float() / 32768.0 if not audio.is_floating_point() else audio.float()
    pad = (cfg.n_fft - cfg.win_length) // 2
    x = F.pad(x, (pad, cfg.n_fft - cfg.win_length - pad))
    spec = torch.stft(x, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                      window=self.window, center=False, return_complex=True).abs()
    if cfg.power == 2.0:
      spec = spec * spec
    m = torch.matmul(spec.transpose(-1, -2), self.mel)
    return torch.log(torch.clamp(m, min=cfg.log_floor))


class ConvBlock(tnn.Module):
  def __init__(self, cin: int, c: int, norm: str):
    super().__init__()
    self.conv_time = tnn.Conv2d(cin, c, (3, 1), padding=(1, 0))
    self.conv_freq = tnn.Conv2d(c, c, (1, 3), padding=(0, 1), bias=norm == "none")
    self.bn = tnn.BatchNorm2d(c, momentum=0.01, eps=1e-5) if norm == "batch" else tnn.Identity()
    self.pool = tnn.MaxPool2d(2, 2, ceil_mode=True)

  def forward(self, x):
    x = F.relu(self.conv_time(x))
    x = F.relu(self.bn(self.conv_freq(x)))
    return self.pool(x)


class Encoder(tnn.Module):
  """Log-mel [N, frames, mels] -> [N, embedding_dim]."""

  def __init__(self, width: float = 1.0, embedding_dim: int = 128, norm: str = "batch",
               channels=BASE_CHANNELS):
    super().__init__()
    chans = [_ch(c, width) for c in channels]
    blocks, cin = [], 1
    for c in chans:
      blocks.append(ConvBlock(cin, c, norm))
      cin = c
    self.blocks = tnn.Sequential(*blocks)
    self.embedding = tnn.Linear(cin, embedding_dim)

  def forward(self, mel):
    x = self.blocks(mel[:, None])                 # [N, C, T', M']
    x = torch.amax(x, dim=(2, 3))
    return self.embedding(x)


class SliceDecoder(tnn.Module):
  """Mirror of ssl_audio.tasks.base.SliceDecoder: embedding -> [N, frames, mels, outputs]."""

  def __init__(self, in_dim: int, frames: int = 96, mels: int = 64, width: float = 1.0,
               channels=(128, 64, 32, 16, 8), outputs: int = 1):
    super().__init__()
    n_up = len(channels)
    self.frames, self.mels = frames, mels
    self.h0, self.w0 = -(-frames // 2 ** n_up), -(-mels // 2 ** n_up)
    self.c0 = _ch(channels[0], width)
    self.project = tnn.Linear(in_dim, self.h0 * self.w0 * self.c0)
    layers, cin = [], self.c0
    for c in channels:
      c = _ch(c, width)
      layers.append(tnn.ModuleList([tnn.Conv2d(cin, c, (3, 1), padding=(1, 0)),
                                    tnn.Conv2d(c, c, (1, 3), padding=(0, 1))]))
      cin = c
    self.ups = tnn.ModuleList(layers)
    self.out = tnn.Conv2d(cin, outputs, 1)

  def forward(self, z):
    x = F.relu(self.project(z)).reshape(z.shape[0], self.h0, self.w0, self.c0)
    x = x.permute(0, 3, 1, 2)                     # NCHW
    for conv_t, conv_f in self.ups:
      x = F.interpolate(x, scale_factor=2, mode="nearest")
      x = F.relu(conv_t(x))
      x = F.relu(conv_f(x))
    x = self.out(x)[:, :, :self.frames, :self.mels]
    return x.permute(0, 2, 3, 1)                  # [N, frames, mels, outputs]


# --- tasks -------------------------------------------------------------------------

class _TaskModel(tnn.Module):
  def __init__(self, cfg: fe.FrontendConfig, width: float, embedding_dim: int, norm: str):
    super().__init__()
    self.logmel = LogMel(cfg)
    self.encoder = Encoder(width, embedding_dim, norm)
    self.frames, self.mels = cfg.slice_frames, cfg.n_mels

  def embed(self, audio):                         # [B, n, samples] -> [B, n, D]
    b, n, s = audio.shape
    mel = self.logmel(audio.reshape(b * n, s))
    return self.encoder(mel).reshape(b, n, -1)


class TemporalGap(_TaskModel):
  def __init__(self, cfg, width, embedding_dim, norm, head_hidden: int = 0, **_):
    super().__init__(cfg, width, embedding_dim, norm)
    d = 2 * embedding_dim
    self.hidden = tnn.Linear(d, head_hidden) if head_hidden else None
    self.head = tnn.Linear(head_hidden or d, 1)

  def forward(self, batch):
    h = self.embed(batch["audio"]).reshape(batch["audio"].shape[0], -1)
    if self.hidden is not None:
      h = F.relu(self.hidden(h))
    logit = self.head(h)[:, 0]
    return F.binary_cross_entropy_with_logits(logit, batch["target"].float())


class Audio2Vec(_TaskModel):
  def __init__(self, cfg, width, embedding_dim, norm, mode: str = "cbow", context: int = 2,
               aggregation: str = "mean", **_):
    super().__init__(cfg, width, embedding_dim, norm)
    self.mode, self.p, self.aggregation = mode, context, aggregation
    in_dim = embedding_dim * (2 * context if mode == "cbow" and aggregation == "concat" else 1)
    self.decoder = SliceDecoder(in_dim, cfg.slice_frames, cfg.n_mels, width,
                                outputs=1 if mode == "cbow" else 2 * context)

  def forward(self, batch):
    audio = batch["audio"]
    b, n, s = audio.shape
    p = self.p
    mel = self.logmel(audio.reshape(b * n, s)).reshape(b, n, self.frames, self.mels)
    mid = mel[:, p]
    ctx = torch.cat([mel[:, :p], mel[:, p + 1:]], dim=1)
    if self.mode == "cbow":
      emb = self.encoder(ctx.reshape(b * 2 * p, self.frames, self.mels)).reshape(b, 2 * p, -1)
      z = emb.mean(1) if self.aggregation == "mean" else emb.reshape(b, -1)
      target = mid[..., None]
    else:
      z = self.encoder(mid)
      target = ctx.permute(0, 2, 3, 1)
    return F.mse_loss(self.decoder(z), target)


class AutoEncoder(_TaskModel):
  def __init__(self, cfg, width, embedding_dim, norm, **_):
    super().__init__(cfg, width, embedding_dim, norm)
    self.decoder = SliceDecoder(embedding_dim, cfg.slice_frames, cfg.n_mels, width, outputs=1)

  def forward(self, batch):
    mel = self.logmel(batch["audio"][:, 0])
    return F.mse_loss(self.decoder(self.encoder(mel)), mel[..., None])


def triplet_semihard(anchor, positive, margin: float, fallback: str = "hardest"):
  """Single-device version of ssl_audio.tasks.triplet.triplet_semihard."""
  b = anchor.shape[0]
  cand = torch.cat([anchor, positive], 0)                       # [2B, D]
  dev = anchor.device
  cand_ex = torch.cat([torch.arange(b, device=dev)] * 2)
  d_ap = ((anchor - positive) ** 2).sum(-1)
  d_an = ((anchor[:, None, :] - cand[None, :, :]) ** 2).sum(-1)  # [B, 2B]
  neg = cand_ex[None, :] != torch.arange(b, device=dev)[:, None]
  big = torch.tensor(1e9, device=dev)
  farther = neg & (d_an > d_ap[:, None])
  d_semi = torch.where(farther, d_an, big).amin(1)
  hardest = torch.where(neg, d_an, big).amin(1)
  easiest = torch.where(neg, d_an, -big).amax(1)
  d_fall = hardest if fallback == "hardest" else easiest
  d_neg = torch.where(farther.any(1), d_semi, d_fall)
  per = torch.where(neg.any(1), F.relu(d_ap - d_neg + margin), torch.zeros((), device=dev))
  return per.mean()


class Triplet(_TaskModel):
  def __init__(self, cfg, width, embedding_dim, norm, margin: float = 0.1,
               fallback: str = "hardest", **_):
    super().__init__(cfg, width, embedding_dim, norm)
    self.margin, self.fallback = margin, fallback

  def forward(self, batch):
    emb = F.normalize(self.embed(batch["audio"]).float(), dim=-1, eps=1e-6)
    return triplet_semihard(emb[:, 0], emb[:, 1], self.margin, self.fallback)


class Supervised(_TaskModel):
  def __init__(self, cfg, width, embedding_dim, norm, num_classes: int = 10, head_hidden: int = 0,
               groups=None, **_):
    super().__init__(cfg, width, embedding_dim, norm)
    self.hidden = tnn.Linear(embedding_dim, head_hidden) if head_hidden else None
    self.head = tnn.Linear(head_hidden or embedding_dim, num_classes)
    groups = None if groups is None else torch.as_tensor(np.asarray(groups))
    self.register_buffer("groups", groups)   # a buffer: moves with .to(device)

  def forward(self, batch):
    h = self.embed(batch["audio"])[:, 0]
    if self.hidden is not None:
      h = F.relu(self.hidden(h))
    logits = self.head(h)
    labels = batch["label"].long()
    if self.groups is not None:                                   # MultiHead: mask other heads
      own = self.groups[None, :] == self.groups[labels][:, None]
      logits = torch.where(own, logits, torch.tensor(-1e9, device=logits.device))
    return F.cross_entropy(logits, labels)


class Cola(_TaskModel):
  """Mirror of ssl_audio.tasks.cola: Dense -> LayerNorm -> tanh head, bilinear W / (d T), in-batch CE."""

  def __init__(self, cfg, width, embedding_dim, norm, head_dim: int = 512, temperature: float = 0.2,
               **_):
    super().__init__(cfg, width, embedding_dim, norm)
    self.head = tnn.Linear(embedding_dim, head_dim)
    self.head_norm = tnn.LayerNorm(head_dim, eps=1e-6)          # flax LayerNorm's epsilon
    self.bilinear = tnn.Parameter(torch.randn(head_dim, head_dim))
    self.scale = 1.0 / (head_dim * temperature)

  def forward(self, batch):
    g = torch.tanh(self.head_norm(self.head(self.embed(batch["audio"]))))   # [B, 2, d]
    logits = (g[:, 0] @ self.bilinear) @ g[:, 1].T * self.scale
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


def make_model(task_name: str, cfg: fe.FrontendConfig, width: float, embedding_dim: int,
               norm: str, task_cfg: dict, num_classes: int | None = None, groups=None) -> tnn.Module:
  """The torch reference of a registered task, or KeyError where there is none yet."""
  if task_name == "temporal_gap":
    return TemporalGap(cfg, width, embedding_dim, norm, **task_cfg)
  if task_name in ("audio2vec_cbow", "audio2vec_skipgram"):
    mode = "cbow" if task_name.endswith("cbow") else "skipgram"
    return Audio2Vec(cfg, width, embedding_dim, norm, mode=mode, **task_cfg)
  if task_name == "autoencoder":
    return AutoEncoder(cfg, width, embedding_dim, norm, **task_cfg)
  if task_name == "cola":
    return Cola(cfg, width, embedding_dim, norm, **task_cfg)
  if task_name == "triplet":
    return Triplet(cfg, width, embedding_dim, norm, **task_cfg)
  if task_name in ("supervised", "multihead"):
    return Supervised(cfg, width, embedding_dim, norm, num_classes=num_classes or 10,
                      groups=groups if task_name == "multihead" else None, **task_cfg)
  raise KeyError(task_name)


def count_params(model: tnn.Module) -> int:
  return sum(p.numel() for p in model.parameters())


def make_step(model: tnn.Module, lr: float = 1e-3):
  """Eager train step: zero_grad -> loss -> backward -> Adam."""
  opt = torch.optim.Adam(model.parameters(), lr=lr)
  model.train()

  def step(batch):
    opt.zero_grad(set_to_none=True)
    loss = model(batch)
    loss.backward()
    opt.step()
    return loss
  return step


def flops_per_step(model: tnn.Module, batch) -> float:
  """FLOPs of one train step by torch's FlopCounterMode (convs, matmuls, their grads)."""
  from torch.utils.flop_counter import FlopCounterMode
  step = make_step(model)
  with FlopCounterMode(display=False) as fc:
    step(batch)
  return float(fc.get_total_flops())
