from __future__ import annotations

pytest_plugins = ["tests.cast", "tests.services"]
