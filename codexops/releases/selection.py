"""The backend codexops/backend_choice.py chooses, built. Not in backend.py: both backends import the
protocol there, so the module that imports them is another one."""

from __future__ import annotations

from codexops.backend_choice import backend_name
from codexops.releases.backend import Backend
from codexops.releases.local_backend import LocalBackend
from codexops.releases.pulumi_backend import PulumiBackend


def select_backend(local: bool) -> Backend:
    return PulumiBackend() if backend_name(local) == "pulumi" else LocalBackend()
