"""Compile the badge kernels' integer sample loops, from their own Python source, to WebAssembly.

The kernels in protocol/kernels are MicroPython code first: small ints, int arrays, while/if, no allocation. That
subset maps one to one onto WebAssembly's i64 arithmetic, so the host does not keep a second copy of a sample loop:
`compile_module` reads the functions' source with `ast` and writes WebAssembly text, which wasmtime compiles to
machine code when the module loads (a few milliseconds, no C compiler, about 15 MB of memory). A change to the badge
kernel's loop is picked up as it is; a construct outside the subset is a TranslationError naming the line.

The subset: int locals and parameters (i64), int-array parameters (int32 elements in linear memory, passed as byte
offsets), module-level int constants, `+ - * >> << & | ^ // %` (floor semantics as in Python), comparisons (chained
too), `and`/`or`/`not`, conditional expressions, assignments and augmented assignments to names and array elements,
`if`/`elif`/`else`, `while`, `for NAME in range(...)` (step 1), `break`, `continue`, `return`, and calls of the other
compiled functions. Values are exact while they stay in i64; the kernels keep every intermediate below 2**30 and
int32 arrays hold them (CPython's array('i') would raise where this wraps).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Sequence
from typing import Any


class TranslationError(Exception):
    """A construct the WebAssembly translation does not support (the message names the function and line)."""


_BIN = {ast.Add: "i64.add", ast.Sub: "i64.sub", ast.Mult: "i64.mul", ast.RShift: "i64.shr_s",
        ast.LShift: "i64.shl", ast.BitAnd: "i64.and", ast.BitOr: "i64.or", ast.BitXor: "i64.xor",
        ast.FloorDiv: "call $floordiv", ast.Mod: "call $floormod"}
_CMP = {ast.Lt: "i64.lt_s", ast.LtE: "i64.le_s", ast.Gt: "i64.gt_s", ast.GtE: "i64.ge_s", ast.Eq: "i64.eq",
        ast.NotEq: "i64.ne"}

# Python's floor division and modulo on top of WebAssembly's truncating ones.
_HELPERS = """
  (func $floordiv (param $a i64) (param $b i64) (result i64)
    (local $q i64)
    (local.set $q (i64.div_s (local.get $a) (local.get $b)))
    (if (i32.and (i64.ne (i64.mul (local.get $q) (local.get $b)) (local.get $a))
                 (i64.lt_s (i64.xor (local.get $a) (local.get $b)) (i64.const 0)))
      (then (local.set $q (i64.sub (local.get $q) (i64.const 1)))))
    (local.get $q))
  (func $floormod (param $a i64) (param $b i64) (result i64)
    (i64.sub (local.get $a) (i64.mul (call $floordiv (local.get $a) (local.get $b)) (local.get $b))))
"""


class Layout:
    """How a class's instance lives in linear memory, so its methods can be compiled: `ints` are the int
    attributes (one int32 slot each, in this order), `arrays` the int-array attributes (each its own region).
    Compiled methods are named PREFIX_method and take the instance as hidden leading parameters: `self` (the
    slots) and `self__NAME` for each array, in this order."""

    def __init__(self, cls: type, prefix: str, ints: Sequence[str], arrays: Sequence[str]):
        self.cls = cls
        self.prefix = prefix
        self.ints = {name: i for i, name in enumerate(ints)}
        self.arrays = list(arrays)

    def hidden(self) -> list[str]:
        return ["self"] + [f"self__{a}" for a in self.arrays]


class _Function:
    """One Python function (or method of a Layout's class) being translated: tree, parameter kinds, locals."""

    def __init__(self, fn: Callable[..., Any], layout: Layout | None = None):
        self.fn = fn
        self.layout = layout
        self.name = f"{layout.prefix}_{fn.__name__}" if layout else fn.__name__
        self.tree = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
        if not isinstance(self.tree, ast.FunctionDef):
            raise TranslationError(f"{self.name}: not a plain function")
        own = [a.arg for a in self.tree.args.args]
        self.params = (layout.hidden() + own[1:]) if layout else own
        # a local bound to an array attribute (`seg = self.seg`) is that array, not a value
        self.aliases = {n.targets[0].id: n.value.attr for n in ast.walk(self.tree)
                        if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
                        and _self_attr(n.value) and layout and n.value.attr in layout.arrays}
        self.arrays = {node.value.id for node in ast.walk(self.tree)
                       if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)} - set(self.aliases)
        if layout:
            self.arrays |= set(layout.hidden())
        self.returns = any(isinstance(n, ast.Return) and n.value is not None for n in ast.walk(self.tree))
        assigned = {t.id for n in ast.walk(self.tree) for t in _targets(n) if isinstance(t, ast.Name)}
        self.locals = sorted(assigned - set(self.params) - set(self.aliases))


