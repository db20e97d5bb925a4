"""Shared test setup. The kernel fixtures and --kernel come from harness.host.pytest_plugin."""

pytest_plugins = ("harness.host.pytest_plugin",)
