import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssl_audio.encoder import Encoder, count_params, describe


@pytest.mark.parametrize("width,channels", [(1, [8, 16, 32, 64, 128, 256]),
                                            (4, [32, 64, 128, 256, 512, 1024])])
def test_shapes_and_channels(width, channels):
  enc = Encoder(width=width)
  v = enc.init(jax.random.key(0), jnp.zeros((1, 96, 64)))
  y, blocks = enc.apply(v, jnp.ones((3, 96, 64)), return_blocks=True)
  assert y.shape == (3, 128)
  assert [b.shape[-1] for b in blocks] == channels
  # each block halves time and frequency (SAME pooling rounds up)
  assert blocks[0].shape[1:3] == (48, 32)
  assert blocks[-1].shape[1:3] == (2, 1)


def test_params_and_flops_width_1_and_4():
  info = {}
  for w in (1, 4):
    enc = Encoder(width=w)
    v = enc.init(jax.random.key(0), jnp.zeros((1, 96, 64)))
    info[w] = describe(enc, v, (96, 64))
    assert info[w]["encoder_params"] == count_params(v["params"])
  # about 18 MFLOPs per slice at width 1 (paper.md §3), XLA's count
  assert 15e6 < info[1]["encoder_flops_per_slice"] < 22e6
  # convs dominate: 4x channels -> ~16x FLOPs
  ratio = info[4]["encoder_flops_per_slice"] / info[1]["encoder_flops_per_slice"]
  assert 12 < ratio < 17
  assert info[4]["encoder_params"] > 10 * info[1]["encoder_params"]


def test_batchnorm_train_updates_stats_eval_uses_them():
  enc = Encoder(width=1)
  v = enc.init(jax.random.key(0), jnp.zeros((1, 96, 64)))
  x = jax.random.normal(jax.random.key(1), (4, 96, 64)) * 3 - 5
  _, upd = enc.apply(v, x, train=True, mutable=["batch_stats"])
  before = jax.tree.leaves(v["batch_stats"])
  after = jax.tree.leaves(upd["batch_stats"])
  assert any(not np.allclose(a, b) for a, b in zip(before, after))
  y1 = enc.apply(v, x[:1])
  y4 = enc.apply(v, x)[:1]
  np.testing.assert_allclose(y1, y4, rtol=1e-5, atol=1e-5)   # eval mode: per-example


def test_no_norm_variant_has_no_batch_stats():
  enc = Encoder(width=1, norm="none")
  v = enc.init(jax.random.key(0), jnp.zeros((1, 96, 64)))
  assert "batch_stats" not in v
