#!/usr/bin/env python
"""Mutation testing for rtfast: small changes to a module, one at a time, each
run against that module's own tests. A mutant the tests do not notice is a
behaviour nobody pins.

    nice -n 10 python tools/mutate.py rtfast/bridge/call.py [more modules] [--time-box 900]
    python tools/mutate.py rtfast/session.py --list          # the mutants, nothing run
    python tools/mutate.py rtfast/bridge/call.py --line 412       # only mutants on line 412

Run from the repository root with the compiled extensions built in place (as
for the test suite). The module and the tests are copied to a scratch tree, so
the worktree is never modified (an interrupted run leaves nothing behind).
Each mutant runs the module's test stages (``MODULE_TESTS``) in order with
``-x``: the fast unit tests first, the slower end-to-end ones only for a
mutant the first stage let through. Tests run in a child forked from a parent
that has already imported pytest and the heavy dependencies (a fresh
interpreter per mutant would cost ~2 s of start-up each); rtfast itself is
imported afresh in every child.

Mutants listed in ``tools/mutation-equivalents.txt`` (no behaviour change,
with a one-line reason) are reported apart and left out of the score:
``score = killed / (killed + survived)``, equivalents excluded. See
docs/mutation-testing.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EQUIVALENTS = os.path.join(ROOT, "tools", "mutation-equivalents.txt")

#: module -> test stages (each a list of test files); later stages only run for
#: a mutant the earlier ones let through.
MODULE_TESTS: dict[str, list[list[str]]] = {
    "rtfast/bridge/call.py": [["tests/test_bridge_call.py", "tests/test_lane.py"], ["tests/test_bridge_carriers.py", "tests/test_bridge.py",
                                                             "tests/test_agent.py"]],
    "rtfast/bridge/dialog.py": [["tests/test_dialog.py"], ["tests/test_agent.py"]],
    "rtfast/bridge/tools.py": [["tests/test_agent_tools.py"], ["tests/test_agent.py"]],
    "rtfast/session.py": [["tests/test_session.py"], ["tests/test_bridge_call.py"]],
    "rtfast/bridge/carriers/_base.py": [["tests/test_carriers.py"], ["tests/test_bridge_call.py"]],
    "rtfast/bridge/carriers/twilio.py": [["tests/test_carriers.py"], ["tests/test_bridge_call.py"]],
    "rtfast/bridge/carriers/telnyx.py": [["tests/test_carriers.py"], ["tests/test_bridge_call.py"]],
    "rtfast/bridge/carriers/vonage.py": [["tests/test_carriers.py"], ["tests/test_bridge_call.py"]],
    "rtfast/bridge/carriers/plivo.py": [["tests/test_carriers.py"], ["tests/test_bridge_call.py"]],
    "rtfast/bridge/carriers/exotel.py": [["tests/test_carriers.py"], ["tests/test_bridge_call.py"]],
    "rtfast/websocket.py": [["tests/test_websocket.py", "tests/test_lane.py"]],
    "rtfast/bridge/server.py": [["tests/test_lane.py", "tests/test_ops.py"], ["tests/test_bridge.py"]],
    "rtfast/bridge/ops.py": [["tests/test_ops.py", "tests/test_workers_group.py"], ["tests/test_workers.py"]],
    "rtfast/bridge/workers.py": [["tests/test_workers_group.py"], ["tests/test_workers.py"]],
}

PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "-o", "addopts="]

# -- mutants ---------------------------------------------------------------------------------------

_SWAP_BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.Div: ast.Mult,
             ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd,
             ast.LShift: ast.RShift, ast.RShift: ast.LShift, ast.Pow: ast.Mult}
_SWAP_CMP = {ast.Eq: [ast.NotEq], ast.NotEq: [ast.Eq], ast.Lt: [ast.LtE, ast.GtE], ast.LtE: [ast.Lt, ast.Gt],
             ast.Gt: [ast.GtE, ast.LtE], ast.GtE: [ast.Gt, ast.Lt], ast.Is: [ast.IsNot], ast.IsNot: [ast.Is],
             ast.In: [ast.NotIn], ast.NotIn: [ast.In]}
_SWAP_CALL = {"min": "max", "max": "min", "any": "all", "all": "any"}
_REMOVABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Raise, ast.Delete,
              ast.Break, ast.Continue)


@dataclass
class Mutant:
    path: str            # repository-relative
    line: int
    start: tuple         # (line, byte column) of the replaced span, 1-based line
    end: tuple
    new: str             # replacement text
    old: str             # the replaced source, whitespace squeezed
    source_line: str     # the stripped source line the span starts on
    status: str = "untried"
    stage: int | None = None
    reason: str | None = None   # why it is equivalent, when listed

    nth: int = 1         # the same change again on the same line: the nth one (from the left)
    scope: str = ""      # the enclosing function's qualified name ("WebSocket.close"), "" at module level
    occurrence: int = 1  # the nth line of its scope that reads like this one

    @property
    def mutation(self) -> str:
        text = f"`{_squeeze(self.old)}` -> `{_squeeze(self.new)}`"
        return text if self.nth == 1 else f"{text} #{self.nth}"

    @property
    def key(self) -> tuple:
        return (self.path, self.source_line, self.mutation)

    def reason_in(self, equivalents: dict) -> str | None:
        """Why it is listed as equivalent: by its source line; for a line (``return``,
        ``return False``) that reads the same in several places, by "Scope.name: source line",
        and "Scope.name: source line @n" for the nth such line of that function."""
        scoped = f"{self.scope}: {self.source_line}"
        for line in (self.source_line, scoped, f"{scoped} @{self.occurrence}"):
            reason = equivalents.get((self.path, line, self.mutation))
            if reason:
                return reason
        return None

    def describe(self) -> str:
        return f"{self.path}:{self.line}: {self.mutation}    [{self.source_line}]"


def _squeeze(s: str, limit: int = 90) -> str:
    s = re.sub(r"\s+", " ", s).strip()
    return s if len(s) <= limit else s[:limit - 3] + "..."


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes never mutated: docstrings, annotations, __all__/__slots__."""
    skip: set[int] = set()

    def skip_all(node):
        for n in ast.walk(node):
            skip.add(id(n))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                skip_all(body[0])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for a in node.args.args + node.args.kwonlyargs + node.args.posonlyargs + \
                    [x for x in (node.args.vararg, node.args.kwarg) if x]:
                if a.annotation is not None:
                    skip_all(a.annotation)
            if node.returns is not None:
                skip_all(node.returns)
        if isinstance(node, ast.AnnAssign):
            skip_all(node.annotation)
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id in ("__all__", "__slots__") for t in targets):
                skip_all(node)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            skip_all(node)
        if isinstance(node, ast.JoinedStr):
            skip_all(node)           # f-string parts: text of messages, mutated as a whole never
            skip.discard(id(node))
    return skip


