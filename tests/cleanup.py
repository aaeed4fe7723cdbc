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
    """gen tags the images of recorded generations (gen-pin/<profile>:<id>); only those tags go."""
    from gen.state.pins import pin_repo
    repo = pin_repo(profile)
    for image in docker_client.images.list(name=repo):
        for ref in image.tags:
            if ref.startswith(f"{repo}:"):
                docker_client.api.remove_image(ref, noprune=True)
