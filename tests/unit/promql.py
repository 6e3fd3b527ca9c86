"""A PromQL parser small enough to read, for checking deploy/monitoring's
alert rules and dashboard queries where no ``promtool`` is (it cannot be
downloaded at test time; ``test_monitoring`` also runs it wherever one is on
PATH).

It accepts the PromQL that Prometheus 2.x parses, less what BrightRun's
queries do not use (``@`` modifiers, hex numbers), and refuses the rest:
unbalanced brackets, unknown functions, a range on anything but a series
selector, an aggregation without its operand. What it returns is what the
tests check against the code: each series selector (name and label matchers)
and every label named in a ``by``, ``without``, ``on``, ``ignoring`` or
``group_left``/``group_right`` clause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
                "quantile"}
# Aggregations whose first argument is a parameter (k, a quantile or a label name), not a vector.
_WITH_PARAMETER = {"count_values", "bottomk", "topk", "quantile"}
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "day_of_month",
    "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp", "floor", "histogram_quantile",
    "holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "ln", "log2", "log10",
    "minute", "month", "predict_linear", "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sqrt",
    "time", "timestamp", "vector", "year", "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
    "count_over_time", "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
    "present_over_time",
}
# Binary operators by precedence, lowest first; ``^`` alone is right-associative.
_PRECEDENCE = [{"or"}, {"and", "unless"}, {"==", "!=", ">", "<", ">=", "<="}, {"+", "-"}, {"*", "/", "%", "atan2"},
               {"^"}]
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+)(?![\w.])
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>=(){}\[\],:])
""", re.VERBOSE)


class PromQLError(ValueError):
    pass


@dataclass(frozen=True)
class Selector:
    name: str | None
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value)


@dataclass
class Query:
    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)  # labels of by/without/on/ignoring/group_left/group_right


def parse(expr: str) -> Query:
    """The selectors and grouping labels of ``expr``; raises PromQLError saying where it stops parsing."""
    parser = _Parser(expr)
    parser.expression(0)
    if parser.peek() is not None:
        parser.fail("an operator or the end")
    return parser.query


class _Parser:
    def __init__(self, text: str):
        self.text, self.tokens, self.at, self.query = text, [], 0, Query()
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None:
                raise PromQLError(f"unexpected character {text[position]!r} at {position} in {text!r}")
            if match.lastgroup != "space":
                self.tokens.append((match.lastgroup, match.group(), position))
            position = match.end()

    def peek(self, offset: int = 0) -> tuple[str, str, int] | None:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def fail(self, wanted: str):
        token = self.peek()
        where = f"{token[1]!r} at {token[2]}" if token else "the end"
        raise PromQLError(f"expected {wanted}, found {where} in {self.text!r}")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        token = self.peek()
        if token is None or (value is not None and token[1] != value) or (kind is not None and token[0] != kind):
            self.fail(repr(value) if value else kind)
        self.at += 1
        return token[1]

    def next_is(self, value: str) -> bool:
        token = self.peek()
        return token is not None and token[1] == value and token[0] in ("op", "name")

    def expression(self, level: int) -> str:
        """Parses operators of precedence ``level`` and above; returns the kind of the last operand."""
        kind = self.unary() if level == len(_PRECEDENCE) else self.expression(level + 1)
        while level < len(_PRECEDENCE) and self.peek() and self.peek()[1] in _PRECEDENCE[level] \
                and self.peek()[0] in ("op", "name"):
            self.take()
            if self.next_is("bool"):
                self.take()
            if self.peek() and self.peek()[1] in ("on", "ignoring"):
                self.take()
                self.labels()
            if self.peek() and self.peek()[1] in ("group_left", "group_right"):
                self.take()
                if self.next_is("("):
                    self.labels()
            kind = self.expression(level if _PRECEDENCE[level] == {"^"} else level + 1)
        return kind

    def unary(self) -> str:
        if self.next_is("-") or self.next_is("+"):
            self.take()
            return self.unary()
        kind = self.primary()
        while self.next_is("["):
            self.take()
            self.take(kind="duration")
            if self.next_is(":"):
                self.take()
                if not self.next_is("]"):
                    self.take(kind="duration")
            elif kind != "selector":
                raise PromQLError(f"a range needs a series selector, not a {kind}, in {self.text!r}")
            self.take("]")
            kind = "range"
        if self.next_is("offset"):
            if kind not in ("selector", "range"):
                raise PromQLError(f"an offset needs a series selector or a subquery, not a {kind}, in {self.text!r}")
            self.take()
            if self.next_is("-"):
                self.take()
            self.take(kind="duration")
        return kind

    def primary(self) -> str:
        token = self.peek()
        if token is None:
            self.fail("an expression")
        kind, value, _ = token
        if kind in ("number", "string"):
            self.take()
            return kind
        if value == "(":
            self.take()
            self.expression(0)
            self.take(")")
            return "expression"
        if value == "{":
            return self.selector(None)
        if kind != "name":
            self.fail("an expression")
        self.take()
        if value in AGGREGATIONS:
            return self.aggregation(value)
        if self.next_is("("):
            if value not in FUNCTIONS:
                raise PromQLError(f"unknown function {value!r} in {self.text!r}")
            self.take("(")
            while not self.next_is(")"):
                self.expression(0)
                if not self.next_is(")"):
                    self.take(",")
            self.take(")")
            return "call"
        return self.selector(value)

    def aggregation(self, name: str) -> str:
        if self.peek() and self.peek()[1] in ("by", "without"):
            self.take()
            self.labels()
        self.take("(")
        if name in _WITH_PARAMETER:
            self.expression(0)
            self.take(",")
        self.expression(0)
        self.take(")")
        if self.peek() and self.peek()[1] in ("by", "without"):
            self.take()
            self.labels()
        return "aggregation"

    def labels(self) -> None:
        self.take("(")
        while not self.next_is(")"):
            self.query.grouping.add(self.take(kind="name"))
            if not self.next_is(")"):
                self.take(",")
        self.take(")")

    def selector(self, name: str | None) -> str:
        matchers = []
        if self.next_is("{"):
            self.take()
            while not self.next_is("}"):
                label = self.take(kind="name")
                operator = self.take()
                if operator not in ("=", "!=", "=~", "!~"):
                    raise PromQLError(f"{operator!r} is no label matcher in {self.text!r}")
                matchers.append((label, operator, _unquote(self.take(kind="string"))))
                if not self.next_is("}"):
                    self.take(",")
            self.take("}")
        if name is None and not any(label == "__name__" for label, _, _ in matchers):
            raise PromQLError(f"a selector without a metric name needs a __name__ matcher in {self.text!r}")
        self.query.selectors.append(Selector(name, tuple(matchers)))
        return "selector"


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return body if literal[0] == "`" else re.sub(r"\\(.)", r"\1", body)