def _replacements(node: ast.AST):
    """(new node or text, is_statement) for each mutation of node."""
    def clone(**changes):
        n = ast.parse(ast.unparse(node), mode="exec").body[0]
        n = n.value if isinstance(n, ast.Expr) and not isinstance(node, ast.stmt) else n
        for k, v in changes.items():
            setattr(n, k, v)
        return n

    if isinstance(node, ast.BinOp) and type(node.op) in _SWAP_BIN:
        yield clone(op=_SWAP_BIN[type(node.op)]()), False
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _SWAP_CMP:
        for op in _SWAP_CMP[type(node.ops[0])]:
            yield clone(ops=[op()]), False
    elif isinstance(node, ast.BoolOp):
        yield clone(op=ast.Or() if isinstance(node.op, ast.And) else ast.And()), False
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield node.operand, False
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        yield node.operand, False
    elif isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool):
            yield ast.Constant(not v), False
        elif isinstance(v, int):
            yield ast.Constant(v + 1), False
            if v != 0:
                yield ast.Constant(v - 1), False
        elif isinstance(v, float):
            yield ast.Constant(v + 1.0), False
        elif isinstance(v, str):
            yield ast.Constant("XX" + v + "XX"), False
        elif isinstance(v, bytes):
            yield ast.Constant(b"XX" + v + b"XX"), False
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _SWAP_CALL:
        yield clone(func=ast.Name(_SWAP_CALL[node.func.id], ast.Load())), False
    elif isinstance(node, ast.AugAssign) and type(node.op) in (ast.Add, ast.Sub):
        yield clone(op=ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()), True


