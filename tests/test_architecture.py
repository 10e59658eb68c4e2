"""The architecture rules (issue 8), checked against the code itself.

Read ``LAYERS`` first: it is the map of the code base. Each layer names the modules it holds
and the layers it may import; imports flow only downward, and the UI sits on top. The tests
below build the import graph of the project's own packages with ``ast`` (no import needed, so
a broken module cannot hide its edges) and check that:

- the graph has no cycle, counting imports inside functions too (a lazy import that closes a
  cycle only hides it);
- no function imports a project module, except the hops listed in ``LAZY_IMPORTS_ALLOWED``;
- every module sits in exactly one layer and imports only what its layer may import;
- every module imports alone in a fresh interpreter;
- no test reaches for a private (underscore-prefixed) name of the project.

Imports under ``if TYPE_CHECKING:`` never run: they count for the layering, not for cycles.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "nodes", "vdc", "overlays", "config")
SKIPPED_DIRS = {"migrations", "__pycache__"}

# --- the layers ----------------------------------------------------------------------------
# Bottom to top. A module belongs to the layer whose entry matches it most closely: an entry
# "x.y" is exactly that module, "x.y.*" is the package x.y and everything inside it. A layer
# may import itself and the layers in its "may import" column (BELOW: every layer under it).

BELOW = "every layer below"


@dataclass(frozen=True)
class Layer:
    name: str
    modules: tuple[str, ...]
    may_import: tuple[str, ...] | str


LAYERS: tuple[Layer, ...] = (
    # Django and DRF glue only: validators, RestrictedQuerySet, ServiceAdmin, the API toolkit.
    Layer("core", ("core.*",), may_import=()),
    # Node, Deployment, DeployedFile; transports; facts.py, parsers of what a node reports.
    Layer("nodes", ("nodes.*",), may_import=("core",)),
    # The vDC model and its id ranges.
    Layer("vdc models", ("vdc", "vdc.apps", "vdc.models", "vdc.idranges"),
          may_import=("core", "nodes")),
    # Plain data in, plain data out, no Django model: the file-group vocabulary, rule strings,
    # node lists, MTU, the snapshot's dataclasses, desired files, generators, checks.
    Layer("overlays pure", ("overlays", "overlays.filegroups", "overlays.rulestring",
                            "overlays.nodelist", "overlays.mtu", "overlays.snapshot",
                            "overlays.desired", "overlays.generators.*", "overlays.checks",
                            "overlays.verify"),
          may_import=("core",)),
    # The overlay models, and the encryption of IPSec keys at rest.
    Layer("overlays models", ("overlays.apps", "overlays.models.*", "overlays.secretbox"),
          may_import=("core", "nodes", "vdc models", "overlays pure")),
    # load_snapshot(), which nodes carry a rule (the one implementation), redaction.
    Layer("selectors", ("overlays.selectors",), may_import=BELOW),
    # plan, apply, coordination, run (one node's sync pass), drift, refresh (reads a node's
    # facts), queue (request_sync and the sync tasks: the only place that enqueues syncs).
    Layer("distribution", ("overlays.distribution.*",), may_import=BELOW),
    # The impact table (which nodes a change affects) and the batching per transaction.
    Layer("changes", ("overlays.changes",), may_import=BELOW),
    # Every domain write, IPSec key reconciliation and recording node facts included.
    Layer("services", ("overlays.services.*",), may_import=BELOW),
    # Celery tasks that write domain data: refresh_node, refresh_all.
    Layer("tasks", ("overlays.tasks",), may_import=BELOW),
    # The state file: schema and versions, export, import through the services.
    Layer("statefile", ("overlays.statefile.*",), may_import=BELOW),
    # Reading a cluster the reference tool configured, imported through the state file.
    Layer("adoption", ("overlays.adoption.*",), may_import=BELOW),
    # API, admin, command line, pages, management commands and the project configuration.
    Layer("UI", ("nodes.admin", "nodes.api.*", "nodes.management.*",
                 "vdc.admin", "vdc.api.*", "vdc.management.*", "vdc.views", "vdc.forms",
                 "vdc.selectors", "vdc.urls", "vdc.templatetags.*",
                 "overlays.admin", "overlays.admin_forms", "overlays.api.*", "overlays.cli.*",
                 "overlays.pages.*", "overlays.feedback",
                 "overlays.management.*", "config.*"),
          may_import=BELOW),
)

# Function-level imports of project modules that are allowed, each with the reason it has to
# be lazy. Keep it empty unless there is no other way; an entry also takes its hop out of the
# cycle check, so it must not hide a real cycle.
LAZY_IMPORTS_ALLOWED: dict[tuple[str, str], str] = {
    # ("importing.module", "imported.module"): "why this hop is lazy",
}


# --- the import graph ----------------------------------------------------------------------

@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported project module
    path: str  # file of the importing module, relative to ROOT
    line: int
    function: str | None  # enclosing function of a lazy import
    type_only: bool  # under ``if TYPE_CHECKING:``: never runs

    @property
    def lazy(self) -> bool:
        return self.function is not None

    def where(self) -> str:
        how = f", lazy in {self.function}()" if self.lazy else ""
        how += ", TYPE_CHECKING only" if self.type_only else ""
        return f"{self.path}:{self.line}{how}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def project_modules() -> dict[str, Path]:
    """Every module of the project's packages (migrations left out), by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts):
                found[module_name(path)] = path
    return found


