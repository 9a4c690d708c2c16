"""Per-file facts: what one module imports, declares and references, read from its syntax tree.

Nothing here looks at other files, so facts are cached per file by content hash; ``link`` joins them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from skyrig.analysis.diagnostics import Diagnostic
from skyrig.kinds import KINDS

DECLARATION_CLASSES = frozenset(kind.declaration_path.rpartition(":")[2] for kind in KINDS.values())
"""The names of the declaration classes (``Topic``, ...): a call to one at module top level declares."""
KEYSPACE = "keyspace"
"""The method of a cache cluster that declares a keyspace."""

_CONTEXTS: dict[type, str] = {
    ast.If: "an 'if' block",
    ast.For: "a loop",
    ast.AsyncFor: "a loop",
    ast.While: "a loop",
    ast.Try: "a 'try' block",
    ast.With: "a 'with' block",
    ast.AsyncWith: "a 'with' block",
    ast.Match: "a 'match' block",
}
_NESTED_HINT = (
    "declare resources at module top level, assigned to a variable: skyrig reads them without "
    "running your code, so they cannot depend on control flow"
)


class Arg(NamedTuple):
    """One argument of a declaration call, as far as syntax alone can tell."""

    param: str | None
    """The keyword, or ``None`` for a positional argument (bound to a parameter by ``link``)."""
    line: int
    column: int
    literal: Any = None
    is_literal: bool = False
    chain: tuple[str, ...] | None = None
    """For a dotted name (``models.OrderCreated``): its parts."""
    shape: str = ""
    """What the argument is when it is neither a literal nor a dotted name (``a lambda``)."""


class RawDeclaration(NamedTuple):
    """A call to a declaration at module top level, before names are resolved across modules."""

    cls: str
    """``Topic``, ``Service``, ... or ``keyspace`` for ``cluster.keyspace(...)``."""
    targets: tuple[str, ...]
    """The module-level variables it is assigned to."""
    args: tuple[Arg, ...]
    line: int
    column: int
    receiver: tuple[str, ...] | None = None
    """For a keyspace: the dotted name of the cache cluster it is declared on."""


class Ref(NamedTuple):
    """A use of a name bound to an import or a declaration, with the attributes read from it."""

    chain: tuple[str, ...]
    called: bool
    line: int
    column: int


@dataclass
class ModuleFacts:
    """What one module says, in terms of its own names."""

    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """Local name -> (module, attribute or None for ``import module``)."""
    definitions: dict[str, str] = field(default_factory=dict)
    """Top-level name -> ``function``, ``class`` or ``variable``."""
    class_fields: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    """Top-level class -> its annotated fields, or None when it inherits fields we cannot see."""
    class_shapes: dict[str, tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]] = field(
        default_factory=dict
    )
    """Top-level class -> the dotted names of its bases and of its decorators (a decorator called with
    arguments: what is called); ``("?",)`` for one that is no dotted name, and a ``metaclass=``."""
    declarations: list[RawDeclaration] = field(default_factory=list)
    refs: list[Ref] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    broken: bool = False
    """The file does not parse; names resolved into it are not reported as missing."""

    def to_plain(self) -> tuple:
        """Builtin types only, for ``marshal`` (many times faster than pickle for the cache)."""
        return (
            self.imports,
            self.definitions,
            self.class_fields,
            self.class_shapes,
            [(*d[:2], tuple(map(tuple, d.args)), *d[3:]) for d in self.declarations],
            [tuple(ref) for ref in self.refs],
            [(d.file, d.line, d.column, d.message, d.hint) for d in self.diagnostics],
            self.broken,
        )

    @classmethod
    def from_plain(cls, plain: tuple) -> ModuleFacts:
        """The inverse of :meth:`to_plain`."""
        imports, definitions, class_fields, class_shapes, declarations, refs, diagnostics, broken = plain
        return cls(
            imports,
            definitions,
            class_fields,
            class_shapes,
            [RawDeclaration(d[0], d[1], tuple(Arg(*a) for a in d[2]), *d[3:]) for d in declarations],
            [Ref(*ref) for ref in refs],
            [Diagnostic(*d) for d in diagnostics],
            broken,
        )


def dotted(node: ast.AST) -> tuple[str, ...] | None:
    """``("a", "b", "c")`` for the expression ``a.b.c``; None for anything else."""
    parts: list[str] = []
    while type(node) is ast.Attribute:
        parts.append(node.attr)  # type: ignore[attr-defined]
        node = node.value  # type: ignore[attr-defined]
    if type(node) is not ast.Name:
        return None
    parts.append(node.id)  # type: ignore[attr-defined]
    parts.reverse()
    return tuple(parts)


def extract(
    source: bytes, path: str, module: str, is_package: bool, app_roots: frozenset[str]
) -> ModuleFacts:
    """The facts of one module. ``app_roots`` are the app's top-level module names."""
    facts = ModuleFacts()
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as error:
        facts.broken = True
        facts.diagnostics.append(
            Diagnostic(
                path,
                error.lineno or 1,
                error.offset or 1,
                f"syntax error: {error.msg}",
                "fix the syntax; skyrig reads app code without running it",
            )
        )
        return facts
    except ValueError as error:  # null bytes and the like
        facts.broken = True
        facts.diagnostics.append(Diagnostic(path, 1, 1, f"cannot parse: {error}"))
        return facts
    _Extractor(facts, path, module, is_package, app_roots, source).run(tree)
    return facts


