"""Third-party modules that load on first use instead of when they are imported. No `docker` import here.

gen.engine.docker imports this module before `import docker`: the Docker SDK imports paramiko (with invoke,
cryptography and nacl: about 0.06 s, 40% of the SDK's import) whenever it is installed, for its ssh://
transport alone (docker.transport.sshconn), and uses it only inside the methods that open an SSH
connection with it. Deferred, paramiko runs when such a connection first needs it, and engines on
unix:// or tcp:// never pay for it; nor do gen's own ssh:// ones, which shell out to the `ssh` client
(use_ssh_client) but need the SDK's ssh transport, hence paramiko installed (docker[ssh]).

The mechanism is the one of importlib.util.LazyLoader (the importlib docs' "Implementing lazy imports"):
a module made from the real spec, in sys.modules, whose code the real loader runs later, in place. It is
triggered differently: LazyLoader's module loads on any attribute look-up, and on Python 3.11 an `import
paramiko` statement itself looks up `__spec__` (to see whether the module is still initialising), so the
SDK's own module-level `import paramiko` would load it at once. Here the module loads on the first look-up
of an attribute it does not have yet (a module `__getattr__`, PEP 562): `__spec__` is there from the
start, `SSHClient` is not. As with LazyLoader, a submodule must not be imported before the package's
first use (`import paramiko.client` first would run the submodule before the package): the SDK never does,
it imports `paramiko` and uses its names.
"""
from __future__ import annotations

import importlib.util
import sys
import threading


def defer_import(name: str) -> None:
    """Put `name` into sys.modules unexecuted; it runs on the first look-up of a name it does not have yet.
    Nothing happens when it is imported already or not installed (an import of it then fails as usual)."""
    if name in sys.modules or (spec := importlib.util.find_spec(name)) is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    lock = threading.RLock()       # other threads wait for the load; the loading thread comes back in
    started = False

    def load(attribute: str):
        nonlocal started
        with lock:
            if not started:
                started = True
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    sys.modules.pop(name, None)      # as after a failed import: the next `import` tries again
                    raise
                finally:
                    if module.__dict__.get("__getattr__") is load:
                        del module.__getattr__
        try:
            return module.__dict__[attribute]
        except KeyError:       # also while loading: a name the module has not defined yet
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}") from None

    module.__getattr__ = load
    sys.modules[name] = module


defer_import("paramiko")
