"""Remove everything a test made on the engine for one profile (containers, network, volumes, pins)."""
from __future__ import annotations


def remove_profile(docker_client, profile: str) -> None:
    label = {"label": f"gen.profile={profile}"}
    for c in docker_client.containers.list(all=True, filters=label):
        c.remove(force=True)
    for n in docker_client.networks.list(filters=label):
        n.remove()
    for v in docker_client.volumes.list(filters=label):
        v.remove(force=True)
    remove_pins(docker_client, profile)


def remove_pins(docker_client, profile: str) -> None:
    """gen tags the images of recorded generations (gen-pin/<state id>/<profile>:<id>); only the tags of
    this (test-unique) profile go, whatever state directory made them."""
    import re
    mine = re.compile(rf"gen-pin/(?:[0-9a-f]{{16}}/)?{re.escape(profile)}:[0-9a-f]{{64}}")
    built = re.compile(rf"{re.escape(profile)}-[a-z0-9._-]+:latest")   # what gen tags a build (as Compose names it)
    for image in docker_client.images.list():
        for ref in image.tags:
            if mine.fullmatch(ref):
                docker_client.api.remove_image(ref, noprune=True)
            elif built.fullmatch(ref):
                try:
                    docker_client.api.remove_image(ref)     # the image goes with its last tag
                except Exception:                           # still used (a container of another test): untagged later
                    pass
