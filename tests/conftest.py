"""Shared test setup. The kernel fixtures and --kernel come from harness.pytest_plugin."""

pytest_plugins = ("harness.pytest_plugin",)
