"""Static analysis of a locustfile bundle: what Locust would find in it, without running it.

Uploaded code is untrusted, so it is only ever parsed with `ast`; it is never
imported, compiled to bytecode or evaluated. Names are resolved by following
import statements through the bundle, which is enough for the ways locustfiles
are written in practice (direct, aliased, `import locust`, helper modules,
relative and star imports). Anything that cannot be known without running the
code is reported as unknown (None) rather than guessed.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass, field
from typing import Any

ENTRY_POINT = "locustfile.py"

USER_ROOTS = ("User", "HttpUser", "FastHttpUser")
TASKSET_ROOTS = ("TaskSet", "SequentialTaskSet", "MarkovTaskSet")
SHAPE_ROOT = "LoadTestShape"
_DECORATORS = ("task", "tag", "transition", "transitions")
_KNOWN_LOCUST_NAMES = frozenset(USER_ROOTS + TASKSET_ROOTS + (SHAPE_ROOT,) + _DECORATORS)

# The names `from locust import *` brings in (locust.__all__, minus deprecated aliases).
_LOCUST_STAR_NAMES = frozenset(
    {
        "FastHttpUser", "HttpUser", "LoadTestShape", "MarkovTaskSet", "SequentialTaskSet", "TaskSet", "User",
        "between", "constant", "constant_pacing", "constant_throughput", "events", "poisson",
        "run_single_user", "tag", "task", "transition", "transitions", "wait_time",
    }
)

_MAX_EXPRESSION_TEXT = 200
# Task sets nested in task sets are expanded inline; a few task sets referencing each other several times
# would otherwise multiply into an enormous result. Past this many task entries in one analysis, nested
# task sets are listed without their own tasks. Real locustfiles stay far below it.
_MAX_TASK_ENTRIES = 5000
_CUSTOM_WAIT_TIME = "custom wait_time() method"
# How locustfiles add command-line options: `@events.init_command_line_parser.add_listener` (or a call of it).
_PARSER_HOOK = "locust.events.init_command_line_parser.add_listener"
COMPUTED_DEFAULT = "(computed at start)"
_OPTION_TYPES = ("str", "int", "float")


class LocustfileError(Exception):
    """A locustfile problem that stops the scenario from being used, located as precisely as we can."""

    def __init__(
        self,
        message: str,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        source_line: str | None = None,
    ):
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.source_line = source_line
        super().__init__(self.__str__())

    def name_single_file(self, entry: str, filename: str) -> None:
        """A single uploaded .py is stored as `entry`; its author knows it by its own name."""
        if self.path == entry:
            self.path = filename
            self.message = self.message.replace(entry, filename)
            self.args = (self.__str__(),)

    def __str__(self) -> str:
        # Errors without a line (e.g. "No User class found in locustfile.py ...") already name the file in their
        # message.
        if self.line is None:
            return self.message
        where = [self.path or "<unknown file>", f"line {self.line}"]
        if self.column is not None:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "source_line": self.source_line,
            "text": str(self),
        }


def analyze(sources: dict[str, str], entry: str = ENTRY_POINT) -> dict[str, Any]:
    """Describe the user classes, task sets and load shape Locust would find, plus warnings worth showing."""
    trees = {path: _parse(path, text) for path, text in sorted(sources.items()) if path.endswith(".py")}
    if entry not in trees:
        raise LocustfileError(f"The bundle has no {entry}.", path=entry)
    try:
        findings = _Analyzer(trees, entry).run()
    except (RecursionError, MemoryError):
        raise LocustfileError(
            "The code is nested or chained too deeply to analyse; simplify the deepest class hierarchy or expression.",
            path=entry,
        ) from None
    if "requirements.txt" in sources:  # checked when the bundle was read (workers.bundle)
        from workers.requirements import parse

        findings["requirements"] = list(parse(sources["requirements.txt"]).lines)
    return findings


def _parse(path: str, text: str) -> ast.Module:
    if "\x00" in text:
        # Python reports NUL bytes without a position (as ValueError or SyntaxError, depending on the version).
        index = text.find("\x00")
        line = text.count("\n", 0, index) + 1
        column = index - (text.rfind("\n", 0, index) + 1) + 1
        raise LocustfileError(
            "The file contains a NUL byte, so it is not Python source.",
            path, line, column, text.splitlines()[line - 1].replace("\x00", "\\0"),
        )
    try:
        with warnings.catch_warnings():
            # Warnings such as "invalid escape sequence" are the author's business, not a reason to print to our logs.
            warnings.simplefilter("ignore")
            return ast.parse(text, filename=path)
    except SyntaxError as exc:  # IndentationError and TabError included
        source_line = exc.text
        if source_line is None and exc.lineno:
            lines = text.splitlines()
            source_line = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else None
        if source_line is not None:
            source_line = source_line.rstrip("\r\n")
        raise LocustfileError(exc.msg, path, exc.lineno, exc.offset, source_line) from None
    except ValueError:
        raise LocustfileError(f"{path} cannot be parsed as Python source.", path=path) from None
    except (RecursionError, MemoryError):
        raise LocustfileError(
            f"{path} is nested too deeply for Python to parse; simplify the deepest expression.", path=path
        ) from None


# --- What a name can resolve to -------------------------------------------------------------------


@dataclass(frozen=True)
class _External:
    """Something from outside the bundle, by dotted name, e.g. "locust.HttpUser"."""

    dotted: str


@dataclass(frozen=True)
class _ModuleRef:
    """A module or package of the bundle, by dotted name ("" is the bundle root)."""

    name: str


@dataclass(eq=False)
class _Function:
    node: ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(eq=False)
class _Class:
    node: ast.ClassDef
    path: str
    scope: _Scope  # where the class statement runs: its bases and decorators are evaluated there
    body: _Scope | None = None


_Value = _External | _ModuleRef | _Function | _Class | None


# --- What a statement binds a name to --------------------------------------------------------------


@dataclass(frozen=True)
class _ImportModule:
    dotted: str


@dataclass(frozen=True)
class _ImportFrom:
    base: str | None  # None when a relative import climbs out of the bundle
    name: str


@dataclass(frozen=True)
class _Alias:
    expr: ast.expr


_OPAQUE = object()  # bound to something we do not try to understand (a call result, a number, ...)


@dataclass(eq=False)
class _Scope:
    """The names a module or class body binds, in Python's order (first binding's position, last binding's value)."""

    path: str
    parent: _Scope | None  # a class body's globals; None for a module
    bindings: dict[str, Any] = field(default_factory=dict)
    stars: list[str | None] = field(default_factory=list)
    # The last statement that set each name: the assigned expression, or the def/class node.
    defs: dict[str, ast.AST] = field(default_factory=dict)
    all_names: frozenset[str] | None = None


