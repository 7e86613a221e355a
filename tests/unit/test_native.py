"""The native build: it serves only the sources it was made from, and nothing else changes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import uprof
from uprof import native

PACKAGE = Path(uprof.__file__).resolve().parent
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


def _copy_package(tmp_path: Path) -> Path:
    copy = tmp_path / "src" / "uprof"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    return copy


def test_the_key_follows_every_source_file(tmp_path: Path) -> None:
    copy = _copy_package(tmp_path)
    key = native.source_key(copy)
    assert key == native.source_key(PACKAGE)  # the same sources, wherever they are
    # A module that is not compiled still changes the key: a compiled module may depend on it.
    page = copy / "web" / "pages.py"
    page.write_text(page.read_text() + "\n# an edit\n")
    edited = native.source_key(copy)
    assert edited != key
    (copy / "domain" / "new_rules.py").write_text("X = 1\n")
    assert native.source_key(copy) not in (key, edited)


def _fake_build(root: Path, key: str) -> Path:
    """A build's layout with placeholder files (enough for the manifest's checks)."""
    path = root / key
    files = {"abc__mypyc": "abc__mypyc" + SUFFIX}
    for name in native.MODULES:
        files[name] = name.replace(".", "/") + SUFFIX
    for rel in files.values():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_bytes(b"")
    manifest = {"key": key, "group": "abc__mypyc", "files": files}
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def test_a_build_is_found_only_for_the_sources_it_was_made_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPROF_NATIVE_DIR", str(tmp_path / "builds"))
    copy = _copy_package(tmp_path)
    assert native.find_build(copy) is None
    path = _fake_build(tmp_path / "builds", native.source_key(copy))
    assert native.find_build(copy) == path
    # One module missing from the build: not this build.
    (path / (native.MODULES[0].replace(".", "/") + SUFFIX)).unlink()
    assert native.find_build(copy) is None
    _fake_build(tmp_path / "builds", native.source_key(copy))
    assert native.find_build(copy) == path
    # The sources edited after the build: it no longer serves them.
    endpoints = copy / "http" / "endpoints.py"
    endpoints.write_text(endpoints.read_text().replace("limit = 20", "limit = 21"))
    assert native.find_build(copy) is None


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("UPROF_NATIVE")}
    return subprocess.run(
        [sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True
    )


PROBE = (
    "import uprof.native as n, uprof.http.dispatch as d\n"
    "s = n.status(); print(s.active, d.__file__.endswith('.py'))"
)


def test_the_modes(tmp_path: Path) -> None:
    empty = {"UPROF_NATIVE_DIR": str(tmp_path / "none")}
    # auto without a build: the interpreted modules serve.
    done = _run(PROBE, {**empty, "UPROF_NATIVE": "auto"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
    # require without a build: refuses, and says what to run.
    done = _run(PROBE, {**empty, "UPROF_NATIVE": "require"})
    assert done.returncode != 0
    assert "uprof native build" in done.stderr
    # A mode that does not exist is refused, not taken for auto.
    done = _run(PROBE, {**empty, "UPROF_NATIVE": "fast"})
    assert done.returncode != 0
    assert "UPROF_NATIVE" in done.stderr


def test_off_ignores_a_build_that_matches(tmp_path: Path) -> None:
    # The placeholder files would fail to load if anything tried to: off must not look.
    _fake_build(tmp_path, native.source_key(PACKAGE))
    done = _run(PROBE, {"UPROF_NATIVE_DIR": str(tmp_path), "UPROF_NATIVE": "off"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]


def test_where_a_build_serves_the_request_path_is_compiled() -> None:
    """In this process: CI builds first and runs the suite with UPROF_NATIVE=require, so every
    API and end-to-end test there runs the compiled modules; elsewhere, whatever matches."""
    status = native.status()
    if not status.active:
        assert os.environ.get("UPROF_NATIVE") != "require"
        pytest.skip(f"no native build: {status.reason}")
    for name in native.MODULES:
        module = sys.modules.get(name) or __import__(name, fromlist=["_"])
        assert module.__file__ is not None and module.__file__.endswith(SUFFIX), name
        assert str(status.path) in module.__file__


def test_a_new_build_keeps_the_three_before_it_and_removes_older_ones(tmp_path: Path) -> None:
    builds = []
    for i in range(6):
        path = tmp_path / f"key{i}"
        path.mkdir()
        os.utime(path, (1_000_000 + i, 1_000_000 + i))  # key5 newest
        builds.append(path)
    (tmp_path / ".staging-of-another-build").mkdir()  # a build in progress is not touched
    native._prune(tmp_path, keep=builds[0])  # key0 was just made (its age does not matter)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".staging-of-another-build",
        "key0",
        "key3",
        "key4",
        "key5",
    ]
