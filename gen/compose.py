"""Import a Compose file (the subset gen can honour) as a gen Spec.

A Compose document is converted into the TOML-shaped document a gen.toml would hold and
then goes through the very same validation (gen.spec.build_spec), so both formats give
the same normal form. Error subjects are mapped back to the Compose key that produced the
value (`services.web.environment[2]`, `services.web.deploy.replicas`).

Rules, as Compose has them:
- YAML is read with YAML 1.2 core-schema scalars, as Compose's Go reader does: `no`, `on`
  and `yes` are strings (`restart: no`), `22:22` is a string, not the base-60 number 1342,
  and `2024-01-01` is a string. Duplicate keys are an error.
- Keys starting with `x-` are ignored in every mapping (extension fields).
- Every string value is interpolated (`$VAR`, `${VAR:-default}`, `${VAR:?error}`, `$$`)
  before anything else looks at it; unset variables without a default become "".
- A key set to null counts as absent.
Anything gen cannot honour is an error naming its key, never silently dropped.
"""
from __future__ import annotations

import decimal
import os
import posixpath
import re
import shlex
from collections import ChainMap
from collections.abc import Mapping

import yaml

from gen.errors import SpecError
from gen.fields import _ENV_KEY_RE, SECRETS_DIR, _clip, _env, _host_ip, _normpath, _one_line, _show, _sub
from gen.naming import NAME_RE
from gen.spec import Spec, _base_dir, build_spec, read_text

MAX_VALUES = 100_000   # values in the document once YAML aliases are expanded ("billion laughs")
MAX_DEPTH = 64         # mapping/list nesting
MAX_NESTED_VARIABLES = 16

# Compose's defaults where they differ from gen.toml's (applied before validation).
HEALTHCHECK_DEFAULTS = {"interval": "30s", "timeout": "30s", "retries": 3, "start_period": "0s"}
RESTART_DEFAULT = "no"


# ---------------------------------------------------------------- entry points

def load_compose(path: str | os.PathLike) -> Spec:
    """Read a Compose file. Variables come from os.environ, then a `.env` file beside it."""
    source = os.fsdecode(path)
    text = read_text(source, source, "compose file")
    base_dir = os.path.dirname(os.path.abspath(source))
    environ = dict(os.environ)
    dotenv = os.path.join(base_dir, ".env")
    if os.path.isfile(dotenv):
        file_vars = parse_env_file(read_text(dotenv, dotenv, ".env file"), dotenv, dotenv, os.environ)
        environ = {**file_vars, **os.environ}  # the shell's environment wins, as in Compose
    return parse_compose(text, source, base_dir, environ)


def parse_compose(text: str, source: str = "<string>", base_dir: str | None = None,
                  environ: Mapping[str, str] | None = None) -> Spec:
    """Compose text -> Spec. Relative paths are resolved against base_dir (default: the cwd);
    variables come from `environ` only (default: none), so this is deterministic."""
    environ = {} if environ is None else environ
    base_dir = _base_dir(base_dir)
    document = _load_yaml(text, source)
    document = _Prepared(environ, source).value(document, "", 0)
    if document is None:  # an empty file: no services, like an empty gen.toml
        document = {}
    converted, origins = _Converter(base_dir, environ, source).document(document)
    return build_spec(converted, source, base_dir, origins)


# ---------------------------------------------------------------- YAML

class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars (what Compose's Go YAML reader gives)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    key = (key_node.tag, key_node.value)
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            "while constructing a mapping", node.start_mark,
                            f"found duplicate key {_clip(key_node.value)!r}", key_node.start_mark)
                    seen.add(key)
        return super().construct_mapping(node, deep)