def mutants_of(path: str) -> list[Mutant]:
    full = os.path.join(ROOT, path)
    with open(full, "rb") as f:
        src = f.read()
    lines = src.decode().splitlines()
    tree = ast.parse(src)
    skip = _skipped_nodes(tree)
    top = {id(n) for n in tree.body}
    out: list[Mutant] = []

    def add(node, new, stmt=False):
        if node.lineno - 1 < len(lines) and "pragma: no mutate" in lines[node.lineno - 1]:
            return
        text = new if isinstance(new, str) else ast.unparse(new)
        if not stmt:
            text = f"({text})"
        old = _segment(src, node)
        if _squeeze(old) == _squeeze(text):
            return
        out.append(Mutant(path, node.lineno, (node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset),
                          text, old, lines[node.lineno - 1].strip()))

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        for new, stmt in _replacements(node):
            add(node, new, stmt)
        # negate a condition
        if isinstance(node, (ast.If, ast.While, ast.IfExp)):
            t = node.test
            if id(t) not in skip and not (isinstance(t, ast.UnaryOp) and isinstance(t.op, ast.Not)):
                add(t, ast.UnaryOp(ast.Not(), t))
        # a statement removed (not at module level: an import-time NameError teaches nothing)
        if isinstance(node, _REMOVABLE) and id(node) not in top and not (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) and not (
                isinstance(node, ast.AnnAssign) and node.value is None):
            add(node, "pass", stmt=True)
        # return None
        if isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            add(node, "return None", stmt=True)
        if isinstance(node, ast.Break):
            add(node, "continue", stmt=True)
        elif isinstance(node, ast.Continue):
            add(node, "break", stmt=True)
    out.sort(key=lambda m: (m.start, m.end, m.new))
    scopes: dict[int, str] = {}

    def name_scopes(body, prefix):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + node.name
                for n in range(node.lineno, node.end_lineno + 1):
                    scopes[n] = name          # an inner definition, named later, wins
                name_scopes(node.body, name + ".")

    name_scopes(tree.body, "")
    for m in out:
        m.scope = scopes.get(m.line, "")
        m.occurrence = sum(1 for n in range(1, m.line + 1)
                           if scopes.get(n, "") == m.scope and lines[n - 1].strip() == m.source_line)
    seen: dict[tuple, int] = {}
    for m in out:
        k = (m.line, m.mutation)
        seen[k] = m.nth = seen.get(k, 0) + 1
    # Drop mutants whose source does not compile (a replacement in an odd place).
    return [m for m in out if _compiles(apply(src, m))]


def _segment(src: bytes, node) -> str:
    return apply(src, None, node=node)


def _offsets(src: bytes):
    starts = [0]
    for i, b in enumerate(src):
        if b == 0x0A:
            starts.append(i + 1)
    return starts


_OFFSET_CACHE: dict[bytes, list[int]] = {}


def apply(src: bytes, m: Mutant | None, node=None) -> bytes | str:
    starts = _OFFSET_CACHE.get(src)
    if starts is None:
        starts = _OFFSET_CACHE[src] = _offsets(src)
    if m is None:
        a = starts[node.lineno - 1] + node.col_offset
        b = starts[node.end_lineno - 1] + node.end_col_offset
        return src[a:b].decode()
    a = starts[m.start[0] - 1] + m.start[1]
    b = starts[m.end[0] - 1] + m.end[1]
    return src[:a] + m.new.encode() + src[b:]


def _compiles(src: bytes) -> bool:
    try:
        compile(src, "<mutant>", "exec")
        return True
    except SyntaxError:
        return False


