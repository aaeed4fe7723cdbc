"""What each container of a generation is attached to, in the engine's names: its networks (with their
aliases), its volumes, its anonymous volumes, or a network_mode; and which networks and volumes
the activation must make sure of before it creates a container.

- The manifest's "default" network is "<profile>_default" (as before format 3); a declared network
  is "<profile>_<name>" unless it has a `name`. Every service is reachable on each network it joins
  by its name and its aliases. An external network is the user's: it must exist, and gen never
  creates or removes it.
- network_mode "service:NAME" joins the network stack of NAME's container of the new generation, by
  its id (NAME starts first: the planner orders it as a dependency).
- An anonymous volume (a mount without a source) is a volume of the profile named per service, replica
  and target (gen.model.naming.anonymous_volume_name): made before the container, never removed, so a
  replaced container (or a rollback) finds its data again.
"""
from __future__ import annotations

from gen.engine.base import Engine, Wiring
from gen.errors import GenError
from gen.faults import checkpoint
from gen.model.compile import Compiled
from gen.model.containers import network_peer
from gen.model.naming import DEFAULT_NETWORK, anonymous_volume_name, engine_network_name, network_name, volume_name

ONLY_DEFAULT = {DEFAULT_NETWORK: {}}


class Networks:
    """The networks and volumes of one manifest, by the engine's names."""

    def __init__(self, profile: str, manifest: dict):
        self.profile = profile
        self.defined: dict[str, dict] = dict(manifest["networks"])
        self.volumes: dict[str, dict] = dict(manifest["volumes"])

    def engine_name(self, network: str) -> str:
        return engine_network_name(self.profile, network, self.defined.get(network, {}))

    def is_external(self, network: str) -> bool:
        return bool(self.defined.get(network, {}).get("external"))

    def volume(self, vol: str) -> str:
        """A declared volume's engine name: the user's own for an external one, else the profile's."""
        opts = self.volumes[vol]
        return opts["name"] if opts.get("external") else volume_name(self.profile, vol)

    @staticmethod
    def joined(obj: dict) -> list[str]:
        """The networks a service joins (none with a network_mode), in join order."""
        if obj.get("network_mode"):
            return []
        return sorted(obj.get("networks", ONLY_DEFAULT))

    def owned(self, services: list[dict]) -> set[str]:
        """Engine names of the gen-owned networks `services` join."""
        return {self.engine_name(n) for obj in services for n in self.joined(obj) if not self.is_external(n)}

    def wiring(self, service: str, obj: dict, replica: int, peer_id: str | None = None) -> Wiring:
        """One replica's attachments. peer_id: the id of the container whose network stack it shares
        (network_mode service:NAME), resolved by the caller."""
        attach = obj.get("networks", ONLY_DEFAULT)
        nets = {self.engine_name(n): [service, *attach[n].get("aliases", ())] for n in self.joined(obj)}
        ipv4 = {self.engine_name(n): attach[n]["ipv4_address"] for n in self.joined(obj) if "ipv4_address" in attach[n]}
        ipv6 = {self.engine_name(n): attach[n]["ipv6_address"] for n in self.joined(obj) if "ipv6_address" in attach[n]}
        mode = obj.get("network_mode") or None
        if network_peer(obj):
            mode = f"container:{peer_id}"
        return Wiring(networks=nets, volumes={v: self.volume(v) for v in self.volumes},
                      anonymous=anonymous_volumes(self.profile, service, obj, replica), network_mode=mode,
                      ipv4=ipv4, ipv6=ipv6)


def anonymous_volumes(profile: str, service: str, obj: dict, replica: int) -> dict[str, str]:
    """mount target -> engine volume name, for each anonymous volume of one replica."""
    return {m["target"]: anonymous_volume_name(profile, service, replica, m["target"])
            for m in obj["volumes"] if m["type"] == "volume" and not m["source"]}


def retired_networks(profile: str, owned: list[str], target: Compiled, warm: tuple[dict, ...] = ()) -> list[str]:
    """Of the profile's gen-made networks (`owned`, as the engine lists them by label), those that neither
    the target's services nor the `warm` manifests' kept containers join. From what the engine has, not
    from the manifests being left, so a network no manifest names any more (a generation that stopped
    being warm when `gen warm` was lowered, one left by an older gen) is retired too."""
    keep = Networks(profile, target.manifest).owned([obj for _, obj in target.services.values()])
    for manifest in warm:
        keep |= _defined(profile, manifest) | ({network_name(profile)} if manifest["services"] else set())
    return sorted(set(owned) - keep)


def _defined(profile: str, manifest: dict) -> set[str]:
    nets = Networks(profile, manifest)
    return {nets.engine_name(n) for n in nets.defined if not nets.is_external(n)}


def retire_networks(engine: Engine, profile: str, target: Compiled, warm: tuple[dict, ...] = (),
                    dry_run: bool = False) -> list[str]:
    """Remove the networks retired_networks finds; returns those removed (dry_run: that would be). Best
    effort, after a commit: one still in use (by something gen did not create) stays, and an engine that
    cannot list them leaves them for a later activation."""
    try:
        owned = engine.profile_networks(profile)
    except GenError:
        return []
    removed = []
    for name in retired_networks(profile, owned, target, warm):
        if not dry_run:
            try:
                engine.remove_network(name)
            except GenError:
                continue
            checkpoint(f"network {name} removed")
        removed.append(name)
    return removed
