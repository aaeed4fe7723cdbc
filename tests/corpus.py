"""The Compose corpus: the public docker/awesome-compose repository, one compose.yaml per sample folder.

Shared by scripts/compose-corpus (the tally) and tests/test_compose_corpus.py (the tally and the
differential fidelity test against Docker Compose v2).

The corpus is third-party content the project may not redistribute: it is never copied into the
repository. GEN_COMPOSE_CORPUS names it (a git directory, bare or not, whose HEAD is extracted with
`git archive`, or a plain directory, copied), default the local mirror DEFAULT_CORPUS. It is extracted
whole into a temporary directory, since Compose files refer to files beside them (secrets, env files,
build contexts, configs), and nothing gen or Compose does while reading it touches the original.

Accepting a sample means what `gen build` does, minus the engine: gen.spec.load.load_spec on the file
exactly as written, then compile_spec with stand-in images (every image reference and every build
resolves to the local test image's ID: nothing is built, pulled or written to any store). Variables
come from the environment, as gen's Compose reader takes them, and from the sample's own `.env` file;
the tally sets none.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CORPUS_ENV = "GEN_COMPOSE_CORPUS"
DEFAULT_CORPUS = "/work/.mirror/docker+awesome-compose/repo"
UPSTREAM = "https://github.com/docker/awesome-compose"
CORPUS_SIZE = 39                 # sample folders with a Compose file at the upstream commit we know
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
STAND_IN = os.environ.get("GEN_TEST_IMAGE", "gen-test/busybox:1")
PLACEHOLDER_ID = "sha256:" + "0" * 64    # an image ID for acceptance alone, where no engine is asked

MISSING = (f"the Compose corpus (docker/awesome-compose) is not on this machine: it is external data the "
           f"project may not redistribute. Get it with `git clone --bare {UPSTREAM} {DEFAULT_CORPUS}`, or "
           f"point {CORPUS_ENV} at a clone (a git directory, bare or not) or a plain directory of its samples")


@dataclass(frozen=True)
class Sample:
    name: str           # the sample's folder, e.g. "nginx-flask-mysql"
    file: Path          # its Compose file, in the extracted copy

    @property
    def profile(self) -> str:
        """A gen profile (and Compose project) name for it: Compose's rule, lowercase, [a-z0-9_-]."""
        return re.sub(r"[^a-z0-9_-]", "", self.name.lower()).lstrip("_-") or "sample"


@dataclass
class Verdict:
    sample: Sample
    accepted: bool
    reason: str = ""                        # gen's one-line error, for a rejected sample
    spec: object = field(default=None, repr=False)       # gen.model.types.Spec, when accepted
    compiled: object = field(default=None, repr=False)   # gen.model.compile.Compiled, when accepted


def corpus_location(given: str | os.PathLike | None = None) -> Path | None:
    """Where the corpus is (the argument, else GEN_COMPOSE_CORPUS, else the mirror); None when absent."""
    path = Path(given or os.environ.get(CORPUS_ENV) or DEFAULT_CORPUS)
    return path if path.is_dir() else None


def is_git_dir(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir() or (path / ".git").exists()


def extract(source: Path, dest: Path) -> Path:
    """The corpus's samples as plain files under dest (returned): a git directory's HEAD via
    `git archive`, a plain directory copied (so that nothing done to the samples reaches it)."""
    dest.mkdir(parents=True, exist_ok=True)
    if is_git_dir(source):
        git_dir = source / ".git" if (source / ".git").exists() else source
        archive = subprocess.run(["git", f"--git-dir={git_dir}", "archive", "--format=tar", "HEAD"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    else:
        shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True)
    return dest


def find_samples(root: Path) -> list[Sample]:
    """Every top-level folder holding a Compose file (the first of COMPOSE_FILES it has), by name."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = [folder / name for name in COMPOSE_FILES if (folder / name).is_file()]
        if files:
            found.append(Sample(folder.name, files[0]))
    return found


_extracted: dict[str, Path] = {}


def session_corpus(given: str | os.PathLike | None = None) -> Path | None:
    """The corpus extracted once per process into a temporary directory (removed at exit); None when absent."""
    source = corpus_location(given)
    if source is None:
        return None
    key = str(source.resolve())
    if key not in _extracted:
        import atexit
        tmp = Path(tempfile.mkdtemp(prefix="gen-compose-corpus-"))
        atexit.register(shutil.rmtree, tmp, True)
        _extracted[key] = extract(source, tmp / "corpus")
    return _extracted[key]


# -- acceptance ------------------------------------------------------------------------------------
def stand_in_resolver(image_id: str):
    """compile_spec's resolve_image: every reference and every build is the stand-in image."""
    from gen.model.compile import ResolvedImage
    return lambda request: ResolvedImage(image_id)


def judge(sample: Sample, image_id: str = PLACEHOLDER_ID, state_dir: Path | None = None,
          profile: str | None = None) -> Verdict:
    """Does gen accept the sample as written? Compiled with stand-in images; secrets sealed under the
    key of `state_dir` (a throwaway one when None; nothing is written to a store either way)."""
    from gen.errors import GenError
    from gen.model.compile import compile_spec
    from gen.spec.load import load_spec
    from gen.state.secrets import file_pinner
    with tempfile.TemporaryDirectory(prefix="gen-corpus-state-") as scratch:
        state = Path(state_dir or scratch)
        state.mkdir(parents=True, exist_ok=True)
        try:
            spec = load_spec(sample.file)
            compiled = compile_spec(spec, profile or sample.profile, stand_in_resolver(image_id),
                                    file_pinner(state), str(state))
        except GenError as e:
            return Verdict(sample, False, one_line(str(e)))
        except Exception as e:          # noqa: BLE001 - a crash is a rejection too, and a bug to report
            return Verdict(sample, False, one_line(f"gen crashed: {type(e).__name__}: {e}"))
    return Verdict(sample, True, "", spec, compiled)


def one_line(text: str) -> str:
    return " ".join(text.split())


def tally(root: Path, image_id: str = PLACEHOLDER_ID) -> list[Verdict]:
    return [judge(s, image_id) for s in find_samples(root)]


def stand_in_id() -> str:
    """The stand-in image's ID on the engine (PLACEHOLDER_ID when no engine answers: acceptance does
    not depend on it)."""
    try:
        out = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", STAND_IN],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return PLACEHOLDER_ID
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else PLACEHOLDER_ID
