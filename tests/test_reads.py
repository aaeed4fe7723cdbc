"""Readers during a switch see a consistent snapshot (issue 10): `gen list` always marks a current
generation that it lists. Switches run in a thread against the in-memory engine with a real state
directory; the reader runs as fast as it can meanwhile."""
from __future__ import annotations

import threading

from gen.api import Gen, Options
from gen.engine.memory import MemoryEngine

IMAGES = {"app:1": "sha256:" + "1" * 64}
FAST = Options(timeout_s=2.0, stability_s=0, poll_s=0.001, workers=2)


def spec(tmp_path, n: int):
    path = tmp_path / f"v{n}.toml"
    path.write_text(f'name = "shop"\n[services.web]\nimage = "app:1"\nenv = {{ V = "{n}" }}\n')
    return str(path)


def test_list_always_shows_the_current_generation_among_those_it_lists(tmp_path):
    g = Gen(tmp_path / "state", engine=MemoryEngine(IMAGES), options=FAST)
    g.switch(spec(tmp_path, 0))
    done = threading.Event()
    seen: list[tuple[list[int], int | None]] = []

    def switches():
        try:
            for n in range(1, 121):       # a torn read hits about 1 switch in 40 with the old order
                g.switch(spec(tmp_path, n))
        finally:
            done.set()

    writer = threading.Thread(target=switches)
    writer.start()
    reader = Gen(tmp_path / "state")
    while not done.is_set():
        _, gens, current = reader.generations("shop")
        seen.append(([x.number for x in gens], current))
    writer.join()
    torn = [(numbers[-3:], current) for numbers, current in seen if current not in numbers]
    assert not torn, f"{len(torn)} of {len(seen)} reads listed no current generation, e.g. {torn[:3]}"
    assert len(seen) > 120
