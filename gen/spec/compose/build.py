"""Compose's `build` and `pull_policy` -> gen.toml's (gen.spec.build checks what comes out).

`build: DIR` or `build: {context, dockerfile, args, target, labels}`. An arg written without a value
(`- HTTP_PROXY`, `HTTP_PROXY:`) takes its value from the environment, as Compose does, and is left
out when the environment has none (the Dockerfile's default applies). cache_from, cache_to, no_cache,
provenance and sbom only steer how an image is built, never what it contains: accepted and ignored
(gen reuses an image whose inputs are unchanged anyway). The rest changes the result in a way gen
does not reproduce, and is refused with the reason.

pull_policy: Compose's always, missing, never, build; if_not_present is missing. The periodic ones
(daily, weekly, every_<duration>) refresh a tag now and then; gen resolves images at `gen build` only,
and a generation pins what it resolved, so they mean always: each build re-resolves the tag.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from gen.errors import SpecError
from gen.spec.compose.fields import convert_labels
from gen.spec.compose.shape import Origins, check_compose_keys, checked_mapping, scalar_text
from gen.spec.messages import key_path, shown

_KEYS = ("context", "dockerfile", "args", "target", "labels")
_IGNORED = ("cache_from", "cache_to", "no_cache", "provenance", "sbom")
_REFUSED = {
    "dockerfile_inline": "not supported: write the Dockerfile to a file in the context (dockerfile:)",
    "ssh": "not supported: gen builds without SSH agent forwarding",
    "secrets": "not supported: gen builds without build secrets",
    "additional_contexts": "not supported: gen builds from one context directory",
    "network": "not supported: gen builds on the engine's default build network",
    "extra_hosts": "not supported: gen builds without extra host entries",
    "shm_size": "not supported: gen builds with the engine's default /dev/shm",
    "isolation": "not supported on Linux engines",
    "platforms": "not supported: gen builds one image, for the engine's platform (or the service's platform)",
    "privileged": "not supported: gen does not build privileged",
    "pull": "not supported: gen builds from the base images the engine has (pull them first)",
    "tags": "not supported: gen tags a built image once (image:, or its own name)",
    "ulimits": "not supported: gen builds with the engine's default limits",
    "entitlements": "not supported: gen builds without extra entitlements",
}
PULL_POLICIES = {"always": "always", "missing": "missing", "if_not_present": "missing", "never": "never",
                 "build": "build", "daily": "always", "weekly": "always", "refresh": "always"}
_EVERY = re.compile(r"every_[0-9]+[a-z]+(?:[0-9]+[a-z]+)*")


def convert_build(value, path: str, environ: Mapping[str, str], origins: Origins):
    if isinstance(value, str):
        return value
    build = checked_mapping(value, path, "must be a context directory or a mapping")
    check_compose_keys(build, path, _KEYS + _IGNORED, _REFUSED)
    out = {key: build[key] for key in ("context", "dockerfile", "target") if key in build}
    out.setdefault("context", ".")
    if "args" in build:
        out["args"] = _args(build["args"], f"{path}.args", environ, origins)
    if "labels" in build:
        out["labels"] = convert_labels(build["labels"], f"{path}.labels", origins)
    return out


def _args(value, path: str, environ: Mapping[str, str], origins: Origins) -> dict:
    if isinstance(value, list):
        entries = []
        for i, item in enumerate(value):
            if isinstance(item, (list, dict)) or item is None:
                raise SpecError(f"{path}[{i}]", 'must be a string "NAME=value" (or "NAME")')
            key, equals, text = scalar_text(item, f"{path}[{i}]").partition("=")
            entries.append((key, text if equals else None, f"{path}[{i}]"))
    elif isinstance(value, dict):
        entries = [(key, None if item is None else scalar_text(item, key_path(path, key)), key_path(path, key))
                   for key, item in value.items()]
    else:
        raise SpecError(path, "must be a list of NAME=value strings or a mapping")
    args = {}
    for key, text, sub in entries:
        text = environ.get(key) if text is None else text
        if text is not None:
            args[key] = text
            origins.add(key_path(path, key), sub)
    return args


def convert_pull_policy(value, path: str):
    if isinstance(value, str) and (value in PULL_POLICIES or _EVERY.fullmatch(value)):
        return PULL_POLICIES.get(value, "always")
    raise SpecError(path, f"must be one of: always, missing, never, build, if_not_present, daily, weekly, "
                          f"every_<duration> (got {shown(value)})")
