"""Removing what the bench deployed, by label: every container, network and volume whose project label
(gen's `gen.profile`, Compose's project, the floor's own) is one of the bench's project names.

Every project name of a run starts with `gb<pid>-`, so the end of a run (and an interrupted one: run.py sweeps
in a `finally`) removes its own and nothing else. A bench killed outright (SIGKILL, a lost machine) cannot clean
up after itself: the next run removes what such a run left, once its pid is gone and its objects are older than
any bench project lives (STALE_AFTER_S), so a bench running beside it in another pid namespace is never touched.
Volumes: only those labelled with a bench project (none of the bench's specs declares one; `v=True` removes a
container's anonymous volumes with it). Images: only gen's pin tags of bench profiles
(`gen-pin/<state id>/gb<pid>-...:<64 hex>`, which gen adds at each commit and only `gen gc` would release); the
tag goes, never the image (`noprune`).
"""
from __future__ import annotations

import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import docker

FLOOR_LABEL = "bench.floor"
PROJECT_LABELS = ("gen.profile", "com.docker.compose.project", FLOOR_LABEL)
BENCH_PROJECT = re.compile(r"^gb(\d+)-")
PIN_REF = re.compile(r"gen-pin/(?:[0-9a-f]{16}/)?([^:/]+):[0-9a-f]{64}")   # gen.state.pins: repo ends in the profile
STALE_AFTER_S = 3600        # a bench project lives minutes (it is torn down after each repetition)
PASSES = 3                  # a create still in flight when a run is interrupted may land after the first pass


def project_of(labels) -> str | None:
    return next((v for v in ((labels or {}).get(k) for k in PROJECT_LABELS) if v is not None), None)


def sweep(api: docker.APIClient, prefix: str, exact: bool = False) -> int:
    """Remove the containers, networks and volumes whose project label is `prefix` (exact) or starts with
    it. Returns the number of containers removed."""
    def mine(obj: dict) -> bool:
        p = project_of(obj.get("Labels"))
        return p is not None and (p == prefix if exact else p.startswith(prefix))
    removed = _remove(api, mine, mine, mine)
    _remove_pins(api, lambda p: p == prefix if exact else p.startswith(prefix))
    return removed


def sweep_until_clean(api: docker.APIClient, prefix: str) -> int:
    """The end-of-run sweep: repeated until a pass finds nothing, since a `gen switch` or Compose killed by
    the interrupt may have had a create call in flight that dockerd finishes after the first pass listed."""
    removed = 0
    for _ in range(PASSES):
        found = sweep(api, prefix)
        removed += found
        if not found:
            break
        time.sleep(0.5)
    return removed


def sweep_stale(api: docker.APIClient) -> int:
    """Remove what earlier bench runs left: projects `gb<pid>-...` whose pid is gone, created over an hour ago."""
    now = time.time()

    def stale(obj: dict, created: float) -> bool:
        m = BENCH_PROJECT.match(project_of(obj.get("Labels")) or "")
        return bool(m) and now - created > STALE_AFTER_S and not _alive(int(m.group(1)))
    removed = _remove(api, lambda c: stale(c, c.get("Created", now)), lambda n: stale(n, _epoch(n.get("Created"))),
                      lambda v: stale(v, _epoch(v.get("CreatedAt"))), network_tries=2)
    _remove_pins(api, lambda p: bool(m := BENCH_PROJECT.match(p)) and not _alive(int(m.group(1))))
    return removed


def _remove(api: docker.APIClient, container, network, volume, network_tries: int = 20) -> int:
    """Remove the containers, then the networks, then the volumes each predicate accepts (given the object as
    the engine lists it). Returns the number of containers removed."""
    ids = [c["Id"] for c in api.containers(all=True) if container(c)]
    networks = [n["Id"] for n in api.networks() if network(n)]
    for nid in networks:
        _disconnect_all(api, nid)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda cid: _ignore_missing(api.remove_container, cid, force=True, v=True), ids))
    for nid in networks:
        _remove_network(api, nid, network_tries)
    for v in api.volumes().get("Volumes") or []:
        if volume(v):
            _ignore_missing(api.remove_volume, v["Name"], force=True)
    return len(ids)


def _remove_pins(api: docker.APIClient, profile) -> None:
    """Untag gen's pins of the bench profiles `profile(name)` accepts; the images stay (noprune: a pin never
    removes an image, and the base images are the bench's own)."""
    for image in api.images():
        for ref in image.get("RepoTags") or ():
            m = PIN_REF.fullmatch(ref)
            if m and profile(m.group(1)):
                _ignore_missing(api.remove_image, ref, noprune=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _epoch(created: str | None) -> float:
    """Docker's RFC 3339 times (nanoseconds, Z or an offset): seconds since the epoch, to the second."""
    if not created:
        return time.time()
    try:
        return datetime.fromisoformat(created[:19]).replace(tzinfo=UTC).timestamp() - _offset(created)
    except ValueError:
        return time.time()


def _offset(created: str) -> float:
    m = re.search(r"([+-])(\d\d):(\d\d)$", created[19:])
    return 0.0 if not m else (1 if m.group(1) == "+" else -1) * (int(m.group(2)) * 3600 + int(m.group(3)) * 60)


def _disconnect_all(api: docker.APIClient, nid: str) -> None:
    """Disconnect the network's containers one at a time before they are removed in parallel. dockerd 20.10
    keeps a network's endpoint count with a read-modify-write that concurrent endpoint deletions (16 containers
    removed at once) can lose under load, leaving a network it will never remove ("has active endpoints", none
    attached) until it restarts; one deletion at a time cannot lose one."""
    try:
        attached = api.inspect_network(nid).get("Containers") or {}
    except docker.errors.NotFound:
        return
    for cid in attached:
        try:
            api.disconnect_container_from_network(cid, nid, force=True)
        except docker.errors.APIError:      # gone, or not connected any more: nothing to disconnect
            pass


LEFT: dict[str, str] = {}       # network id -> name: networks dockerd would not remove (see _remove_network)


def _remove_network(api: docker.APIClient, nid: str, tries: int = 20) -> None:
    """Under load dockerd may still list endpoints of containers just removed: retry, then disconnect what
    is left by force. dockerd 20.10 under heavy load sometimes keeps a network's endpoint count above zero
    with no endpoint left to disconnect (inspect shows none; only a dockerd restart resets it): such a network
    is left in place, warned about once and listed at the end (LEFT); the next run retries it (sweep_stale)."""
    for attempt in range(tries):
        try:
            _ignore_missing(api.remove_network, nid)
            LEFT.pop(nid, None)
            return
        except docker.errors.APIError as e:
            if "active endpoints" not in str(e):
                raise
            if nid in LEFT:             # already found stuck: one try per sweep is enough
                return
            if attempt == tries - 1:
                LEFT[nid] = api.inspect_network(nid)["Name"]
                print(f"bench: warning: network {LEFT[nid]} keeps a stale endpoint count in dockerd (none is "
                      "attached); left in place", file=sys.stderr)
                return
            if attempt >= tries // 2:
                for cid in (api.inspect_network(nid).get("Containers") or {}):
                    _ignore_missing(api.disconnect_container_from_network, cid, nid, force=True)
            time.sleep(0.25)


def _ignore_missing(fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except docker.errors.NotFound:
        pass