def _construct_int(loader, node) -> int:
    text = str(loader.construct_scalar(node))
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    base = {"0o": 8, "0x": 16}.get(digits[:2], 10)
    digits = digits[2:] if base != 10 else digits
    if len(digits) > 1000:  # int() of huge text is slow or refused outright
        raise yaml.constructor.ConstructorError(None, None, "integer is too long", node.start_mark)
    try:
        return sign * int(digits, base)
    except ValueError:
        raise yaml.constructor.ConstructorError(None, None, f"invalid integer {_show(text)}",
                                                node.start_mark) from None


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag in ("tag:yaml.org,2002:null", "tag:yaml.org,2002:merge")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                              list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"))
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _load_yaml(text: str, source: str):
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        what = " ".join(part for part in (err.context, err.problem) if part)
        raise SpecError(source, f"invalid YAML: {_one_line(what)}{where}") from None
    except yaml.YAMLError as err:
        raise SpecError(source, f"invalid YAML: {_one_line(str(err))}") from None
    except (ValueError, TypeError, OverflowError):  # explicit tags PyYAML cannot construct
        raise SpecError(source, "invalid YAML: a tagged value cannot be read") from None
    except RecursionError:
        raise SpecError(source, "invalid YAML: nested too deeply") from None


# ---------------------------------------------------------------- interpolation

