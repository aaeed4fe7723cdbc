"""Bind mounts that hand a container control of the host: allowed (real Compose files mount them:
Traefik, Portainer, cAdvisor), but never silently: the plan says so. Pure."""
from __future__ import annotations


# Host paths whose mount hands a container control of the host (or its secrets). Real Compose files
# mount them (Traefik, Portainer, cAdvisor): allowed, but never silently.
HOST_CONTROL_PATHS = {"/": "the host's whole file system", "/etc": "the host's configuration",
                      "/root": "root's home", "/boot": "the host's boot files", "/dev": "the host's devices",
                      "/proc": "the host's processes", "/sys": "the host's kernel settings",
                      "/var/lib/docker": "every container's data", "/run": "the host's sockets"}
HOST_CONTROL_SOCKETS = ("docker.sock", "containerd.sock", "podman.sock")


def host_control_notes(service: str, obj: dict) -> list[str]:
    """One line per bind mount of `service` that gives its container control of the host."""
    notes = []
    for m in obj["volumes"]:
        if m["type"] != "bind":
            continue
        source, how = m["source"], "read-only" if m["read_only"] else "read-write"
        if source.endswith(HOST_CONTROL_SOCKETS):
            notes.append(f"service {service} mounts {source} ({how}): it can run any container, "
                         "and so control this host")
        elif source in HOST_CONTROL_PATHS:
            notes.append(f"service {service} mounts {source} ({how}): {HOST_CONTROL_PATHS[source]}")
    return notes
