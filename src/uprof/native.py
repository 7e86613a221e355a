"""The request path compiled to C with mypyc, used when a build matches these exact sources.

Most of what uprof spends on a read beyond the HTTP stack and the SQL is its own Python: the
dispatch, the caller's cache, the endpoint, the service, the remembered views and the response
(docs/performance.md, "Round 15"). ``MODULES`` are compiled by mypyc (part of mypy, the ``native``
extra) into extension modules; everything else, and every module a build does not match, runs
interpreted. Decisions O18.

A build is keyed by a hash of every source file of the package (and the interpreter's ABI): one
edited file and the build no longer matches, so the interpreted code serves until the next
``uprof native build``; a stale build never runs. Builds live in ``UPROF_NATIVE_DIR`` (default:
``uprof-native`` under the environment's prefix, so a new virtualenv starts without one).

``UPROF_NATIVE``: ``auto`` (default) uses a matching build if there is one; ``off`` never does;
``require`` refuses to start without one (CI and the benchmark, so a missing build is not a
silent slowdown).

The modules are chosen to compile without changing what they do. What mypyc changes, and what
the code here avoids for it: a compiled function is not a Python function (Starlette tells an
endpoint from an ASGI app by ``inspect.isfunction``: its adapters stay in ``uprof.http.routes``);
a compiled class's methods cannot be replaced at run time; a ``msgspec.Struct`` defined in a
compiled module is not one (the modules that define Structs stay interpreted). The SQLite store
and the response clusters were measured slower compiled, and stay interpreted too. Of the
PostgreSQL store, the reads are compiled (``pgcoalesce``, ``pgreads``) and its units of work are
not: their tests replace its module's functions, which a compiled module's callers never see.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

# The request path of the four hot endpoints, minus what the module docstring says stays
# interpreted.
MODULES = (
    "uprof.domain.ids",
    "uprof.domain.rules",
    "uprof.domain.timefmt",
    "uprof.http.bodies",
    "uprof.http.callers",
    "uprof.http.dispatch",
    "uprof.http.endpoints",
    "uprof.http.negotiation",
    "uprof.http.rendered",
    "uprof.http.request",
    "uprof.service.profiles",
    "uprof.store.compiled",
    "uprof.store.pgcoalesce",
    "uprof.store.pgreads",
    "uprof.store.profiles",
)

MODES = ("auto", "off", "require")
_MANIFEST = "manifest.json"
_PACKAGE = Path(__file__).resolve().parent


class NativeError(Exception):
    """A native build that cannot be made, or that ``UPROF_NATIVE=require`` finds missing."""


def source_key(package: Path = _PACKAGE) -> str:
    """What a build must have been made from: every source file of the package, and the ABI of
    the interpreter that loads it."""
    h = hashlib.sha256()
    h.update(f"{sys.implementation.cache_tag} {sysconfig.get_config_var('EXT_SUFFIX')}".encode())
    for path in sorted(package.rglob("*.py")):
        h.update(b"\0" + path.relative_to(package).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:24]


def native_dir() -> Path:
    found = os.environ.get("UPROF_NATIVE_DIR")
    return Path(found) if found else Path(sys.prefix) / "uprof-native"


def mode() -> str:
    value = os.environ.get("UPROF_NATIVE", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise NativeError(f"UPROF_NATIVE: must be one of {', '.join(MODES)}; got {value!r}")
    return value


@dataclass(frozen=True)
class Status:
    active: bool
    key: str
    path: Path
    reason: str


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the compiled modules of one build; every other name is left to the usual finders."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


_status: Status | None = None


def activate() -> Status:
    """Put a build that matches the sources in front of them, if there is one and the mode
    allows it. Runs once, when the package is first imported, before any of ``MODULES``."""
    global _status
    if _status is not None:
        return _status
    chosen = mode()
    key = source_key()
    path = native_dir() / key
    if chosen == "off":
        _status = Status(False, key, path, "UPROF_NATIVE=off")
        return _status
    files = _read_manifest(path, key)
    if files is None:
        if chosen == "require":
            raise NativeError(
                f"UPROF_NATIVE=require, and there is no native build of these sources at {path}: "
                "run `uprof native build`"
            )
        _status = Status(False, key, path, "no build of these sources (`uprof native build`)")
        return _status
    already = [name for name in MODULES if name in sys.modules]
    if already:  # too late to change what they are
        _status = Status(False, key, path, f"imported before the build: {', '.join(already)}")
        return _status
    sys.meta_path.insert(0, _Finder(files))
    _status = Status(True, key, path, f"{len(MODULES)} modules compiled by mypyc")
    return _status


def status() -> Status:
    """What ``activate`` found (it runs once; this asks it again at no cost)."""
    return activate()


def find_build(package: Path = _PACKAGE) -> Path | None:
    """The build of ``package``'s sources as they are now, if there is one."""
    key = source_key(package)
    path = native_dir() / key
    return path if _read_manifest(path, key) is not None else None


