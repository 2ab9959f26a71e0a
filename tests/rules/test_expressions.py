"""The safe expression evaluator agrees with Python on every expression in the cache."""

from __future__ import annotations

import ast
import random
import re

import pytest

from crds_async.errors import ExpressionError, ExpressionNameError, MappingSyntaxError
from crds_async.rules.expressions import compile_expression
from tests.conftest import CACHE


def _rmap_headers():
    """(rmap name, header dict) for every cached rmap whose header has an expression."""
    out = []
    for path in sorted((CACHE / "mappings").rglob("*.rmap")):
        text = path.read_text(encoding="utf-8")
        head = re.split(r"\n(?:selector|comment)\s*=", text, maxsplit=1)[0]
        if "relevance" not in head and "rmap_omit" not in head:
            continue
        # the test may use literal_eval as an oracle for the header literal
        header = ast.literal_eval(head.split("=", 1)[1].strip())
        out.append((path.name, header))
    return out


def _expressions():
    found = []
    for name, header in _rmap_headers():
        # like the reference: every required parkey (matched, extra_keys, reffile_switch) is rewritten
        parkeys = [k for group in header.get("parkey", ()) for k in (group if isinstance(group, tuple) else (group,))]
        parkeys += list(header.get("extra_keys", ())) + [str(header.get("reffile_switch", "NONE")).upper()]
        for field in ("rmap_relevance", "rmap_omit"):
            if isinstance(header.get(field), str):
                found.append((name, field, header[field], tuple(parkeys)))
        for key, expr in (header.get("parkey_relevance") or {}).items():
            found.append((name, f"parkey_relevance[{key}]", expr, tuple(parkeys)))
    return found


EXPRESSIONS = _expressions()
VALUES = ["UNDEFINED", "OMIT", "PERFORM", "N/A", "SBC", "WFC", "HRC", "3.0", "4.0", "1.0", "", "NONE",
          "MIR_IMAGE", "NRS_MSASPEC", "ANY"]


def test_the_cache_has_many_expressions():
    assert len(EXPRESSIONS) > 1000
    assert len({e[2] for e in EXPRESSIONS}) > 50


def _python_oracle(text: str, names: dict):
    try:
        return ("ok", eval(compile(text, "<oracle>", "eval"), {"__builtins__": {}}, names))  # test-only oracle
    except NameError:
        return ("name", None)
    except Exception as exc:  # noqa: BLE001
        return ("error", str(exc))


def test_every_parenthesised_expression_equals_python_on_random_headers():
    rng = random.Random(20261123)
    checked = 0
    seen = set()
    rejected: list[str] = []
    for rmap, field, source, parkeys in EXPRESSIONS:
        if not source.strip().startswith("(") or (source, parkeys) in seen:
            continue  # bare words such as ALWAYS are the rules engine's business, not this evaluator's
        seen.add((source, parkeys))
        rewritten = source
        for dotted in sorted(parkeys, key=len, reverse=True):
            rewritten = rewritten.replace(dotted, dotted.replace(".", "_"))
        try:
            expr = compile_expression(source, f"{rmap} {field}", dotted_names=parkeys)
        except MappingSyntaxError as exc:
            # only the cache's deliberately broken fixtures may fail, and Python must reject them too
            assert rmap in str(exc)
            with pytest.raises(SyntaxError):
                compile(rewritten, "<oracle>", "eval")
            rejected.append(rmap)
            continue
        literals = re.findall(r"[\"']([^\"']*)[\"']", source)
        for _ in range(25):
            names = {n: rng.choice(VALUES + literals) for n in expr.names if rng.random() > 0.05}
            want = _python_oracle(rewritten, names)
            try:
                got = ("ok", expr.evaluate(names))
            except ExpressionNameError:
                got = ("name", None)
            except ExpressionError as exc:
                got = ("error", str(exc))
            assert got == want, (rmap, field, source, names)
            checked += 1
    assert checked > 1000
    assert len(rejected) <= 2, rejected


@pytest.mark.parametrize(
    "source, names, expected",
    [
        ('(A in ["1", "2"]) and B', {"A": "2", "B": "x"}, "x"),
        ("A or B", {"A": "", "B": "y"}, "y"),
        ('"a" < A < "c"', {"A": "b"}, True),
        ('"a" < A < "c"', {"A": "d"}, False),
        ("-1 if A == 'x' else 2", {"A": "x"}, -1),
        ("not (A not in ('p', 'q'))", {"A": "q"}, True),
    ],
)
def test_python_semantics(source, names, expected):
    assert compile_expression(source, "t.rmap").evaluate(names) == expected


def test_unknown_names_and_type_errors_are_expression_errors():
    with pytest.raises(ExpressionNameError, match="'MISSING'"):
        compile_expression("(MISSING == 'x')", "t.rmap").evaluate({})
    with pytest.raises(ExpressionError, match="'<' not supported between instances of 'str' and 'int'"):
        compile_expression("(A < 1)", "t.rmap").evaluate({"A": "x"})


@pytest.mark.parametrize(
    "source",
    ["__import__('os').system('touch /tmp/pwned_expr')", "A.b", "A[0]", "lambda: 1", "[x for x in A]",
     "A + 1", "A is None", "{1, 2}", "(yield)", "f'{A}'", "A := 1", "open('x')", "A if B"],
)
def test_anything_outside_the_language_is_rejected_with_the_rmap_name(source):
    with pytest.raises(MappingSyntaxError, match="bad.rmap"):
        compile_expression(source, "bad.rmap")


def test_dotted_parkeys_are_rewritten_longest_first():
    expr = compile_expression("(META.EXPOSURE.TYPE != 'X') and (META.EXPOSURE.TYPE_2 == 'Y')", "j.rmap",
                              dotted_names=("META.EXPOSURE.TYPE", "META.EXPOSURE.TYPE_2"))
    assert expr.names == {"META_EXPOSURE_TYPE", "META_EXPOSURE_TYPE_2"}
    assert expr.evaluate({"META_EXPOSURE_TYPE": "Z", "META_EXPOSURE_TYPE_2": "Y"}) is True
