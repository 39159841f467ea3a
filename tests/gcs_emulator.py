"""A local Cloud Storage emulator for tests: ``gcp-storage-emulator`` on 127.0.0.1.

``start()`` runs it in a subprocess on a free port, in memory, and returns the
environment that points every GCS client of this repo at it:

* ``STORAGE_EMULATOR_HOST``: gcsfs (epath's gs:// backend) and google-cloud-storage
  (tensorboardX's gs:// writer);
* ``TENSORSTORE_GCS_HTTP_URL``: tensorstore, which writes Orbax's arrays;
* ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false``: gcsfs's default file system first
  probes the bucket type over gRPC, which the emulator does not serve (stack.md §11).

The emulator (2026.7.19) sends no ``x-goog-generation`` header with an object's
bytes; tensorstore's OCDBT reads (Orbax's array format) fail on that with
"Malformed StorageGeneration", so this file, run as a script, starts the emulator
with the header added to downloads (``_add_generation_header``).
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def missing() -> str | None:
  """Why the emulator tests cannot run here, or None."""
  for mod, pkg in (("gcp_storage_emulator", "gcp-storage-emulator"), ("gcsfs", "gcsfs")):
    if importlib.util.find_spec(mod) is None:
      return f"{pkg} not installed (pip install -r requirements-gcs.txt -r requirements-test.txt)"
  return None


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Emulator:
  def __init__(self, timeout: float = 30.0):
    self.port = _free_port()
    self.url = f"http://127.0.0.1:{self.port}"
    # It logs every request: to a file, since an unread pipe would fill and block it.
    self.log = tempfile.TemporaryFile()
    self.proc = subprocess.Popen(
        [sys.executable, __file__, "start", "--host=127.0.0.1",
         f"--port={self.port}", "--in-memory"],
        stdout=self.log, stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    while True:
      try:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
          break
      except OSError:
        if self.proc.poll() is not None or time.time() > deadline:
          self.stop()
          self.log.seek(0)
          err = self.log.read().decode(errors="replace")[-2000:]
          raise RuntimeError(f"gcp-storage-emulator did not start on port {self.port}: {err}")
        time.sleep(0.1)

  @property
  def env(self) -> dict[str, str]:
    return {"STORAGE_EMULATOR_HOST": self.url, "TENSORSTORE_GCS_HTTP_URL": self.url,
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}

  def create_bucket(self, name: str) -> str:
    """Creates ``name`` through the JSON API; returns ``gs://name``."""
    req = urllib.request.Request(f"{self.url}/storage/v1/b?project=test",
                                 data=json.dumps({"name": name}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
      r.read()
    return f"gs://{name}"

  def stop(self) -> None:
    if self.proc.poll() is None:
      self.proc.terminate()
      try:
        self.proc.wait(timeout=10)
      except subprocess.TimeoutExpired:
        self.proc.kill()
        self.proc.wait()
    self.log.close()


def _add_generation_header() -> None:
  """Object downloads answer with x-goog-generation / -metageneration, as GCS does."""
  from gcp_storage_emulator import server
  from gcp_storage_emulator.handlers import objects

  def with_generation(plain):
    def handler(request, response, storage, *args, **kwargs):
      try:
        obj = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
        response["x-goog-generation"] = str(obj["generation"])
        response["x-goog-metageneration"] = str(obj["metageneration"])
      except Exception:  # not found: the plain handler answers 404
        pass
      return plain(request, response, storage, *args, **kwargs)
    return handler

  # Media downloads and JSON-API object GETs (?alt=media goes through objects.get).
  wrapped = {objects.download: with_generation(objects.download),
             objects.get: with_generation(objects.get)}
  for _, methods in server.HANDLERS:
    for method, handler in methods.items():
      if handler in wrapped:
        methods[method] = wrapped[handler]


if __name__ == "__main__":
  _add_generation_header()
  from gcp_storage_emulator.__main__ import main
  sys.exit(main(sys.argv[1:]))