class _Extractor:
    def __init__(
        self,
        facts: ModuleFacts,
        path: str,
        module: str,
        is_package: bool,
        app_roots: frozenset[str],
        source: bytes,
    ) -> None:
        self.facts = facts
        self.lines = source.decode("utf-8", "replace").splitlines()
        self.path = path
        self.package = module if is_package else module.rpartition(".")[0]
        self.app_roots = app_roots
        self.tracked: set[str] = set()
        """Names whose uses are worth recording: app imports and declared variables."""
        self._tokens_key: tuple[int, int] = (-1, -1)
        self._token_list: list[str] = []

    # -- top level --------------------------------------------------------------------------------

    def run(self, tree: ast.Module) -> None:
        body = tree.body
        for stmt in body:
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                self._import(stmt)
        for stmt in body:  # declared variables are tracked even where used before their declaration
            value = getattr(stmt, "value", None)
            if isinstance(value, ast.Call) and self._callee(value.func)[0] is not None:
                self.tracked.update(_targets(stmt))
        for stmt in body:
            self._top_level(stmt)

    def _top_level(self, stmt: ast.stmt) -> None:
        definitions = self.facts.definitions
        kind = type(stmt)
        if kind in (ast.FunctionDef, ast.AsyncFunctionDef):
            definitions[stmt.name] = "function"  # type: ignore[attr-defined]
            self._walk_if_relevant(stmt, f"function '{stmt.name}'")  # type: ignore[attr-defined]
        elif kind is ast.ClassDef:
            definitions[stmt.name] = "class"  # type: ignore[attr-defined]
            self.facts.class_fields[stmt.name] = _class_fields(stmt)  # type: ignore[arg-type, attr-defined]
            self.facts.class_shapes[stmt.name] = _class_shape(stmt)  # type: ignore[arg-type, attr-defined]
            self._walk_if_relevant(stmt, f"class '{stmt.name}'")  # type: ignore[attr-defined]
        elif kind in (ast.Assign, ast.AnnAssign, ast.Expr):
            targets = _targets(stmt)
            for target in targets:
                definitions[target] = "variable"
            value = stmt.value  # type: ignore[attr-defined]
            if not (isinstance(value, ast.Call) and self._declaration(value, targets, stmt)):
                self._walk_if_relevant(stmt, None)
        elif kind in (ast.Import, ast.ImportFrom):
            for alias in stmt.names:  # type: ignore[attr-defined]
                definitions[(alias.asname or alias.name).partition(".")[0]] = "variable"
        else:
            self._walk_if_relevant(stmt, _CONTEXTS.get(kind, "a statement"))

    def _walk_if_relevant(self, stmt: ast.stmt, context: str | None) -> None:
        """Walk ``stmt`` unless its text names nothing of interest: most code never mentions a resource,
        and a substring search is far cheaper than a walk of its syntax tree."""
        decorators = getattr(stmt, "decorator_list", None)
        first = min([stmt.lineno, *(d.lineno for d in decorators or ())])
        segment = "\n".join(self.lines[first - 1 : stmt.end_lineno])
        if any(token in segment for token in self._tokens()):
            self._walk([stmt], context)

    def _tokens(self) -> list[str]:
        """Names whose mention makes a statement worth walking (recomputed as names get tracked)."""
        key = (len(self.tracked), len(self.facts.imports))
        if key != self._tokens_key:
            imports = self.facts.imports.items()
            skyrig = [name for name, (module, _) in imports if module.partition(".")[0] == "skyrig"]
            self._token_list = [*self.tracked, *skyrig, "import", KEYSPACE]
            self._tokens_key = key
        return self._token_list

    def _declaration(self, call: ast.Call, targets: tuple[str, ...], stmt: ast.stmt) -> bool:
        cls, receiver = self._callee(call.func)
        if cls is None:
            return False
        if not targets and (cls == KEYSPACE or isinstance(stmt, ast.Assign | ast.AnnAssign)):
            self._error(call, "assign the declaration to a plain module-level variable", _NESTED_HINT)
            return True
        args = [self._arg(None, node) for node in call.args]
        args += [
            self._arg(kw.arg, kw.value)
            if kw.arg
            else Arg(None, kw.value.lineno, kw.value.col_offset + 1, shape="**kwargs")
            for kw in call.keywords
        ]
        self.facts.declarations.append(
            RawDeclaration(cls, targets, tuple(args), call.lineno, call.col_offset + 1, receiver)
        )
        self.tracked.update(targets)
        return True

    def _callee(self, func: ast.expr) -> tuple[str | None, tuple[str, ...] | None]:
        if isinstance(func, ast.Subscript):  # Topic[OrderCreated](...)
            func = func.value
        chain = dotted(func)
        if chain is None:
            return None, None
        if len(chain) > 1 and chain[-1] == KEYSPACE:
            return KEYSPACE, chain[:-1]
        target = self.facts.imports.get(chain[0])
        if target is None:
            return None, None
        module, attribute = target
        full = [*module.split("."), *([attribute] if attribute else []), *chain[1:]]
        if full[0] == "skyrig" and full[-1] in DECLARATION_CLASSES:  # skyrig.Topic, skyrig.declarations.Topic
            return full[-1], None
        return None, None

    def _arg(self, param: str | None, node: ast.expr) -> Arg:
        line, column = node.lineno, node.col_offset + 1
        if type(node) is ast.Constant:
            return Arg(param, line, column, literal=node.value, is_literal=True)  # type: ignore[attr-defined]
        chain = dotted(node)
        if chain is not None and chain not in (("None",), ("True",), ("False",)):
            return Arg(param, line, column, chain=chain)
        if isinstance(node, ast.Starred):
            return Arg(param, line, column, shape="*args")
        try:
            return Arg(param, line, column, literal=ast.literal_eval(node), is_literal=True)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return Arg(param, line, column, shape=_shape(node))

    # -- imports ----------------------------------------------------------------------------------

    def _import(self, stmt: ast.Import | ast.ImportFrom) -> None:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    self._bind(alias.asname, alias.name, None)
                else:
                    root = alias.name.partition(".")[0]
                    self._bind(root, root, None)
            return
        base = stmt.module or ""
        if stmt.level:
            parts = self.package.split(".") if self.package else []
            keep = len(parts) - (stmt.level - 1)
            if keep < 0:
                return
            base = ".".join([*parts[:keep], *([stmt.module] if stmt.module else [])])
        for alias in stmt.names:
            if alias.name != "*":
                self._bind(alias.asname or alias.name, base, alias.name)

    def _bind(self, local: str, module: str, attribute: str | None) -> None:
        self.facts.imports[local] = (module, attribute)
        root = module.partition(".")[0]
        if root in self.app_roots or (not root and attribute):
            self.tracked.add(local)

    # -- bodies -----------------------------------------------------------------------------------

    def _walk(self, roots: list[ast.AST], context: str | None) -> None:
        """Record the refs under ``roots``, visiting nodes in source order (children pushed in reverse),
        so that an import in a function body binds its names before the statements after it use them."""
        tracked = self.tracked
        refs = self.facts.refs
        stack = list(reversed(roots))
        while stack:
            node = stack.pop()
            kind = type(node)
            if kind is ast.Name:
                if node.id in tracked and type(node.ctx) is ast.Load:  # type: ignore[attr-defined]
                    refs.append(Ref((node.id,), False, node.lineno, node.col_offset + 1))  # type: ignore[attr-defined]
                continue
            if kind is ast.Attribute:
                chain = dotted(node)
                if chain is None:
                    stack.append(node.value)  # type: ignore[attr-defined]
                elif chain[0] in tracked:
                    refs.append(Ref(chain, False, node.lineno, node.col_offset + 1))  # type: ignore[attr-defined]
                continue
            if kind is ast.Call:
                func = node.func  # type: ignore[attr-defined]
                cls, _ = self._callee(func)
                if cls is not None and cls != KEYSPACE:
                    where = f"inside {context}" if context else "inside an expression"
                    self._error(node, f"{cls} declared {where}", _NESTED_HINT)
                    continue
                chain = dotted(func)
                if chain is None:
                    stack.append(func)
                elif chain[0] in tracked:
                    refs.append(Ref(chain, True, node.lineno, node.col_offset + 1))  # type: ignore[attr-defined]
                stack.extend(node.args)  # type: ignore[attr-defined]
                stack.extend(kw.value for kw in node.keywords)  # type: ignore[attr-defined]
                continue
            if kind is ast.Import or kind is ast.ImportFrom:
                self._import(node)  # type: ignore[arg-type]
                continue
            for name in reversed(node._fields):
                value = getattr(node, name, None)
                if type(value) is list:
                    stack.extend(item for item in reversed(value) if isinstance(item, ast.AST))
                elif isinstance(value, ast.AST):
                    stack.append(value)

    def _error(self, node: ast.AST, message: str, hint: str | None = None) -> None:
        self.facts.diagnostics.append(
            Diagnostic(self.path, node.lineno, node.col_offset + 1, message, hint)  # type: ignore[attr-defined]
        )


