# gen's recipes. `pip install rust-just` brings `just`; every recipe sets up what it needs itself.
set shell := ["bash", "-euo", "pipefail", "-c"]

venv := ".venv"
py := venv + "/bin/python"

# Show the recipes
default:
    @just --list

# Virtualenv with gen and its test dependencies, a running Docker engine, the local test images
setup:
    scripts/setup

# build -> switch -> change -> switch -> rollback -> list, on the real engine
demo: setup
    PATH="$PWD/{{venv}}/bin:$PATH" scripts/demo

# The same generations on a 3-node Swarm (the lab: scripts/swarm-lab), switch -> change -> failure undone -> rollback
demo-swarm: setup
    PATH="$PWD/{{venv}}/bin:$PATH" scripts/demo-swarm

# The whole test suite on the real engine (extra arguments go to pytest)
test *ARGS: setup
    {{py}} -m pytest -q {{ARGS}}

# Fault injection: kill at every boundary of a switch, its undo, recover, rollback and gc; random kills; dockerd restart; 4 racing switches; 5,000 fuzzed specs.
# Restarts the Docker daemon: every container on this machine restarts or stops.
faults *ARGS: setup
    {{py}} -m tests.faults --daemon-restart {{ARGS}}

# gen vs Docker Compose v2 vs a Docker SDK floor, on the real engine (--reps N, --cases a,b, --quick)
bench *ARGS: setup
    if [ ! -f {{venv}}/.gen-bench-installed ] || [ pyproject.toml -nt {{venv}}/.gen-bench-installed ]; then {{py}} -m pip install -q --disable-pip-version-check -e '.[test,bench]' --config-settings editable_mode=compat && touch {{venv}}/.gen-bench-installed; fi
    {{py}} -m bench.run {{ARGS}}

# The 3-node Swarm lab on this machine (scripts/swarm-lab): up | down | status | kill N | start N
swarm-lab *ARGS:
    scripts/swarm-lab {{ARGS}}