def load_equivalents() -> dict[tuple, str]:
    """tools/mutation-equivalents.txt: ``path :: source line :: mutation :: reason`` per line."""
    found: dict[tuple, str] = {}
    if not os.path.exists(EQUIVALENTS):
        return found
    with open(EQUIVALENTS, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split(" :: ")
            if len(parts) != 4 or not parts[3].strip():
                raise SystemExit(f"{EQUIVALENTS}:{n}: want 'path :: source line :: mutation :: reason'")
            found[(parts[0].strip(), parts[1].strip(), parts[2].strip())] = parts[3].strip()
    return found


# -- running ---------------------------------------------------------------------------------------

def scratch_tree() -> str:
    """A copy of the package and the tests (other top-level folders linked)."""
    tmp = tempfile.mkdtemp(prefix="rtfast-mutate-")
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", ".pytest_cache")
    for name in os.listdir(ROOT):
        src = os.path.join(ROOT, name)
        if name in ("rtfast", "tests"):
            shutil.copytree(src, os.path.join(tmp, name), ignore=ignore)
        elif name in ("pyproject.toml", "setup.py"):
            shutil.copy2(src, tmp)
        elif name not in (".git", "build", "dist", ".hypothesis", ".pytest_cache") and not name.startswith("."):
            os.symlink(src, os.path.join(tmp, name))
    return tmp


def _preload() -> None:
    """Import what every test run needs except rtfast itself, once, before forking."""
    sys.dont_write_bytecode = True        # a mutant's module must never be served from a stale .pyc
    import pytest  # noqa: F401
    for name in ("hypothesis", "numpy", "orjson", "soxr", "websockets", "pybase64", "asyncio", "_pytest.python"):
        try:
            __import__(name)
        except ImportError:
            pass


def _module_name(rel: str) -> str:
    name = rel[:-3].replace("/", ".")
    return name[:-len(".__init__")] if name.endswith(".__init__") else name


def _imports(path: str) -> set[str]:
    """rtfast modules a file imports, anywhere in it (lazy imports count too)."""
    with open(path, "rb") as f:
        tree = ast.parse(f.read())
    found = set()
    # A package's __init__ only counts what it imports at import time (not its lazy __getattr__).
    nodes = tree.body if path.endswith("__init__.py") else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("rtfast"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rtfast"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def preloadable(tree: str, target: str) -> list[str]:
    """rtfast modules that can be imported once before forking: those that do not
    import the mutated module (directly or not), nor sit in a package that does."""
    mods = {}
    for dirpath, _, files in os.walk(os.path.join(tree, "rtfast")):
        for fn in files:
            if fn.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, fn), tree)
                mods[_module_name(rel)] = _imports(os.path.join(tree, rel))
    target_name = _module_name(target)
    bad = {target_name}
    changed = True
    while changed:
        changed = False
        for name, deps in mods.items():
            # Importing a.b.c runs a/__init__ and a/b/__init__ first: a dep's packages count too.
            if name not in bad and any(".".join(d.split(".")[:i]) in bad
                                       for d in deps for i in range(1, d.count(".") + 2)):
                bad.add(name)
                changed = True
    ok = []
    for name in sorted(mods):
        parts = name.split(".")
        if not any(".".join(parts[:i]) in bad for i in range(1, len(parts) + 1)):
            ok.append(name)
    return ok


def _preload_package(tree: str, target: str) -> None:
    """Import what the mutated module's tests need and the mutant cannot change (once per module)."""
    import importlib
    sys.path.insert(0, tree)
    for name in preloadable(tree, target):
        if name.endswith("__main__"):
            continue
        try:
            importlib.import_module(name)
        except Exception:
            pass
    if _module_name(target) in sys.modules:
        raise SystemExit(f"{target} was imported while preloading: tools/mutate.py's import graph missed a path")


def run_tests(tree: str, files: list[str], timeout: float, verbose: bool = False,
              test_timeout: float | None = None) -> tuple[int, float]:
    """Run pytest on files in a forked child; (exit code or -9 on timeout, seconds)."""
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:       # child
        try:
            os.setpgid(0, 0)
            os.chdir(tree)
            sys.path.insert(0, tree)
            os.environ["PYTHONPATH"] = tree
            if test_timeout:
                os.environ["RTFAST_TEST_TIMEOUT"] = str(test_timeout)   # tests/conftest.py: per async test
            if not verbose:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
            import pytest
            rc = pytest.main(PYTEST_ARGS + files)
        except BaseException:
            rc = 99
        os._exit(int(rc))
    deadline = t0 + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), time.monotonic() - t0
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return -9, time.monotonic() - t0
        time.sleep(0.02)


def mutate_module(path: str, tree: str, args, equivalents: dict) -> list[Mutant]:
    mutants = mutants_of(path)
    if args.line:
        mutants = [m for m in mutants if m.line in args.line]
    stages = MODULE_TESTS.get(path)
    if stages is None:
        raise SystemExit(f"no tests mapped for {path}: add it to MODULE_TESTS in tools/mutate.py")
    stages = stages[:args.stages]
    target = os.path.join(tree, path)
    with open(target, "rb") as f:
        original = f.read()
    # Baseline: every stage passes unmutated, and how long it takes.
    limits = []
    for files in stages:
        rc, secs = run_tests(tree, files, timeout=600, test_timeout=args.test_timeout)
        if rc != 0:
            raise SystemExit(f"{path}: the tests fail before any mutation ({' '.join(files)}: exit {rc})")
        limit = max(10.0, 4 * secs + 5)
        if args.timeout:
            # A shorter limit saves the time hanging mutants cost, but never below twice
            # the unmutated run (on a loaded machine a survivor must not count as a timeout).
            limit = max(args.timeout, 2 * secs + 2)
        limits.append(limit)
    print(f"{path}: {len(mutants)} mutants; stages {[' '.join(s) for s in stages]}; "
          f"per-mutant limits {[round(x) for x in limits]} s", flush=True)
    t_start = time.monotonic()
    for i, m in enumerate(mutants):
        if time.monotonic() - t_start > args.time_box:
            break
        with open(target, "wb") as f:
            f.write(apply(original, m))
        try:
            m.status = "survived"
            for n, files in enumerate(stages):
                rc, _ = run_tests(tree, files, limits[n], test_timeout=args.test_timeout)
                if rc != 0:
                    m.status, m.stage = ("timeout" if rc == -9 else "killed"), n
                    break
        finally:
            with open(target, "wb") as f:
                f.write(original)
        m.reason = m.reason_in(equivalents)
        if m.reason:
            if m.status == "survived":
                m.status = "equivalent"
        if args.verbose or m.status == "survived":
            print(f"  [{i + 1}/{len(mutants)}] {m.status}: {m.describe()}", flush=True)
    return mutants


