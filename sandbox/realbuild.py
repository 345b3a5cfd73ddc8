"""Building the real Dex and oauth2-proxy binaries from the Go modules in ``sandbox/real/``.

Each folder ``sandbox/real/<component>-<version>/`` is one small Go module:
its ``go.mod`` names the upstream program in a ``tool`` line and pins it
(Dex at its tag's commit, as a pseudo-version), its committed ``go.sum``
pins every dependency.  ``build`` compiles one into the per-user cache,
``$XDG_CACHE_HOME/kfdex/real/<component>-<version>/<component>`` (default
``~/.cache``), and keeps a stamp beside it: a binary is reused while the
stamp matches the module's go.mod and go.sum and the Go version.

``python -m sandbox.realbuild`` builds every flavor's binaries with the
standard library alone (CI runs it before the test environment exists);
``kfdex sandbox-build`` does the same for the flavors it is given.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

MODULES = Path(__file__).resolve().parent / "real"
FALLBACK_GO = Path("/usr/local/go/bin/go")  # where Go's own archive installs it, when not on PATH
STAMP = "built.json"


class BuildFailure(Exception):
    """A real component could not be built; the message is one line saying why and what to do."""


@dataclass(frozen=True)
class Built:
    """One binary in the cache, and whether this run built it."""

    build: str  # the module folder's name: dex-v2.41.1
    binary: Path
    seconds: float  # how long the build took (0 when reused)
    size: int  # bytes
    reused: bool

    @property
    def line(self) -> str:
        """What ``sandbox-build`` prints for it."""
        how = "reused" if self.reused else f"built in {self.seconds:.0f} s"
        return f"{self.build}: {how}, {self.size / 1e6:.1f} MB, {self.binary}"


def user_cache() -> Path:
    """``$XDG_CACHE_HOME/kfdex`` (``~/.cache/kfdex`` by default): what the sandbox builds once and reuses."""
    return Path(os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")) / "kfdex"


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/kfdex/real`` (``~/.cache/kfdex/real`` by default)."""
    return user_cache() / "real"


def component(build: str) -> str:
    """``dex`` for ``dex-v2.41.1``, ``oauth2-proxy`` for ``oauth2-proxy-v7.7.1``: the binary's name."""
    return build.rsplit("-", 2 if build.startswith("dex-master") else 1)[0]


def binary(build: str) -> Path:
    """Where the binary of ``build`` lives once built."""
    return cache_root() / build / component(build)


def go_command() -> str | None:
    """The ``go`` on PATH, else Go's default install folder; None when there is neither."""
    found = shutil.which("go")
    if found:
        return found
    return str(FALLBACK_GO) if FALLBACK_GO.exists() else None


def _tool(build: str) -> str:
    """The package its go.mod's ``tool`` line names: what gets built."""
    for line in (MODULES / build / "go.mod").read_text().splitlines():
        if line.startswith("tool "):
            return line.split()[1]
    raise BuildFailure(f"sandbox/real/{build}/go.mod names no tool: add one `tool <package>` line")


def _fingerprint(build: str, go: str) -> str:
    """What the binary depends on: the module's go.mod and go.sum, and the Go version."""
    version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout.strip()
    digest = hashlib.sha256(version.encode())
    for name in ("go.mod", "go.sum"):
        lines = (MODULES / build / name).read_text().splitlines()
        digest.update("\n".join(line for line in lines if not line.startswith("//")).encode())  # comments change nothing
    return digest.hexdigest()


def is_built(build: str) -> bool:
    """True when the binary is in the cache (whatever Go built it)."""
    return binary(build).is_file() and (binary(build).parent / STAMP).is_file()


def build(name: str, go: str) -> Built:
    """Build (or reuse) one module's binary; BuildFailure with Go's own last words when it cannot."""
    if not (MODULES / name / "go.mod").is_file():
        raise BuildFailure(f"no Go module sandbox/real/{name}: the checkout is incomplete")
    target = binary(name)
    stamp_file = target.parent / STAMP
    fingerprint = _fingerprint(name, go)
    try:
        stamp = json.loads(stamp_file.read_text())
    except (OSError, ValueError):
        stamp = {}
    if stamp.get("fingerprint") == fingerprint and target.is_file():
        return Built(name, target, 0.0, target.stat().st_size, reused=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    # cgo stays on (Go's default where a C compiler is): Dex before v2.44 needs it for its sqlite3 storage code
    environment = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly -buildvcs=false"}
    started = time.monotonic()
    command = [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(partial), _tool(name)]
    result = subprocess.run(command, cwd=MODULES / name, env=environment, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        said = [line.strip() for line in result.stderr.splitlines() if line.strip() and not line.startswith(("#", "go: downloading"))]
        raise BuildFailure(f"go build of {name} failed: {(said or ['(no output)'])[0]} (run `go build` in sandbox/real/{name} to see all)")
    os.replace(partial, target)
    _copy_web(name, go, environment, target.parent)
    size = target.stat().st_size
    stamp_file.write_text(json.dumps({"fingerprint": fingerprint, "seconds": round(seconds, 1), "size": size}))
    return Built(name, target, seconds, size, reused=False)


def _copy_web(name: str, go: str, environment: dict[str, str], folder: Path) -> None:
    """The program's ``web/`` folder beside it, as its Dockerfile does (Dex before v2.31 reads its templates from disk)."""
    found = subprocess.run(
        [go, "list", "-f", "{{.Module.Dir}}", _tool(name)], cwd=MODULES / name, env=environment, capture_output=True, text=True, check=False
    )
    web = Path(found.stdout.strip()) / "web"
    if found.returncode != 0 or not (web / "templates").is_dir():
        return
    for source in web.rglob("*"):  # the module cache's files are read-only: copy contents, not modes
        copy = folder / "web" / source.relative_to(web)
        if source.is_dir():
            copy.mkdir(parents=True, exist_ok=True)
        else:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)


def missing(builds: tuple[str, ...]) -> list[str]:
    """The builds among ``builds`` whose binary is not in the cache."""
    return [name for name in builds if not is_built(name)]


def build_all(builds: Iterable[str], go: str, say: Callable[[str], None]) -> list[str]:
    """Build or reuse each of ``builds``, saying one line each; the ones that failed (the others are still built)."""
    failed: list[str] = []
    for name in builds:
        try:
            say(build(name, go).line)
        except BuildFailure as error:
            say(f"{name}: {error}")
            failed.append(name)
    return failed


def main() -> int:
    """Every flavor's real binaries; exit 10 (the sandbox's code) when go is missing or a build fails."""
    from .flavors import FLAVORS

    go = go_command()
    if go is None:
        print("error: building the real components needs Go 1.26 (`go` is not on PATH)", file=sys.stderr)
        return 10
    builds = dict.fromkeys(build for flavor in FLAVORS.values() for build in flavor.real)
    started = time.monotonic()
    failed = build_all(builds, go, lambda line: print(line, flush=True))
    print(f"{len(builds) - len(failed)} of {len(builds)} real binaries ready in {time.monotonic() - started:.0f} s, {cache_root()}")
    return 10 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
