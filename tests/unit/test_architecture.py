"""The layers of docs/architecture.md hold: import-linter's contracts (pyproject.toml) pass on
the code, and fail when a wrong import is added to a copy of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_code_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def copy_of_the_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("house")
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.mark.parametrize(
    ("module", "wrong_import", "broken"),
    [
        ("livestage/providers/base.py", "import livestage.models", "Providers never touch"),
        ("livestage/web/deps.py", "import livestage.streams.service", "web/ is HTTP plumbing"),
        (
            "livestage/streams/service/go_live.py",
            "import livestage.tracking.worker",
            "layers below",
        ),
        ("hms_emulator/app.py", "import livestage.config", "emulator never imports"),
        ("livestage/tracking/service.py", "import hms_emulator.state", "never imports the emu"),
    ],
)
def test_a_wrong_import_breaks_a_contract(
    copy_of_the_code: Path, module: str, wrong_import: str, broken: str
) -> None:
    path = copy_of_the_code / "src" / module
    original = path.read_text()
    path.write_text(f"{original}\n{wrong_import}  # deliberately wrong\n")
    try:
        result = lint_imports(copy_of_the_code)
    finally:
        path.write_text(original)
    assert result.returncode == 1, result.stdout
    broken_lines = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(broken in line for line in broken_lines), result.stdout
