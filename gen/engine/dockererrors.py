"""Docker's failures in gen's words, for gen.engine.docker (which catches them at the boundary): a
timeout or a lost connection is EngineUnavailable, an API error the engine's own explanation, and an
engine object owned by another profile NotOwned. No `docker` import: the SDK's APIError is a
requests HTTPError that carries Docker's `explanation`, and is recognised by that."""
from __future__ import annotations

import requests.exceptions

from gen.errors import EngineError, EngineUnavailable, NotOwned
from gen.model.naming import LABEL_PROFILE


def translate(subject: str, e: Exception) -> Exception:
    """The gen error for a Docker SDK (or requests) exception raised while acting on `subject`."""
    if isinstance(e, requests.exceptions.Timeout):
        return EngineUnavailable("docker engine", f"did not answer in time ({short(e)}); is dockerd hung?")
    if isinstance(e, requests.exceptions.ConnectionError) or "Connection aborted" in str(e) \
            or "No such file or directory" in str(e) and "sock" in str(e):
        return EngineUnavailable("docker engine", f"not reachable ({short(e)}); is dockerd running?")
    if isinstance(e, requests.exceptions.HTTPError) and hasattr(e, "explanation"):     # docker.errors.APIError
        return EngineError(subject, e.explanation or str(e))
    return EngineError(subject, short(e))


def short(e: object) -> str:
    """An error's first line, at most 300 characters (its type's name when it says nothing)."""
    return str(e).splitlines()[0][:300] if str(e) else type(e).__name__


def check_owner(kind: str, name: str, found: dict | None, wanted: dict[str, str]) -> None:
    """A network or volume that exists must carry the profile's label: gen never adopts another's."""
    owner = (found or {}).get(LABEL_PROFILE)
    if owner != wanted[LABEL_PROFILE]:
        raise NotOwned(kind, name, owner, wanted[LABEL_PROFILE])


def missing_external(kind: str, name: str) -> EngineError:
    """A network or volume declared external (the user's) that does not exist: gen never creates it."""
    return EngineError(f"{kind} {name}", f"is declared external but does not exist "
                       f"(create it first: docker {kind} create {name})")
