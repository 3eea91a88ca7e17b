"""How many small changes to a module do its tests catch? A dependency-free mutation tester.

    .venv/bin/python scripts/mutation_check.py model/detection.py [--tests tests/a.py ...]
        [--sample 150] [--seed 0] [--timeout 60] [--no-edges] [--list] [--json out.json]
        [--survivors-of earlier.json]

Before and after new tests, cheaply: run once with `--no-edges --json before.json` (the module's
covering tests only), then with `--survivors-of before.json` (tests/test_edges_*.py added), which
runs only the mutants that survived: a test added cannot free a mutant already caught, so the score
over the first run's mutants is the first run's caught plus the newly caught.

Each mutant is one change to the module's syntax tree: a comparison swapped (< <=, > >=, == !=,
< >, in / not in, is / is not), an arithmetic operator swapped (+ -, * /, // *, % //, & |, << >>),
a number moved (0 <-> 1, otherwise +1 and -1; True <-> False), `and` <-> `or`, a `not` removed, or
a returned value replaced by None. Type annotations and f-strings (message text) are left alone.

The module's file is never written: the mutant's source lives in a temporary folder, and an import
hook (in this process and, through a `sitecustomize` on PYTHONPATH, in every Python the tests start)
loads it under the module's own name and file name. Each mutant runs the module's covering tests
with `pytest -x -q -p no:cacheprovider` in a process forked from one that has already imported the
heavy libraries (torch, numpy, soundfile), so a mutant costs its tests, not their imports. A mutant
is caught when the tests fail, error or time out; it survives when they pass.

Run it with OMP_NUM_THREADS=1 on a shared machine; `--jobs` runs mutants side by side.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "speechcmd"  # the checkout's root is this package (an editable install)

# The test files that exercise each module. Every tests/test_edges_*.py is added unless --no-edges.
COVERING = {
    "model/detection.py": ["tests/test_detection.py", "tests/test_stream_context.py", "tests/test_gui_worker.py",
                           "tests/test_checkpoint.py"],
    "model/trim.py": ["tests/test_teach_takes.py"],
    "model/streaming.py": ["tests/test_stream_context.py", "tests/test_gui_worker.py",
                           "tests/test_fuzz.py::test_live_recognition_scores_the_same_windows_however_the_audio_arrives"],
    "model/audio.py": ["tests/test_audio.py", "tests/test_long_recording.py", "tests/test_window_long_recordings.py",
                       "tests/test_fuzz.py::test_any_bytes_load_as_audio_or_give_one_audio_error",
                       "tests/test_fuzz.py::test_any_depth_rate_and_channel_count_loads_at_16k_with_the_right_length_and_level"],
    "model/network.py": ["tests/test_network.py", "tests/test_speech_embedding.py", "tests/test_checkpoint.py"],
}

# The import hook, run in the forked test process and written as sitecustomize.py for subprocesses.
HOOK = r'''
import importlib.abc, importlib.machinery, os, sys

class _MutantLoader(importlib.abc.Loader):
    def __init__(self, origin, source):
        self.origin, self.source = origin, source
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        with open(self.source, encoding="utf-8") as file:
            code = compile(file.read(), self.origin, "exec")
        exec(code, module.__dict__)

class _MutantFinder(importlib.abc.MetaPathFinder):
    def __init__(self, name, origin, source):
        self.name, self.origin, self.source = name, origin, source
    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        spec = importlib.machinery.ModuleSpec(fullname, _MutantLoader(self.origin, self.source), origin=self.origin)
        spec.has_location = True
        return spec

if os.environ.get("MUTATION_CHECK_MODULE"):
    sys.meta_path.insert(0, _MutantFinder(
        os.environ["MUTATION_CHECK_MODULE"], os.environ["MUTATION_CHECK_ORIGIN"], os.environ["MUTATION_CHECK_SOURCE"]))
'''

COMPARE_SWAPS = {
    ast.Lt: (ast.LtE, ast.Gt), ast.LtE: (ast.Lt, ast.GtE), ast.Gt: (ast.GtE, ast.Lt), ast.GtE: (ast.Gt, ast.LtE),
    ast.Eq: (ast.NotEq,), ast.NotEq: (ast.Eq,), ast.In: (ast.NotIn,), ast.NotIn: (ast.In,),
    ast.Is: (ast.IsNot,), ast.IsNot: (ast.Is,),
}
BINOP_SWAPS = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd,
    ast.LShift: ast.RShift, ast.RShift: ast.LShift,
}


@dataclass
class Mutant:
    index: int  # node's position in ast.walk order of a fresh parse
    kind: str  # compare | binop | augop | constant | boolop | not | return
    detail: object  # which operator (compare) or the new value (constant)
    line: int
    before: str
    after: str
    outcome: str = ""  # caught | survived | timeout | error
    occurrence: int = 0  # how many mutants before this one have the same kind, before and after
    seconds: float = 0.0

    @property
    def key(self) -> tuple:
        """What names this change in the module's text whatever moved around it."""
        return (self.kind, self.before, self.after)

    @property
    def label(self) -> str:
        return f"line {self.line}: {self.before}  ->  {self.after}"


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes inside annotations (not evaluated under `from __future__ import annotations`)
    and f-strings (the wording of messages)."""
    skipped = set()
    roots = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.arg, ast.AnnAssign)) and node.annotation is not None:
            roots.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            roots.append(node.returns)
        elif isinstance(node, ast.JoinedStr):
            roots.append(node)
    for root in roots:
        skipped.update(id(n) for n in ast.walk(root))
    return skipped


def _number_moves(value) -> list:
    if isinstance(value, bool):
        return [not value]
    if value == 0:
        return [type(value)(1)]
    if value == 1:
        return [type(value)(0)]
    return [value + 1, value - 1]


def _candidates(tree: ast.AST) -> list[tuple[int, str, object]]:
    skipped = _skipped_nodes(tree)
    found = []
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Compare):
            for position, op in enumerate(node.ops):
                found += [(index, "compare", (position, new.__name__)) for new in COMPARE_SWAPS.get(type(op), ())]
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in BINOP_SWAPS:
            found.append((index, "binop" if isinstance(node, ast.BinOp) else "augop", BINOP_SWAPS[type(node.op)].__name__))
        elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            found += [(index, "constant", new) for new in _number_moves(node.value)]
        elif isinstance(node, ast.BoolOp):
            found.append((index, "boolop", "Or" if isinstance(node.op, ast.And) else "And"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            found.append((index, "not", None))
        elif isinstance(node, ast.Return) and node.value is not None and not (
            isinstance(node.value, ast.Constant) and node.value.value is None
        ):
            found.append((index, "return", None))
    nodes = list(ast.walk(tree))
    return sorted(found, key=lambda item: (nodes[item[0]].lineno, nodes[item[0]].col_offset))


def _parents(tree: ast.AST) -> dict[int, tuple[ast.AST, str, int | None]]:
    parents = {}
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if isinstance(value, ast.AST):
                parents[id(value)] = (parent, field, None)
            elif isinstance(value, list):
                for k, item in enumerate(value):
                    if isinstance(item, ast.AST):
                        parents[id(item)] = (parent, field, k)
    return parents


def apply(source: str, index: int, kind: str, detail) -> tuple[str, int, str, str]:
    """The mutant's source, and (line, the original code, the mutated code) to show it by."""
    tree = ast.parse(source)
    node = list(ast.walk(tree))[index]
    before = ast.get_source_segment(source, node) or ast.unparse(node)
    line = node.lineno
    shown = node
    if kind == "compare":
        position, name = detail
        node.ops[position] = getattr(ast, name)()
    elif kind in ("binop", "augop", "boolop"):
        node.op = getattr(ast, detail)()
    elif kind == "constant":
        node.value = detail
    elif kind == "return":
        node.value = ast.Constant(None)
    elif kind == "not":
        parent, field, k = _parents(tree)[id(node)]
        if k is None:
            setattr(parent, field, node.operand)
        else:
            getattr(parent, field)[k] = node.operand
        shown = node.operand
    ast.fix_missing_locations(tree)
    after = ast.unparse(shown)
    one_line = lambda text: " ".join(text.split())  # noqa: E731
    return ast.unparse(tree), line, one_line(before), one_line(after)