def _self_attr(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"


def _targets(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        return list(node.targets)
    if isinstance(node, (ast.AugAssign, ast.For)):
        return [node.target]
    return []


class _Writer:
    """Writes one function's body as WebAssembly text (folded S-expressions)."""

    def __init__(self, f: _Function, module: dict[str, _Function]):
        self.f = f
        self.module = module
        self.loops: list[tuple[str, str]] = []  # (break label, continue label) of the enclosing loops
        self.labels = 0
        self.hidden: list[str] = []

    def fail(self, node: ast.AST, what: str) -> TranslationError:
        line = self.f.tree.lineno + getattr(node, "lineno", 1) - 1
        return TranslationError(f"{self.f.name} (line {line} of its source): {what} is outside the compiled subset")

    def label(self) -> int:
        self.labels += 1
        return self.labels

    # -- expressions: every value is an i64; conditions are i32

    def expr(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return f"(i64.const {int(node.value)})"
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Subscript):
            return f"(i64.load32_s {self.address(node)})"
        if _self_attr(node):
            return self.attribute(node)
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            return f"({_BIN[type(node.op)]} {self.expr(node.left)} {self.expr(node.right)})"
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return f"(i64.sub (i64.const 0) {self.expr(node.operand)})"
            if isinstance(node.op, ast.UAdd):
                return self.expr(node.operand)
            if isinstance(node.op, ast.Invert):
                return f"(i64.xor (i64.const -1) {self.expr(node.operand)})"
            return f"(i64.extend_i32_u {self.cond(node)})"
        if isinstance(node, ast.Compare):
            return f"(i64.extend_i32_u {self.cond(node)})"
        if isinstance(node, ast.IfExp):
            return (f"(if (result i64) {self.cond(node.test)} (then {self.expr(node.body)}) "
                    f"(else {self.expr(node.orelse)}))")
        if isinstance(node, ast.BoolOp):  # Python's `a and b` is a when a is falsy, else b (pure operands)
            out = self.expr(node.values[-1])
            for v in reversed(node.values[:-1]):
                a = self.expr(v)
                out = (f"(if (result i64) {self.cond(v)} (then {out}) (else {a}))" if isinstance(node.op, ast.And)
                       else f"(if (result i64) {self.cond(v)} (then {a}) (else {out}))")
            return out
        if isinstance(node, ast.Call):
            return self.call(node, want_value=True)
        raise self.fail(node, type(node).__name__)

    def cond(self, node: ast.expr) -> str:
        if isinstance(node, ast.Compare):
            parts = []
            left = node.left
            for op, right in zip(node.ops, node.comparators, strict=True):
                if type(op) not in _CMP:
                    raise self.fail(node, type(op).__name__)
                parts.append(f"({_CMP[type(op)]} {self.expr(left)} {self.expr(right)})")
                left = right
            return self._all(parts)
        if isinstance(node, ast.BoolOp):
            conds = [self.cond(v) for v in node.values]
            return self._all(conds) if isinstance(node.op, ast.And) else self._any(conds)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return f"(i32.eqz {self.cond(node.operand)})"
        return f"(i64.ne {self.expr(node)} (i64.const 0))"

    @staticmethod
    def _all(conds: list[str]) -> str:  # short-circuit, as Python evaluates `and`
        out = conds[-1]
        for c in reversed(conds[:-1]):
            out = f"(if (result i32) {c} (then {out}) (else (i32.const 0)))"
        return out

    @staticmethod
    def _any(conds: list[str]) -> str:
        out = conds[-1]
        for c in reversed(conds[:-1]):
            out = f"(if (result i32) {c} (then (i32.const 1)) (else {out}))"
        return out

    def name(self, node: ast.Name) -> str:
        if node.id in self.f.params or node.id in self.f.locals:
            return f"(local.get ${node.id})"
        value = self.f.fn.__globals__.get(node.id)
        if isinstance(value, int):  # a module constant (const() in MicroPython)
            return f"(i64.const {int(value)})"
        raise self.fail(node, f"the name {node.id!r}")

    def array(self, node: ast.expr) -> str:
        """The local holding an array's address: a parameter, an alias of an attribute, or an attribute."""
        layout = self.f.layout
        if isinstance(node, ast.Name) and node.id in self.f.aliases:
            return f"$self__{self.f.aliases[node.id]}"
        if isinstance(node, ast.Name) and node.id in self.f.arrays:
            return f"${node.id}"
        if _self_attr(node) and layout and node.attr in layout.arrays:
            return f"$self__{node.attr}"
        raise self.fail(node, "indexing anything but an int array")

    def address(self, node: ast.Subscript) -> str:
        return (f"(i32.add (local.get {self.array(node.value)}) "
                f"(i32.shl (i32.wrap_i64 {self.expr(node.slice)}) (i32.const 2)))")

    def slot(self, node: ast.Attribute) -> str:
        layout = self.f.layout
        if not layout or node.attr not in layout.ints:
            raise self.fail(node, f"the attribute {node.attr!r}")
        return f"(i32.add (local.get $self) (i32.const {4 * layout.ints[node.attr]}))"

    def attribute(self, node: ast.Attribute) -> str:
        layout = self.f.layout
        if layout and node.attr not in layout.ints and isinstance(getattr(layout.cls, node.attr, None), int):
            return f"(i64.const {int(getattr(layout.cls, node.attr))})"  # a class constant
        return f"(i64.load32_s {self.slot(node)})"

    def call(self, node: ast.Call, want_value: bool) -> str:
        func = node.func
        layout = self.f.layout
        if isinstance(func, ast.Name) and func.id in self.module:
            callee = self.module[func.id]
            given = list(node.args)
        elif _self_attr(func) and layout and f"{layout.prefix}_{func.attr}" in self.module:
            callee = self.module[f"{layout.prefix}_{func.attr}"]
            given = [ast.Name(p) for p in layout.hidden()] + list(node.args)
        else:
            raise self.fail(node, "this call")
        if node.keywords:
            raise self.fail(node, "a keyword argument")
        if want_value and not callee.returns:
            raise self.fail(node, f"the value of {callee.name}()")
        args = []
        for param, arg in zip(callee.params, given, strict=True):
            if param in callee.arrays:
                args.append(f"(local.get {self.array(arg)})")
            else:
                args.append(self.expr(arg))
        text = f"(call ${callee.name} {' '.join(args)})"
        return text if want_value or not callee.returns else f"(drop {text})"

    # -- statements

    def block(self, body: Sequence[ast.stmt]) -> list[str]:
        return [line for stmt in body for line in self.stmt(stmt)]

    def stmt(self, node: ast.stmt) -> list[str]:
        if isinstance(node, ast.Expr):
            if isinstance(node.value, ast.Constant):  # a docstring
                return []
            if isinstance(node.value, ast.Call):
                return [self.call(node.value, want_value=False)]
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in self.f.aliases:
                return []  # `seg = self.seg`: the name stands for the array from here on
            return [self.store(target, self.expr(node.value))]
        if isinstance(node, ast.AugAssign) and type(node.op) in _BIN:
            value = f"({_BIN[type(node.op)]} {self.expr(node.target)} {self.expr(node.value)})"
            return [self.store(node.target, value)]
        if isinstance(node, ast.If):
            out = [f"(if {self.cond(node.test)} (then"] + self.block(node.body) + [")"]
            if node.orelse:
                out += ["(else"] + self.block(node.orelse) + [")"]
            return out + [")"]
        if isinstance(node, ast.While) and not node.orelse:
            n = self.label()
            self.loops.append((f"$b{n}", f"$l{n}"))
            body = self.block(node.body)
            self.loops.pop()
            return [f"(block $b{n} (loop $l{n}", f"(br_if $b{n} (i32.eqz {self.cond(node.test)}))",
                    *body, f"(br $l{n})))"]
        if isinstance(node, ast.For):
            return self.for_range(node)
        if isinstance(node, ast.Break) and self.loops:
            return [f"(br {self.loops[-1][0]})"]
        if isinstance(node, ast.Continue) and self.loops:
            return [f"(br {self.loops[-1][1]})"]
        if isinstance(node, ast.Return):
            if node.value is None:
                return ["(return (i64.const 0))" if self.f.returns else "(return)"]
            return [f"(return {self.expr(node.value)})"]
        if isinstance(node, ast.Pass):
            return []
        raise self.fail(node, type(node).__name__)

    def for_range(self, node: ast.For) -> list[str]:
        it = node.iter
        if not (isinstance(node.target, ast.Name) and isinstance(it, ast.Call) and isinstance(it.func, ast.Name)
                and it.func.id == "range" and 1 <= len(it.args) <= 2 and not node.orelse):
            raise self.fail(node, "a for loop other than `for NAME in range(...)`")
        start, stop = (ast.Constant(0), it.args[0]) if len(it.args) == 1 else it.args
        n = self.label()
        self.hidden.append(f"end{n}")
        end = f"$end{n}"
        var = f"${node.target.id}"
        self.loops.append((f"$b{n}", f"$c{n}"))
        body = self.block(node.body)
        self.loops.pop()
        return [f"(local.set {var} {self.expr(start)})", f"(local.set {end} {self.expr(stop)})",
                f"(block $b{n} (loop $l{n}", f"(br_if $b{n} (i64.ge_s (local.get {var}) (local.get {end})))",
                f"(block $c{n}", *body, ")",
                f"(local.set {var} (i64.add (local.get {var}) (i64.const 1)))", f"(br $l{n})))"]

    def store(self, target: ast.expr, value: str) -> str:
        if isinstance(target, ast.Name):
            return f"(local.set ${target.id} {value})"
        if isinstance(target, ast.Subscript):
            return f"(i32.store {self.address(target)} (i32.wrap_i64 {value}))"
        if _self_attr(target):
            return f"(i32.store {self.slot(target)} (i32.wrap_i64 {value}))"
        raise self.fail(target, "this assignment target")

    def function(self) -> str:
        f = self.f
        body = self.block(f.tree.body)
        params = " ".join(f"(param ${p} {'i32' if p in f.arrays else 'i64'})" for p in f.params)
        result = " (result i64)" if f.returns else ""
        local_decl = " ".join(f"(local ${name} i64)" for name in f.locals + self.hidden)
        tail = ["(i64.const 0)"] if f.returns else []
        return "\n".join([f'  (func ${f.name} (export "{f.name}") {params}{result} {local_decl}',
                          *("    " + line for line in body + tail), "  )"])


def compile_module(functions: Sequence[Callable[..., Any] | tuple[Layout, Callable[..., Any]]], pages: int) -> str:
    """WebAssembly text of a module exporting `functions` (callees first; a method as (Layout, function)) and
    `pages` x 64 KiB of memory."""
    module: dict[str, _Function] = {}
    for item in functions:
        f = _Function(item[1], item[0]) if isinstance(item, tuple) else _Function(item)
        for node in ast.walk(f.tree):  # an array passed on to a callee is an array here too
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in module:
                callee = module[node.func.id]
                f.arrays |= {a.id for p, a in zip(callee.params, node.args, strict=False)
                             if p in callee.arrays and isinstance(a, ast.Name)}
        module[f.name] = f
    funcs = [_Writer(f, module).function() for f in module.values()]
    return "\n".join(["(module", f'  (memory (export "memory") {pages})', _HELPERS, *funcs, ")"])
