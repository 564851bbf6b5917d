"""Performance tooling: ``openrisk loadtest`` (Locust scenarios against a real server
subprocess, with reports) and ``openrisk bench`` (cache off vs on, same data, one run).

Its heavier dependencies (Locust, matplotlib) are the optional ``perf`` extra, not runtime
dependencies: ``pip install 'openrisk[perf]'``. `missing_tools` tells a command what is absent.
"""

from __future__ import annotations

import importlib.util

PERF_EXTRA_HINT = "pip install 'openrisk[perf]'"
LOADTEST_TOOLS = ("locust", "matplotlib")


def missing_tools(modules: tuple[str, ...]) -> list[str]:
    """The modules of ``modules`` that cannot be imported here."""
    return [name for name in modules if importlib.util.find_spec(name) is None]
