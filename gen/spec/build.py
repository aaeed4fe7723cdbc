"""Images a service builds (`build`) and how images are fetched (`pull_policy`).

`build = "dir"` or `build = { context = "dir", dockerfile = "Dockerfile", args = { K = "v" },
target = "stage", labels = { k = "v" } }` -> BuildSpec: the context made absolute (relative paths start
at the spec's folder), the Dockerfile relative to the context, every value a string. gen builds it at
`gen build`; the image ID, not this, enters the service object. A service with `build` may leave
`image` out (image "": gen names the built image), or name the tag to give it.

`pull_policy`: "missing" (the default: pull a reference the engine lacks), "always" (re-resolve at
every build), "never" (the image must be on the engine), "build" (build, even when the image exists).
"""
from __future__ import annotations

import posixpath

from gen.errors import SpecError
from gen.spec.fields import ENV_KEY_RE, normal_path, parse_labels
from gen.spec.messages import key_path, shown
from gen.spec.validate import MAX_LONG, REQUIRED, checked_string, checked_table, parse_table

PULL_POLICIES = ("missing", "always", "never", "build")
DEFAULT_PULL_POLICY = "missing"


def parse_build(value, path, ctx) -> dict:
    table = {"context": value} if isinstance(value, str) else checked_table(value, path)
    build = parse_table(table, _BUILD_FIELDS, path, ctx)
    build["dockerfile"] = _dockerfile(build["context"], build["dockerfile"], f"{path}.dockerfile")
    return build


def _context(value, path, ctx) -> str:
    context = checked_string(value, path, empty_ok=False)
    if "://" in context or context.startswith("git@"):
        raise SpecError(path, f"{shown(context)}: gen builds from a local directory (clone it first), "
                              "so that the context's files address the build")
    return normal_path(posixpath.join(ctx.base_dir, context))


def _dockerfile(context: str, value: str, path: str) -> str:
    """Relative to the context, as Compose reads it; an absolute path is made relative to it."""
    relative = posixpath.normpath(posixpath.relpath(value, context) if value.startswith("/") else value)
    if relative in (".", "..") or relative.endswith("/.."):
        raise SpecError(path, f"{shown(value)} is a directory, not a Dockerfile")
    return relative


def _args(value, path, ctx=None) -> dict[str, str]:
    table = checked_table(value, path)
    args = {}
    for key in sorted(table):
        sub = key_path(path, key)
        if not ENV_KEY_RE.fullmatch(key):
            raise SpecError(sub, "invalid build argument name (use [A-Za-z_][A-Za-z0-9_.-]*)")
        args[key] = checked_string(table[key], sub, MAX_LONG)
    return args


def _target(value, path, ctx=None) -> str:
    return checked_string(value, path, empty_ok=False)


_BUILD_FIELDS = {
    "context": ("context", _context, REQUIRED),
    "dockerfile": ("dockerfile", lambda v, p, c=None: checked_string(v, p, empty_ok=False), "Dockerfile"),
    "args": ("args", _args, {}),
    "target": ("target", _target, None),
    "labels": ("labels", parse_labels, {}),
}


def parse_pull_policy(value, path, ctx=None) -> str:
    policy = checked_string(value, path)
    if policy not in PULL_POLICIES:
        raise SpecError(path, f"must be one of: {', '.join(PULL_POLICIES)} (got {shown(policy)})")
    return policy


def check_image_source(service: dict, path: str) -> None:
    """An image to run comes from `image`, `build`, or both (the build is tagged `image`)."""
    if not service["image"] and "build" not in service:
        raise SpecError(f"{path}.image", "missing required key (give image, build, or both)")
    if service.get("pull_policy") == "build" and "build" not in service:
        raise SpecError(f"{path}.pull_policy", "build needs a build section to build from")
