"""The layers of the code base and a checker for the arrows between them.

From the bottom: the core in ``secops`` < ``alerts`` < ``whitelist`` <
``events`` < ``disposal`` < ``soar`` < ``cloudsiem``. A module may import (at any depth,
function-level imports included) only from its own layer or the ones below,
and a template may link by URL name or include only pages of its own layer
or below. The composition root (project URLs, the API root, the home page,
demo data and ``seed_demo``) sits above every app and may use all of them.
Higher apps reach into lower pages only through the extension points the
lower app offers (``secops.extensions``), which they fill in
``AppConfig.ready()``.
"""

import ast
import re
from dataclasses import dataclass
from pathlib import Path

# Lowest first. A layer's rank is its index.
# ``cloudsiem`` (the cloud SIEM compatible API) is the top layer rather than
# part of the composition root: it is an app with its own models, pages and
# services that calls every app below it, and nothing imports it.
LAYERS = ("secops", "alerts", "whitelist", "events", "disposal", "soar", "cloudsiem")
ROOT = "composition root"
RANK = {name: rank for rank, name in enumerate(LAYERS)} | {ROOT: len(LAYERS)}

# Modules (dotted prefixes) of the secops package that form the composition root.
COMPOSITION_ROOT_MODULES = (
    "secops.urls",
    "secops.api",
    "secops.views",
    "secops.demo",
    "secops.management.commands.seed_demo",
)
# Templates outside the app folders: the page shell and the home page.
COMPOSITION_ROOT_TEMPLATES = ("base.html", "secops/", "admin/", "registration/")

# URL namespaces and the layer they belong to; names without a namespace are the core's.
URL_NAMESPACES = {
    "alerts": "alerts",
    "detection": "alerts",
    "whitelist": "whitelist",
    "events": "events",
    "disposal": "disposal",
    "soar": "soar",
    "cloudsiem": "cloudsiem",
}

_URL_TAG = re.compile(r"""\{%\s*url\s+['"]([\w-]+):[\w-]+['"]""")
_TEMPLATE_REF = re.compile(r"""\{%\s*(?:include|extends)\s+['"]([\w./-]+)['"]""")
_URL_FUNCTIONS = {"reverse", "reverse_lazy", "redirect", "resolve_url"}
# Calls that name a model by "app_label.Model": a relation is an arrow too.
_MODEL_REFERENCES = {"ForeignKey", "OneToOneField", "ManyToManyField", "get_model"}
# The modules through which an app is used from outside (requests, messages,
# the admin) and its wiring (``apps``). The app's own logic never imports them:
# services are called by views and tasks, not the other way round.
INTERFACE_MODULES = ("tasks", "views", "forms", "api", "urls", "admin", "apps")


@dataclass(frozen=True, order=True)
class Violation:
    path: str
    line: int
    message: str

    def __str__(self):
        return f"{self.path}:{self.line}: {self.message}"


def layer_of_module(module: str) -> str | None:
    """The layer of a dotted module name, or None for third-party modules."""
    if any(module == m or module.startswith(m + ".") for m in COMPOSITION_ROOT_MODULES):
        return ROOT
    top = module.split(".")[0]
    return top if top in RANK else None


def layer_of_template(relative: str) -> str | None:
    if any(relative == t or relative.startswith(t) for t in COMPOSITION_ROOT_TEMPLATES):
        return ROOT
    top = relative.split("/")[0]
    return top if top in RANK else None


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_modules(tree: ast.AST, module: str, is_package: bool):
    """(line, dotted name) of every import in the tree, relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            yield node.lineno, name
            # ``from events import services`` imports the module events.services.
            for alias in node.names:
                yield node.lineno, f"{name}.{alias.name}"


def _url_names_in_code(tree: ast.AST):
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) in _URL_FUNCTIONS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and ":" in node.args[0].value
        ):
            yield node.lineno, node.args[0].value.split(":")[0]


def _function_name(node: ast.Call) -> str | None:
    return getattr(node.func, "id", getattr(node.func, "attr", None))


def _model_references(tree: ast.AST):
    """(line, app label) of every relation or model lookup given as a string."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _function_name(node) in _MODEL_REFERENCES):
            continue
        args = [a.value for a in node.args if isinstance(a, ast.Constant)]
        args += [
            k.value.value
            for k in node.keywords
            if k.arg in ("to", "app_label") and isinstance(k.value, ast.Constant)
        ]
        for arg in args[:1]:
            if isinstance(arg, str) and "." in arg:
                yield node.lineno, arg.split(".")[0]
            elif isinstance(arg, str) and _function_name(node) == "get_model":
                yield node.lineno, arg