@dataclass
class _Task:
    name: str
    kind: str
    weight: int | None
    tags: list[str]
    line: int | None
    target: _Class | None = None
    transitions: dict[str, int | None] | None = None


class _Analyzer:
    def __init__(self, trees: dict[str, ast.Module], entry: str):
        self.trees = trees
        self.entry = entry
        self.module_paths: dict[str, str] = {}
        self.packages: set[str] = set()
        for path in trees:
            name, _ = _module_name(path)
            self.module_paths[name] = path
            parts = path.split("/")[:-1]
            self.packages.update(".".join(parts[: i + 1]) for i in range(len(parts)))
        self.classes: list[_Class] = []
        self.scopes: dict[str, _Scope] = {}
        for path, tree in trees.items():
            _, package = _module_name(path)
            self.scopes[path] = self._build_scope(path, package, tree.body, parent=None)
        self._resolving: set[tuple[int, str]] = set()
        self._roots: dict[int, str | None] = {}
        self._tasks: dict[int, tuple[list[_Task], bool]] = {}
        self._entries_left = _MAX_TASK_ENTRIES

    # --- scopes and name resolution ---

    def _build_scope(self, path: str, package: str, body: list[ast.stmt], parent: _Scope | None) -> _Scope:
        scope = _Scope(path=path, parent=parent)
        for stmt in _statements(body):
            if isinstance(stmt, ast.ClassDef):
                cls = _Class(stmt, path, scope)
                self.classes.append(cls)
                # A class body's free names are looked up in the module, never in an enclosing class body.
                cls.body = self._build_scope(path, package, stmt.body, parent=parent or scope)
                scope.bindings[stmt.name] = cls
                scope.defs[stmt.name] = stmt
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                scope.bindings[stmt.name] = _Function(stmt)
                scope.defs[stmt.name] = stmt
            elif isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.asname:
                        scope.bindings[alias.asname] = _ImportModule(alias.name)
                    else:
                        top = alias.name.split(".")[0]
                        scope.bindings[top] = _ImportModule(top)
            elif isinstance(stmt, ast.ImportFrom):
                base = _import_base(package, stmt)
                for alias in stmt.names:
                    if alias.name == "*":
                        scope.stars.append(base)
                    else:
                        scope.bindings[alias.asname or alias.name] = _ImportFrom(base, alias.name)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        aliased = isinstance(stmt.value, (ast.Name, ast.Attribute))
                        scope.bindings[target.id] = _Alias(stmt.value) if aliased else _OPAQUE
                        scope.defs[target.id] = stmt.value
                    else:
                        for name in _target_names(target):
                            scope.bindings[name] = _OPAQUE
                            scope.defs.pop(name, None)
            elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
                scope.bindings[stmt.target.id] = _OPAQUE
                scope.defs.pop(stmt.target.id, None)
            elif isinstance(stmt, ast.Delete):
                for target in stmt.targets:
                    for name in _target_names(target):
                        scope.bindings.pop(name, None)
                        scope.defs.pop(name, None)
        all_expr = scope.defs.get("__all__")
        if parent is None and isinstance(all_expr, (ast.List, ast.Tuple)):
            names = [_str_literal(element) for element in all_expr.elts]
            if all(name is not None for name in names):
                scope.all_names = frozenset(names)
        return scope

    def _is_bundle_module(self, dotted: str) -> bool:
        return dotted in self.module_paths or dotted in self.packages

    def _module_value(self, dotted: str) -> _Value:
        top = dotted.split(".")[0]
        # Locust is always imported before the locustfile, so a bundle file named locust.py never shadows it.
        if top != "locust" and self._is_bundle_module(dotted):
            return _ModuleRef(dotted)
        if top != "locust" and self._is_bundle_module(top):
            return None  # e.g. `import lib.missing` where lib is ours: it would fail at run time
        return _External(dotted)

    def lookup(self, scope: _Scope, name: str) -> _Value:
        key = (id(scope), name)
        if key in self._resolving:
            return None  # an import cycle or self-referencing alias
        self._resolving.add(key)
        try:
            current: _Scope | None = scope
            while current is not None:
                if name in current.bindings:
                    return self._binding_value(current, current.bindings[name])
                for star in reversed(current.stars):
                    value = self._star_value(star, name)
                    if value is not None:
                        return value
                current = current.parent
            return None
        finally:
            self._resolving.discard(key)

    def _binding_value(self, scope: _Scope, binding: Any) -> _Value:
        if isinstance(binding, (_Class, _Function)):
            return binding
        if isinstance(binding, _ImportModule):
            return self._module_value(binding.dotted)
        if isinstance(binding, _ImportFrom):
            if binding.base is None:
                return None
            if binding.base == "" or self._is_bundle_module(binding.base):
                return self.attribute(_ModuleRef(binding.base), binding.name)
            base = self._module_value(binding.base)
            return self.attribute(base, binding.name) if base is not None else None
        if isinstance(binding, _Alias):
            return self.evaluate(scope, binding.expr)
        return None

    def _star_value(self, base: str | None, name: str) -> _Value:
        if base is None or name.startswith("_"):
            return None
        if base.split(".")[0] == "locust":
            return _External(f"locust.{name}") if base == "locust" and name in _LOCUST_STAR_NAMES else None
        path = self.module_paths.get(base)
        if path is None:
            return None
        scope = self.scopes[path]
        if scope.all_names is not None and name not in scope.all_names:
            return None
        return self.lookup(scope, name)

    def attribute(self, value: _Value, name: str) -> _Value:
        if isinstance(value, _External):
            return _External(f"{value.dotted}.{name}")
        if isinstance(value, _ModuleRef):
            path = self.module_paths.get(value.name) if value.name else None
            if path is not None:
                found = self.lookup(self.scopes[path], name)
                if found is not None:
                    return found
            submodule = f"{value.name}.{name}" if value.name else name
            return _ModuleRef(submodule) if self._is_bundle_module(submodule) else None
        if isinstance(value, _Class) and value.body is not None and name in value.body.bindings:
            return self._binding_value(value.body, value.body.bindings[name])
        return None

    def evaluate(self, scope: _Scope, node: ast.expr) -> _Value:
        if isinstance(node, ast.Name):
            return self.lookup(scope, node.id)
        if isinstance(node, ast.Attribute):
            return self.attribute(self.evaluate(scope, node.value), node.attr)
        return None

    def locust_name(self, scope: _Scope, node: ast.expr) -> str | None:
        """The locust API object an expression refers to ("HttpUser", "task", ...), if any."""
        return _canonical(self.evaluate(scope, node))

    # --- classes ---

    def root(self, cls: _Class) -> str | None:
        """The locust base class a class derives from, directly or through bundle classes."""
        key = id(cls)
        if key not in self._roots:
            self._roots[key] = None  # provisional: breaks inheritance cycles
            for base in cls.node.bases:
                value = self.evaluate(cls.scope, base)
                found = self.root(value) if isinstance(value, _Class) else _canonical(value)
                if found in USER_ROOTS + TASKSET_ROOTS + (SHAPE_ROOT,):
                    self._roots[key] = found
                    break
        return self._roots[key]

    def bundle_bases(self, cls: _Class) -> list[_Class]:
        values = [self.evaluate(cls.scope, base) for base in cls.node.bases]
        return [value for value in values if isinstance(value, _Class) and value is not cls]

    def lineage(self, cls: _Class) -> list[_Class]:
        """The class and its bundle ancestors, depth-first: close enough to the MRO for attribute lookup."""
        order: list[_Class] = []

        def visit(current: _Class) -> None:
            if any(seen is current for seen in order):
                return
            order.append(current)
            for base in self.bundle_bases(current):
                visit(base)

        visit(cls)
        return order

    def has_opaque_base(self, cls: _Class) -> bool:
        """Whether some ancestor comes from code we cannot see, which could supply tasks or wait_time."""
        for current in self.lineage(cls):
            for base in current.node.bases:
                value = self.evaluate(current.scope, base)
                if isinstance(value, _Class):
                    continue
                if _canonical(value) is not None:
                    continue
                if isinstance(base, ast.Name) and base.id == "object" and value is None:
                    continue
                return True
        return False

    def inherited_def(self, cls: _Class, name: str) -> ast.AST | None:
        for current in self.lineage(cls):
            if current.body is not None and name in current.body.defs:
                return current.body.defs[name]
        return None

    def class_tags(self, cls: _Class) -> list[str]:
        tags: set[str] = set()
        for decorator in cls.node.decorator_list:
            if isinstance(decorator, ast.Call) and self.locust_name(cls.scope, decorator.func) == "tag":
                tags.update(_str_args(decorator))
        return sorted(tags)

    # --- tasks ---

    def tasks(self, cls: _Class) -> tuple[list[_Task], bool]:
        """A class's tasks the way Locust collects them (bases first), and whether some could not be read."""
        key = id(cls)
        if key in self._tasks:
            return self._tasks[key]
        self._tasks[key] = ([], False)  # provisional: breaks inheritance cycles
        inherited: list[_Task] = []
        unknown = False
        for base in self.bundle_bases(cls):
            base_tasks, base_unknown = self.tasks(base)
            inherited.extend(base_tasks)
            unknown = unknown or base_unknown
        own, own_unknown = self._own_tasks(cls)
        overridden = {task.name for task in own}
        result = ([task for task in inherited if task.name not in overridden] + own, unknown or own_unknown)
        self._tasks[key] = result
        return result

    def _own_tasks(self, cls: _Class) -> tuple[list[_Task], bool]:
        body = cls.body
        assert body is not None
        root = self.root(cls)
        if root == "MarkovTaskSet":
            # A Markov chain runs only @transition(s) methods; `tasks` and @task are ignored by Locust there.
            markov = [self._markov_task(body, node) for node in body.defs.values()]
            return [task for task in markov if task is not None], False

        tasks: list[_Task] = []
        unknown = False
        declared = body.defs.get("tasks")
        if declared is not None:
            entries = self._declared_tasks(body, declared)
            if entries is None:
                unknown = True
            else:
                tasks.extend(entries if root == "SequentialTaskSet" else _merge_duplicates(entries))
        for name, node in body.defs.items():
            if name != "tasks" and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                task = self._decorated_task(body, node)
                if task is not None:
                    tasks.append(task)
        return tasks, unknown

    def _declared_tasks(self, body: _Scope, declared: ast.AST) -> list[_Task] | None:
        """Tasks from a `tasks = [...]` or `tasks = {...: weight}` attribute; None if it is not a literal."""
        pairs: list[tuple[ast.expr, int | None]] = []
        if isinstance(declared, (ast.List, ast.Tuple)):
            for element in declared.elts:
                if isinstance(element, ast.Tuple) and len(element.elts) == 2:
                    pairs.append((element.elts[0], _int_literal(element.elts[1])))
                else:
                    pairs.append((element, 1))
        elif isinstance(declared, ast.Dict):
            for key, weight in zip(declared.keys, declared.values):
                if key is None:  # `**other` inside the dict
                    return None
                pairs.append((key, _int_literal(weight)))
        else:
            return None
        return [self._referenced_task(body, node, weight) for node, weight in pairs]

    def _referenced_task(self, body: _Scope, node: ast.expr, weight: int | None) -> _Task:
        value = self.evaluate(body, node)
        if isinstance(value, _Class):
            return _Task(value.node.name, "taskset", weight, self.class_tags(value), value.node.lineno, target=value)
        if isinstance(value, _Function):
            return _Task(value.node.name, "method", weight, self._decorator_tags(body, value.node), value.node.lineno)
        if isinstance(value, _External):
            # We cannot see outside the bundle; by convention only classes (task sets) are capitalised.
            last = value.dotted.rsplit(".", 1)[-1]
            kind = "taskset" if last[:1].isupper() else "method"
            return _Task(_source(node), kind, weight, [], None)
        return _Task(_source(node), "method", weight, [], None)

    def _decorated_task(self, body: _Scope,
                        node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> _Task | None:
        weight: int | None = None
        is_task = False
        for decorator in node.decorator_list:
            func = decorator.func if isinstance(decorator, ast.Call) else decorator
            if self.locust_name(body, func) != "task":
                continue
            is_task = True
            if not isinstance(decorator, ast.Call):
                weight = 1
            elif decorator.args:
                weight = _int_literal(decorator.args[0])
            else:
                keyword = next((kw.value for kw in decorator.keywords if kw.arg == "weight"), None)
                weight = 1 if keyword is None else _int_literal(keyword)
        if not is_task:
            return None
        if isinstance(node, ast.ClassDef):
            target = body.bindings.get(node.name)
            target = target if isinstance(target, _Class) and target.node is node else None
            tags = self.class_tags(target) if target is not None else self._decorator_tags(body, node)
            return _Task(node.name, "taskset", weight, tags, node.lineno, target=target)
        return _Task(node.name, "method", weight, self._decorator_tags(body, node), node.lineno)

    def _decorator_tags(self, scope: _Scope, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> list[str]:
        tags: set[str] = set()
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call) and self.locust_name(scope, decorator.func) == "tag":
                tags.update(_str_args(decorator))
        return sorted(tags)

    def _markov_task(self, body: _Scope, node: ast.AST) -> _Task | None:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return None
        transitions: dict[str, int | None] = {}
        found = False
        for decorator in node.decorator_list:
            if not isinstance(decorator, ast.Call):
                continue
            what = self.locust_name(body, decorator.func)
            if what == "transition":
                found = True
                target = _argument(decorator, 0, "func_name")
                name = _str_literal(target) if target is not None else None
                weight_node = _argument(decorator, 1, "weight")
                if name is not None:
                    _add_weight(transitions, name, 1 if weight_node is None else _int_literal(weight_node))
            elif what == "transitions":
                found = True
                for name, weight in _transition_pairs(_argument(decorator, 0, "weights")):
                    _add_weight(transitions, name, weight)
        if not found:
            return None
        return _Task(node.name, "method", 1, [], node.lineno, transitions=transitions)

    def task_dicts(self, tasks: list[_Task], visiting: frozenset[int] = frozenset()) -> list[dict[str, Any]]:
        result = []
        for task in tasks:
            self._entries_left -= 1
            nested: list[dict[str, Any]] = []
            target = task.target
            if target is not None and id(target) not in visiting and self._entries_left > 0:
                nested = self.task_dicts(self.tasks(target)[0], visiting | {id(target)})
            result.append(
                {
                    "name": task.name,
                    "kind": task.kind,
                    "weight": task.weight,
                    "tags": list(task.tags),
                    "line": task.line,
                    "tasks": nested,
                    # Pairs, not a dict: Postgres' jsonb reorders object keys, and the order is the author's.
                    "transitions": [[target, weight] for target, weight in task.transitions.items()]
                    if task.transitions is not None
                    else None,
                }
            )
        return result

    # --- the entry module ---

    def entry_classes(self) -> list[_Class]:
        """Classes bound in the entry module's namespace, as Locust's vars(module) would see them."""
        scope = self.scopes[self.entry]
        names = list(scope.bindings)
        for star in scope.stars:
            names.extend(name for name in self._star_names(star, set()) if name not in names)
        found: list[_Class] = []
        for name in names:
            value = self.lookup(scope, name)
            if isinstance(value, _Class) and not any(value is seen for seen in found):
                found.append(value)
        return found

    def _star_names(self, base: str | None, visiting: set[str]) -> list[str]:
        if base is None:
            return []
        if base == "locust":
            return sorted(_LOCUST_STAR_NAMES)
        path = self.module_paths.get(base)
        if path is None or path in visiting:
            return []
        visiting.add(path)
        scope = self.scopes[path]
        names = list(scope.bindings)
        for star in scope.stars:
            names.extend(self._star_names(star, visiting))
        public = [name for name in names if not name.startswith("_")]
        if scope.all_names is not None:
            public = [name for name in public if name in scope.all_names]
        return public

    def run(self) -> dict[str, Any]:
        entry_classes = self.entry_classes()
        users = sorted(
            (cls for cls in entry_classes if self.root(cls) in USER_ROOTS), key=lambda cls: (cls.path, cls.node.lineno)
        )
        runnable = [cls for cls in users if not _is_abstract(cls)]
        if not runnable:
            raise LocustfileError(self._no_user_message(users), path=self.entry)

        # Kept with their location so that they can be listed in file order, like everything else.
        warnings_: list[tuple[str, int, str]] = []
        user_dicts = []
        for cls in users:
            user_dicts.append(self._user_dict(cls))
            if not _is_abstract(cls):
                warnings_.extend((cls.path, cls.node.lineno, text) for text in self._user_warnings(cls))

        task_sets = sorted(
            (cls for cls in self.classes if self.root(cls) in TASKSET_ROOTS),
            key=lambda cls: (cls.path, cls.node.lineno),
        )
        task_set_dicts = [
            {
                "name": cls.node.name,
                "module": cls.path,
                "line": cls.node.lineno,
                "kind": self.root(cls),
                "tags": self.class_tags(cls),
                "tasks": self.task_dicts(self.tasks(cls)[0], frozenset({id(cls)})),
            }
            for cls in task_sets
        ]

        shape = None
        for cls in entry_classes:
            if self.root(cls) == SHAPE_ROOT and not _is_abstract(cls):
                has_tick = isinstance(self.inherited_def(cls, "tick"), (ast.FunctionDef, ast.AsyncFunctionDef))
                shape = {"name": cls.node.name, "module": cls.path, "line": cls.node.lineno, "has_tick": has_tick}
                if not has_tick:
                    text = (
                        f"{cls.path}, line {cls.node.lineno}: load shape {cls.node.name} has no tick() method: "
                        "Locust cannot run the shape without it."
                    )
                    warnings_.append((cls.path, cls.node.lineno, text))
                break

        tags: set[str] = set()
        for item in user_dicts + task_set_dicts:
            _collect_tags(item, tags)

        return {
            "entry": self.entry,
            "user_classes": user_dicts,
            "task_sets": task_set_dicts,
            "shape": shape,
            "all_tags": sorted(tags),
            "warnings": [text for _, _, text in sorted(warnings_, key=lambda item: item[:2])],
            "modules": sorted(self.trees),
            "options": self.command_line_options(),
        }

    # --- custom command-line options (init_command_line_parser listeners) ---

    def command_line_options(self) -> list[dict[str, Any]]:
        """The options `parser.add_argument(...)` adds in init_command_line_parser listeners, as Locust's web UI
        lists them. Only literal values are read; an option whose default is computed is still listed."""
        options: dict[str, dict[str, Any]] = {}
        for path, listener in self._parser_listeners():
            for node in ast.walk(listener):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "add_argument"):
                    option = _option(path, node)
                    if option is not None and option["dest"] not in options:
                        options[option["dest"]] = option
        return list(options.values())

    def _parser_listeners(self) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
        found: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []
        where: dict[int, str] = {}
        calls: list[tuple[_Scope, ast.expr]] = []
        for path, tree in self.trees.items():
            scope = self.scopes[path]
            for stmt in _statements(tree.body):
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    where[id(stmt)] = path
                    if any(self._is_parser_hook(scope, decorator) for decorator in stmt.decorator_list):
                        found.append((path, stmt))
                elif (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and stmt.value.args
                      and self._is_parser_hook(scope, stmt.value.func)):
                    calls.append((scope, stmt.value.args[0]))
        for scope, argument in calls:
            value = self.evaluate(scope, argument)
            if isinstance(value, _Function) and id(value.node) in where:
                found.append((where[id(value.node)], value.node))
        unique: dict[int, tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        for path, node in found:
            unique.setdefault(id(node), (path, node))
        return sorted(unique.values(), key=lambda item: (item[0], item[1].lineno))

    def _is_parser_hook(self, scope: _Scope, node: ast.expr) -> bool:
        value = self.evaluate(scope, node)
        return isinstance(value, _External) and value.dotted == _PARSER_HOOK

    def _user_dict(self, cls: _Class) -> dict[str, Any]:
        wait_time = self.inherited_def(cls, "wait_time")
        if isinstance(wait_time, (ast.FunctionDef, ast.AsyncFunctionDef)):
            wait_text: str | None = _CUSTOM_WAIT_TIME
        elif isinstance(wait_time, ast.expr):
            wait_text = _source(wait_time)
        else:
            wait_text = None
        host = self.inherited_def(cls, "host")
        return {
            "name": cls.node.name,
            "module": cls.path,
            "line": cls.node.lineno,
            "bases": [_source(base) for base in cls.node.bases],
            "root": self.root(cls),
            "abstract": _is_abstract(cls),
            "weight": _int_literal(self.inherited_def(cls, "weight")),
            "fixed_count": _int_literal(self.inherited_def(cls, "fixed_count")),
            "host": _str_literal(host) if isinstance(host, ast.expr) else None,
            "wait_time": wait_text,
            "tags": self.class_tags(cls),
            "has_on_start": self.inherited_def(cls, "on_start") is not None,
            "has_on_stop": self.inherited_def(cls, "on_stop") is not None,
            "tasks": self.task_dicts(self.tasks(cls)[0], frozenset({id(cls)})),
        }

    def _user_warnings(self, cls: _Class) -> list[str]:
        where = f"{cls.path}, line {cls.node.lineno}: {cls.node.name}"
        if self.has_opaque_base(cls):
            return []  # a base we cannot see may well provide both
        found: list[str] = []
        tasks, unknown = self.tasks(cls)
        if not tasks and not unknown:
            found.append(f"{where} has no tasks: Locust will fail when it spawns this user.")
        if self.inherited_def(cls, "wait_time") is None:
            found.append(
                f"{where} has no wait_time: users will send requests back to back. "
                "Set one, for example wait_time = between(1, 5)."
            )
        return found

    def _no_user_message(self, users: list[_Class]) -> str:
        message = (
            f"No User class found in {self.entry}: define a class deriving from HttpUser, FastHttpUser or User."
        )
        abstract = [cls.node.name for cls in users if _is_abstract(cls)]
        if abstract:
            return f"{message} ({_names(abstract)} {'is' if len(abstract) == 1 else 'are'} marked abstract = True.)"
        elsewhere = [
            cls
            for cls in self.classes
            if cls.path != self.entry and cls.scope.parent is None and self.root(cls) in USER_ROOTS
            and not _is_abstract(cls)
        ]
        if elsewhere:
            cls = elsewhere[0]
            return f"{message} ({cls.path} defines {cls.node.name}, but {self.entry} does not import it.)"
        return message


# --- small helpers ------------------------------------------------------------------------------------


def _module_name(path: str) -> tuple[str, str]:
    """The dotted module name of a bundle path, and the package its relative imports start from."""
    parts = path[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def _import_base(package: str, stmt: ast.ImportFrom) -> str | None:
    if stmt.level == 0:
        return stmt.module
    parts = package.split(".") if package else []
    if stmt.level - 1 > len(parts):
        return None
    parts = parts[: len(parts) - (stmt.level - 1)]
    if stmt.module:
        parts += stmt.module.split(".")
    return ".".join(parts)


def _statements(body: list[ast.stmt]):
    """Statements that bind names in this scope, including those inside if/try/with/loops (not defs)."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, (ast.If, ast.For, ast.AsyncFor, ast.While)):
            yield from _statements(stmt.body)
            yield from _statements(stmt.orelse)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            yield from _statements(stmt.body)
        elif isinstance(stmt, (ast.Try, ast.TryStar)):
            yield from _statements(stmt.body)
            for handler in stmt.handlers:
                yield from _statements(handler.body)
            yield from _statements(stmt.orelse)
            yield from _statements(stmt.finalbody)
        elif isinstance(stmt, ast.Match):
            for case in stmt.cases:
                yield from _statements(case.body)


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _target_names(element)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


def _canonical(value: _Value) -> str | None:
    if isinstance(value, _External):
        parts = value.dotted.split(".")
        if parts[0] == "locust" and len(parts) > 1 and parts[-1] in _KNOWN_LOCUST_NAMES:
            return parts[-1]
    return None


def _is_abstract(cls: _Class) -> bool:
    # Like Locust, only the class's own body counts: subclasses of an abstract class are concrete.
    value = cls.body.defs.get("abstract") if cls.body is not None else None
    return isinstance(value, ast.Constant) and bool(value.value)


def _int_literal(node: ast.AST | None) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    return None


def _str_literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _str_args(call: ast.Call) -> list[str]:
    return [value for value in map(_str_literal, call.args) if value is not None]


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if len(call.args) > position:
        return call.args[position]
    return next((kw.value for kw in call.keywords if kw.arg == keyword), None)


def _transition_pairs(node: ast.expr | None) -> list[tuple[str, int | None]]:
    pairs: list[tuple[str, int | None]] = []
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values):
            name = _str_literal(key)
            if name is not None:
                pairs.append((name, _int_literal(value)))
    elif isinstance(node, (ast.List, ast.Tuple)):
        for element in node.elts:
            if isinstance(element, ast.Tuple) and len(element.elts) == 2:
                name = _str_literal(element.elts[0])
                if name is not None:
                    pairs.append((name, _int_literal(element.elts[1])))
            elif (name := _str_literal(element)) is not None:
                pairs.append((name, 1))
    return pairs


def _add_weight(weights: dict[str, int | None], name: str, weight: int | None) -> None:
    if name in weights:
        previous = weights[name]
        weights[name] = None if previous is None or weight is None else previous + weight
    else:
        weights[name] = weight


def _merge_duplicates(tasks: list[_Task]) -> list[_Task]:
    """Locust runs a task listed twice twice as often, so report it once with the summed weight."""
    merged: dict[tuple[str, str, int], _Task] = {}
    for task in tasks:
        key = (task.name, task.kind, id(task.target))
        if key in merged:
            first = merged[key]
            first.weight = None if first.weight is None or task.weight is None else first.weight + task.weight
        else:
            merged[key] = task
    return list(merged.values())


def _source(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= _MAX_EXPRESSION_TEXT else text[: _MAX_EXPRESSION_TEXT - 1] + "…"


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _literal(node: ast.AST | None) -> tuple[bool, Any]:
    """(True, value) for a literal expression (ast.literal_eval), (False, None) for anything computed."""
    if node is None:
        return False, None
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _json_value(value: Any) -> tuple[bool, Any]:
    """A literal as JSON can store it (tuples and sets become lists), or (False, None)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return True, value
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_json_value(item) for item in (sorted(value, key=repr) if isinstance(value, (set, frozenset))
                                                  else value)]
        if all(ok for ok, _ in items):
            return True, [item for _, item in items]
    return False, None


def _flag(call: ast.Call, keyword: str, default: bool, unknown: bool) -> bool:
    node = next((kw.value for kw in call.keywords if kw.arg == keyword), None)
    if node is None:
        return default
    ok, value = _literal(node)
    return bool(value) if ok else unknown


def _option(path: str, call: ast.Call) -> dict[str, Any] | None:
    """One `add_argument(...)` call as the analysis records it; None for a positional or unreadable one."""
    flags = [value for value in map(_str_literal, call.args) if value is not None]
    if not flags or len(flags) != len(call.args) or not all(flag.startswith("-") for flag in flags):
        return None
    keywords = {kw.arg: kw.value for kw in call.keywords if kw.arg is not None}
    name = next((flag for flag in flags if flag.startswith("--")), flags[0])
    dest = _str_literal(keywords.get("dest")) or name.lstrip("-").replace("-", "_")
    action = _str_literal(keywords.get("action")) or "store"
    type_node = keywords.get("type")
    type_source = None
    if action in ("store_true", "store_false"):
        kind = "bool"
    elif action == "count":
        kind = "int"
    elif type_node is None:
        kind = "str"
    elif isinstance(type_node, ast.Name) and type_node.id in _OPTION_TYPES:
        kind = type_node.id
    else:
        kind, type_source = "str", _source(type_node)  # converted by the locustfile's own function at start
    if "default" in keywords:
        known, default = _literal(keywords["default"])
        if known:
            known, default = _json_value(default)
        if known and isinstance(default, str) and kind in ("int", "float"):
            try:  # argparse converts a string default with the option's type, so does Locust
                default = int(default) if kind == "int" else float(default)
            except ValueError:
                pass
    else:
        known, default = True, {"store_true": False, "store_false": True}.get(action)
    choices = None
    if "choices" in keywords:
        ok, value = _literal(keywords["choices"])
        ok, value = _json_value(value) if ok else (False, None)
        choices = value if ok and isinstance(value, list) else None
    help_node = keywords.get("help")
    help_text = _str_literal(help_node)
    if help_text is None and help_node is not None:
        help_text = _source(help_node)
    return {
        "name": name,
        "dest": dest,
        "flags": flags,
        "action": action,
        "type": kind,
        "type_source": type_source,
        "default": default if known else None,
        "default_known": known,
        "default_text": (None if default is None else str(default)) if known else COMPUTED_DEFAULT,
        "choices": choices,
        "help": help_text,
        "required": _flag(call, "required", False, False) or _flag(call, "is_required", False, False),
        "include_in_web_ui": _flag(call, "include_in_web_ui", True, True),
        # A secret flag we cannot read is taken as secret: masking too much is the safe mistake.
        "is_secret": _flag(call, "is_secret", False, True),
        "module": path,
        "line": call.lineno,
    }


def _collect_tags(item: dict[str, Any], into: set[str]) -> None:
    into.update(item.get("tags", []))
    for task in item.get("tasks", []):
        _collect_tags(task, into)