def is_project(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class ImportCollector(ast.NodeVisitor):
    """Every import statement of one module (and ``importlib.import_module("literal")``),
    with the function it sits in, resolved to absolute module names."""

    def __init__(self, module: str, is_package: bool, modules: Iterable[str]) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.modules = set(modules)
        self.functions: list[str] = []
        self.type_only = 0
        self.found: list[tuple[str, int, str | None, bool]] = []

    def add(self, target: str, node: ast.AST) -> None:
        function = ".".join(self.functions) if self.functions else None
        self.found.append((target, node.lineno, function, self.type_only > 0))

    def visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        for decorator in getattr(node, "decorator_list", []):  # run when the module runs
            self.visit(decorator)
        self.functions.append(getattr(node, "name", "<lambda>"))
        for child in (node.body if isinstance(node.body, list) else [node.body]):
            self.visit(child)
        self.functions.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = visit_function  # noqa: N815

    def visit_If(self, node: ast.If) -> None:  # noqa: N802
        if not is_type_checking(node.test):
            self.generic_visit(node)
            return
        self.type_only += 1
        for child in node.body:
            self.visit(child)
        self.type_only -= 1
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:  # noqa: N802
        for alias in node.names:
            if is_project(alias.name):
                self.add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:  # noqa: N802
        base = self.absolute(node.module, node.level)
        if not is_project(base):
            return
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            # ``from pkg import name`` imports the submodule when there is one.
            self.add(submodule if submodule in self.modules else base, node)

    def visit_Call(self, node: ast.Call) -> None:  # noqa: N802
        function = node.func
        name = function.attr if isinstance(function, ast.Attribute) else getattr(
            function, "id", None)
        if (name in ("import_module", "__import__") and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str) and is_project(node.args[0].value)):
            self.add(node.args[0].value, node)
        self.generic_visit(node)

    def absolute(self, module: str | None, level: int) -> str:
        if not level:
            return module or ""
        parts = self.package.split(".")
        parts = parts[: len(parts) - (level - 1)]
        return ".".join(parts + ([module] if module else []))


def imports_of(module: str, source: str, path: str, modules: Iterable[str]) -> list[Import]:
    """The project imports of one module's source."""
    collector = ImportCollector(module, path.endswith("__init__.py"), modules)
    collector.visit(ast.parse(source, filename=path))
    return [Import(module, target, path, line, function, type_only)
            for target, line, function, type_only in collector.found if target != module]