def _is_interface(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return any(last == name or last.endswith("_" + name) for name in INTERFACE_MODULES)


def _upward(source_layer: str, target_layer: str | None) -> bool:
    return target_layer is not None and RANK[target_layer] > RANK[source_layer]


def check_python(root: Path) -> list[Violation]:
    violations = []
    for top in RANK:
        if top == ROOT or not (root / top).is_dir():
            continue
        for path in sorted((root / top).rglob("*.py")):
            relative = path.relative_to(root)
            # Migrations are history: they name the models as they were.
            if "migrations" in relative.parts:
                continue
            module = _module_name(root, path)
            source_layer = layer_of_module(module)
            tree = ast.parse(path.read_text(), filename=str(path))
            # The most specific name per statement: "events.models", not "events".
            upward = {}
            for line, imported in _imported_modules(tree, module, path.name == "__init__.py"):
                target = layer_of_module(imported)
                if _upward(source_layer, target) and len(imported) > len(
                    upward.get((line, target), "")
                ):
                    upward[(line, target)] = imported
            for (line, target), imported in upward.items():
                violations.append(
                    Violation(
                        str(relative),
                        line,
                        f"{source_layer} imports {imported} ({target} is above it)",
                    )
                )
            for line, label in _model_references(tree):
                target = layer_of_module(label)
                if _upward(source_layer, target):
                    violations.append(
                        Violation(
                            str(relative),
                            line,
                            f"{source_layer} refers to a model of {label} ({target} is above it)",
                        )
                    )
            for line, namespace in _url_names_in_code(tree):
                target = URL_NAMESPACES.get(namespace)
                if _upward(source_layer, target):
                    violations.append(
                        Violation(
                            str(relative),
                            line,
                            f"{source_layer} links to the URL namespace {namespace!r} ({target})",
                        )
                    )
    return violations


def module_graph(root: Path) -> dict[str, set[str]]:
    """Project module -> the project modules it imports (at any depth)."""
    files = {}
    for top in RANK:
        if top != ROOT and (root / top).is_dir():
            for path in (root / top).rglob("*.py"):
                if "migrations" not in path.relative_to(root).parts:
                    files[_module_name(root, path)] = path
    graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        imported = {
            name
            for _, name in _imported_modules(tree, module, path.name == "__init__.py")
            if name in files and name != module
        }
        graph[module] = imported
    return graph


def check_module_graph(root: Path) -> list[Violation]:
    """No cycles between project modules, and no app module importing its interface."""
    graph = module_graph(root)
    violations = []
    for module, imported in sorted(graph.items()):
        if _is_interface(module):
            continue
        for target in sorted(imported):
            if _is_interface(target) and target.split(".")[0] == module.split(".")[0]:
                violations.append(
                    Violation(
                        module.replace(".", "/") + ".py",
                        0,
                        f"{module} imports {target}: an app's logic must not import "
                        "its views, forms, tasks or API",
                    )
                )
    for cycle in _cycles(graph):
        violations.append(
            Violation(cycle[0].replace(".", "/") + ".py", 0, "import cycle: " + " -> ".join(cycle))
        )
    return violations


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    cycles = []
    for component in components:
        members = set(component)
        # Walk from the first member inside the component until a module repeats.
        path, node = [component[0]], component[0]
        while True:
            node = sorted(graph[node] & members)[0]
            if node in path:
                cycles.append([*path[path.index(node) :], node])
                break
            path.append(node)
    return cycles


def check_templates(root: Path) -> list[Violation]:
    violations = []
    templates = root / "templates"
    if not templates.is_dir():
        return violations
    for path in sorted(templates.rglob("*.html")):
        relative = path.relative_to(templates).as_posix()
        source_layer = layer_of_template(relative)
        if source_layer is None:
            continue
        for number, text in enumerate(path.read_text().splitlines(), start=1):
            for namespace in _URL_TAG.findall(text):
                target = URL_NAMESPACES.get(namespace)
                if _upward(source_layer, target):
                    violations.append(
                        Violation(
                            f"templates/{relative}",
                            number,
                            f"{source_layer} page links to {namespace}: ({target} is above it)",
                        )
                    )
            for name in _TEMPLATE_REF.findall(text):
                target = layer_of_template(name)
                # Every page extends the shell; that is the one allowed way up.
                if name != "base.html" and _upward(source_layer, target):
                    violations.append(
                        Violation(
                            f"templates/{relative}",
                            number,
                            f"{source_layer} page uses the template {name} ({target} is above it)",
                        )
                    )
    return violations


def check(root: Path) -> list[Violation]:
    return sorted(check_python(root) + check_module_graph(root) + check_templates(root))