def report(path: str, mutants: list[Mutant], elapsed: float) -> dict:
    count = {s: sum(1 for m in mutants if m.status == s)
             for s in ("killed", "timeout", "survived", "equivalent", "untried")}
    killed = count["killed"] + count["timeout"]
    scored = killed + count["survived"]
    score = 100.0 * killed / scored if scored else 100.0
    print(f"\n== {path}: {score:.1f} % ({killed} killed of {scored} non-equivalent; "
          f"{count['equivalent']} listed equivalent, {count['timeout']} by timeout, "
          f"{count['untried']} not tried in the time box) in {elapsed:.0f} s")
    for m in mutants:
        if m.status == "survived":
            print(f"  SURVIVED {m.describe()}")
    stale = [m for m in mutants if m.reason and m.status in ("killed", "timeout")]
    for m in stale:
        print(f"  listed as equivalent but killed (remove it from the list): {m.describe()}")
    return {"module": path, "score": round(score, 1), **count, "seconds": round(elapsed),
            "survivors": [m.describe() for m in mutants if m.status == "survived"],
            "equivalents": [f"{m.describe()} -- {m.reason}" for m in mutants if m.status == "equivalent"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("modules", nargs="*", default=sorted(MODULE_TESTS), help="repository-relative paths "
                   "(default: every module in MODULE_TESTS)")
    p.add_argument("--time-box", type=float, default=900, help="seconds per module before untried mutants "
                   "are left out (default 900)")
    p.add_argument("--line", type=int, action="append", help="only mutants starting on this line (repeatable)")
    p.add_argument("--stages", type=int, default=None, help="run only the first N test stages (1: the "
                   "module's unit tests only)")
    p.add_argument("--timeout", type=float, default=None, help="seconds before a mutant's test run is killed "
                   "(counted as killed, by timeout); default four times the unmutated run plus 5 s, and never "
                   "under twice the unmutated run plus 2 s")
    p.add_argument("--test-timeout", type=float, default=None, help="seconds each async test may take in a "
                   "mutant's run before it fails (RTFAST_TEST_TIMEOUT; tests/conftest.py's default is 60): a "
                   "mutant that hangs one test then costs this, not the whole run's limit")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--json", help="write the results here")
    p.add_argument("-v", "--verbose", action="store_true", help="print every mutant's outcome")
    args = p.parse_args(argv)
    os.chdir(ROOT)
    equivalents = load_equivalents()
    if args.list:
        for path in args.modules:
            for m in mutants_of(path):
                if args.line and m.line not in args.line:
                    continue
                eq = "  (equivalent)" if m.reason_in(equivalents) else ""
                print(f"{m.describe()}{eq}")
        return 0
    _preload()
    # A SIGTERM'd run still removes its scratch tree (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tree = scratch_tree()
    results = []
    try:
        for path in args.modules:
            # One forked "zygote" per module: it imports the rtfast modules the mutant
            # cannot change once, and each mutant's test run forks from it.
            out = os.path.join(tree, ".result.json")
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    _preload_package(tree, path)
                    t0 = time.monotonic()
                    mutants = mutate_module(path, tree, args, equivalents)
                    with open(out, "w") as f:
                        json.dump(report(path, mutants, time.monotonic() - t0), f)
                except SystemExit as exc:
                    print(exc, file=sys.stderr)
                    code = 2
                except BaseException:
                    import traceback
                    traceback.print_exc()
                    code = 2
                sys.stdout.flush()
                os._exit(code)
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0 or not os.path.exists(out):
                raise SystemExit(f"{path}: the run failed (see above)")
            with open(out) as f:
                results.append(json.load(f))
            os.unlink(out)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print("\nmodule                          score   killed  survived  equivalent  untried")
    for r in results:
        print(f"{r['module']:<30} {r['score']:5.1f} %  {r['killed'] + r['timeout']:6}  {r['survived']:8}  "
              f"{r['equivalent']:10}  {r['untried']:7}")
    return 1 if any(r["survived"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
