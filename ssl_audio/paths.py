"""One path layer for workdirs, manifests and audio: local paths and ``gs://`` URLs.

Everything that reads or writes a file the user named (a workdir, a manifest, an
audio file, an embedding cache) goes through here, so a Cloud TPU run can use a
bucket (``--workdir=gs://bucket/run``) with no FUSE mount. Local paths behave
exactly as ``os`` / ``pathlib`` do; a URL goes through ``etils.epath`` (the layer
Orbax uses), whose fsspec backend (gcsfs, ``requirements-gcs.txt``) finds the VM's
credentials or ``STORAGE_EMULATOR_HOST``. Orbax writes arrays with tensorstore,
which reads ``TENSORSTORE_GCS_HTTP_URL`` instead when pointed at an emulator.

A bucket is checked once per process on first use, so a run without credentials
or with a misspelled bucket fails at start with a message saying which, instead
of after minutes of retries.
"""

from __future__ import annotations

import builtins
import functools
import os

from etils import epath


class RemotePathError(OSError):
  """A gs:// path that cannot be used: no credentials, no such bucket, unreachable."""


def is_remote(p) -> bool:
  """True for a URL such as ``gs://bucket/x`` (anything with a scheme)."""
  return "://" in os.fspath(p)


def absolute(p) -> str:
  """A local path made absolute (``~`` expanded); a URL unchanged."""
  p = os.fspath(p)
  return p if is_remote(p) else os.path.abspath(os.path.expanduser(p))


def path(p) -> epath.Path:
  """``epath.Path`` of a local path or URL; a URL's bucket is checked (see ``check``)."""
  p = os.fspath(p)
  if is_remote(p):
    check(p)
  return epath.Path(p)


def join(base, p) -> str:
  """``p`` if it is absolute or a URL, else ``p`` under ``base`` (a folder or URL)."""
  p = os.fspath(p)
  if is_remote(p) or os.path.isabs(p):
    return p
  return os.path.join(os.fspath(base), p)


def open(p, mode: str = "rb"):  # noqa: A001  (the one open of this layer)
  """A file object for a local path or URL (seekable when reading)."""
  if not is_remote(p):
    return builtins.open(p, mode)
  if mode != "rb":
    return path(p).open(mode)
  # Binary reads (audio decoding seeks around): plain read-ahead blocks. gcsfs's default
  # "adaptive" cache streams ahead in the background, and its reads hung (against the
  # emulator) when soundfile read a file sequentially; epath's open takes no cache option.
  import fsspec
  path(p)   # the bucket check
  fs, key = fsspec.core.url_to_fs(os.fspath(p))
  return fs.open(key, "rb", cache_type="readahead")


def mkdir(p) -> None:
  """Creates a local folder (and parents); checks a URL's bucket (GCS has no folders)."""
  path(p).mkdir(parents=True, exist_ok=True)


def write_atomic(p, data: bytes | str) -> None:
  """Writes a whole file so readers never see half of it: a local temp file renamed;
  on GCS an object only appears once its upload completes."""
  mode = "wb" if isinstance(data, bytes) else "w"
  if is_remote(p):
    with path(p).open(mode) as f:
      f.write(data)
    return
  p = os.fspath(p)
  tmp = os.path.join(os.path.dirname(p) or ".", f".{os.path.basename(p)}.{os.getpid()}.tmp")
  with builtins.open(tmp, mode) as f:
    f.write(data)
  os.replace(tmp, p)


def check(url: str) -> None:
  """Raises RemotePathError naming the cause when ``url``'s bucket cannot be used."""
  scheme, rest = os.fspath(url).split("://", 1)
  _check_bucket(scheme, rest.split("/", 1)[0])


@functools.lru_cache(maxsize=None)
def _check_bucket(scheme: str, bucket: str) -> None:
  if scheme != "gs":
    return   # other schemes (s3://, ...) go to epath unchecked
  url = f"gs://{bucket}"
  emulator = os.environ.get("STORAGE_EMULATOR_HOST")
  try:
    import gcsfs  # noqa: F401
    import fsspec
  except ImportError:
    raise RemotePathError(f"{url}: gs:// paths need gcsfs "
                          "(pip install -r requirements-gcs.txt)") from None
  # gcsfs caches folder listings forever by default; a workdir changes under us (other
  # hosts, a run still training, a resumed run), so list afresh (checkpoint steps).
  fsspec.config.conf.setdefault("gcs", {}).setdefault("use_listings_cache", False)
  if not emulator:
    import google.auth
    try:
      google.auth.default()
    except google.auth.exceptions.DefaultCredentialsError:
      raise RemotePathError(
          f"{url}: no Google Cloud credentials found and STORAGE_EMULATOR_HOST is not set. "
          "On a Cloud TPU VM the VM's service account is used; elsewhere run "
          "`gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS") from None
  try:
    exists = epath.Path(url).exists()
  except Exception as e:  # network, DNS, permission: say where we tried
    where = f"the emulator at {emulator}" if emulator else "Cloud Storage"
    raise RemotePathError(f"{url}: cannot reach {where}: {type(e).__name__}: {e}") from None
  if not exists:
    raise RemotePathError(f"{url}: bucket not found (or not visible with these credentials); "
                          f"create it with `gcloud storage buckets create {url}`")