@cache
def project_imports() -> tuple[Import, ...]:
    """Every import of a project module by a project module."""
    modules = project_modules()
    return tuple(imp for module, path in modules.items()
                 for imp in imports_of(module, path.read_text(),
                                       str(path.relative_to(ROOT)), modules))


def runtime_graph(imports: Iterable[Import]) -> dict[str, dict[str, Import]]:
    """module -> {imported module: the import}: what runs, lazy or not, less the allowed hops."""
    graph: dict[str, dict[str, Import]] = defaultdict(dict)
    for imp in imports:
        if imp.type_only or (imp.source, imp.target) in LAZY_IMPORTS_ALLOWED:
            continue
        known = graph[imp.source].get(imp.target)
        if known is None or (known.lazy and not imp.lazy):  # show the import that runs first
            graph[imp.source][imp.target] = imp
    return graph


def strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, {}):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def shortest_cycle(graph: dict[str, dict[str, Import]], start: str,
                   members: set[str]) -> list[str]:
    """The shortest cycle from ``start`` back to itself inside one component."""
    parents: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for succ in sorted(graph.get(node, {})):
            if succ == start:
                cycle = [node]
                while cycle[-1] != start:
                    cycle.append(parents[cycle[-1]])
                return [*reversed(cycle), start]
            if succ in members and succ not in parents:
                parents[succ] = node
                queue.append(succ)
    return []


def describe_cycle(graph: dict[str, dict[str, Import]], cycle: list[str]) -> str:
    lines = [f"    {cycle[0]}"]
    for source, target in zip(cycle, cycle[1:], strict=False):
        lines.append(f"      -> {target}    ({graph[source][target].where()})")
    return "\n".join(lines)


def import_cycles(imports: Iterable[Import]) -> list[str]:
    """One report per group of modules that import each other, with its shortest cycles."""
    graph = runtime_graph(imports)
    reports = []
    for component in strongly_connected(graph):
        members = set(component)
        seen: set[frozenset[str]] = set()
        cycles = []
        for start in component:
            cycle = shortest_cycle(graph, start, members)
            key = frozenset(zip(cycle, cycle[1:], strict=False))
            if cycle and key not in seen:
                seen.add(key)
                cycles.append(cycle)
        cycles.sort(key=len)
        reports.append(f"  {len(component)} modules import each other: {', '.join(component)}\n"
                       + "\n".join(describe_cycle(graph, cycle) for cycle in cycles))
    return reports


def test_the_project_has_no_import_cycle():
    cycles = import_cycles(project_imports())
    assert not cycles, "import cycles (lazy imports included):\n" + "\n".join(cycles)


def test_no_function_imports_a_project_module():
    lazy = [imp for imp in project_imports() if imp.lazy and not imp.type_only]
    hidden = sorted({f"  {imp.source} imports {imp.target} ({imp.where()})" for imp in lazy
                     if (imp.source, imp.target) not in LAZY_IMPORTS_ALLOWED})
    present = {(imp.source, imp.target) for imp in lazy}
    stale = [f"  {source} -> {target}" for source, target in LAZY_IMPORTS_ALLOWED
             if (source, target) not in present]
    assert not hidden, ("imports inside functions (import at the top, or fix the layering "
                        "that made them lazy):\n" + "\n".join(hidden))
    assert not stale, ("LAZY_IMPORTS_ALLOWED lists hops the code no longer has:\n"
                       + "\n".join(stale))


# --- the layering --------------------------------------------------------------------------

def entry_matches(entry: str, module: str) -> bool:
    if entry.endswith(".*"):
        package = entry[:-2]
        return module == package or module.startswith(package + ".")
    return module == entry


