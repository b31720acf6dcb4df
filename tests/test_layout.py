"""The package's architecture: imports flow one way, no module reaches into another's private names.

The same check from the command line: ``python -m regutils.layout``.
"""
import ast

import pytest

from regutils import layout


def test_no_import_cycle_between_modules():
    cycle = layout.find_cycle(layout.import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_private_name_is_imported_across_modules():
    assert layout.private_imports() == []


def test_every_module_is_named_in_the_package_docstring():
    assert layout.unlisted_modules() == []


def test_the_checks_catch_what_they_look_for(tmp_path):
    # a toy package with a cycle a -> b -> a (one import inside a function) and a private import
    (tmp_path / "__init__.py").write_text('"""toy: a, b"""\n')
    (tmp_path / "a.py").write_text("from .b import _hidden\n")
    (tmp_path / "b.py").write_text("def f():\n    from . import a\n    return a.public\n_hidden = 1\n")
    (tmp_path / "c.py").write_text("from . import a\nx = a._secret\n")
    graph = layout.import_graph(tmp_path)
    assert graph == {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert layout.find_cycle(graph) in (["a", "b", "a"], ["b", "a", "b"])
    assert layout.find_cycle({"a": {"b"}, "b": set()}) is None
    assert sorted(layout.private_imports(tmp_path)) == [("a", "b", "_hidden"), ("c", "a", "_secret")]
    assert layout.unlisted_modules(tmp_path) == ["c"]


@pytest.mark.parametrize("source", ["from .x import y as _y\n", "import os\n"])
def test_aliases_and_outside_imports_are_not_private_imports(tmp_path, source):
    (tmp_path / "__init__.py").write_text('"""toy: m, x"""\n')
    (tmp_path / "m.py").write_text(source)
    (tmp_path / "x.py").write_text("y = 1\n")
    assert layout.private_imports(tmp_path) == []
    ast.parse(source)


def test_subpackage_imports_resolve_to_dotted_names(tmp_path):
    # sub.m imports the top-level a (two dots) and its sibling sub.n (one dot); sub.n imports a's private name
    (tmp_path / "__init__.py").write_text('"""toy: a, sub"""\n')
    (tmp_path / "a.py").write_text("_hidden = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "__init__.py").write_text('"""sub: m"""\n')
    (tmp_path / "sub" / "m.py").write_text("from .. import a\nfrom . import n\n")
    (tmp_path / "sub" / "n.py").write_text("from ..a import _hidden\n")
    assert layout.import_graph(tmp_path) == {"a": set(), "sub.m": {"a", "sub.n"}, "sub.n": {"a"}}
    assert layout.private_imports(tmp_path) == [("sub.n", "a", "_hidden")]
    assert layout.unlisted_modules(tmp_path) == ["sub.n"]