class _Prepared:
    """Copy the document: drop `x-` keys, interpolate strings, refuse what YAML has but Compose has not."""

    def __init__(self, environ: Mapping[str, str], source: str):
        self.environ = environ
        self.source = source
        self.count = 0

    def value(self, node, path: str, depth: int):
        self.count += 1
        if self.count > MAX_VALUES:
            raise SpecError(self.source, f"the document is too large (more than {MAX_VALUES} values "
                                         "once YAML aliases are expanded)")
        if depth > MAX_DEPTH:
            raise SpecError(path or self.source, "nested too deeply")
        if isinstance(node, str):
            return interpolate(node, path, self.environ)
        if node is None or isinstance(node, (bool, int, float)):
            return node
        if isinstance(node, list):
            return [self.value(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(node)]
        if isinstance(node, dict):
            out = {}
            for key, item in node.items():
                if not isinstance(key, str):
                    raise SpecError(path or self.source, f"key {_show(key)} must be a string (quote it)")
                if not key.startswith("x-"):
                    out[key] = self.value(item, _sub(path, key), depth + 1)
            return out
        raise SpecError(path or self.source, f"unsupported YAML value of type {type(node).__name__}")


_VARIABLE = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


def interpolate(text: str, path: str, environ: Mapping[str, str], depth: int = 0) -> str:
    """Compose's variable substitution. Errors name `path`."""
    if "$" not in text:
        return text
    if depth > MAX_NESTED_VARIABLES:
        raise SpecError(path, "variables are nested too deeply")
    out, i = [], 0
    while (start := text.find("$", i)) >= 0:
        out.append(text[i:start])
        follower = text[start + 1:start + 2]
        if follower == "$":
            out.append("$")
            i = start + 2
        elif follower == "{":
            end = _closing_brace(text, start + 2)
            if end < 0:
                raise SpecError(path, f"invalid interpolation in {_show(text)}: unclosed ${{")
            out.append(_braced(text[start + 2:end], path, environ, depth, text))
            i = end + 1
        elif match := _VARIABLE.match(text, start + 1):
            out.append(environ.get(match[0], ""))
            i = match.end()
        else:
            raise SpecError(path, f"invalid interpolation in {_show(text)}: "
                                  "a $ must start $NAME or ${NAME} (write $$ for a literal $)")
    out.append(text[i:])
    return "".join(out)


def _closing_brace(text: str, i: int) -> int:
    depth = 0
    while i < len(text):
        pair = text[i:i + 2]
        if pair == "$$":
            i += 2
        elif pair == "${":
            depth, i = depth + 1, i + 2
        elif text[i] == "}":
            if depth == 0:
                return i
            depth, i = depth - 1, i + 1
        else:
            i += 1
    return -1


def _braced(body: str, path: str, environ: Mapping[str, str], depth: int, text: str) -> str:
    match = _VARIABLE.match(body)
    operator = next((op for op in _OPERATORS if match and body.startswith(op, match.end())), None)
    if not match or (operator is None and match.end() != len(body)):
        raise SpecError(path, f"invalid interpolation in {_show(text)}: "
                              f"${{{_clip(body, 30)}}} is not ${{NAME}}, ${{NAME:-default}} or ${{NAME:?error}}")
    name, value = match[0], environ.get(match[0])
    if operator is None:
        return value or ""
    argument = body[match.end() + len(operator):]
    present = bool(value) if operator.startswith(":") else value is not None
    if operator in (":-", "-"):
        return value if present else interpolate(argument, path, environ, depth + 1)
    if operator in (":+", "+"):
        return interpolate(argument, path, environ, depth + 1) if present else ""
    if present:
        return value
    message = _clip(_one_line(interpolate(argument, path, environ, depth + 1)), 200)
    raise SpecError(path, f"required variable {name} is missing a value" + (f": {message}" if message else ""))


# ---------------------------------------------------------------- env files

def parse_env_file(text: str, file: str, subject: str, environ: Mapping[str, str]) -> dict[str, str]:
    """KEY=VALUE lines (Compose's env_file and .env): `#` comments, blank lines, `export KEY=...`,
    'single' (literal) and "double" quotes, `KEY` alone takes the value from `environ` (or is
    dropped). Unquoted and double-quoted values are interpolated like the Compose file, from the
    file's own earlier lines first, then `environ` (as Compose's dotenv reader does)."""
    found: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[7:].lstrip()
        key, equals, value = line.partition("=")
        key = key.strip()
        where = f"{_show(file)} line {number}"
        if len(key) > 4096 or not _ENV_KEY_RE.fullmatch(key):
            raise SpecError(subject, f"{where}: invalid variable name {_show(key)}")
        if not equals:
            if key in environ:
                found[key] = environ[key]
            continue
        try:
            found[key] = _env_file_value(value.strip(), subject, ChainMap(found, environ))
        except SpecError as err:
            raise SpecError(subject, f"{where}: {err.reason}") from None
    return found


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$$"}


def _env_file_value(value: str, subject: str, lookup: Mapping[str, str]) -> str:
    if value.startswith("'"):
        end = value.find("'", 1)
        if end < 0 or not _only_comment(value[end + 1:]):
            raise SpecError(subject, "unterminated ' quote" if end < 0 else "text after the closing quote")
        return value[1:end]
    if value.startswith('"'):
        out, i = [], 1
        while i < len(value) and value[i] != '"':
            if value[i] == "\\" and i + 1 < len(value):
                out.append(_ESCAPES.get(value[i + 1], "\\" + value[i + 1]))
                i += 2
            else:
                out.append(value[i])
                i += 1
        if i >= len(value) or not _only_comment(value[i + 1:]):
            raise SpecError(subject, 'unterminated " quote' if i >= len(value) else "text after the closing quote")
        return interpolate("".join(out), subject, lookup)
    comment = re.search(r"\s#", value)
    return interpolate(value[:comment.start()].rstrip() if comment else value, subject, lookup)


def _only_comment(rest: str) -> bool:
    rest = rest.strip()
    return not rest or rest.startswith("#")


# ---------------------------------------------------------------- Compose -> TOML-shaped document

class _Origins:
    """Maps a key path of the converted document back to the Compose key it came from."""

    def __init__(self):
        self.paths: dict[str, tuple[str, bool]] = {}

    def add(self, converted: str, original: str, whole: bool = False) -> None:
        """whole: errors anywhere under `converted` name `original` itself (e.g. a split command string)."""
        self.paths[converted] = (original, whole)

    def __call__(self, subject: str) -> str:
        cuts = [len(subject)] + [i for i in range(len(subject) - 1, 0, -1) if subject[i] in ".["]
        for cut in cuts:
            found = self.paths.get(subject[:cut])
            if found:
                original, whole = found
                return original if whole else original + subject[cut:]
        return subject


_TOP_KEYS = ("name", "services", "volumes", "secrets", "version")
_TOP_UNSUPPORTED = {
    "networks": "not supported yet: every service joins the deployment's own network, "
                "where it is reachable by its service name",
    "configs": "not supported (use secrets, or a bind mount)",
    "include": "not supported (gen reads one file)",
    "models": None,
}

_SERVICE_KEYS = ("image", "command", "entrypoint", "environment", "env_file", "ports", "volumes", "depends_on",
                 "healthcheck", "restart", "deploy", "labels", "stop_grace_period", "user", "working_dir",
                 "secrets")
_SERVICE_UNSUPPORTED = {
    "build": "not supported: gen needs a pre-built image (build it, then name it in image)",
    "container_name": "not supported: gen names containers itself (names carry the service hash, "
                      "so old and new containers can run side by side)",
    "networks": _TOP_UNSUPPORTED["networks"],
    "network_mode": _TOP_UNSUPPORTED["networks"],
    "links": "not supported: services reach each other by service name on the deployment's network",
    "external_links": None,
    "scale": "not supported: use deploy.replicas",
    "expose": "not supported (every container port is reachable on the deployment's network anyway)",
    **dict.fromkeys(
        "annotations attach blkio_config cap_add cap_drop cgroup cgroup_parent configs cpu_count cpu_percent "
        "cpu_period cpu_quota cpu_rt_period cpu_rt_runtime cpu_shares cpus cpuset credential_spec develop "
        "device_cgroup_rules devices dns dns_opt dns_search domainname driver_opts extends extra_hosts gpus "
        "group_add hostname init ipc isolation label_file logging mac_address mem_limit mem_reservation "
        "mem_swappiness memswap_limit models oom_kill_disable oom_score_adj pid pids_limit platform post_start "
        "pre_stop privileged profiles provider pull_policy read_only runtime security_opt shm_size stdin_open "
        "stop_signal storage_opt sysctls tmpfs tty ulimits use_api_socket userns_mode uts volumes_from".split()),
}


def _check_keys(mapping: dict, path: str, supported, unsupported: Mapping[str, str | None] | None = None) -> None:
    """Unknown keys, and keys Compose has but gen cannot honour (reason None: a generic one), are errors."""
    unsupported = unsupported or {}
    for key in sorted(mapping):
        if key in supported:
            continue
        if key in unsupported:
            reason = unsupported[key] or f"not supported by gen (supported here: {', '.join(sorted(supported))})"
        else:
            reason = f"unknown key (expected one of: {', '.join(sorted(supported))})"
        raise SpecError(_sub(path, key), reason)


def _mapping(value, path: str, what: str = "must be a mapping", keep_null: bool = False) -> dict:
    """A mapping of options, where a null value means the option is absent (keep_null: of definitions)."""
    if not isinstance(value, dict):
        raise SpecError(path, what)
    return dict(value) if keep_null else {key: item for key, item in value.items() if item is not None}


def _scalar_text(value, path: str) -> str:
    """Compose turns numbers and booleans into strings where a string is wanted (true -> "true")."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() > 64:
            raise SpecError(path, "number is too large (quote it)")
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    raise SpecError(path, "must be a string, a number or a boolean")


def _go_float(value: float) -> str:
    """A float as Compose prints it (Go's fmt.Sprint): 1.0 -> "1", 1.5 -> "1.5", 1e6 -> "1e+06"."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    sign, digits, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()  # repr: the shortest digits
    magnitude = len(digits) + exponent - 1
    text = "".join(map(str, digits))
    if -4 <= magnitude < 6:  # Go's %g with the shortest digits switches to an exponent at 1e6
        text = format(decimal.Decimal(f"{text}e{exponent}"), "f")
    else:
        text = text[0] + ("." + text[1:] if len(text) > 1 else "") + f"e{'-' if magnitude < 0 else '+'}{abs(magnitude):02d}"
    return ("-" if sign else "") + text


class _Converter:
    def __init__(self, base_dir: str, environ: Mapping[str, str], source: str):
        self.base_dir = base_dir
        self.environ = environ
        self.source = source
        self.origins = _Origins()

    def document(self, doc) -> tuple[dict, _Origins]:
        doc = _mapping(doc, self.source, "the document must be a mapping")
        _check_keys(doc, "", _TOP_KEYS, _TOP_UNSUPPORTED)
        out: dict = {}
        if "name" in doc:
            out["name"] = doc["name"]
        services = _mapping(doc.get("services", {}), "services", keep_null=True)
        out["services"] = {name: self.service(value, _sub("services", name))
                           for name, value in services.items()}
        volumes = _mapping(doc.get("volumes", {}), "volumes", keep_null=True)
        out["volumes"] = {name: self.volume(value, _sub("volumes", name)) for name, value in volumes.items()}
        secrets = _mapping(doc.get("secrets", {}), "secrets", keep_null=True)
        out["secrets"] = {name: self.secret(value, _sub("secrets", name)) for name, value in secrets.items()}
        return out, self.origins

    # -- top-level definitions ------------------------------------------------------------------
    def volume(self, value, path: str) -> dict:
        volume = _mapping({} if value is None else value, path, "must be a mapping (or empty)")
        _check_keys(volume, path, (), dict.fromkeys(
            ("driver", "driver_opts", "labels", "name", "external"),
            "not supported: gen creates plain local named volumes (leave the volume's definition empty)"))
        return {}

    def secret(self, value, path: str) -> dict:
        secret = _mapping(value, path, "must be a mapping with file:")
        _check_keys(secret, path, ("file",), dict.fromkeys(
            ("environment", "external", "name", "content", "driver", "driver_opts", "template_driver", "labels"),
            "not supported: gen reads secrets from files (use file:)"))
        if isinstance(secret.get("file"), str) and secret["file"]:
            secret["file"] = self.host_path(secret["file"], f"{path}.file")
        return secret

    # -- services -------------------------------------------------------------------------------
    def service(self, value, path: str) -> dict:
        svc = _mapping(value, path)
        _check_keys(svc, path, _SERVICE_KEYS, _SERVICE_UNSUPPORTED)
        out: dict = {"restart": RESTART_DEFAULT}
        for key in ("image", "restart", "user", "working_dir"):
            if key in svc:
                out[key] = svc[key]
        if isinstance(out.get("user"), int) and not isinstance(out["user"], bool):
            out["user"] = str(out["user"])  # user: 1000
        for key in ("command", "entrypoint"):
            if key in svc:
                out[key] = self.argv(svc[key], f"{path}.{key}")
        if "environment" in svc or "env_file" in svc:
            out["env"] = self.env(svc, path)
        if "ports" in svc:
            out["ports"] = [self.port(item, f"{path}.ports[{i}]")
                            for i, item in enumerate(self.list(svc["ports"], f"{path}.ports"))]
        if "volumes" in svc:
            out["volumes"] = [self.mount(item, f"{path}.volumes[{i}]")
                              for i, item in enumerate(self.list(svc["volumes"], f"{path}.volumes"))]
        if "depends_on" in svc:
            out["depends_on"] = self.depends_on(svc["depends_on"], f"{path}.depends_on")
        if "healthcheck" in svc:
            out["healthcheck"] = self.healthcheck(svc["healthcheck"], f"{path}.healthcheck")
        if "deploy" in svc:
            deploy = _mapping(svc["deploy"], f"{path}.deploy")
            _check_keys(deploy, f"{path}.deploy", ("replicas",), dict.fromkeys(
                ("mode", "endpoint_mode", "labels", "placement", "resources", "restart_policy", "rollback_config",
                 "update_config")))
            if "replicas" in deploy:
                out["replicas"] = deploy["replicas"]
                self.origins.add(f"{path}.replicas", f"{path}.deploy.replicas")
        if "stop_grace_period" in svc:
            out["stop_grace"] = svc["stop_grace_period"]
            self.origins.add(f"{path}.stop_grace", f"{path}.stop_grace_period")
        if "labels" in svc:
            out["labels"] = self.labels(svc["labels"], f"{path}.labels")
        if "secrets" in svc:
            out["secrets"] = [self.secret_ref(item, f"{path}.secrets[{i}]")
                              for i, item in enumerate(self.list(svc["secrets"], f"{path}.secrets"))]
        return out

    @staticmethod
    def list(value, path: str) -> list:
        if not isinstance(value, list):
            raise SpecError(path, "must be a list")
        return value

    def argv(self, value, path: str):
        if isinstance(value, str):  # Compose splits a string the way a shell would
            self.origins.add(path, path, whole=True)
            try:
                return shlex.split(value)
            except ValueError as err:
                raise SpecError(path, f"cannot split {_show(value)} into words: {str(err).lower()}") from None
        if not isinstance(value, list):
            raise SpecError(path, "must be a string or a list of strings")
        return value

    # -- environment ----------------------------------------------------------------------------
    def env(self, svc: dict, path: str) -> dict:
        env: dict = {}
        files = svc.get("env_file", [])
        if isinstance(files, (str, dict)):
            files = [(files, f"{path}.env_file")]
        else:
            files = [(item, f"{path}.env_file[{i}]") for i, item in enumerate(self.list(files, f"{path}.env_file"))]
        for item, sub in files:
            for key, value in self.env_file(item, sub).items():
                env[key] = value
                self.origins.add(_sub(f"{path}.env", key), sub)
        environment = svc.get("environment", {})
        if isinstance(environment, list):
            for i, item in enumerate(environment):
                sub = f"{path}.environment[{i}]"
                if isinstance(item, (list, dict)) or item is None:
                    raise SpecError(sub, 'must be a string "KEY=value" (or "KEY")')
                key, equals, value = _scalar_text(item, sub).partition("=")
                self.env_entry(env, key, value if equals else None, path, sub)
        elif isinstance(environment, dict):
            for key, value in environment.items():
                sub = _sub(f"{path}.environment", key)
                self.env_entry(env, key, None if value is None else _scalar_text(value, sub), path, sub)
        else:
            raise SpecError(f"{path}.environment", "must be a list of KEY=value strings or a mapping")
        return env

    def env_entry(self, env: dict, key: str, value: str | None, path: str, sub: str) -> None:
        if value is None:  # `KEY` alone: from the environment gen runs in, or not at all
            value = self.environ.get(key)
            if value is None:
                try:
                    _env({key: ""}, sub)  # dropped, but a bad name is still an error
                except SpecError as err:
                    raise SpecError(sub, err.reason) from None
                env.pop(key, None)
                return
        env[key] = value
        self.origins.add(_sub(f"{path}.env", key), sub)

    def env_file(self, item, sub: str) -> dict[str, str]:
        required = True
        if isinstance(item, dict):
            entry = _mapping(item, sub)
            _check_keys(entry, sub, ("path", "required"), {"format": None})
            if "path" not in entry:
                raise SpecError(f"{sub}.path", "missing required key")
            required = entry.get("required", True)
            if not isinstance(required, bool):
                raise SpecError(f"{sub}.required", "must be true or false")
            item, sub = entry["path"], f"{sub}.path"
        if not isinstance(item, str) or not item:
            raise SpecError(sub, "must be a file path")
        file = self.host_path(item, sub)
        if not required and not os.path.exists(file):
            return {}
        return parse_env_file(read_text(file, sub, f"env file {_show(item)}"), item, sub, self.environ)

    # -- ports ----------------------------------------------------------------------------------
    def port(self, item, path: str) -> str:
        if isinstance(item, bool) or not isinstance(item, (int, str, dict)):
            raise SpecError(path, 'must be a string like "8080:80" or a mapping')
        if isinstance(item, int):
            raise SpecError(path, _no_host_port(str(item)))
        if isinstance(item, str):
            return self.port_short(item, path)
        return self.port_long(item, path)

    @staticmethod
    def port_short(text: str, path: str) -> str:
        spec = text.partition("/")[0]
        if "-" in spec:
            raise SpecError(path, f"port range {_show(text)} is not supported (publish each port on its own)")
        if spec.startswith("["):
            end = spec.find("]")
            parts = spec[end + 2:].split(":") if end > 0 else []
            host = parts[0] if len(parts) == 2 else None
        else:
            parts = spec.split(":")
            host = None if len(parts) == 1 else parts[-2]
        if host == "" or (host is None and spec and ":" not in spec):
            raise SpecError(path, _no_host_port(text))
        return text  # the rest is gen's own port syntax, checked by gen.spec

    def port_long(self, item: dict, path: str) -> str:
        port = _mapping(item, path)
        _check_keys(port, path, ("target", "published", "host_ip", "protocol", "mode"), {"name": None, "app_protocol": None})
        if "target" not in port:
            raise SpecError(f"{path}.target", "missing required key")
        target = _port_number_text(port["target"], f"{path}.target")
        if "published" not in port:
            raise SpecError(path, _no_host_port(target))
        published = _port_number_text(port["published"], f"{path}.published")
        host_ip = port.get("host_ip", "")
        if not isinstance(host_ip, str):
            raise SpecError(f"{path}.host_ip", "must be a string")
        if host_ip:
            ip = _host_ip(host_ip, False, f"{path}.host_ip")
            host_ip = f"[{ip}]:" if ":" in ip else f"{ip}:"
        protocol = port.get("protocol", "tcp")
        if not isinstance(protocol, str):
            raise SpecError(f"{path}.protocol", "must be a string")
        if port.get("mode", "host") != "host":
            raise SpecError(f"{path}.mode", f"{_show(port['mode'])} is not supported: only mode: host "
                                            "(gen publishes ports on the engine's host)")
        return f"{host_ip}{published}:{target}/{protocol}"

    # -- volumes --------------------------------------------------------------------------------
    def mount(self, item, path: str) -> str:
        if isinstance(item, dict):
            return self.mount_long(item, path)
        if not isinstance(item, str):
            raise SpecError(path, 'must be a string like "data:/data" or a mapping')
        parts = item.split(":")
        if len(parts) == 1:
            raise SpecError(path, _anonymous(item))
        if parts[0].startswith((".", "~")):  # a host path relative to the compose file, or the home directory
            parts[0] = _no_colon(self.host_path(parts[0], path), path)
        return ":".join(parts)

    def mount_long(self, item: dict, path: str) -> str:
        mount = _mapping(item, path)
        _check_keys(mount, path, ("type", "source", "target", "read_only"),
                    {"bind": None, "volume": None, "tmpfs": None, "image": None, "consistency": None})
        kind = mount.get("type")
        if kind is None:
            raise SpecError(f"{path}.type", "missing required key")
        if kind not in ("volume", "bind"):
            raise SpecError(f"{path}.type", f"{_show(kind)} is not supported (use volume or bind)")
        for key in ("source", "target"):
            if key in mount and not isinstance(mount[key], str):
                raise SpecError(f"{path}.{key}", "must be a string")
        if "target" not in mount:
            raise SpecError(f"{path}.target", "missing required key")
        if not mount.get("source"):
            if kind == "volume":
                raise SpecError(path, _anonymous(mount["target"]))
            raise SpecError(f"{path}.source", "missing required key")
        source = mount["source"]
        if kind == "volume" and not NAME_RE.match(source):
            raise SpecError(f"{path}.source", f"{_show(source)} is not a volume name (for a host path use type: bind)")
        if kind == "bind":
            source = self.host_path(source, f"{path}.source")
        read_only = mount.get("read_only", False)
        if not isinstance(read_only, bool):
            raise SpecError(f"{path}.read_only", "must be true or false")
        source = _no_colon(source, f"{path}.source")
        target = _no_colon(mount["target"], f"{path}.target")
        return f"{source}:{target}" + (":ro" if read_only else "")

    def host_path(self, text: str, path: str) -> str:
        """A host path as Compose reads it: ~ is the home directory, relative means beside the compose file."""
        if text == "~" or text.startswith("~/"):
            home = self.environ.get("HOME")
            if not home:
                raise SpecError(path, f"cannot expand ~ in {_show(text)}: HOME is not set")
            return _normpath(home + text[1:])
        if text.startswith("~"):
            raise SpecError(path, f"{_show(text)}: only ~ and ~/... are understood (not ~user)")
        return _normpath(posixpath.join(self.base_dir, text))

    # -- dependencies, health, labels, secrets -------------------------------------------------
    def depends_on(self, value, path: str) -> list:
        if isinstance(value, list):
            return value  # gen.spec checks the names
        _mapping(value, path, "must be a list of service names or a mapping")
        for i, (dep, condition) in enumerate(list(value.items())):
            sub = _sub(path, dep)
            self.origins.add(f"{path}[{i}]", sub)
            options = _mapping({} if condition is None else condition, sub)
            _check_keys(options, sub, ("condition", "required", "restart"))
            when = options.get("condition", "service_started")
            if when == "service_completed_successfully":
                raise SpecError(f"{sub}.condition", "service_completed_successfully is not supported yet "
                                                    "(gen has no one-shot services)")
            if when not in ("service_started", "service_healthy"):
                raise SpecError(f"{sub}.condition", f"must be service_started or service_healthy (got {_show(when)})")
            if options.get("required", True) is not True:
                raise SpecError(f"{sub}.required", "only true is supported (gen always starts dependencies)")
            if options.get("restart", False) is not False:
                raise SpecError(f"{sub}.restart", "only false is supported")
        return list(value)  # both conditions hold: gen starts a service after its dependencies are healthy

    def healthcheck(self, value, path: str) -> dict:
        check = _mapping(value, path)
        _check_keys(check, path, ("test", "interval", "timeout", "retries", "start_period", "disable"),
                    {"start_interval": None})
        out = {}
        disable = check.get("disable", False)
        if not isinstance(disable, bool):
            raise SpecError(f"{path}.disable", "must be true or false")
        if disable:
            if "test" in check:
                raise SpecError(f"{path}.disable", "cannot be combined with test")
            out["test"] = ["NONE"]
            self.origins.add(f"{path}.test", f"{path}.disable")
        elif "test" in check:
            out["test"] = check["test"]
        else:
            raise SpecError(f"{path}.test", "missing required key (gen does not take the image's HEALTHCHECK; "
                                            "give test, or disable: true)")
        for key, default in HEALTHCHECK_DEFAULTS.items():
            out[key] = check.get(key, default)
        return out

    def labels(self, value, path: str) -> dict:
        labels: dict = {}
        if isinstance(value, list):
            for i, item in enumerate(value):
                sub = f"{path}[{i}]"
                if isinstance(item, (list, dict)) or item is None:
                    raise SpecError(sub, 'must be a string "key=value"')
                key, _, text = _scalar_text(item, sub).partition("=")
                labels[key] = text
                self.origins.add(_sub(path, key), sub)
        elif isinstance(value, dict):
            for key, item in value.items():
                sub = _sub(path, key)
                labels[key] = "" if item is None else _scalar_text(item, sub)
        else:
            raise SpecError(path, "must be a list of key=value strings or a mapping")
        return labels

    @staticmethod
    def secret_ref(item, path: str):
        if not isinstance(item, dict):
            return item  # a name; gen.spec checks it is declared
        ref = _mapping(item, path)
        _check_keys(ref, path, ("source", "target"), {"uid": None, "gid": None, "mode": None})
        if "source" not in ref:
            raise SpecError(f"{path}.source", "missing required key")
        source = ref["source"]
        if "target" in ref and ref["target"] not in (source, f"{SECRETS_DIR}/{source}"):
            raise SpecError(f"{path}.target", f"only the default target ({SECRETS_DIR}/<source>) is supported")
        return source


def _port_number_text(value, path: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        if isinstance(value, str) and "-" in value:
            raise SpecError(path, f"port range {_show(value)} is not supported (publish each port on its own)")
        raise SpecError(path, f"must be a port number (got {_show(value)})")
    return value


def _no_host_port(text: str) -> str:
    return (f"port {_show(text)} has no host port: gen publishes fixed host ports only "
            '(write "HOST:CONTAINER", e.g. "8080:80")')


def _anonymous(target: str) -> str:
    return (f"anonymous volume {_show(target)} is not supported: name it (and declare it under the "
            "top-level volumes) or bind a host path")


def _no_colon(text: str, path: str) -> str:
    if ":" in text:
        raise SpecError(path, f"{_show(text)}: paths containing ':' are not supported")
    return text