@cache
def layer_of(module: str) -> Layer | None:
    """The layer whose entry matches the module most closely (the longest entry)."""
    matches = [(len(entry), layer) for layer in LAYERS for entry in layer.modules
               if entry_matches(entry, module)]
    return max(matches, key=lambda match: match[0])[1] if matches else None


def allowed_layers(layer: Layer) -> set[str]:
    if layer.may_import == BELOW:
        below = LAYERS[: LAYERS.index(layer)]
        return {lower.name for lower in below} | {layer.name}
    return {*layer.may_import, layer.name}


def test_the_layer_table_is_consistent():
    names = [layer.name for layer in LAYERS]
    assert len(names) == len(set(names))
    entries = [entry for layer in LAYERS for entry in layer.modules]
    assert len(entries) == len(set(entries)), "a module entry is in two layers"
    for position, layer in enumerate(LAYERS):
        if layer.may_import != BELOW:
            lower = set(names[:position])
            assert set(layer.may_import) <= lower, f"{layer.name} may only import lower layers"


def test_every_module_is_in_a_layer():
    unplaced = sorted(module for module in project_modules() if layer_of(module) is None)
    assert not unplaced, ("modules in no layer (add them to LAYERS in "
                          "tests/test_architecture.py):\n  " + "\n  ".join(unplaced))


def test_every_project_import_names_an_existing_module():
    modules = project_modules()
    missing = sorted({f"  {imp.source} imports {imp.target}, which does not exist "
                      f"({imp.where()})" for imp in project_imports() if imp.target not in modules})
    assert not missing, "imports of missing modules:\n" + "\n".join(missing)


def upward_imports(imports: Iterable[Import]) -> list[str]:
    """Imports of a layer the importing module's layer may not import, lazy ones included."""
    upward = set()
    for imp in imports:
        source, target = layer_of(imp.source), layer_of(imp.target)
        if source is None or target is None:
            continue  # reported by test_every_module_is_in_a_layer
        if target.name not in allowed_layers(source):
            upward.add(f"  {imp.source} [{source.name}] imports {imp.target} "
                       f"[{target.name}] ({imp.where()})")
    return sorted(upward)


def test_imports_flow_down_the_layers():
    upward = upward_imports(project_imports())
    assert not upward, ("imports that go up or across the layers (see LAYERS in "
                        "tests/test_architecture.py):\n" + "\n".join(upward))


# --- every module imports alone ------------------------------------------------------------
# One fresh interpreter per module would cost ~0.6 s each, mostly importing Django, DRF and
# Celery. Instead one fresh interpreter imports those third-party packages (never a project
# module, never the settings: it checks), then forks one child per module, two at a time.
# Each child starts with no project module loaded, runs django.setup() and imports its module.
# The admin's autodiscovery is switched off in the children (SimpleAdminConfig): it imports
# every admin module, and so every service, before the module under test, which is exactly
# how the cycle of issue 8 stayed hidden. The module's own app is loaded first.

PRELOAD = (
    "django.db.models", "django.forms", "django.urls", "django.http", "django.views.generic",
    "django.core.management", "django.contrib.admin", "django.template.loader",
    "rest_framework.serializers", "drf_spectacular.utils", "celery", "celery.app.base",
    "celery.app.task", "kombu", "cryptography.fernet", "redis", "environ", "psycopg2",
    "yaml", "paramiko",
)

