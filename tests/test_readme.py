"""The README runs as written: every ``jaxhalo`` command in it parses, and (slow) its Python blocks run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from jaxhalo.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(lang: str) -> list[tuple[str, str]]:
    """(section title, code) of every fenced block of ``lang``, in order."""
    text = README.read_text()
    out, section = [], ""
    for m in re.finditer(r"^## ([^\n]+)$|^```" + lang + r"\n(.*?)^```", text, re.M | re.S):
        if m.group(1):
            section = m.group(1).strip()
        else:
            out.append((section, m.group(2)))
    return out


def _jaxhalo_commands() -> list[list[str]]:
    cmds = []
    for _, code in _blocks("bash"):
        for line in code.replace("\\\n", " ").splitlines():  # join continued lines
            line = line.split("  #")[0].strip()
            for part in line.split("&&"):
                words = shlex.split(part)
                if words and words[0] == "jaxhalo":
                    cmds.append(words[1:])
    return cmds


def test_readme_has_commands_and_blocks():
    assert len(_jaxhalo_commands()) >= 10
    assert len(_blocks("python")) >= 4


@pytest.mark.parametrize("argv", _jaxhalo_commands(), ids=lambda a: " ".join(a)[:60])
def test_every_readme_command_parses(argv):
    """Options and subcommands as the README writes them exist (no literal '...', no renamed option)."""
    args = build_parser().parse_args(argv)
    assert callable(args.func)


def _python_sections() -> dict[str, str]:
    code: dict[str, str] = {}
    for section, block in _blocks("python"):
        code[section] = code.get(section, "") + block + "\n"
    return code


@pytest.mark.slow
@pytest.mark.parametrize("section", list(_python_sections()))
def test_readme_python_section_runs(section, tmp_path, monkeypatch):
    """Each section's Python blocks, concatenated, run verbatim in a fresh directory (minutes)."""
    monkeypatch.chdir(tmp_path)
    exec(compile(_python_sections()[section], f"README: {section}", "exec"), {"__name__": "__readme__"})
