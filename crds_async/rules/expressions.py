"""A small, safe evaluator for rmap relevance and omit expressions.

rmaps carry expressions such as ``((DETECTOR != "SBC") and (BIASCORR != "OMIT"))``
(``rmap_relevance``, ``rmap_omit``, ``parkey_relevance``).  The reference
``eval``s them; we compile them to a tree of closures over a strict whitelist
(names, str/number literals, tuples/lists, comparisons incl. ``in``, and/or/not,
unary minus, ``a if c else b``) that follows Python's semantics exactly and can
do nothing else.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping, Sequence

from ..errors import ExpressionError, ExpressionNameError, MappingSyntaxError

__all__ = ["Expression", "compile_expression", "MAX_EXPRESSION_CHARS"]

MAX_EXPRESSION_CHARS = 10_000  # real ones are < 300 characters

_COMPARE: dict[type, Callable[[object, object], object]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}

Evaluate = Callable[[Mapping[str, object]], object]


class Expression:
    """A compiled expression; call :meth:`evaluate` with the header's values."""

    __slots__ = ("source", "names", "_run", "_origin", "is_constant", "constant")

    def __init__(self, source: str, names: frozenset[str], run: Evaluate, origin: tuple = (),
                 constant: object = None, is_constant: bool = False):
        self.source = source
        self.names = names
        self._run = run
        self._origin = origin
        #: most rmaps' relevance is ``True`` and omit ``False``: callers skip evaluating those
        self.is_constant = is_constant
        self.constant = constant

    def __reduce__(self):
        # closures cannot be serialized: a compiled context stores the text and recompiles it
        return (compile_expression, self._origin)

    def evaluate(self, names: Mapping[str, object]) -> object:
        """Value of the expression with ``names`` bound (Python semantics).

        Raises
        ------
        ExpressionNameError
            A name is not in ``names``.
        ExpressionError
            Any other evaluation failure (e.g. ``"a" < 1``); the message is Python's.
        """
        try:
            return self._run(names)
        except ExpressionError:
            raise
        except Exception as exc:  # TypeError and friends from operands
            # the text is Python's own, which the reference reports after "NOT FOUND "
            raise ExpressionError(str(exc)) from None

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


class _Compiler:
    def __init__(self, where: str, source: str):
        self.where = where
        self.source = source
        self.names: set[str] = set()

    def fail(self, node: ast.AST, problem: str) -> MappingSyntaxError:
        return MappingSyntaxError(f"{self.where}: {problem} in expression {self.source!r}")

    def build(self, node: ast.AST, depth: int = 0) -> Evaluate:
        if depth > 50:
            raise self.fail(node, "nesting too deep")
        kind = type(node)
        if kind is ast.Constant:
            value = node.value
            if isinstance(value, (str, int, float)) or value is None:
                return lambda names, v=value: v
            raise self.fail(node, f"literal {value!r} is not allowed")
        if kind is ast.Name:
            ident = node.id
            self.names.add(ident)

            def lookup(names: Mapping[str, object], ident: str = ident) -> object:
                try:
                    return names[ident]
                except KeyError:
                    raise ExpressionNameError(f"name {ident!r} is not defined") from None
            return lookup
        if kind in (ast.Tuple, ast.List):
            parts = [self.build(elt, depth + 1) for elt in node.elts]
            make = tuple if kind is ast.Tuple else list
            return lambda names: make(part(names) for part in parts)
        if kind is ast.Compare:
            first = self.build(node.left, depth + 1)
            ops = []
            for op, comparator in zip(node.ops, node.comparators):
                if type(op) not in _COMPARE:
                    raise self.fail(node, f"comparison {type(op).__name__} is not allowed")
                ops.append((_COMPARE[type(op)], self.build(comparator, depth + 1)))

            def compare(names: Mapping[str, object]) -> object:
                left = first(names)
                for func, right_of in ops:  # chained: a < b < c, stops at the first false
                    right = right_of(names)
                    if not func(left, right):
                        return False
                    left = right
                return True
            return compare
        if kind is ast.BoolOp:
            values = [self.build(v, depth + 1) for v in node.values]
            if type(node.op) is ast.And:
                def both(names: Mapping[str, object]) -> object:
                    result: object = True
                    for value in values:
                        result = value(names)
                        if not result:
                            return result
                    return result
                return both

            def either(names: Mapping[str, object]) -> object:
                result: object = False
                for value in values:
                    result = value(names)
                    if result:
                        return result
                return result
            return either
        if kind is ast.UnaryOp:
            operand = self.build(node.operand, depth + 1)
            if type(node.op) is ast.Not:
                return lambda names: not operand(names)
            if type(node.op) is ast.USub:
                return lambda names: -operand(names)  # type: ignore[operator]
            raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")
        if kind is ast.IfExp:
            test, body, orelse = (self.build(n, depth + 1) for n in (node.test, node.body, node.orelse))
            return lambda names: body(names) if test(names) else orelse(names)
        raise self.fail(node, f"{kind.__name__} is not allowed")


def compile_expression(source: str, where: str, dotted_names: Sequence[str] = ()) -> Expression:
    """Compile ``source`` into an :class:`Expression`.

    Parameters
    ----------
    source : str
        The expression text from an rmap header.
    where : str
        The rmap's name (and field), used in error messages.
    dotted_names : sequence of str
        Parkeys such as ``META.EXPOSURE.TYPE``; like the reference, each is
        replaced textually by its ``_`` form before parsing, since a dotted name
        would otherwise be attribute access.

    Raises
    ------
    MappingSyntaxError
        The text is not an expression of the allowed language.
    """
    if not isinstance(source, str):
        raise MappingSyntaxError(f"{where}: expression {source!r} is not a string")
    if len(source) > MAX_EXPRESSION_CHARS:
        raise MappingSyntaxError(f"{where}: expression longer than {MAX_EXPRESSION_CHARS} characters")
    text = source
    for dotted in sorted(dotted_names, key=len, reverse=True):  # longest first: no partial rewrites
        if "." in dotted:
            text = text.replace(dotted, dotted.replace(".", "_"))
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise MappingSyntaxError(f"{where}: syntax error in expression {source!r}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise MappingSyntaxError(f"{where}: expression {source!r} cannot be parsed") from None
    compiler = _Compiler(where, source)
    run = compiler.build(tree.body)
    is_constant = type(tree.body) is ast.Constant
    return Expression(source, frozenset(compiler.names), run, (source, where, tuple(dotted_names)),
                      tree.body.value if is_constant else None, is_constant)
