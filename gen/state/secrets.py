"""The state directory's secret key, and the store objects of pinned files it seals.

A generation carries its secrets: each value is a store object of kind "secret", encrypted with
AES-256-GCM-SIV (the `cryptography` package) under a key derived from this state directory's key, so
a reader of the store (a backup, a copied closure) learns nothing about the value, and a rollback
restores exactly the old value even after its file changed or was deleted. Config files are pinned the
same way as kind "config", stored as they are (they are not secrets). gen.deploy.materialize writes
both back to tmpfs at activation.

Sealing is deterministic: the nonce is a keyed hash of the value (a synthetic IV, as in SIV modes), so
the same value gives the same object and the same hash, and an unchanged secret leaves the generation
unchanged (content addressing needs exactly that). What this reveals, that two sealed values are equal,
the generations' hashes reveal anyway; and GCM-SIV stays confidential even if two different values
ever met the same nonce (it would only show whether they are equal), unlike plain GCM.

The key is part of every generation that uses a secret: only it decrypts them, and a new key makes
every secret a new object, so the unchanged spec would build a new generation and replace every
container that uses a secret. So gen creates the key only on first use, never over an existing file,
and refuses (CorruptState) a key that is damaged, or missing while recorded generations use secrets.
GEN_SECRET_KEY_FILE names a key kept elsewhere (another disk): gen then never creates one, it must
exist. To start over knowingly, write a new key yourself (`head -c 32 /dev/urandom > secret.key;
chmod 600 secret.key`) and expect those containers to be replaced at the next switch (and the
generations sealed with the old key to be unusable for a rollback).
"""
from __future__ import annotations

import os
from pathlib import Path

from blake3 import blake3

from gen.errors import CorruptState, SpecError
from gen.model.compile import PinFile, Pinned
from gen.model.types import CONFIG_FORMAT, SECRET_FORMAT, SecretObject
from gen.state.profile import Profile, list_profiles
from store import Store, atomic_write, digest, encode
from store.errors import StoreError
from store.fsutil import ensure_dir, fsync_dir

KEY_FILE = "secret.key"
KEY_BYTES = 32          # blake3's key size, and AES-256's
KEY_FILE_ENV = "GEN_SECRET_KEY_FILE"
CIPHER = "AES-256-GCM-SIV"
AAD = b"gen secret object"     # binds a ciphertext to its use: it decrypts only as a secret object
MAX_FILE_BYTES = 16 << 20      # a pinned file is held in memory and in the store: bounded


def key_path(state_dir: Path) -> tuple[Path, bool]:
    """(where the key is, whether the user named it with GEN_SECRET_KEY_FILE)."""
    named = os.environ.get(KEY_FILE_ENV)
    return (Path(named), True) if named else (Path(state_dir) / KEY_FILE, False)


def secret_key(state_dir: Path, store: Store | None = None) -> bytes:
    """This state directory's key: created once (mode 0600), on first use, unless GEN_SECRET_KEY_FILE
    names it; CorruptState naming the file when it is damaged, or missing while generations use
    secrets, or named and missing (see the module's docstring)."""
    path, named = key_path(state_dir)
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        if named:
            raise CorruptState(path, f"does not exist ({KEY_FILE_ENV} names it as the secret key); mount the disk "
                               f"it is on, or fix {KEY_FILE_ENV}") from None
        users = generations_using_secrets(Path(state_dir), store or Store(Path(state_dir) / "store"))
        if users:
            raise CorruptState(path, f"is missing, but {users} use secrets sealed with it. {_advice(path)}") from None
        key = _create(path)
    except OSError as e:
        raise CorruptState(path, f"cannot be read ({e.strerror}). {_advice(path)}") from None
    if len(key) != KEY_BYTES:
        raise CorruptState(path, f"holds {len(key)} bytes, not a {KEY_BYTES}-byte key (damaged, or not "
                           f"written by gen). {_advice(path)}")
    return key


def _advice(path: Path) -> str:
    return ("Only it decrypts the secrets of recorded generations, and a new key would make every secret a new "
            "object, so the unchanged spec would build a new generation and replace every container that uses a "
            f"secret. Restore the key from a backup; or start over knowingly: head -c {KEY_BYTES} /dev/urandom > "
            f"{path}; chmod 600 {path}")


