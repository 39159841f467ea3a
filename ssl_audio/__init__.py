"""ssl_audio: self-supervised audio representation learning in JAX.

``load_pretrained`` is imported lazily, so ``import ssl_audio`` stays cheap.
"""

__all__ = ["load_pretrained"]


def __getattr__(name):
  if name == "load_pretrained":
    from ssl_audio.pretrained import load_pretrained
    return load_pretrained
  raise AttributeError(f"module 'ssl_audio' has no attribute {name!r}")