IMPORTER = textwrap.dedent("""
    import faulthandler, importlib, json, os, shutil, sys, tempfile, traceback

    modules, packages, preload, workers, timeout = json.loads(sys.argv[1])
    for name in preload:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    from django.conf import settings

    leaked = sorted(m for m in sys.modules if m.split(".")[0] in packages)
    if settings.configured or leaked:
        sys.exit(f"preloading loaded the settings or project modules {leaked}: "
                 "remove the culprit from PRELOAD")

    # The children compile each module once between them rather than once each: bytecode
    # goes to a temporary tree, never next to the sources.
    tmp = tempfile.mkdtemp()
    sys.pycache_prefix = os.path.join(tmp, "pycache")
    sys.dont_write_bytecode = False

    def child(module, out):
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        faulthandler.dump_traceback_later(timeout, exit=True)
        try:
            import django

            top = module.split(".")[0]
            apps = ["django.contrib.admin.apps.SimpleAdminConfig"
                    if app == "django.contrib.admin" else app
                    for app in settings.INSTALLED_APPS]
            apps.sort(key=lambda app: (app.split(".")[0] in packages,
                                       app.split(".")[0] != top))
            settings.INSTALLED_APPS = apps
            django.setup()
            importlib.import_module(module)
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)
        os._exit(0)

    results, running, pending = {}, {}, list(modules)
    while pending or running:
        while pending and len(running) < workers:
            module = pending.pop(0)
            out = os.path.join(tmp, module)
            pid = os.fork()
            if pid == 0:
                child(module, out)
            running[pid] = (module, out)
        pid, status = os.wait()
        module, out = running.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        with open(out) as f:
            text = f.read()
        results[module] = None if code == 0 else (text or f"exit status {code}")
    shutil.rmtree(tmp)
    print(json.dumps(results))
""")