def mutants_of(path: Path) -> list[Mutant]:
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    plain = ast.unparse(tree)
    mutants = []
    for index, kind, detail in _candidates(tree):
        text, line, before, after = apply(source, index, kind, detail)
        if text == plain:
            continue
        try:
            compile(text, str(path), "exec")
        except SyntaxError:
            continue
        mutants.append(Mutant(index, kind, detail, line, before, after))
    seen: dict[tuple, int] = {}
    for mutant in mutants:
        mutant.occurrence = seen.get(mutant.key, 0)
        seen[mutant.key] = mutant.occurrence + 1
    return mutants


def module_name(path: Path) -> str:
    relative = path.resolve().relative_to(ROOT).with_suffix("")
    return ".".join((PACKAGE, *relative.parts))


class Runner:
    """Runs pytest in forked children of a process that has imported the heavy libraries once."""

    def __init__(self, module: str, origin: Path, tests: list[str], timeout: float, work: Path):
        self.module, self.origin, self.tests, self.timeout, self.work = module, origin, tests, timeout, work
        site = work / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(HOOK, encoding="utf-8")
        self.site = site
        for heavy in ("numpy", "torch", "soundfile", "soxr", "scipy.signal", "pytest", "hypothesis"):
            try:
                __import__(heavy)
            except ImportError:
                pass
        for name in list(sys.modules):  # nothing of ours may be imported before the hook is in place
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                del sys.modules[name]

    def start(self, source: str | None, tag: str) -> tuple[int, float]:
        """Fork a child that runs the tests against `source` (None: the module as it is)."""
        log = self.work / f"{tag}.log"
        mutant_file = None
        if source is not None:
            mutant_file = self.work / f"{tag}.py"
            mutant_file.write_text(source, encoding="utf-8")
        pid = os.fork()
        if pid == 0:  # the child: never returns
            try:
                os.setpgid(0, 0)
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.chdir(ROOT)
                sys.path.insert(0, str(ROOT))  # as `python -m pytest` in the checkout has it
                env = os.environ
                env["CI"] = "1"  # the suite's derandomized Hypothesis profile: the same examples every mutant
                env["PYTHONDONTWRITEBYTECODE"] = "1"
                sys.dont_write_bytecode = True
                if mutant_file is not None:
                    env["MUTATION_CHECK_MODULE"] = self.module
                    env["MUTATION_CHECK_ORIGIN"] = str(self.origin)
                    env["MUTATION_CHECK_SOURCE"] = str(mutant_file)
                    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.site), env.get("PYTHONPATH")]))
                    exec(compile(HOOK, "mutation_check_hook", "exec"), {"__name__": "mutation_check_hook"})
                import pytest

                code = pytest.main([
                    "-x", "-q", "-p", "no:cacheprovider", "--basetemp", str(self.work / f"{tag}.tmp"), *self.tests
                ])
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(int(code))
            except BaseException:  # noqa: BLE001 - a child must never fall back into the parent's loop
                import traceback

                traceback.print_exc()
                os._exit(3)
        return pid, time.monotonic()

    def wait(self, running: dict[int, tuple[float, object]]) -> tuple[object, int | None, float]:
        """Wait for any child; returns (its key, its exit code or None on timeout, seconds)."""
        while True:
            for pid, (started, key) in list(running.items()):
                done, status = os.waitpid(pid, os.WNOHANG)
                elapsed = time.monotonic() - started
                if done:
                    del running[pid]
                    return key, os.waitstatus_to_exitcode(status), elapsed
                if elapsed > self.timeout:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    os.waitpid(pid, 0)
                    del running[pid]
                    return key, None, elapsed
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("module", help="the module's file, e.g. model/detection.py")
    parser.add_argument("--tests", nargs="+", help="covering tests (default: the table in this script)")
    parser.add_argument("--no-edges", action="store_true", help="leave out tests/test_edges_*.py")
    parser.add_argument("--sample", type=int, default=150, help="at most this many mutants, chosen by --seed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=0, help="seconds a mutant's tests may run (default: 3x the clean run + 10)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--list", action="store_true", help="only list the mutants")
    parser.add_argument("--only", type=int, nargs="+", help="run only these mutant numbers (as --list shows them)")
    parser.add_argument("--json", type=Path, help="write every mutant and its outcome here")
    parser.add_argument("--survivors-of", type=Path, metavar="JSON",
                        help="run only the mutants that survived in this earlier --json report (tests added since "
                             "cannot free a caught one), and report the module's score over that earlier run")
    args = parser.parse_args(argv)

    path = (ROOT / args.module).resolve() if not Path(args.module).is_absolute() else Path(args.module)
    relative = path.relative_to(ROOT).as_posix()
    tests = list(args.tests or COVERING.get(relative, []))
    if not args.no_edges:
        tests += sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_edges_*.py"))
    if not tests:
        parser.error(f"no covering tests known for {relative}; pass --tests")
    source = path.read_text(encoding="utf-8")
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]

    mutants = mutants_of(path)
    total = len(mutants)
    numbered = list(enumerate(mutants))
    if len(numbered) > args.sample:
        numbered = sorted(random.Random(args.seed).sample(numbered, args.sample), key=lambda item: item[0])
    if args.only:
        numbered = [item for item in enumerate(mutants) if item[0] in set(args.only)]
    earlier = None
    if args.survivors_of:
        earlier = json.loads(args.survivors_of.read_text())
        if earlier["sha1"] != digest:
            print(f"note: {relative} changed since {args.survivors_of} (sha1 {earlier['sha1']}); survivors matched by their code")
        survived = [m for m in earlier["mutants"] if m["outcome"] == "survived"]
        if earlier["sha1"] == digest:  # the same module: the same numbers
            wanted = {m["number"] for m in survived}
            numbered = [(n, m) for n, m in enumerate(mutants) if n in wanted]
        else:
            wanted = {(m["kind"], m["before"], m["after"], m.get("occurrence", 0)) for m in survived}
            numbered = [(n, m) for n, m in enumerate(mutants) if (*m.key, m.occurrence) in wanted]
        if len(numbered) != len(survived):
            print(f"note: {len(survived) - len(numbered)} earlier survivors no longer exist in the module")
    print(f"{relative} (sha1 {digest}): {total} mutants, running {len(numbered)}; tests: {' '.join(tests)}", flush=True)
    if args.list:
        for number, mutant in numbered:
            print(f"  #{number:<4} {mutant.kind:<8} {mutant.label}")
        return 0

    with tempfile.TemporaryDirectory(prefix="mutation_check_") as tmp:
        work = Path(tmp)
        runner = Runner(module_name(path), path, tests, args.timeout or 600, work)
        pid, started = runner.start(None, "clean")
        _, code, clean_seconds = runner.wait({pid: (started, None)})
        if code != 0:
            print(f"the tests fail without any mutation (exit {code}); see below.\n" + (work / "clean.log").read_text()[-3000:])
            return 2
        runner.timeout = args.timeout or 3 * clean_seconds + 10
        print(f"clean run: passed in {clean_seconds:.1f} s; timeout per mutant {runner.timeout:.0f} s", flush=True)

        queue = list(numbered)
        running: dict[int, tuple[float, object]] = {}
        finished = 0
        while queue or running:
            while queue and len(running) < args.jobs:
                number, mutant = queue.pop(0)
                text, *_ = apply(source, mutant.index, mutant.kind, mutant.detail)
                pid, started = runner.start(text, f"m{number}")
                running[pid] = (started, (number, mutant))
            (number, mutant), code, seconds = runner.wait(running)
            mutant.seconds = seconds
            mutant.outcome = (
                "timeout" if code is None else "survived" if code == 0 else "caught" if code == 1 else "error"
            )
            finished += 1
            mark = "SURVIVED" if mutant.outcome == "survived" else mutant.outcome
            print(f"[{finished}/{len(numbered)}] #{number:<4} {mark:<8} {seconds:5.1f}s  {mutant.label}", flush=True)
            if mutant.outcome == "error":
                print("    " + (work / f"m{number}.log").read_text()[-600:].replace("\n", "\n    "), flush=True)

    ran = [m for _, m in numbered]
    caught = sum(m.outcome != "survived" for m in ran)
    scope = (f" (the earlier run's survivors)" if earlier is not None
             else f" (a sample of {total}, seed {args.seed})" if len(ran) < total else "")
    print(f"\n{relative}: caught {caught}/{len(ran)} = {100 * caught / len(ran):.1f}%{scope}")
    survivors = [(n, m) for n, m in numbered if m.outcome == "survived"]
    if earlier is not None:
        overall = earlier["caught"] + caught
        print(f"{relative} over the earlier run: caught {overall}/{earlier['ran']} = {100 * overall / earlier['ran']:.1f}%"
              + f" (was {earlier['caught']}/{earlier['ran']} = {100 * earlier['caught'] / earlier['ran']:.1f}%)")
    if survivors:
        print("survivors:")
        for number, mutant in survivors:
            print(f"  #{number:<4} {mutant.label}")
    if args.json:
        args.json.write_text(json.dumps({
            "module": relative, "sha1": digest, "tests": tests, "total": total, "ran": len(ran), "caught": caught,
            "mutants": [{"number": n, **asdict(m)} for n, m in numbered],
        }, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