def _targets(stmt: ast.stmt) -> tuple[str, ...]:
    if isinstance(stmt, ast.Assign):
        names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
        return tuple(names) if len(names) == len(stmt.targets) else ()
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return (stmt.target.id,)
    return ()


def _class_fields(cls: ast.ClassDef) -> tuple[str, ...] | None:
    visible_bases = {"BaseModel", "object"}
    for base in cls.bases:
        chain = dotted(base)
        if chain is None or chain[-1] not in visible_bases:
            return None
    return tuple(
        stmt.target.id
        for stmt in cls.body
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
    )


OPAQUE = ("?",)
"""A base or decorator the parser cannot name."""


def _class_shape(
    cls: ast.ClassDef,
) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
    """The dotted names of ``cls``'s bases (``Generic[T]`` as ``Generic``) and decorators (``@d(...)`` as
    ``d``); a metaclass makes the class opaque."""

    def named(node: ast.expr) -> tuple[str, ...]:
        if isinstance(node, ast.Subscript | ast.Call):
            node = node.value if isinstance(node, ast.Subscript) else node.func
        return dotted(node) or OPAQUE

    bases = [named(base) for base in cls.bases]
    if any(keyword.arg == "metaclass" for keyword in cls.keywords):
        bases.append(OPAQUE)
    return tuple(bases), tuple(named(decorator) for decorator in cls.decorator_list)


def _shape(node: ast.expr) -> str:
    return {
        ast.Lambda: "a lambda",
        ast.Call: "a call",
        ast.JoinedStr: "an f-string",
        ast.BinOp: "an expression",
        ast.Subscript: "a subscript",
    }.get(type(node), "an expression")
