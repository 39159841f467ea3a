"""The Flower app's components: the library's apps, with the suite: data scheme registered
(as main.py does; the library itself never imports data/)."""

import data.suite  # noqa: F401
from ssl_audio.federated.flower_app import client_app, server_app  # noqa: F401
