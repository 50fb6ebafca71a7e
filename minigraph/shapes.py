"""Symbolic dimensions and shape arithmetic.

A dimension is either a Python ``int`` (known size) or a :class:`Dim`, an integer expression over
named sizes such as ``H``, ``2*H - 1`` or ``(H + 1)//2``. Expressions are kept simplified by sympy
(names are positive integers), so ``(2*H)//2`` is ``H`` and an expression with no names left collapses
back to a plain ``int``. The same name always means the same dimension.

A shape is a tuple of dimensions; static shapes exclude the batch axis.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn

import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from .errors import ShapeError

InferredDimension = -1
"""A parameter dimension left to the shape-inference pass (CNTK's ``InferredDimension``)."""

_SYMBOLS: dict[str, sp.Symbol] = {}


def _symbol(name: str) -> sp.Symbol:
    """The one sympy symbol for a named dimension (positive integer)."""
    if name not in _SYMBOLS:
        _SYMBOLS[name] = sp.Symbol(name, integer=True, positive=True)
    return _SYMBOLS[name]


class _DimPrinter(StrPrinter):
    """Prints floor divisions the way Python writes them: ``(H + 1)//2``."""

    def _print_floor(self, expr: sp.Expr) -> str:
        num, den = sp.fraction(sp.together(expr.args[0]))
        text = self._print(num)
        if not (num.is_Symbol or num.is_Integer):
            text = f"({text})"
        return f"{text}//{self._print(den)}"

    def _print_Pow(self, expr: sp.Expr) -> str:
        # ``//`` binds less tightly than ``**``: (H//2)**2, not H//2**2 (which reads back as H//4).
        base, exponent = expr.args
        if isinstance(base, sp.floor) and exponent.is_Integer and exponent > 0:
            return f"({self._print(base)})**{self._print(exponent)}"
        return str(super()._print_Pow(expr))

    def _exact_division(self, expr: sp.Expr) -> str | None:
        """A dimension with fractional coefficients (sympy drops the floor of ``(H*(2*H + 3))//2``
        because it knows the value is an integer) as ``(numerator)//denominator``, which is exact for
        an integer value; None when every coefficient is an integer."""
        if all(term.as_coeff_Mul()[0].is_Integer for term in sp.Add.make_args(expr)):
            return None
        num, den = sp.fraction(sp.together(expr))  # together may cancel the denominator: H*(H + 1)
        return self._print(num) if den == 1 else f"({self._print(num)})//{self._print(den)}"

    def _print_Add(self, expr: sp.Expr, order: str | None = None) -> str:
        return self._exact_division(expr) or str(super()._print_Add(expr, order))

    def _print_Mul(self, expr: sp.Expr) -> str:
        exact = self._exact_division(expr)
        if exact is not None:
            return exact
        # ``*`` and ``//`` bind equally tightly in Python, so a floor division inside a product
        # needs its own parentheses: 2*((H + 1)//2), not 2*(H + 1)//2.
        coeff, rest = expr.as_coeff_Mul()
        factors = sp.Mul.make_args(rest)
        if not any(isinstance(f, sp.floor) for f in factors):
            return str(super()._print_Mul(expr))
        text = "*".join(f"({self._print(f)})" if isinstance(f, sp.floor) else self.parenthesize(f, PRECEDENCE["Mul"])
                        for f in factors)
        if coeff == 1:
            return text
        return f"-{text}" if coeff == -1 else f"{self._print(coeff)}*{text}"


_PRINTER = _DimPrinter()


class Dim:
    """A symbolic dimension: an integer expression over named sizes.

    Arithmetic with ints and other ``Dim`` objects (``+ - * //`` and :func:`ceil_div`) gives a
    ``Dim``, or an ``int`` when no name is left. Equality is mathematical (``2*H - H == H``);
    ordering is defined only where sympy can decide it for every positive value of the names.
    """

    __slots__ = ("expr",)

    def __init__(self, expr: sp.Expr):
        self.expr = expr

    # arithmetic -------------------------------------------------------------------------------
    def __add__(self, other: DimLike) -> DimLike:
        return make_dim(self.expr + _expr(other))

    __radd__ = __add__

    def __sub__(self, other: DimLike) -> DimLike:
        return make_dim(self.expr - _expr(other))

    def __rsub__(self, other: DimLike) -> DimLike:
        return make_dim(_expr(other) - self.expr)

    def __mul__(self, other: DimLike) -> DimLike:
        return make_dim(self.expr * _expr(other))

    __rmul__ = __mul__

    def __floordiv__(self, other: DimLike) -> DimLike:
        return make_dim(sp.floor(self.expr / _expr(other)))

    def __rfloordiv__(self, other: DimLike) -> DimLike:
        return make_dim(sp.floor(_expr(other) / self.expr))

    def __neg__(self) -> DimLike:
        return make_dim(-self.expr)

    # comparison -------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (int, Dim, sp.Expr)) or isinstance(other, bool):
            return NotImplemented
        diff = self.expr - _expr(other)
        if diff == 0:
            return True
        if not diff.free_symbols:  # a nonzero number
            return False
        if not diff.has(sp.floor):  # a polynomial: zero exactly when its expansion is (cheap, unlike simplify)
            return bool(sp.expand(diff) == 0)
        return bool(sp.simplify(diff) == 0)

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return hash(self.expr)

    def _sign(self, other: DimLike) -> sp.Expr:
        return sp.simplify(self.expr - _expr(other))

    def __lt__(self, other: DimLike) -> bool:
        return _decide(self._sign(other).is_negative, self, "<", other)

    def __le__(self, other: DimLike) -> bool:
        return _decide(self._sign(other).is_nonpositive, self, "<=", other)

    def __gt__(self, other: DimLike) -> bool:
        return _decide(self._sign(other).is_positive, self, ">", other)

    def __ge__(self, other: DimLike) -> bool:
        return _decide(self._sign(other).is_nonnegative, self, ">=", other)

    # conversion -------------------------------------------------------------------------------
    def __int__(self) -> int:
        raise TypeError(f"dimension {self} is symbolic: it has no value until {', '.join(self.names)} "
                        f"{'is' if len(self.names) == 1 else 'are'} bound by feeding data")

    __index__ = __int__

    def __bool__(self) -> bool:
        return True  # a size expression over positive names is never known to be zero

    @property
    def names(self) -> tuple[str, ...]:
        """The named sizes this dimension depends on, sorted."""
        return tuple(sorted(s.name for s in self.expr.free_symbols))

    def subs(self, bindings: Mapping[str, int]) -> int | Dim:
        """Substitute values for names; an ``int`` when every name is bound."""
        return make_dim(self.expr.subs({_symbol(k): v for k, v in bindings.items()}))

    def __str__(self) -> str:
        return str(_PRINTER.doprint(self.expr))

    def __repr__(self) -> str:
        return str(self)  # so that a printed shape reads (3, 2*H - 1), as a user writes it


DimLike = int | Dim


def _decide(truth: bool | None, a: Dim, op: str, b: object) -> bool:
    if truth is None:
        raise TypeError(f"cannot decide {a} {op} {b} for every value of {', '.join(a.names)}")
    return bool(truth)


def _expr(value: object) -> sp.Expr:
    if isinstance(value, Dim):
        return value.expr
    if isinstance(value, (int, sp.Expr)) and not isinstance(value, bool):
        return sp.Integer(value) if isinstance(value, int) else value
    raise TypeError(f"cannot use {value!r} ({type(value).__name__}) as a dimension")


def make_dim(expr: sp.Expr) -> DimLike:
    """Wrap a sympy expression: an ``int`` if it has no free names, else a :class:`Dim`."""
    if isinstance(expr, int) and not isinstance(expr, bool):
        return expr
    if not isinstance(expr, sp.Expr):  # never sympify text: see parse_dim
        raise TypeError(f"make_dim takes a sympy expression, not {type(expr).__name__}")
    if expr.is_Integer:
        return int(expr)
    if not expr.free_symbols:
        raise ShapeError(f"dimension expression {expr} is not an integer")
    return Dim(expr)


def dim(value: object) -> DimLike:
    """Normalise one user-given dimension: an int, a name (``"H"``), an expression (``"2*H-1"``)
    or a :class:`Dim`. ``bool`` and non-integral floats are rejected."""
    if isinstance(value, Dim):
        return value
    if isinstance(value, bool):
        raise TypeError(f"dimension {value!r} is a bool; use an int or a name such as 'H'")
    if isinstance(value, (int, )) or (hasattr(value, "__index__") and not isinstance(value, str)):
        return int(value.__index__())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return parse_dim(value)
    raise TypeError(f"cannot use {value!r} ({type(value).__name__}) as a dimension; "
                    "use an int, a name such as 'H' or an expression such as '2*H'")


# --- dimension text -----------------------------------------------------------------------------
# Dimension text comes from users and from files (model files, checkpoints, specs, ONNX), so it is
# parsed with this explicit grammar and never handed to a Python or sympy evaluator:
#
#     expr   := term (("+" | "-") term)*
#     term   := factor (("*" | "//") factor)*
#     factor := ("-" | "+") factor | atom ("**" INT)?
#     atom   := INT | NAME | "(" expr ")"
#
# It covers everything ``str(dim)`` prints. Sizes of the text, its integers, exponents and nesting
# are bounded so that hostile text costs constant work.
MAX_DIM_TEXT = 1000
"""Longest dimension text accepted (characters)."""
_MAX_INT_DIGITS = 19
_MAX_EXPONENT = 8
_MAX_NESTING = 50
_NOT_INTEGER = "/.<>=!"  # true division, floats and comparisons: text that is Python but not a size
_TOKEN = re.compile(r"\s*(?:(?P<int>[0-9]+)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>//|\*\*|[-+*()]))")


class _DimParser:
    """Recursive-descent parser of one dimension text; builds the value with Dim arithmetic."""

    def __init__(self, text: str):
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            match = _TOKEN.match(stripped, pos)
            if match is None:
                at = len(stripped) - len(stripped[pos:].lstrip())
                if stripped[at] in _NOT_INTEGER:
                    raise ShapeError(f"dimension {text!r} is not an integer expression over names "
                                     f"({stripped[at]!r} at position {at}; divide with //)")
                self.fail(f"unexpected character {stripped[at]!r}", at)
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            pos = match.end()
        self.index = 0
        self.depth = 0

    def fail(self, why: str, at: int | None = None) -> NoReturn:
        where = "" if at is None else f" at position {at}"
        raise ShapeError(f"cannot parse dimension {self.text!r}: {why}{where}; a dimension is an integer, "
                         "a name such as 'H', or an expression of them with + - * // and parentheses")

    def peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        if self.index >= len(self.tokens):
            self.fail("the text ends too early")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def parse(self) -> DimLike:
        if not self.tokens:
            self.fail("the text is empty")
        value = self.expr()
        if self.index < len(self.tokens):
            _, text, at = self.tokens[self.index]
            self.fail(f"unexpected {text!r}", at)
        return value

    def expr(self) -> DimLike:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            value = value + self.term() if op == "+" else value - self.term()
        return value

    def term(self) -> DimLike:
        value = self.factor()
        while self.peek() in ("*", "//"):
            _, op, at = self.take()
            right = self.factor()
            if op == "*":
                value = value * right
            elif right == 0:
                self.fail("division by zero", at)
            else:
                value = value // right
        return value

    def factor(self) -> DimLike:
        if self.peek() in ("-", "+"):
            sign = self.take()[1]
            value = self.nested(self.factor)
            return -value if sign == "-" else value
        value = self.atom()
        if self.peek() == "**":
            _, _, at = self.take()
            kind, text, at = self.take()
            if kind != "int" or int(text) > _MAX_EXPONENT:
                self.fail(f"an exponent must be an integer from 0 to {_MAX_EXPONENT}", at)
            value = _power(value, int(text))
        return value

    def atom(self) -> DimLike:
        kind, text, at = self.take()
        if kind == "int":
            if len(text.lstrip("0")) > _MAX_INT_DIGITS:
                self.fail(f"integer {text[:25]}... has more than {_MAX_INT_DIGITS} digits", at)
            return int(text)
        if kind == "name":
            return Dim(_symbol(text))
        if text == "(":
            value = self.nested(self.expr)
            if self.peek() != ")":
                self.fail("a '(' is not closed", at)
            self.take()
            return value
        self.fail(f"unexpected {text!r}", at)

    def nested(self, rule: Callable[[], DimLike]) -> DimLike:
        self.depth += 1
        if self.depth > _MAX_NESTING:
            self.fail(f"more than {_MAX_NESTING} nested parentheses or signs")
        try:
            return rule()
        finally:
            self.depth -= 1


def _power(value: DimLike, exponent: int) -> DimLike:
    result: DimLike = 1
    for _ in range(exponent):
        result = result * value
    return result


def parse_dim(text: str) -> DimLike:
    """Parse dimension text (``"H"``, ``"2*H - 1"``, ``"(H + 1)//2"``) with minigraph's own grammar.

    Nothing in the text is evaluated as code: it is tokenised and parsed, and the value is built from
    ints and named sizes. Anything outside the grammar raises :class:`ShapeError` naming the text.
    """
    if not isinstance(text, str):
        raise TypeError(f"dimension text must be a str, not {type(text).__name__}")
    if len(text) > MAX_DIM_TEXT:
        raise ShapeError(f"cannot parse dimension {text[:40]!r}...: longer than {MAX_DIM_TEXT} characters")
    return _DimParser(text).parse()


def as_shape(shape: Any) -> tuple[DimLike, ...]:
    """Normalise a user-given shape: an int or a name means a 1-D shape, a sequence its entries."""
    if shape is None:
        return ()
    if isinstance(shape, (int, str, Dim)) and not isinstance(shape, bool):
        return (dim(shape),)
    try:
        return tuple(dim(d) for d in shape)
    except TypeError as exc:
        raise TypeError(f"shape {shape!r}: {exc}") from None


def is_known(d: object) -> bool:
    """True for a concrete size (an ``int``)."""
    return isinstance(d, int)


def is_static(shape: Iterable[object]) -> bool:
    """True when every dimension of ``shape`` is a concrete, non-inferred int."""
    return all(isinstance(d, int) and d >= 0 for d in shape)


def ceil_div(a: DimLike, b: DimLike) -> DimLike:
    """``ceil(a / b)`` for positive ``b``, exact for ints and symbolic alike."""
    return (a + b - 1) // b


def subs_shape(shape: Iterable[DimLike], bindings: Mapping[str, int]) -> tuple[DimLike, ...]:
    """Substitute bound names in every dimension of ``shape``."""
    return tuple(d.subs(bindings) if isinstance(d, Dim) else d for d in shape)


def names_of(shape: Iterable[object]) -> set[str]:
    """Every name a shape depends on."""
    return {n for d in shape if isinstance(d, Dim) for n in d.names}


def shape_str(shape: Sequence[object]) -> str:
    """``(3, 2*H - 1)``; a 1-tuple keeps its comma like Python's: ``(5,)``."""
    inner = ", ".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def num_elements(shape: Iterable[DimLike]) -> DimLike:
    """The product of the dimensions (1 for a scalar shape)."""
    total: DimLike = 1
    for d in shape:
        total = total * d
    return total


def broadcast_shapes(shapes: Sequence[Sequence[DimLike]], context: str = "") -> tuple[DimLike, ...]:
    """numpy broadcasting of static shapes (right-aligned; 1 stretches).

    Symbolic dims broadcast with 1 and with an equal expression; ``H`` against ``5`` or ``W`` is an
    error at build time because it could only hold for some values of the names.
    """
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(rank):
        dims = [s[len(s) - rank + axis] for s in shapes if len(s) - rank + axis >= 0]
        result: DimLike = 1
        for d in dims:
            if d == 1 or d == result:
                continue
            if result == 1:
                result = d
                continue
            shown = " and ".join(shape_str(s) for s in shapes)
            raise ShapeError(f"{context}cannot broadcast shapes {shown}: axis {axis - rank} has sizes "
                             f"{result} and {d}; sizes must be equal or 1 (broadcasting is right-aligned)")
        out.append(result)
    return tuple(out)
