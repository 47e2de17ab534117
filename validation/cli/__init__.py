"""The `map-suite` command line (``validation.cli.main``) and one module per command:
``simulate``, ``train``, ``generate``, ``evaluate``, ``validate``, ``report``, ``export``, ``toy``."""

from validation.cli.main import main

__all__ = ["main"]
