"""Linear probe and partial fine-tuning on a labelled task.

Linear probe (paper.md §6, COLA's procedure): a softmax classifier on standardised
embeddings, trained with optax Adam on random examples (minibatches drawn with
replacement, cosine-decayed learning rate). ``clip_pooling`` picks the examples:

* ``"logits"`` (default): the examples are the slices (every clip cut into
  non-overlapping slices); at test time the slice *logits* are averaged over the
  clip before the argmax.
* ``"stats"``: each clip is one example, the concatenation of the mean and the std
  over its slices of the raw slice features (std 0 for a one-slice clip), as the
  MFCC baseline pools its frames; the probe trains on clips and predicts per clip.
  Implemented as a transform of the splits (``pool_clip_stats``: one "slice" per
  clip), so everything downstream is shared.

Standardisation uses the train examples' mean/std (slices, or clips for
``"stats"``). Units that are dead on train (std <= 1e-6 * max(1, median std)) are
dropped from every split -- scaling them would turn any test-time activity into a
huge input -- and the remaining stds are floored at 1e-3 * median std. Learning
rate and weight decay (an L2 penalty on the weights) are picked per seed on the
valid split's clip accuracy; without a valid split, on a held-out part of train
that shares no package with the rest (``valid_holdout="package"``, the default since
2026-12-07: whole packages chosen to cover the classes, as the suite's test splits are
made, see ``package_holdout``; once they have chosen the hyper-parameters the probe is
fit again on all of train, so no domain is lost to the test model) or no speaker (else
source, else file; "group", the default before, with no refit). The whole grid and
all seeds train at once (``vmap``, one jit). Seeds change the initialisation and
the minibatch order.

Reported: clip-level accuracy and balanced accuracy (mean per-class recall) on
test, per seed, with their mean and a 95 % t-interval over seeds; the pooling and
the number of dropped units.

Fine-tuning (``finetune``): the last k encoder blocks (plus the embedding Dense)
and a linear head train on random slices of the train clips; k = 0 is the
linear probe, ``all`` the whole encoder. BatchNorm keeps its running statistics
(inference mode); its scale and offset train in the trainable blocks. The
fraction of the encoder's forward FLOPs that trains is measured by XLA's cost
analysis of each block on its own input shape (``block_flops``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from ssl_audio import encoder as encoder_lib
from ssl_audio import manifest as manifest_lib

DEFAULT_LRS = (1e-3, 3e-3, 1e-2)
DEFAULT_WDS = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


# ============================================================================ data

@dataclasses.dataclass
class Split:
  x: np.ndarray        # [n_slices, D]
  clip: np.ndarray     # [n_slices] int32 in [0, n_clips)
  y: np.ndarray        # [n_clips] int32 class index

  @property
  def y_slice(self) -> np.ndarray:
    return self.y[self.clip]

  @property
  def n_clips(self) -> int:
    return len(self.y)


def _take(emb, clip, labels_idx, clip_mask) -> Split:
  keep_clips = np.flatnonzero(clip_mask)
  remap = -np.ones(len(clip_mask), np.int64)
  remap[keep_clips] = np.arange(len(keep_clips))
  sl = clip_mask[clip]
  return Split(x=emb[sl], clip=remap[clip[sl]].astype(np.int32), y=labels_idx[keep_clips].astype(np.int32))


def group_holdout(groups: np.ndarray, fraction: float) -> np.ndarray:
  """"train"/"valid" per row: whole groups, in a deterministic hash order, go to valid
  until it holds about ``fraction`` of the rows; at least one group each side when
  there are two or more groups (a plain hash threshold can leave valid empty when
  there are only a handful of speakers)."""
  import hashlib
  uniq, counts = np.unique(np.asarray(groups, str), return_counts=True)
  if len(uniq) < 2:
    return np.array(["train"] * len(groups), object)
  order = sorted(range(len(uniq)), key=lambda i: hashlib.sha1(uniq[i].encode()).hexdigest())
  chosen, n = set(), 0
  for i in order:
    if chosen and n + counts[i] > fraction * len(groups) * 1.5:
      continue
    if len(chosen) == len(uniq) - 1:
      break
    chosen.add(uniq[i])
    n += counts[i]
    if n >= fraction * len(groups):
      break
  return np.array(["valid" if g in chosen else "train" for g in np.asarray(groups, str)], object)


# How the held-out part of train is made when a task has no valid split.
VALID_HOLDOUTS = {
    "group": "whole speakers (else sources, else files), in hash order",
    "package": "whole packages (else sources), chosen to cover the classes while train keeps "
               "every class (how the suite's test splits are made)",
}


def package_holdout(domains: np.ndarray, labels: np.ndarray, fraction: float) -> np.ndarray:
  """"train"/"valid" per row: whole domains (packages) go to valid, in this order of
  preference -- the most classes not yet in valid, then the smaller domain, then a hash --
  until valid holds ``fraction`` of the rows, and after that only while a domain adds a
  class. A domain is never taken when valid would pass 1.5 * fraction of the rows or when
  one of its classes would be left with no domain in train.

  Why not ``group_holdout``: held-out speakers of a family whose every voice speaks one
  language let a probe "predict" the family's languages (data/SUITE.md); a held-out package
  is a new channel and collection for every class it holds, as the suite's test splits are.
  """
  import hashlib
  domains, labels = np.asarray(domains, str), np.asarray(labels, str)
  uniq, counts = np.unique(domains, return_counts=True)
  size = dict(zip(uniq, counts))
  classes = {d: set(labels[domains == d]) for d in uniq}
  in_train = {c: sum(c in classes[d] for d in uniq) for c in set(labels)}   # domains per class
  target, cap = fraction * len(domains), 1.5 * fraction * len(domains)
  chosen, covered, n = set(), set(), 0
  while True:
    cands = [d for d in uniq if d not in chosen and n + size[d] <= cap
             and all(in_train[c] > 1 for c in classes[d])]
    if n >= target:
      cands = [d for d in cands if classes[d] - covered]
    if not cands:
      break
    d = min(cands, key=lambda d: (-len(classes[d] - covered), size[d],
                                  hashlib.sha1(d.encode()).hexdigest()))
    chosen.add(d)
    covered |= classes[d]
    n += size[d]
    for c in classes[d]:
      in_train[c] -= 1
  return np.array(["valid" if d in chosen else "train" for d in domains], object)


def holdout_part(groups: np.ndarray, domains: np.ndarray, labels: np.ndarray, paths: np.ndarray,
                 holdout: str = "package", fraction: float = 0.15) -> tuple[np.ndarray, str]:
  """("train"/"valid" per row of a train split, how valid was made): ``holdout`` (a key of
  ``VALID_HOLDOUTS``), else whole groups, else files, else nothing held out when each of
  those would leave one side empty."""
  if holdout not in VALID_HOLDOUTS:
    raise ValueError(f"valid holdout must be one of {sorted(VALID_HOLDOUTS)}, got {holdout!r}")
  both = lambda part: (part == "valid").any() and (part == "train").any()
  if holdout == "package":   # whole packages: no channel or collection in both parts
    part = package_holdout(domains, labels, fraction)
    if both(part):
      return part, "held-out packages of train"
  part = group_holdout(groups, fraction)   # no speaker / source / file in both parts
  if both(part):
    return part, "held-out group-disjoint part of train"
  part = manifest_lib.hash_split(paths, (("train", 1 - fraction), ("valid", fraction)))
  if both(part):
    return part, "held-out files of train"
  return np.array(["train"] * len(groups), object), "train itself (too few clips to hold any out)"


def make_splits(e, holdout_fraction: float = 0.15, holdout: str = "package"
                ) -> tuple[dict[str, Split], list[str], str]:
  """(train/valid/test Splits, class names, how valid was made) from ``Embedded``.

  Classes are those of the train clips; valid/test clips of other classes are dropped.
  A task's own valid split is always used; without one, ``holdout`` (a key of
  ``VALID_HOLDOUTS``) says how a part of train is held out for it (``holdout_part``).
  """
  classes = sorted(set(e.labels[e.splits == "train"]))
  index = {c: i for i, c in enumerate(classes)}
  known = np.array([l in index for l in e.labels])
  y = np.array([index.get(l, -1) for l in e.labels])
  train_mask = (e.splits == "train")
  valid_mask = (e.splits == "valid") & known
  how = "valid split"
  if not valid_mask.any():
    part, how = holdout_part(e.groups[train_mask], e.domain_keys()[train_mask], e.labels[train_mask],
                             e.paths[train_mask], holdout, holdout_fraction)
    idx = np.flatnonzero(train_mask)
    valid_mask = np.zeros_like(train_mask)
    valid_mask[idx[part == "valid"]] = True
    train_mask = train_mask.copy()
    train_mask[idx[part == "valid"]] = False
    if how.startswith("train itself"):
      valid_mask = train_mask.copy()
  test_mask = (e.splits == "test") & known
  splits = {"train": _take(e.emb, e.clip, y, train_mask), "valid": _take(e.emb, e.clip, y, valid_mask),
            "test": _take(e.emb, e.clip, y, test_mask)}
  return splits, classes, how


def pool_clip_stats(split: Split) -> Split:
  """One example per clip: [mean, std] over the clip's slices of the raw features.

  Returns a Split with x [n_clips, 2D] and clip = arange(n_clips), so the probe's
  slice-level code trains and predicts per clip unchanged. A clip with one slice
  has std 0; one with no slice (not produced by ``make_splits``) gets zeros.
  """
  x = np.asarray(split.x, np.float64)   # float64: two-pass std without cancellation
  n = split.n_clips
  counts = np.maximum(np.bincount(split.clip, minlength=n), 1)[:, None]
  mean = np.zeros((n, x.shape[1]))
  np.add.at(mean, split.clip, x)
  mean /= counts
  var = np.zeros((n, x.shape[1]))
  np.add.at(var, split.clip, (x - mean[split.clip]) ** 2)
  std = np.sqrt(var / counts)
  return Split(x=np.concatenate([mean, std], 1).astype(np.float32),
               clip=np.arange(n, dtype=np.int32), y=split.y)


DEAD_UNIT_TOL = 1e-6     # relative to max(1, median train std): below it a unit is dropped
STD_FLOOR = 1e-3         # relative to the median train std: the smallest std divided by


def standardise(splits: dict[str, Split]) -> tuple[dict[str, Split], int]:
  """(splits standardised with the train rows' mean/std, number of dropped units).

  A unit (near-)constant on train carries nothing the probe can learn, but dividing
  by its tiny std would blow up any activity it shows on valid/test, so it is dropped
  from every split; the other stds are floored so no unit is amplified more than
  1/STD_FLOOR times the typical one.
  """
  xt = np.asarray(splits["train"].x, np.float64)
  mu, sd = xt.mean(0), xt.std(0)
  typical = float(np.median(sd)) if sd.size else 0.0
  keep = sd > DEAD_UNIT_TOL * max(1.0, typical)
  mu, sd = mu[keep], np.maximum(sd[keep], STD_FLOOR * typical)
  out = {k: dataclasses.replace(s, x=((s.x[:, keep] - mu) / sd).astype(np.float32))
         for k, s in splits.items()}
  return out, int((~keep).sum())


# ============================================================================ metrics

def clip_logits(slice_logits: np.ndarray, clip: np.ndarray, n_clips: int) -> np.ndarray:
  """Mean of slice logits over each clip: [..., n_slices, C] -> [..., n_clips, C]."""
  slice_logits = np.asarray(slice_logits)
  onehot = np.zeros((n_clips, len(clip)), np.float32)
  onehot[clip, np.arange(len(clip))] = 1.0
  counts = np.maximum(onehot.sum(1, keepdims=True), 1.0)
  return np.einsum("cs,...sk->...ck", onehot / counts, slice_logits)


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
  return float(np.mean(pred == y)) if len(y) else float("nan")


def balanced_accuracy(pred: np.ndarray, y: np.ndarray) -> float:
  """Mean recall over the classes present in y."""
  if not len(y):
    return float("nan")
  return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
  """(mean, low, high): Student-t interval of the mean over seeds (a point for one seed)."""
  v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
  if len(v) == 0:
    return float("nan"), float("nan"), float("nan")
  m = float(v.mean())
  if len(v) < 2:
    return m, m, m
  from scipy import stats
  h = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
  return m, m - h, m + h


def welch_interval(a: Sequence[float], b: Sequence[float],
                   confidence: float = 0.95) -> tuple[float, float, float]:
  """(mean(a) - mean(b), low, high): Welch's interval for a difference of two means whose
  samples are unpaired and may differ in size and spread (e.g. a method's pretraining seeds
  against the random encoder's init seeds); both need at least 2 values."""
  a = np.asarray([x for x in a if np.isfinite(x)], np.float64)
  b = np.asarray([x for x in b if np.isfinite(x)], np.float64)
  if len(a) < 2 or len(b) < 2:
    raise ValueError(f"welch_interval needs >= 2 values per sample, got {len(a)} and {len(b)}")
  d = float(a.mean() - b.mean())
  va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
  se = math.sqrt(va + vb)
  if se == 0:
    return d, d, d
  dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
  from scipy import stats
  h = float(stats.t.ppf(0.5 + confidence / 2, dof) * se)
  return d, d - h, d + h


def summarise(per_seed: list[dict], keys=("accuracy", "balanced_accuracy")) -> dict:
  out = {}
  for k in keys:
    m, lo, hi = t_interval([r[k] for r in per_seed])
    out[k] = {"mean": m, "low": lo, "high": hi, "half_width": (hi - lo) / 2}
  return out


# ============================================================================ linear probe

@functools.partial(jax.jit, static_argnames=("n_classes", "steps", "batch"))
def _fit_grid(x, y, n, lrs, wds, keys, n_classes: int, steps: int, batch: int):
  """Trains one linear classifier per (lr, wd, key) member: returns W [G, D, C], b [G, C].

  x [N, D] may be padded past the n real rows (shape buckets: fewer compilations).
  """
  d = x.shape[1]
  tx = optax.adam(1.0)

  def fit_one(lr, wd, key):
    k_init, k_steps = jax.random.split(key)
    params = {"w": 0.01 * jax.random.normal(k_init, (d, n_classes)), "b": jnp.zeros((n_classes,))}
    opt = tx.init(params)

    def loss_fn(p, xb, yb):
      logits = xb @ p["w"] + p["b"]
      ce = optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
      return ce + wd * jnp.sum(p["w"] ** 2)

    def step(carry, inp):
      p, o = carry
      t, k = inp
      idx = jax.random.randint(k, (batch,), 0, n)
      g = jax.grad(loss_fn)(p, x[idx], y[idx])
      upd, o = tx.update(g, o, p)
      scale = lr * 0.5 * (1 + jnp.cos(jnp.pi * t / steps))
      p = jax.tree.map(lambda a, u: a + scale * u, p, upd)
      return (p, o), None

    (params, _), _ = jax.lax.scan(step, (params, opt),
                                  (jnp.arange(steps), jax.random.split(k_steps, steps)))
    return params["w"], params["b"]

  return jax.vmap(fit_one)(lrs, wds, keys)


def _predict_clips(w, b, s: Split) -> np.ndarray:
  """Clip logits [G, n_clips, C] for every grid member."""
  logits = np.asarray(jnp.einsum("nd,gdc->gnc", s.x, w) + b[:, None, :])
  return clip_logits(logits, s.clip, s.n_clips)


def _fit(tr: Split, members, n_classes: int, steps: int, batch: int):
  """W [G, D, C], b [G, C]: one probe per (seed, lr, wd) member, trained on tr's slices."""
  n = len(tr.x)
  n_pad = max(256, 1 << int(np.ceil(np.log2(n))))
  x_pad = np.zeros((n_pad, tr.x.shape[1]), np.float32)
  x_pad[:n] = tr.x
  y_pad = np.zeros(n_pad, np.int32)
  y_pad[:n] = tr.y_slice
  return _fit_grid(jnp.asarray(x_pad), jnp.asarray(y_pad), jnp.int32(n),
                   jnp.asarray([m[1] for m in members], jnp.float32),
                   jnp.asarray([m[2] for m in members], jnp.float32),
                   jnp.stack([jax.random.PRNGKey(m[0]) for m in members]),
                   n_classes=n_classes, steps=steps, batch=batch)


def merge_splits(a: Split, b: Split) -> Split:
  """a's clips, then b's (b's clip indices shifted past a's)."""
  return Split(x=np.concatenate([a.x, b.x]), clip=np.concatenate([a.clip, b.clip + a.n_clips]),
               y=np.concatenate([a.y, b.y]))


def _prepare(splits: dict[str, Split], clip_pooling: str) -> tuple[dict[str, Split], int]:
  """The probe's examples: pooled per clip for "stats", standardised on train."""
  if clip_pooling == "stats":
    splits = {k: pool_clip_stats(s) for k, s in splits.items()}
  return standardise(splits)


CLIP_PREDICTION = {"logits": "mean of slice logits",
                   "stats": "mean+std of slice features per clip"}


def linear_probe(e, seeds: Sequence[int] = (0, 1, 2), lrs: Sequence[float] = DEFAULT_LRS,
                 wds: Sequence[float] = DEFAULT_WDS, steps: int = 1000, batch: int = 256,
                 clip_pooling: str = "logits", valid_holdout: str = "package") -> dict:
  """Linear probe on ``Embedded`` e; see the module doc. Returns a JSON-able dict.

  clip_pooling: "logits" (train on slices, average slice logits per clip) or "stats"
  (train and predict on one mean+std feature vector per clip). valid_holdout: how a task
  without a valid split holds out part of train (``VALID_HOLDOUTS``).
  """
  if clip_pooling not in CLIP_PREDICTION:
    raise ValueError(f"clip_pooling must be one of {sorted(CLIP_PREDICTION)}, got {clip_pooling!r}")
  t0 = time.time()
  raw, classes, how = make_splits(e, holdout=valid_holdout)
  if len(classes) < 2:
    raise ValueError(f"need at least 2 classes in train, got {classes}")
  # Counts of the task itself (before pooling turns clips into single examples).
  counts_info = {k: {"clips": s.n_clips, "slices": int(len(s.x))} for k, s in raw.items()}
  splits, dropped = _prepare(raw, clip_pooling)
  tr, va, te = splits["train"], splits["valid"], splits["test"]
  grid = [(lr, wd) for lr in lrs for wd in wds]
  members = [(s, lr, wd) for s in seeds for lr, wd in grid]
  fit = functools.partial(_fit, n_classes=len(classes), steps=steps, batch=batch)
  w, b = fit(tr, members)
  v_logits = _predict_clips(w, b, va)
  v_acc = (v_logits.argmax(-1) == va.y[None]).mean(-1)
  # first best per seed: the smaller lr / wd on ties
  chosen = [i * len(grid) + int(np.argmax(v_acc[i * len(grid):(i + 1) * len(grid)]))
            for i in range(len(seeds))]
  # A held-out package is a whole domain train would otherwise have: once it has chosen
  # the hyper-parameters, the probe is fit again on all of train (the held-out part back in).
  refit = valid_holdout == "package" and how.startswith("held-out")
  if refit:
    full = {"train": merge_splits(raw["train"], raw["valid"]), "test": raw["test"]}
    full, dropped = _prepare(full, clip_pooling)
    te = full["test"]
    w, b = fit(full["train"], [members[j] for j in chosen])
    test_index = list(range(len(seeds)))
  else:
    test_index = chosen
  t_logits = _predict_clips(w, b, te)
  per_seed = []
  for i, s in enumerate(seeds):
    j, k = chosen[i], test_index[i]
    pred = t_logits[k].argmax(-1)
    r = {"seed": int(s), "learning_rate": members[j][1], "weight_decay": members[j][2],
         "valid_accuracy": float(v_acc[j]), "accuracy": accuracy(pred, te.y),
         "balanced_accuracy": balanced_accuracy(pred, te.y)}
    if clip_pooling == "logits":   # with "stats" there are no slice predictions
      slice_pred = (te.x @ np.asarray(w[k]) + np.asarray(b[k])).argmax(-1)
      r["slice_accuracy"] = accuracy(slice_pred, te.y_slice)
    per_seed.append(r)
  counts = np.bincount(te.y, minlength=len(classes))
  # valid_accuracy: what recipes may be chosen on (the in-training probe logs it too)
  return {"method": "linear_probe", "per_seed": per_seed,
          **summarise(per_seed, ("accuracy", "balanced_accuracy", "valid_accuracy")),
          "chance": {"accuracy": float(counts.max() / max(counts.sum(), 1)),
                     "balanced_accuracy": 1.0 / max(int((counts > 0).sum()), 1)},
          "classes": classes, "valid_from": how,
          "counts": counts_info, "dropped_units": dropped, "clip_pooling": clip_pooling,
          "probe": {"lrs": list(lrs), "weight_decays": list(wds), "steps": steps, "batch": batch,
                    "optimizer": "adam, cosine decay", "selection": "valid clip accuracy",
                    "refit_on_train_and_valid": refit,
                    "clip_pooling": clip_pooling, "clip_prediction": CLIP_PREDICTION[clip_pooling],
                    "valid_holdout": valid_holdout,
                    "dropped_units": dropped},
          "seconds": round(time.time() - t0, 1)}


# ============================================================================ FLOPs per block

def block_flops(encoder, variables, slice_shape: tuple[int, int]) -> list[tuple[str, float]]:
  """Forward FLOPs per slice of each encoder block and of the embedding head (XLA).

  Each ConvBlock is compiled alone on its own input shape (batch 1, inference), so
  the numbers add up to the whole encoder's cost up to fusion differences.
  """
  from ssl_audio.encoder import ConvBlock
  x = jax.ShapeDtypeStruct((1, *slice_shape, 1), jnp.float32)
  _, feats = jax.eval_shape(lambda v, x: encoder.apply(v, x, return_blocks=True), variables, x)
  out = []
  shape = x
  params = variables["params"]
  stats = variables.get("batch_stats", {})
  for i, c in enumerate(encoder.block_channels()):
    name = f"block{i}"
    block = ConvBlock(c, encoder.norm)
    v = {"params": params[name]}
    if name in stats:
      v["batch_stats"] = stats[name]
    out.append((name, encoder_lib.xla_flops(lambda v, x: block.apply(v, x, train=False), v, shape)))
    shape = feats[i]
  dense = nn.Dense(encoder.embedding_dim)
  out.append(("embedding", encoder_lib.xla_flops(
      lambda v, x: dense.apply(v, jnp.max(x, axis=(1, 2))), {"params": params["embedding"]}, shape)))
  return out


def trainable_blocks(encoder, k) -> list[str]:
  """Names of the encoder's top-level modules trained with the last k blocks."""
  n = len(encoder.block_channels())
  if k in ("all", "ALL") or (isinstance(k, int) and k >= n):
    k = n
  k = int(k)
  if k <= 0:
    return []
  return [f"block{i}" for i in range(n - k, n)] + ["embedding"]


# ============================================================================ fine-tuning

def _random_crops(audio_clips: list[np.ndarray], clip_idx: np.ndarray, length: int,
                  rng: np.random.Generator) -> np.ndarray:
  out = np.zeros((len(clip_idx), length), np.int16)
  for j, c in enumerate(clip_idx):
    a = audio_clips[c]
    if len(a) <= length:
      out[j, :len(a)] = a
    else:
      s = rng.integers(0, len(a) - length + 1)
      out[j] = a[s:s + length]
  return out


def finetune(pre, clips: list[np.ndarray], labels: Sequence[str], splits: Sequence[str],
             k, seeds: Sequence[int] = (0, 1, 2), steps: int = 300, batch: int = 64,
             learning_rate: float = 1e-3) -> dict:
  """Fine-tunes the last ``k`` blocks (``all``: every block) plus a linear head.

  Args:
    pre: a ``Pretrained`` (its encoder, variables and front-end are the start).
    clips: decoded clips, int16 at the model's rate, one per label/split entry.
    k: number of last blocks to train, or "all".
  Train on random slice-long crops of train clips; report clip-level test accuracy
  from slice logits averaged over non-overlapping slices. No hyper-parameter search:
  Adam at ``learning_rate``, cosine decay, fixed ``steps`` (CPU budget).
  """
  from ssl_audio import frontend as fe
  from ssl_audio.pretrained import split_slices

  t0 = time.time()
  labels, splits = np.asarray(labels, object), np.asarray(splits, object)
  classes = sorted(set(labels[splits == "train"]))
  idx = {c: i for i, c in enumerate(classes)}
  y = np.array([idx.get(l, -1) for l in labels])
  train_c = np.flatnonzero(splits == "train")
  test_c = np.flatnonzero((splits == "test") & (y >= 0))
  enc, fcfg = pre.encoder, pre.frontend
  variables = jax.device_get(pre.variables)
  names = trainable_blocks(enc, k)
  fl = block_flops(enc, variables, (fcfg.slice_frames, fcfg.n_mels))
  total = sum(f for _, f in fl)
  frac = sum(f for n, f in fl if n in names) / total

  params = variables["params"]
  frozen = {n: p for n, p in params.items() if n not in names}
  stats = variables.get("batch_stats", {})
  s_len = fcfg.slice_samples

  def embed(train_p, mel):
    v = {"params": {**frozen, **train_p}}
    if stats:
      v["batch_stats"] = stats
    return enc.apply(v, mel, train=False)

  # Standardise with the starting encoder's train-slice statistics (as the probe does).
  rng0 = np.random.default_rng(0)
  probe_x = _random_crops(clips, rng0.choice(train_c, min(512, 4 * len(train_c))), s_len, rng0)
  e0 = jax.jit(lambda m: embed({n: params[n] for n in names}, m))(fe.log_mel(jnp.asarray(probe_x), fcfg))
  mu, sd = jnp.mean(e0, 0), jnp.std(e0, 0) + 1e-6

  def logits_fn(p, audio):
    z = (embed(p["enc"], fe.log_mel(audio, fcfg)) - mu) / sd
    return z @ p["head"]["w"] + p["head"]["b"]

  tx = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))

  @jax.jit
  def train_step(p, o, audio, yb):
    def loss_fn(p):
      return optax.softmax_cross_entropy_with_integer_labels(logits_fn(p, audio), yb).mean()
    loss, g = jax.value_and_grad(loss_fn)(p)
    upd, o = tx.update(g, o, p)
    return optax.apply_updates(p, upd), o, loss

  predict = jax.jit(logits_fn)
  test_slices, test_clip = [], []
  for j, c in enumerate(test_c):
    s = split_slices(clips[c], s_len)
    test_slices.append(s)
    test_clip.append(np.full(len(s), j))
  test_slices, test_clip = np.concatenate(test_slices), np.concatenate(test_clip)

  per_seed = []
  for seed in seeds:
    rng = np.random.default_rng(seed)
    key = jax.random.key(seed)
    p = {"enc": {n: params[n] for n in names},
         "head": {"w": 0.01 * jax.random.normal(key, (enc.embedding_dim, len(classes))),
                  "b": jnp.zeros((len(classes),))}}
    o = tx.init(p)
    for _ in range(steps):
      cs = rng.choice(train_c, batch)
      p, o, loss = train_step(p, o, jnp.asarray(_random_crops(clips, cs, s_len, rng)),
                              jnp.asarray(y[cs], jnp.int32))
    logits = np.concatenate([np.asarray(predict(p, jnp.asarray(test_slices[i:i + 256])))
                             for i in range(0, len(test_slices), 256)])
    pred = clip_logits(logits, test_clip, len(test_c)).argmax(-1)
    per_seed.append({"seed": int(seed), "final_train_loss": float(loss),
                     "accuracy": accuracy(pred, y[test_c]),
                     "balanced_accuracy": balanced_accuracy(pred, y[test_c])})
  return {"method": f"finetune_{k}", "blocks": str(k), "trained_modules": names,
          "trained_flops_fraction": frac, "block_flops": dict(fl), "per_seed": per_seed,
          **summarise(per_seed), "classes": classes,
          "finetune": {"steps": steps, "batch": batch, "learning_rate": learning_rate,
                       "batch_norm": "running statistics (frozen), scale/offset trained"},
          "seconds": round(time.time() - t0, 1)}
