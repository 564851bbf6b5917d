"""The test workers' scheduler: shared set-ups run whole on one worker, a crash never hangs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling


class GroupScheduling(LoadScopeScheduling):
    """Like ``--dist loadgroup``, with the groups named by the path their test ids start with.

    loadgroup itself no longer groups anything with pytest 9.2 (it rewrites a node id field
    that pytest stopped reading)."""

    def __init__(self, config: pytest.Config, log: Any, *, groups: Mapping[str, str]) -> None:
        super().__init__(config, log)
        self.groups = groups

    def _split_scope(self, nodeid: str) -> str:
        for prefix, group in self.groups.items():
            if nodeid.startswith(prefix):
                return group
        return nodeid

    def remove_node(self, node: Any) -> str | None:
        """Give a crashed worker's unfinished tests to the others, except the one it died on.

        xdist 3.8 puts the whole workload back, finished groups and the crashing test
        included: the replacement ran that test again until the restarts ran out, and the
        finished groups went out as empty work that no worker ever reports back on, so the
        run waited for ever (known upstream, not fixed in a release yet)."""
        workload = self.assigned_work.pop(node)
        unfinished = [n for unit in workload.values() for n, done in unit.items() if not done]
        if not unfinished:
            return None
        crashed = unfinished[0]
        for scope, unit in workload.items():
            unit.pop(crashed, None)
            if not all(unit.values()):
                self.workqueue[scope] = unit
        for other in self.assigned_work:
            self._reschedule(other)
        return crashed

    def _reschedule(self, node: Any) -> None:
        """Keep a worker three tests ahead, and shut it down once nothing is left to hand out.

        A worker runs a test only once it holds the next one (or is told to stop), so a
        replacement worker handed a single one-test unit would wait for ever. A replacement
        that has not sent its collection yet is skipped: its tests' indexes are not known
        until then, and ``schedule`` hands it work once they are. A worker that died before
        its crash was reported cannot be sent anything (``OSError``): what it was handed stays
        in its workload, which ``remove_node`` gives to the others when the crash arrives."""
        if node.shutting_down or node not in self.registered_collections:
            return
        try:
            while self.workqueue and self._pending_of(self.assigned_work[node]) <= 2:
                self._assign_work_unit(node)
            if not self.workqueue:
                node.shutdown()
        except OSError:  # the worker's channel is closed: it is gone
            return
