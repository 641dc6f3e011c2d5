"""The agent runs on a managed host's system Python: 3.9+, standard library only."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.fake_server import FakeServer
from tests.agent.fakes import make_sandbox_root

SRC = Path(__file__).resolve().parents[2] / "src"
AGENT_PACKAGES = [SRC / "patchwarden" / "agent", SRC / "patchwarden" / "protocol"]
ALLOWED_OWN = ("patchwarden.agent", "patchwarden.protocol")
VERMIN = Path(sys.executable).parent / "vermin"


def _modules() -> list[Path]:
    files = sorted(p for package in AGENT_PACKAGES for p in package.rglob("*.py"))
    assert len(files) > 10
    return files


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    """Absolute names of every module `path` imports (relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names.append(".".join([*base, node.module] if node.module else base))
            else:
                names.append(node.module or "")
    return names


def _allowed(name: str) -> bool:
    top = name.split(".")[0]
    if top == "patchwarden":
        return any(name == own or name.startswith(own + ".") for own in ALLOWED_OWN)
    return top == "__future__" or top in sys.stdlib_module_names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_only_stdlib_and_agent_code(path: Path) -> None:
    bad = [name for name in _imports(path) if not _allowed(name)]
    assert bad == [], f"{path.relative_to(SRC)} imports {bad}"


def test_import_checker_catches_offenders() -> None:
    assert not _allowed("patchwarden.storage.tables")
    assert not _allowed("requests")
    assert _allowed("patchwarden.protocol.v1")
    assert _allowed("urllib.request")


def test_vermin_says_python_3_9() -> None:
    if not VERMIN.exists():
        pytest.skip("vermin is not installed in this environment")
    completed = subprocess.run(
        [str(VERMIN), "-t=3.9-", "--violations", "--no-tips", *map(str, AGENT_PACKAGES)],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_agent_imports_without_site_packages() -> None:
    """Import every agent module with -S -I (no site-packages at all) and check
    nothing outside the standard library got loaded."""
    # __main__ modules run the CLI when imported; the CLI module itself is checked.
    modules = [_module_name(p) for p in _modules() if p.name != "__main__.py"]
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(SRC)!r})\n"
        "before = set(sys.modules)\n"
        f"for name in {modules!r}: __import__(name)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-S", "-I", "-c", code], capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
    loaded = json.loads(completed.stdout)
    foreign = [name for name in loaded if name != "patchwarden" and not _allowed(name)]
    assert foreign == []
    assert "patchwarden.agent.cli" in loaded


def _interpreter(version: str) -> str | None:
    """A working python`version` on this machine (pyenv install or PATH), or None."""
    candidates = sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"))
    on_path = shutil.which("python" + version)
    for candidate in [*(str(c) for c in reversed(candidates)), *([on_path] if on_path else [])]:
        # pyenv shims exist for every version but fail for inactive ones.
        if subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_agent_really_runs_on(version: str, server: FakeServer, tmp_path: Path) -> None:
    """collect, enroll and run --once under another Python, with no
    site-packages and warnings as errors: vermin cannot see everything
    (a runtime `dict[str, str | None]` alias passes it but fails on 3.9)."""
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"no working python{version} on this machine (PATH or ~/.pyenv)")
    root = str(make_sandbox_root(tmp_path / "root"))
    state = str(tmp_path / "state")
    launcher = (
        f"import sys; sys.path.insert(0, {str(SRC)!r}); "
        "from patchwarden.agent.cli import main; sys.exit(main(sys.argv[1:]))"
    )

    def agent(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, "-S", "-I", "-W", "error", "-c", launcher, *argv],
            capture_output=True,
            text=True,
            timeout=60,
        )

    collected = agent("collect", "--root", root)
    assert collected.returncode == 0, collected.stderr
    assert len(json.loads(collected.stdout)["packages"]) == 6
    enrolled = agent(
        "enroll", "--server", server.url, "--token", "good-token", "--state-dir", state
    )
    assert enrolled.returncode == 0, enrolled.stderr
    for _ in range(2):
        ran = agent("run", "--once", "--state-dir", state, "--root", root)
        assert ran.returncode == 0, ran.stderr
    assert [r["kind"] for r in server.reports] == ["full", "delta"]
