"""The layering of the repository, read from the source with ``ast`` (nothing is imported).

* The library ``ssl_audio/`` imports nothing from ``data/``, ``eval/`` or ``bench/``:
  those build on it (``data.suite`` registers the ``suite:`` scheme into it).
* No import cycle among the repository's modules, counting imports inside functions
  too: a lazy import hides a cycle from Python, not from a reader.

Edges: ``import a.b`` and ``from a import b`` point at ``a.b`` when it is a module of
the repository, else at the longest prefix that is (``from pkg import name`` -> ``pkg``).
A bare ``import x`` that names no repository module but a file next to the importer is
that sibling (the bench scripts run as ``python bench/x.py``). An import of one's own
parent package is no edge: Python ran the package's ``__init__`` before the submodule,
so it loads nothing (the task registry: ``tasks/__init__`` imports its plugins, each
plugin imports ``tasks`` for ``register``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("ssl_audio", "data", "eval", "bench")
SCRIPTS = ("main.py", "sweep.py")
LIBRARY = "ssl_audio"
NOT_IN_LIBRARY = ("data", "eval", "bench")


def module_name(path: Path) -> str:
  parts = list(path.relative_to(REPO).with_suffix("").parts)
  if parts[-1] == "__init__":
    parts.pop()
  return ".".join(parts)


def source_files() -> dict[str, Path]:
  """Module name -> file, for every scanned file."""
  files = [p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))]
  files += [REPO / s for s in SCRIPTS if (REPO / s).is_file()]
  return {module_name(p): p for p in files}


def is_package(path: Path) -> bool:
  return path.name == "__init__.py"


def _longest_module(name: str, modules) -> str | None:
  parts = name.split(".")
  for k in range(len(parts), 0, -1):
    cand = ".".join(parts[:k])
    if cand in modules:
      return cand
  return None


def _sibling(name: str, path: Path, modules) -> str | None:
  """A script-style import of a file next to the importer (bench/: ``import common``)."""
  first = name.split(".")[0]
  if (path.parent / f"{first}.py").is_file():
    return _longest_module(module_name(path.parent / first) + name[len(first):], modules)
  return None


def imports_of(mod: str, path: Path, modules) -> list[tuple[str, int]]:
  """(imported repository module, line) for every import statement in the file."""
  tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
  package = mod if is_package(path) else mod.rpartition(".")[0]
  out = []
  for node in ast.walk(tree):
    targets: list[str] = []
    if isinstance(node, ast.Import):
      for alias in node.names:
        t = _longest_module(alias.name, modules) or _sibling(alias.name, path, modules)
        targets.append(t)
    elif isinstance(node, ast.ImportFrom):
      if node.level:   # relative: from . import x / from ..a import b
        base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
        base_name = ".".join(base + ([node.module] if node.module else []))
      else:
        base_name = node.module
      for alias in node.names:
        full = f"{base_name}.{alias.name}"
        t = full if full in modules else _longest_module(base_name, modules)
        if t is None and not node.level:
          t = _sibling(full, path, modules) or _sibling(base_name, path, modules)
        targets.append(t)
    for t in targets:
      if t is not None and t != mod and not mod.startswith(t + "."):   # own parents: no edge
        out.append((t, node.lineno))
  return out


def import_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], str]]:
  """(module -> imported modules, (module, imported) -> "file:line" of the first such import)."""
  files = source_files()
  graph: dict[str, set[str]] = {m: set() for m in files}
  where: dict[tuple[str, str], str] = {}
  for mod, path in files.items():
    for t, line in imports_of(mod, path, files):
      graph[mod].add(t)
      where.setdefault((mod, t), f"{path.relative_to(REPO)}:{line}")
  return graph, where


def components(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components of more than one module (each sorted)."""
  index: dict[str, int] = {}
  low: dict[str, int] = {}
  stack: list[str] = []
  on_stack: set[str] = set()
  sccs: list[list[str]] = []

  def strongconnect(v: str) -> None:   # Tarjan; the graph has a few hundred nodes
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in sorted(graph.get(v, ())):
      if w not in index:
        strongconnect(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      scc = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        scc.append(w)
        if w == v:
          break
      if len(scc) > 1:
        sccs.append(sorted(scc))

  for v in sorted(graph):
    if v not in index:
      strongconnect(v)
  return sccs


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """One cycle [a, b, ..., a] per strongly connected component of more than one module."""
  return [_cycle_in(scc, graph) for scc in components(graph)]


def _cycle_in(scc: list[str], graph: dict[str, set[str]]) -> list[str]:
  """The shortest cycle through the component's first module (breadth-first)."""
  members = set(scc)
  start = scc[0]
  parent = {start: None}
  frontier = [start]
  while frontier:
    nxt = []
    for v in frontier:
      for w in sorted(graph[v] & members):
        if w == start:
          path = [v]
          while parent[path[-1]] is not None:
            path.append(parent[path[-1]])
          return path[::-1] + [start]   # start ... v, start
        if w not in parent:
          parent[w] = v
          nxt.append(w)
    frontier = nxt
  raise AssertionError(f"no cycle in component {scc}")


def describe(cycle: list[str], where: dict[tuple[str, str], str]) -> str:
  hops = [f"{a} -> {b} ({where[(a, b)]})" for a, b in zip(cycle, cycle[1:])]
  return " -> ".join(cycle) + "\n    " + "\n    ".join(hops)


# ============================================================================ tests

def test_scan_finds_the_repository():
  graph, _ = import_graph()
  for m in ("ssl_audio.manifest", "ssl_audio.tasks", "data.suite", "eval.embeddings", "main"):
    assert m in graph, m
  assert "ssl_audio.manifest" in graph["data.suite"]
  assert "data.suite" in graph["main"]
  assert "bench.common" in graph["bench.evaluation"]   # script-style sibling import


def test_library_imports_no_application_package():
  graph, where = import_graph()
  bad = [f"{m} -> {t} ({where[(m, t)]})" for m, ts in sorted(graph.items())
         if m == LIBRARY or m.startswith(LIBRARY + ".")
         for t in sorted(ts) if t.split(".")[0] in NOT_IN_LIBRARY]
  assert not bad, ("ssl_audio/ must not import data/, eval/ or bench/ (register a hook "
                   "from the outside instead, as data.suite registers suite:):\n  " + "\n  ".join(bad))


def test_no_import_cycles():
  graph, where = import_graph()
  msgs = []
  for scc in components(graph):
    cycle = _cycle_in(scc, graph)
    msgs.append(describe(cycle, where))
    if len(scc) > len(cycle) - 1:   # more cycles inside: name every module involved
      msgs[-1] += f"\n    (all modules of this knot: {', '.join(scc)})"
  assert not msgs, "import cycles among repository modules:\n  " + "\n  ".join(msgs)


def test_cycle_finder_reports_the_modules():
  g = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e2"}, "e2": {"e"}}
  assert find_cycles(g) == [["a", "b", "c", "a"], ["e", "e2", "e"]]
  assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_suite_scheme_is_registered_from_outside_the_library(monkeypatch):
  import data.suite
  from ssl_audio import manifest
  assert manifest._SCHEMES["suite"].resolver is data.suite.resolve_name
  monkeypatch.delitem(manifest._SCHEMES, "suite")   # as in a process that never imported it
  with pytest.raises(manifest.ManifestError, match="import data.suite"):
    manifest.resolve("suite:msn")
  with pytest.raises(manifest.ManifestError, match="unknown scheme 'nosuch'"):
    manifest.resolve("nosuch:x")
