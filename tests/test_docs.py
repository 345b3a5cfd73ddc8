"""The documents agree with the code: every key in .env.example, the README's commands in CI."""

from __future__ import annotations

import re

from scripts.core.errors import ExitCode
from scripts.core.keys import KEYS
from tests.helpers import ROOT


def test_env_example_documents_every_key_and_only_those() -> None:
    text = (ROOT / ".env.example").read_text()
    keys = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", text, flags=re.MULTILINE))
    assert keys == set(KEYS)


def test_readme_lists_every_exit_code() -> None:
    text = (ROOT / "README.md").read_text()
    table = set(int(code) for code in re.findall(r"^\| (\d+) \|", text, flags=re.MULTILINE))
    assert table == {int(code) for code in ExitCode}


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```sh\n(python3 -m venv .*)\n```", readme)
    assert len(commands) >= 2
    test_command = commands[1]
    assert test_command.endswith("&& pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command.replace("pip install ", "pip install -q ") in ci


def test_readme_and_docs_link_only_to_files_in_the_repository() -> None:
    for document in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))):
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", document.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            resolved = (document.parent / target).resolve()
            assert resolved.is_relative_to(ROOT) and resolved.exists(), f"{document.name} links to {target}"
