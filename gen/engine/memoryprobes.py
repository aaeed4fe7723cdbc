"""MemoryEngine's early health probes (gen.deploy.health.Probe): a probe runs nothing; its result is the
container's scripted one (Script.probe), known as it starts. A mixin, so that gen.engine.memory stays
within its size; MemoryEngine holds the state (_probes: probe id -> exit code, None while it hangs)."""
from __future__ import annotations

from gen.engine.memoryimages import logged
from gen.errors import EngineError


class MemoryProbes:
    """probe_start and probe_result of MemoryEngine."""

    @logged
    def probe_start(self, cid: str, argv: list[str], user: str) -> str:
        """Runs nothing: the probe's result is the container's scripted one (see Script.probe)."""
        c = self._get(cid)
        if c.state != "running":
            raise EngineError(f"container {cid[:12]}", f"Container {cid} is not running")
        s = self._script(c)
        code = s.probe if s.probe is not None else 0 if s.health == "healthy" else 1
        probe_id = f"probe-{len(self._probes) + 1}"
        self._probes[probe_id] = None if code == "hang" else code
        return probe_id

    @logged
    def probe_result(self, probe_id: str) -> int | None:
        if probe_id not in self._probes:
            raise EngineError(f"health probe {probe_id[:12]}", f"No such exec instance: {probe_id}")
        return self._probes[probe_id]
