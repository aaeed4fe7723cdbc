"""Convert a prepared Compose document into the TOML-shaped document a gen.toml would hold.

The output goes through gen.spec.build_spec like any gen.toml, so this module only reshapes
and refuses: the key tables below say which Compose keys gen honours and why it refuses the
rest. convert_document walks the document (its files already merged and its host paths made
absolute by gen.spec.compose.sources), its top-level volumes, networks, secrets and configs, and each
service; the per-field converters are in gen.spec.compose.fields, mounts, networks and build. What
needs the environment (env files, `KEY` without a value) stays here, in the converter.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from gen.errors import SpecError
from gen.spec.compose.env import parse_env_file
from gen.spec.compose.options import COMPOSE_OPTION_KEYS, convert_options, convert_resources
from gen.spec.compose.build import convert_build, convert_pull_policy
from gen.spec.compose.fields import (convert_argv, convert_config_ref, convert_depends_on, convert_healthcheck,
                                     convert_labels, convert_port, convert_secret_ref)
from gen.spec.compose.mounts import convert_mount
from gen.spec.compose.networks import convert_network, convert_service_networks, project_named
from gen.spec.compose.paths import host_path
from gen.spec.compose.shape import Origins, check_compose_keys, checked_list, checked_mapping, scalar_text
from gen.spec.document import read_text
from gen.spec.fields import parse_env
from gen.spec.messages import key_path, shown

RESTART_DEFAULT = "no"  # Compose's default; gen.toml's differs (applied before validation)
UPDATE_DEFAULT = "stop-first"   # Compose recreates a changed container stop-first; gen.toml chooses by the mounts

_TOP_KEYS = ("name", "services", "volumes", "secrets", "configs", "version", "networks")
_TOP_UNSUPPORTED = {"models": None}

_SERVICE_KEYS = ("image", "command", "entrypoint", "environment", "env_file", "ports", "volumes", "depends_on",
                 "healthcheck", "restart", "deploy", "labels", "stop_grace_period", "user", "working_dir",
                 "secrets", "configs", "build", "pull_policy", "container_name", "networks", "network_mode",
                 "profiles", "scale")
_AS_WRITTEN = ("image", "restart", "user", "working_dir", "container_name", "network_mode", "profiles")
_SERVICE_UNSUPPORTED = {
    "links": "not supported: services reach each other by service name (or networks.NAME.aliases)",
    "external_links": "not supported: join the other container's network (networks: external) instead",
    "expose": "not supported (every container port is reachable on the deployment's network anyway)",
    **dict.fromkeys(
        "annotations attach blkio_config cap_add cap_drop cgroup cgroup_parent cpu_count cpu_percent "
        "cpu_period cpu_quota cpu_rt_period cpu_rt_runtime cpu_shares cpus cpuset credential_spec develop "
        "device_cgroup_rules devices dns dns_opt dns_search domainname driver_opts extra_hosts gpus "
        "group_add hostname init ipc isolation label_file logging mac_address mem_limit mem_reservation "
        "mem_swappiness memswap_limit models oom_kill_disable oom_score_adj pid pids_limit platform post_start "
        "pre_stop privileged provider read_only runtime security_opt shm_size stdin_open "
        "stop_signal storage_opt sysctls tmpfs tty ulimits use_api_socket userns_mode uts volumes_from".split()),
}
_SERVICE_KEYS += tuple(sorted(COMPOSE_OPTION_KEYS))
_SERVICE_UNSUPPORTED = {k: v for k, v in _SERVICE_UNSUPPORTED.items() if k not in COMPOSE_OPTION_KEYS}


def convert_document(document, base_dir: str, environ: Mapping[str, str], source: str) -> tuple[dict, Origins]:
    """A prepared Compose document -> (TOML-shaped document, origins of its keys, for build_spec).
    Relative host paths start from base_dir; `KEY` without a value and `~` come from environ."""
    return _Converter(base_dir, environ, source).document(document)


class _Converter:
    """One Compose document -> (TOML-shaped document, origins of its keys). Holds what the per-field
    converters cannot know: the directory relative host paths start from, and the environment."""

    def __init__(self, base_dir: str, environ: Mapping[str, str], source: str):
        self.base_dir = base_dir
        self.environ = environ
        self.source = source
        self.origins = Origins()

    def document(self, doc) -> tuple[dict, Origins]:
        doc = checked_mapping(doc, self.source, "the document must be a mapping")
        check_compose_keys(doc, "", _TOP_KEYS, _TOP_UNSUPPORTED)
        out: dict = {}
        if "name" in doc:
            out["name"] = doc["name"]
        project = doc["name"] if isinstance(doc.get("name"), str) else None
        services = checked_mapping(doc.get("services", {}), "services", keep_null=True)
        out["services"] = {name: self.service(value, key_path("services", name))
                           for name, value in services.items()}
        volumes = checked_mapping(doc.get("volumes", {}), "volumes", keep_null=True)
        out["volumes"] = {name: self.volume(value, key_path("volumes", name), name, project)
                          for name, value in volumes.items()}
        networks = checked_mapping(doc.get("networks", {}), "networks", keep_null=True)
        out["networks"] = {name: convert_network(value, key_path("networks", name), name, project, self.origins)
                           for name, value in networks.items()}
        for section in ("secrets", "configs"):
            table = checked_mapping(doc.get(section, {}), section, keep_null=True)
            out[section] = {name: self.file_definition(value, key_path(section, name), section)
                            for name, value in table.items()}
        return out, self.origins

    # -- top-level definitions ------------------------------------------------------------------
    def volume(self, value, path: str, name: str, project: str | None) -> dict:
        """An empty definition: the deployment's own volume. `external: true` (with `name`): the user's.
        The name `docker compose config` writes for the project's own volume is gen's name for it too."""
        volume = checked_mapping({} if value is None else value, path, "must be a mapping (or empty)")
        if project_named(volume, name, project):
            volume = {key: item for key, item in volume.items() if key != "name"}
        external = volume.get("external") is True
        supported = ("external", "name") if external else ("external",)
        check_compose_keys(volume, path, supported, dict.fromkeys(
            ("driver", "driver_opts", "labels", "name"),
            "not supported: gen creates plain local named volumes (leave the definition empty, or mark it "
            "external: true to use a volume of your own)"))
        return {key: volume[key] for key in ("external", "name") if key in volume}

    def file_definition(self, value, path: str, section: str) -> dict:
        """A top-level secret or config: only `file:` (gen pins the file's content in the generation).
        Its `name` names a Swarm object, which a file-based one never becomes: accepted and ignored."""
        definition = checked_mapping(value, path, "must be a mapping with file:")
        check_compose_keys(definition, path, ("file", "name"), dict.fromkeys(
            ("environment", "external", "content", "driver", "driver_opts", "template_driver", "labels"),
            f"not supported: gen reads {section} from files (use file:)"))
        definition.pop("name", None)
        if isinstance(definition.get("file"), str) and definition["file"]:
            definition["file"] = host_path(definition["file"], f"{path}.file", self.base_dir, self.environ)
        return definition

    # -- services -------------------------------------------------------------------------------
    def service(self, value, path: str) -> dict:
        svc = checked_mapping(value, path)
        check_compose_keys(svc, path, _SERVICE_KEYS, _SERVICE_UNSUPPORTED)
        out: dict = {"restart": RESTART_DEFAULT, "update": UPDATE_DEFAULT}
        for key in _AS_WRITTEN:
            if key in svc:
                out[key] = svc[key]
        self.relations(svc, path, out)
        if isinstance(out.get("user"), int) and not isinstance(out["user"], bool):
            out["user"] = str(out["user"])  # user: 1000
        for key in ("command", "entrypoint"):
            if key in svc:
                out[key] = convert_argv(svc[key], f"{path}.{key}", self.origins)
        if "environment" in svc or "env_file" in svc:
            out["env"] = self.env(svc, path)
        if "ports" in svc:
            out["ports"] = [convert_port(item, f"{path}.ports[{i}]")
                            for i, item in enumerate(checked_list(svc["ports"], f"{path}.ports"))]
        if "volumes" in svc:
            out["volumes"] = [convert_mount(item, f"{path}.volumes[{i}]", self.origins)
                              for i, item in enumerate(checked_list(svc["volumes"], f"{path}.volumes"))]
        if "healthcheck" in svc:
            out["healthcheck"] = convert_healthcheck(svc["healthcheck"], f"{path}.healthcheck", self.origins)
        out.update(convert_options(svc, path, self.origins))
        if "deploy" in svc:
            deploy = checked_mapping(svc["deploy"], f"{path}.deploy")
            check_compose_keys(deploy, f"{path}.deploy", ("replicas", "update_config", "resources", "placement",
                                                          "endpoint_mode"), dict.fromkeys(
                ("mode", "labels", "restart_policy", "rollback_config")))
            self.swarm_keys(deploy, path, out)
            if "resources" in deploy:
                out.update(convert_resources(deploy["resources"], f"{path}.deploy.resources", self.origins))
            if "replicas" in deploy:
                if "scale" in svc and svc["scale"] != deploy["replicas"]:
                    raise SpecError(f"{path}.scale", "contradicts deploy.replicas")
                out["replicas"] = deploy["replicas"]
                self.origins.add(f"{path}.replicas", f"{path}.deploy.replicas")
            if "update_config" in deploy:
                self.update_order(deploy["update_config"], f"{path}.deploy.update_config", out)
        if "stop_grace_period" in svc:
            out["stop_grace"] = svc["stop_grace_period"]
            self.origins.add(f"{path}.stop_grace", f"{path}.stop_grace_period")
        if "labels" in svc:
            out["labels"] = convert_labels(svc["labels"], f"{path}.labels", self.origins)
        if "secrets" in svc:
            out["secrets"] = [convert_secret_ref(item, f"{path}.secrets[{i}]")
                              for i, item in enumerate(checked_list(svc["secrets"], f"{path}.secrets"))]
        if "configs" in svc:
            out["configs"] = [convert_config_ref(item, f"{path}.configs[{i}]")
                              for i, item in enumerate(checked_list(svc["configs"], f"{path}.configs"))]
        return out

    def relations(self, svc: dict, path: str, out: dict) -> None:
        """What a service says about its image, its networks and other services."""
        if "build" in svc:
            out["build"] = convert_build(svc["build"], f"{path}.build", self.environ, self.origins)
        if "pull_policy" in svc:
            out["pull_policy"] = convert_pull_policy(svc["pull_policy"], f"{path}.pull_policy")
        if "networks" in svc:
            out["networks"] = convert_service_networks(svc["networks"], f"{path}.networks")
        if "depends_on" in svc:
            out["depends_on"] = convert_depends_on(svc["depends_on"], f"{path}.depends_on")
        if "scale" in svc:      # Compose's older spelling of deploy.replicas
            out["replicas"] = svc["scale"]
            self.origins.add(f"{path}.replicas", f"{path}.scale")

    def swarm_keys(self, deploy: dict, path: str, out: dict) -> None:
        """deploy.placement (constraints, max_replicas_per_node) and deploy.endpoint_mode: gen.toml's
        `placement` and `endpoint_mode` (gen.spec.swarmkeys checks them; one engine they do not apply to)."""
        if "placement" in deploy:
            placement = checked_mapping(deploy["placement"], f"{path}.deploy.placement")
            check_compose_keys(placement, f"{path}.deploy.placement", ("constraints", "max_replicas_per_node"),
                               {"preferences": "not supported: gen places by constraints only"})
            out["placement"] = placement
        for key in ("placement", "endpoint_mode"):
            if key in deploy:
                out.setdefault(key, deploy[key])
                self.origins.add(f"{path}.{key}", f"{path}.deploy.{key}")

    def update_order(self, value, path: str, out: dict) -> None:
        """deploy.update_config.order (start-first | stop-first) is gen's `update`; the rest of
        update_config paces Swarm's one-by-one rollout, which gen's all-or-nothing switch replaces."""
        config = checked_mapping(value, path)
        check_compose_keys(config, path, ("order",), dict.fromkeys(
            ("parallelism", "delay", "failure_action", "monitor", "max_failure_ratio")))
        if "order" in config:
            out["update"] = config["order"]
            self.origins.add(f"{path[:path.index('.deploy')]}.update", f"{path}.order")

    # -- environment ----------------------------------------------------------------------------
    def env(self, svc: dict, path: str) -> dict:
        env: dict = {}
        files = svc.get("env_file", [])
        if isinstance(files, (str, dict)):
            files = [(files, f"{path}.env_file")]
        else:
            files = [(item, f"{path}.env_file[{i}]") for i, item in enumerate(checked_list(files, f"{path}.env_file"))]
        for item, sub in files:
            for key, value in self.env_file(item, sub).items():
                env[key] = value
                self.origins.add(key_path(f"{path}.env", key), sub)
        environment = svc.get("environment", {})
        if isinstance(environment, list):
            for i, item in enumerate(environment):
                sub = f"{path}.environment[{i}]"
                if isinstance(item, (list, dict)) or item is None:
                    raise SpecError(sub, 'must be a string "KEY=value" (or "KEY")')
                key, equals, value = scalar_text(item, sub).partition("=")
                self.env_entry(env, key, value if equals else None, path, sub)
        elif isinstance(environment, dict):
            for key, value in environment.items():
                sub = key_path(f"{path}.environment", key)
                self.env_entry(env, key, None if value is None else scalar_text(value, sub), path, sub)
        else:
            raise SpecError(f"{path}.environment", "must be a list of KEY=value strings or a mapping")
        return env

    def env_entry(self, env: dict, key: str, value: str | None, path: str, sub: str) -> None:
        if value is None:  # `KEY` alone: from the environment gen runs in, or not at all
            value = self.environ.get(key)
            if value is None:
                try:
                    parse_env({key: ""}, sub)  # dropped, but a bad name is still an error
                except SpecError as err:
                    raise SpecError(sub, err.reason) from None
                env.pop(key, None)
                return
        env[key] = value
        self.origins.add(key_path(f"{path}.env", key), sub)

    def env_file(self, item, sub: str) -> dict[str, str]:
        required = True
        if isinstance(item, dict):
            entry = checked_mapping(item, sub)
            check_compose_keys(entry, sub, ("path", "required"), {"format": None})
            if "path" not in entry:
                raise SpecError(f"{sub}.path", "missing required key")
            required = entry.get("required", True)
            if not isinstance(required, bool):
                raise SpecError(f"{sub}.required", "must be true or false")
            item, sub = entry["path"], f"{sub}.path"
        if not isinstance(item, str) or not item:
            raise SpecError(sub, "must be a file path")
        file = host_path(item, sub, self.base_dir, self.environ)
        if not required and not os.path.exists(file):
            return {}
        name = os.path.relpath(file, self.base_dir) if file.startswith(self.base_dir.rstrip("/") + "/") else file
        return parse_env_file(read_text(file, sub, f"env file {shown(name)}"), name, sub, self.environ)