def _create(path: Path) -> bytes:
    """A new random key at `path`, unless another process created one meanwhile (then that one)."""
    ensure_dir(path.parent)
    temp = path.with_name(f".{KEY_FILE}.{os.getpid()}.new")
    atomic_write(temp, os.urandom(KEY_BYTES), mode=0o600)
    try:
        os.link(temp, path)          # unlike a rename, never replaces a key that exists
    except FileExistsError:
        pass
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return path.read_bytes()


def generations_using_secrets(state_dir: Path, store: Store) -> str:
    """Which recorded generations have a secret digested with the key ("" if none), for messages.
    Objects missing from the store are skipped: only what is there can tell."""
    found: dict[str, list[int]] = {}
    seen: dict[str, bool] = {}              # manifest hash -> uses a secret
    for name in list_profiles(state_dir):
        for gen in Profile(state_dir, name).generations():
            if gen.manifest not in seen:
                seen[gen.manifest] = _uses_secrets(store, gen.manifest)
            if seen[gen.manifest]:
                found.setdefault(name, []).append(gen.number)
    return "; ".join(f"generation(s) {', '.join(map(str, numbers))} of profile {name}"
                     for name, numbers in sorted(found.items()))


def _uses_secrets(store: Store, manifest_hash: str) -> bool:
    try:
        manifest = store.get(manifest_hash)
        services = manifest.get("services") if isinstance(manifest, dict) else None
        objects = [store.get(h) for h in (services or {}).values()]
    except StoreError:
        return False
    # Only {name, file, digest} secrets were digested; the names an early gen wrote were not (formats).
    return any(isinstance(obj, dict) and any(isinstance(s, dict) for s in obj.get("secrets") or ())
               for obj in objects)


# -- sealing ---------------------------------------------------------------------------------------
def _subkey(key: bytes, purpose: str) -> bytes:
    # One key per use, derived (blake3's KDF mode): the cipher's key never doubles as the nonce's.
    return blake3(key, derive_key_context=f"gen 2026-12 secret objects: {purpose}").digest()


def seal(key: bytes, value: bytes) -> SecretObject:
    """The secret object of `value`: deterministic (same key and value, same object; see above)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV   # only a command with secrets loads it
    nonce = blake3(value, key=_subkey(key, "nonce")).digest(length=12)
    return {"kind": "secret", "format": SECRET_FORMAT, "cipher": CIPHER, "nonce": nonce,
            "sealed": AESGCMSIV(_subkey(key, "cipher")).encrypt(nonce, value, AAD)}


def unseal(key: bytes, obj: SecretObject, where: str, key_file: Path) -> bytes:
    """The value of a (format-checked) secret object; CorruptState naming it when this key cannot open it."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
    if obj["cipher"] != CIPHER or len(obj["nonce"]) != 12:
        raise CorruptState(where, f"secret object uses cipher {obj['cipher']!r}; this gen reads {CIPHER} only")
    try:
        return AESGCMSIV(_subkey(key, "cipher")).decrypt(obj["nonce"], obj["sealed"], AAD)
    except InvalidTag:
        raise CorruptState(where, f"secret cannot be decrypted with the key {key_file} (it was sealed with "
                           f"another key: restore that one, or point {KEY_FILE_ENV} at it)") from None


def file_pinner(state_dir: Path, store: Store | None = None) -> PinFile:
    """pin(kind, file, key_path) -> Pinned: a secret file sealed (the key is read on the first secret), a
    config file as it is; SpecError naming key_path when the file cannot be read."""
    keys: list[bytes] = []

    def pin(kind: str, path: str, key_path: str) -> Pinned:
        data, st = _read(path, key_path, kind)
        if kind == "secret":
            keys[:] = keys or [secret_key(state_dir, store)]
            obj: dict = seal(keys[0], data)
        else:
            obj = {"kind": "config", "format": CONFIG_FORMAT, "data": data}
        encoded = encode(obj)
        return Pinned(digest(encoded), encoded, st.st_uid, st.st_gid, st.st_mode & 0o777)
    return pin


def _read(path: str, key_path: str, kind: str) -> tuple[bytes, os.stat_result]:
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size > MAX_FILE_BYTES:
                raise SpecError(key_path, f"{kind} file {path} is larger than {MAX_FILE_BYTES >> 20} MiB")
            return f.read(MAX_FILE_BYTES + 1), st
    except OSError as e:
        raise SpecError(key_path, f"cannot read {kind} file {path}: {e.strerror}") from None
