"""Docker's documents (the container list, `docker inspect` of a container or an image) read into gen's vocabulary: plain
values in, Observed and ContainerDetails out (no `docker` import; gen.engine.docker fetches them)."""
from __future__ import annotations

import re
from collections.abc import Collection

from gen.engine.base import DEFAULT_HEALTH_TIMEOUT_MS, ContainerDetails, ImageInfo
from gen.model.naming import LABEL_HASH, LABEL_PROFILE, LABEL_REPLICA, LABEL_SERVICE
from gen.model.plan import Observed

NS_PER_MS = 1_000_000
EXITED = re.compile(r"Exited \((-?\d+)\)")


def list_filters(profile: str, ids: Collection[str] | None) -> dict | None:
    """The container list call's filters: the profile's containers, or only `ids` of them (dockerd then
    narrows by id before it looks at each container); None when `ids` is empty (no call needed: an
    empty id filter would be no filter at all)."""
    if ids is not None and not ids:
        return None
    return {"label": [f"{LABEL_PROFILE}={profile}"], **({} if ids is None else {"id": sorted(ids)})}


def observed(row: dict) -> Observed:
    """One row of the container list call."""
    labels = row.get("Labels") or {}
    status = row.get("Status") or ""
    exited = EXITED.search(status)
    return Observed(
        id=row["Id"], name=(row.get("Names") or ["/?"])[0].lstrip("/"),
        service=labels.get(LABEL_SERVICE, ""), hash=labels.get(LABEL_HASH, ""),
        replica=int(labels.get(LABEL_REPLICA, "1") or 1),
        state=row.get("State", ""), health=health(status),
        exit_code=int(exited.group(1)) if exited else None, image_id=row.get("ImageID", ""),
        host_ports=frozenset((p.get("IP", ""), p["PublicPort"], p.get("Type", "tcp"))
                             for p in row.get("Ports") or [] if p.get("PublicPort")),
    )


def container_details(info: dict) -> ContainerDetails:
    """Docker's inspect document, reduced to what the health gate reads."""
    state = info.get("State") or {}
    config = info.get("Config") or {}
    check = config.get("Healthcheck") or {}
    last = ((state.get("Health") or {}).get("Log") or [{}])[-1]
    return ContainerDetails(
        id=info.get("Id", ""), running=bool(state.get("Running")), restarting=bool(state.get("Restarting")),
        exit_code=state.get("ExitCode"), restart_count=info.get("RestartCount") or 0, user=config.get("User") or "",
        health_test=tuple(check.get("Test") or ()),
        health_timeout_ms=(check.get("Timeout") or DEFAULT_HEALTH_TIMEOUT_MS * NS_PER_MS) // NS_PER_MS,
        last_check_exit=last.get("ExitCode"), last_check_output=last.get("Output") or "")


def image_info(info: dict) -> ImageInfo:
    """Docker's image inspect document, reduced to what a build pins."""
    return ImageInfo(info["Id"], tuple(sorted(info.get("RepoDigests") or [])))


def health(status: str) -> str | None:
    """The health shown in a list row's status ("Up 3 seconds (healthy)")."""
    if "(healthy)" in status:
        return "healthy"
    if "(unhealthy)" in status:
        return "unhealthy"
    if "(health: starting)" in status:
        return "starting"
    return None
