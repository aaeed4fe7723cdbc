"""The file `gen export` writes and `gen import` reads: one tar stream, written and read sequentially
(plain `tar tvf` lists it), in this order:

    gen-export.json          the header (JSON): format, version, profile, generation number, manifest
                             hash, spec source hash, every object (hash, kind, size), every image
                             archive (image ID, blob hash, size), and a note on secrets
    objects/<blake3 hash>    each object's canonical bytes: pinned secrets (ciphertext only) and
                             config files, service objects, the spec source, the manifest last
    images/<blake3 hash>     with --images: each image's `docker save` archive (plain Docker loads it)

Everything is named by its hash, so the reader rehashes every object and archive; an image archive
is also checked to hold the image it is listed for (its config's sha256 is the image ID). Secrets
are sealed with the exporting state directory's key: the header says so, and carries a fingerprint of
that key (a keyed hash that reveals nothing of it) so the importer can tell whether its key matches.
"""
from __future__ import annotations

import hashlib
import json
import re
import tarfile
from pathlib import Path

from gen.errors import GenError
from gen.state.secrets import KEY_BYTES, key_path
from store.objects import HASH_RE

FORMAT = "gen-export"
VERSION = 1
HEADER = "gen-export.json"
MAX_HEADER = 64 << 20
MAX_OBJECT = 64 << 20           # a pinned file is at most 16 MiB; a manifest of 1,000 services far less
KINDS = ("manifest", "service", "secret", "config", "source")
SECRETS_NOTE = ("secret objects are sealed (AES-256-GCM-SIV) with the exporting state directory's key and "
                "carried as ciphertext only: to activate this generation, the importing state directory "
                "needs that key (copy its secret.key, or point GEN_SECRET_KEY_FILE at it)")
_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
_BLOCK = 512


# -- the header ------------------------------------------------------------------------------------
def header(profile: str, generation: int | None, manifest: str, source: str | None, objects: list[dict],
           images: list[dict], key_id: str | None) -> bytes:
    secrets = sum(1 for o in objects if o["kind"] == "secret")
    value = {"format": FORMAT, "version": VERSION, "profile": profile, "generation": generation,
             "manifest": manifest, "source": source, "objects": objects, "images": images,
             "secrets": secrets, "key_id": key_id if secrets else None, "note": SECRETS_NOTE if secrets else ""}
    return (json.dumps(value, indent=1, sort_keys=True) + "\n").encode()


def read_header(data: bytes, where: str) -> dict:
    """The header, checked: every hash well formed, every kind known, no name twice. GenError naming
    the file otherwise."""
    try:
        value = json.loads(data)
    except ValueError:
        raise GenError(where, "is not a gen export (its header is not JSON)") from None
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise GenError(where, "is not a gen export")
    if value.get("version") != VERSION:
        raise GenError(where, f"is a gen export of version {value.get('version')!r}; this gen reads version {VERSION}")
    try:
        objects = {o["hash"]: (o["kind"], int(o["size"])) for o in value["objects"]}
        images = {i["blob"]: (i["id"], int(i["size"])) for i in value["images"]}
        ok = (HASH_RE.fullmatch(value["manifest"]) and value["manifest"] in objects
              and (value["source"] is None or value["source"] in objects)
              and all(HASH_RE.fullmatch(h) and k in KINDS for h, (k, _) in objects.items())
              and all(HASH_RE.fullmatch(b) and _IMAGE_ID.fullmatch(i) for b, (i, _) in images.items())
              and len(objects) == len(value["objects"]) and len(images) == len(value["images"])
              and isinstance(value["profile"], str))
    except (KeyError, TypeError, ValueError, AttributeError):
        ok = False
    if not ok:
        raise GenError(where, "has a damaged header (a hash, kind or size is not what gen writes)")
    value["by_hash"], value["by_blob"] = objects, images
    return value


def key_id(state_dir: Path) -> str | None:
    """A fingerprint of the state directory's secret key (None when it has none); never creates one."""
    from blake3 import blake3
    try:
        key = key_path(state_dir)[0].read_bytes()
    except OSError:
        return None
    return blake3(b"gen export key id", key=key).hexdigest()[:16] if len(key) == KEY_BYTES else None


# -- tar members, written by hand: sequential, any size, never buffered -----------------------------
def member_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o444, 0
    return info.tobuf(tarfile.USTAR_FORMAT)


def padding(size: int) -> bytes:
    return b"\0" * (-size % _BLOCK)


END = b"\0" * (2 * _BLOCK)       # tar's end-of-archive marker


def member_name(kind: str, h: str) -> str:
    return f"{'objects' if kind != 'image' else 'images'}/{h}"


def parse_member(name: str) -> tuple[str, str] | None:
    """("objects" | "images", hash) of a member name, or None."""
    folder, _, h = name.partition("/")
    return (folder, h) if folder in ("objects", "images") and HASH_RE.fullmatch(h) else None


# -- image archives --------------------------------------------------------------------------------
def archive_image_ids(path: Path) -> list[str]:
    """The IDs of the images a `docker save` archive holds, each computed from its content (the
    sha256 of its config), not taken from its names; [] when it is no image archive."""
    try:
        with tarfile.open(path, "r:") as tar:
            manifest = json.load(tar.extractfile("manifest.json"))
            ids = []
            for entry in manifest:
                config = tar.extractfile(entry["Config"])
                h = hashlib.sha256()
                while chunk := config.read(1 << 20):
                    h.update(chunk)
                ids.append(f"sha256:{h.hexdigest()}")
            return sorted(ids)
    except (tarfile.TarError, KeyError, TypeError, ValueError, AttributeError, OSError):
        return []