def import_each_alone(modules: list[str], workers: int = 2, timeout: int = 60) -> dict:
    """module -> None when it imports alone, else what the import printed (the traceback)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    argument = json.dumps([modules, PACKAGES, PRELOAD, workers, timeout])
    done = subprocess.run([sys.executable, "-c", IMPORTER, argument], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_every_module_imports_alone_in_a_fresh_interpreter():
    workers = max(1, min(2, os.cpu_count() or 1))
    canary = "overlays.no_such_module"  # proves that a failing import is reported
    results = import_each_alone([canary, *sorted(project_modules())], workers=workers)
    assert "ModuleNotFoundError" in (results.pop(canary) or "")
    failed = {module: text for module, text in sorted(results.items()) if text is not None}
    assert not failed, (
        f"modules that do not import alone: {', '.join(failed)}\n" + "\n".join(
            f"--- {module}\n" + textwrap.indent("\n".join(
                line for line in text.rstrip().splitlines()
                if "<frozen importlib._bootstrap" not in line), "    ")
            for module, text in failed.items()))


# --- tests use public names only -----------------------------------------------------------

def is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def private_uses(source: str, path: str, modules: Iterable[str]) -> Iterator[str]:
    """Private project names a test file imports, reads off a project module, or patches."""
    modules = set(modules)
    tree = ast.parse(source, filename=path)
    bound: dict[str, str] = {}  # local name -> project module it refers to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if is_project(alias.name):
                    if alias.asname:
                        bound[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        bound[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if is_project(node.module):
                for alias in node.names:
                    if f"{node.module}.{alias.name}" in modules:
                        bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        used = None
        if isinstance(node, ast.Import):
            used = [alias.name for alias in node.names if is_project(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and is_project(node.module):
            used = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Attribute) and is_private(node.attr):
            name = dotted(node)
            head = name.split(".")[0] if name else None
            if head in bound:
                used = [bound[head] + name[len(head):]]
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            # setattr(module, "_x", ...), monkeypatch.setattr(module, "_x", ...), patch.object
            target, attribute = dotted(node.args[0]), node.args[1]
            head = target.split(".")[0] if target else None
            if head in bound and isinstance(attribute, ast.Constant) and isinstance(
                    attribute.value, str):
                used = [f"{bound[head]}{target[len(head):]}.{attribute.value}"]
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and is_project(node.value) and node.value.replace(".", "").replace("_", "")
              .isalnum() and "." in node.value):  # mock.patch("overlays.x._y")
            used = [node.value]
        for name in used or ():
            if any(is_private(part) for part in name.split(".")):
                yield f"{path}:{node.lineno}: {name}"


def test_tests_use_only_public_names_of_the_project():
    here = Path(__file__).resolve()  # left out: its own checks hold examples of private names
    found = sorted({use for path in sorted(here.parent.rglob("*.py")) if path != here
                    for use in private_uses(path.read_text(), str(path.relative_to(ROOT)),
                                            project_modules())})
    assert not found, ("tests reach for private names (test through public behaviour, or "
                       "make the name public if it is a real concept):\n  "
                       + "\n  ".join(found))


# --- the checks catch what they should, so that a green run means something ----------------

def test_the_collector_resolves_every_kind_of_import():
    modules = {"core", "core.validators", "overlays", "overlays.models", "overlays.services",
               "overlays.distribution", "overlays.distribution.plan",
               "overlays.distribution.run"}
    source = textwrap.dedent("""
        import importlib
        from typing import TYPE_CHECKING

        import django
        import core.validators
        from . import plan
        from .plan import render
        from overlays import services
        from overlays.models import Rule

        if TYPE_CHECKING:
            from overlays.models import Network

        class Runner:
            from overlays.distribution import plan as again

        def run():
            from ..services import record
            importlib.import_module("core.validators")
    """)
    found = {(imp.target, imp.function, imp.type_only) for imp in imports_of(
        "overlays.distribution.run", source, "overlays/distribution/run.py", modules)}
    assert found == {
        ("core.validators", None, False), ("overlays.distribution.plan", None, False),
        ("overlays.services", None, False), ("overlays.models", None, False),
        ("overlays.models", None, True),
        ("overlays.services", "run", False), ("core.validators", "run", False)}


def test_a_cycle_closed_by_a_lazy_import_is_reported_and_type_hints_are_not():
    run = "overlays.distribution.run"
    imports = [Import("overlays.changes", run, "changes.py", 3, None, False),
               Import(run, "overlays.services", "run.py", 9, "sync_once", False),
               Import("overlays.services", "overlays.changes", "services.py", 2, None, False),
               Import("overlays.services", "overlays.models", "services.py", 4, None, False),
               Import("overlays.models", "overlays.services", "models.py", 5, None, True)]
    (report,) = import_cycles(imports)
    assert "overlays.models" not in report
    assert "-> overlays.services    (run.py:9, lazy in sync_once())" in report
    assert not import_cycles(imports[1:])


def test_an_upward_import_is_named_with_its_layers():
    imports = [Import("nodes.models", "overlays.services", "nodes/models.py", 7, "save", False),
               Import("overlays.snapshot", "overlays.models", "overlays/snapshot.py", 1, None,
                      True),
               Import("overlays.services", "nodes.models", "overlays/services.py", 1, None,
                      False)]
    assert upward_imports(imports) == [
        "  nodes.models [nodes] imports overlays.services [services] "
        "(nodes/models.py:7, lazy in save())",
        "  overlays.snapshot [overlays pure] imports overlays.models [overlays models] "
        "(overlays/snapshot.py:1, TYPE_CHECKING only)"]


def test_private_names_are_found_however_a_test_reaches_them():
    modules = {"overlays.cli", "overlays.cli._common", "overlays.generators.common",
               "overlays.distribution", "overlays.distribution.run",
               "overlays.distribution.plan"}
    source = textwrap.dedent("""
        from overlays.cli import _common
        from overlays.generators.common import _MEMOS, render
        from overlays.distribution import run
        import overlays.distribution.plan as plan

        def test(monkeypatch):
            run._lock()
            plan.public()
            Node._meta
            monkeypatch.setattr(run, "_TIMEOUT", 1)
            mock.patch("overlays.distribution.run._send")
    """)
    found = {use.split(": ")[1] for use in private_uses(source, "t.py", modules)}
    assert found == {"overlays.cli._common", "overlays.generators.common._MEMOS",
                     "overlays.distribution.run._lock", "overlays.distribution.run._TIMEOUT",
                     "overlays.distribution.run._send"}