def _read_manifest(path: Path, key: str) -> dict[str, Path] | None:
    try:
        manifest = json.loads((path / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("key") != key or sorted(manifest.get("files", {})) != sorted(
        [*MODULES, manifest.get("group", "")]
    ):
        return None
    files = {name: path / rel for name, rel in manifest["files"].items()}
    return files if all(f.is_file() for f in files.values()) else None


def build(*, force: bool = False, out: Path | None = None) -> tuple[Path, bool]:
    """Compile ``MODULES`` for the sources as they are; returns the build's directory and
    whether it was made now (False: a build of these sources was there already)."""
    key = source_key()
    root = out or native_dir()
    final = root / key
    if not force and _read_manifest(final, key) is not None:
        return final, False
    try:
        import mypyc  # noqa: F401
    except ModuleNotFoundError:
        raise NativeError(
            "the native build needs mypyc, which comes with mypy: pip install 'uprof[native]'"
        ) from None
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="uprof-native-") as tmp:
        work = Path(tmp) / "src"
        shutil.copytree(
            _PACKAGE, work / "uprof", ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd")
        )
        sources = [name.replace(".", "/") + ".py" for name in MODULES]
        env = {k: v for k, v in os.environ.items() if not k.startswith("UPROF_")}
        done = subprocess.run(
            [sys.executable, "-m", "mypyc", *sources],
            cwd=work,
            env={**env, "UPROF_NATIVE": "off"},
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise NativeError(f"mypyc failed (exit {done.returncode}):\n{tail}")
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        groups = list(work.glob("*__mypyc" + suffix))
        if len(groups) != 1:
            raise NativeError(f"mypyc made {len(groups)} shared libraries, expected one")
        group = groups[0].name[: -len(suffix)]
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            files = {group: groups[0].name}
            shutil.copy2(groups[0], staging / groups[0].name)
            for name in MODULES:
                rel = name.replace(".", "/") + suffix
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(work / rel, staging / rel)
                files[name] = rel
            (staging / _MANIFEST).write_text(
                json.dumps({"key": key, "group": group, "files": files}, indent=2)
            )
            _check(staging, key)
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    _prune(root, keep=final)
    return final, True


# Builds kept besides the newest: sources switched back and forth (branches, a bisect, the
# benchmark's before and after) find theirs again; older ones are removed.
_KEPT_BUILDS = 3


def _prune(root: Path, keep: Path) -> None:
    builds = [p for p in root.iterdir() if p.is_dir() and p != keep and not p.name.startswith(".")]
    builds.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in builds[_KEPT_BUILDS:]:
        shutil.rmtree(old, ignore_errors=True)


def _check(staging: Path, key: str) -> None:
    """Import every compiled module of a build from a fresh interpreter before it is used."""
    probe = (
        "import sys, uprof.native as n, importlib\n"
        "s = n.status()\n"
        "assert s.active, s.reason\n"
        "for m in n.MODULES:\n"
        "    f = importlib.import_module(m).__file__\n"
        "    assert f.endswith(n.sysconfig.get_config_var('EXT_SUFFIX')), (m, f)\n"
    )
    # The build is looked for at <UPROF_NATIVE_DIR>/<key>: a directory of links to the staging.
    with tempfile.TemporaryDirectory(prefix="uprof-native-check-") as tmp:
        (Path(tmp) / key).symlink_to(staging, target_is_directory=True)
        done = subprocess.run(
            [sys.executable, "-c", probe],
            env={**os.environ, "UPROF_NATIVE": "require", "UPROF_NATIVE_DIR": tmp},
            capture_output=True,
            text=True,
        )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-10:])
        raise NativeError(f"the build does not load:\n{tail}")
