"""The checklist's options and fixtures (plugin.py), found by pytest when it collects this folder."""

from codexops.checklist.plugin import health, pytest_addoption, target

__all__ = ["health", "pytest_addoption", "target"]
