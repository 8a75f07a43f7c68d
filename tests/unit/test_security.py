"""Nothing in the tree unpickles, evals, or loads torch files with code execution."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    p
    for folder in ("src", "export", "model_repository", "client", "perf", "deploy", "tests")
    for p in (ROOT / folder).rglob("*.py")
    if ".venv" not in p.parts
)


def calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_code_executing_deserialization(path):
    relative = str(path.relative_to(ROOT))
    for node, name in calls(ast.parse(path.read_text(), filename=relative)):
        assert name not in {"eval", "exec", "pickle.load", "pickle.loads", "marshal.loads", "dill.load"}, (
            f"{relative}:{node.lineno}: {name}() runs code from data"
        )
        assert not name.endswith("Unpickler"), f"{relative}:{node.lineno}: {name}"
        if name == "torch.load":
            weights_only = [k for k in node.keywords if k.arg == "weights_only"]
            assert weights_only and ast.unparse(weights_only[0].value) == "True", (
                f"{relative}:{node.lineno}: torch.load without weights_only=True"
            )
        if name == "yaml.load":
            assert any(k.arg == "Loader" and "Safe" in ast.unparse(k.value) for k in node.keywords), (
                f"{relative}:{node.lineno}: yaml.load without a SafeLoader"
            )


def test_the_scan_sees_the_export_code():
    assert any(p.name == "weights.py" for p in SOURCES)
