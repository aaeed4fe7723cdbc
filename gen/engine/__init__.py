"""Container engines behind one interface (base.Engine): docker (one Docker engine), memory (tests).

Importing this package does not import `docker`: `connect()` does, so read-only verbs stay fast.
"""
from gen.engine.base import ContainerDetails, Engine


def connect(host: str | None = None) -> Engine:
    """The Docker engine at `host` (unix://, tcp://, ssh://), else the one the environment names
    (DOCKER_HOST, ...), checked to answer."""
    from gen.engine.docker import DockerEngine
    return DockerEngine.from_env(host=host)


__all__ = ["ContainerDetails", "Engine", "connect"]
