"""Every command that the README, GATE.md and the model card show parses as written and runs (issue 26).

Commands are read from the documents themselves: lines of ```bash blocks (with their `\\`
continuations, comments dropped, `&&` chains split) and inline code spans. Elided commands
("...") are left out, and so are `python -m benchmarks...` (measurement scripts: their sizes are
the measurement; benchmarks/README.md).

Parse: each `map-suite` command goes through the real parser (`validation.cli.main.build_parser`),
so a renamed, removed or mistyped option or a bad choice in a document fails here; shipped files
they read (map_core/..., benchmarks/...) must exist.

Run: each `map-suite`, `python -m validation...`, `python -m pytest ...` and `torchrun` command
runs through the real program in one working folder, in the order of the README's own chain
(simulate -> water.npz -> train -> model.pt -> generate -> boxes.npz -> export, validate ->
results.json -> report, foreign/ -> calibrate), at small sizes: `shrink` replaces option *values*
by the small ones of SMALL, never drops a documented option nor changes the command; where no
documented option sets the size, ADDED appends the size options listed there. The shipped inputs
too costly to use (the default model, the two-stage benchmark model) are replaced by small models
of the same kind (STAND_INS). A run passes when it ends with the expected exit code (validate and
the pytest gate: 0 or 1, the verdict; anything else 0) and writes what it promises (`promised`),
each promised file removed first so that an earlier command's file does not count. A few commands
whose exact equivalent already runs elsewhere are mapped there instead (ELSEWHERE). A documented
command with neither a run nor a mapping fails `test_every_documented_command_is_run_or_mapped`.
The runs are marked slow (OpenMM, gate runs, pytest subprocesses); CI runs them. Commands run in
this process (`validation.cli.main.main`, the tools' `main`), so that a crash is told from a
verdict; only the pytest gate runs as a subprocess.
"""

import contextlib
import importlib
import io
import json
import re
import resource
import shlex
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from gate_helpers import SUBPROCESS_ENV, TINY_PROFILE

import map_core.model.default as default_model
import validation.gate.calibrate as calibrate
import validation.gate.rates as rates
import validation.gate.thresholds as thresholds
from validation.cli.main import build_parser
from validation.cli.main import main as map_suite
from validation.gate.profile import load_profile

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "validation" / "GATE.md", ROOT / "map_core" / "data" / "MODEL_CARD.md"]
RUN_PREFIXES = ("map-suite ", "python -m validation", "python -m pytest ", "torchrun ")


def _bash_lines(text: str) -> list:
    out, block, pending = [], False, ""
    for line in text.splitlines():
        if line.strip().startswith("```"):
            block, pending = not block and line.strip() in ("```bash", "```sh"), ""
            continue
        if not block:
            continue
        line = pending + line.split(" #")[0].rstrip() if pending else line.split(" #")[0].rstrip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        for part in line.split("&&"):
            out.append(part.strip())
    return out


def commands() -> list:
    found = []
    for doc in DOCUMENTS:
        text = doc.read_text()
        lines = _bash_lines(text) + re.findall(r"`(map-suite [^`]+)`", text)
        for line in lines:
            if line.startswith("map-suite ") and len(line.split()) > 2 and "..." not in line:
                found.append((doc.name, line))
    return sorted(set(found))


def documented_commands() -> list:
    """(document, command) of every command this file runs or maps: `commands()` and the documents'
    `python -m validation...`, `python -m pytest ...` and `torchrun` lines, whitespace made single."""
    found = {(doc, " ".join(line.split())) for doc, line in commands()}
    for doc in DOCUMENTS:
        text = doc.read_text()
        prose = re.sub(r"```.*?```", "", text, flags=re.S)  # inline spans outside the code blocks
        for line in _bash_lines(text) + re.findall(r"`([^`]+)`", prose):
            line = " ".join(line.split())
            if line.startswith(RUN_PREFIXES[1:]) and "..." not in line:
                found.add((doc.name, line))
    return sorted(found)


@pytest.mark.parametrize("doc, line", commands())
def test_documented_command_parses(doc, line, capsys):
    argv = shlex.split(line)[1:]
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0 and {"--help", "--version"} & set(argv):  # argparse prints and ends these
            return
        pytest.fail(f"{doc}: `{line}` does not parse ({capsys.readouterr().err.strip().splitlines()[-1]}; exit {exc.code})")
    for arg in argv:
        if arg.startswith(("map_core/", "benchmarks/")):
            assert (ROOT / arg).exists(), f"{doc}: `{line}` reads {arg}, which is not in the repository"


def test_the_documents_show_commands():
    """The reader above finds the README's main commands (it cannot silently find none)."""
    shown = {line.split()[1] for _, line in commands()}
    assert {"validate", "generate", "train", "export", "report", "evaluate", "motif", "simulate", "toy"} <= shown
    tools = {line.split()[2] for _, line in documented_commands() if line.startswith("python -m ")}
    assert {"validation.gate.calibrate", "validation.gate.foreign", "pytest"} <= tools


# --- running the commands -------------------------------------------------------------------

# The gate profile every documented gate command runs with, in place of smoke, quick, paper or the
# PROFILE of GATE.md: the crash-test profile (gate_helpers.TINY_PROFILE: 2 boxes of a 0.7 nm region,
# smaller reference, RDF and classifier) with its MD switched on at the shortest runs that still
# go through minimisation, NPT, NVT and RPMD (as tests/test_scaleout.py's MD test): the documented
# gate commands run all three groups, so their small equivalent does too.
PROFILE = "gate-profile.toml"
PROFILE_NAME = "readme-commands"
PROFILE_TEXT = (TINY_PROFILE.replace('name = "crash-test"', f'name = "{PROFILE_NAME}"')
                .replace("enabled = false\nbox_nm = 0.6", "box_nm = 0.7\nmin_waters = 8")
                + "[md.classical]\nnpt_ps = 0.2\nnvt_ps = 0.2\n[md.rpmd]\nbeads = 2\nnvt_ps = 0.04\n")
PROFILE_NAMES = ("smoke", "quick", "paper", "gpu", "PROFILE")

# option -> the small values put in place of the documented ones (None: the documented value is
# kept). Only values change, so every documented option and the command itself are exercised.
SMALL = {
    # simulate: 216 waters kept: 2 frames of them take 3 s, and the later commands need a box over
    # 1.6 nm (evaluate's default 32-voxel crops; validate cuts 0.7 nm MD boxes plus margins)
    "--waters": None,
    "--frames": ["2"],            # simulate: 2 frames, one of them held out by train's split
    "--stride-ps": ["0.05"],      # 100 steps between frames (test_simulate_cli.py's sizes)
    "--equilibrate-ps": ["0.05"],  # minimisation and a short NPT still run
    "--layers": ["2"],            # train: a 2-layer x 8-filter PixelCNN (gate_helpers.save_tiny_model's size)
    "--filters": ["8"],
    "--crop": ["16"],             # train: fits the 37-voxel box of 216 waters at 0.05 nm
    "--steps": ["2"],             # train: 2 optimiser steps (the checkpoint, test split and provenance all written)
    "--lr-drop-steps": ["1"],     # train: a drop inside the 2 steps, so the drop path runs
    "--checkpoint-every": ["1"],  # train: a checkpoint inside the 2 steps
    "--threads": ["1"],           # one thread, as every test runs torch (conftest.one_thread); nothing written changes
    "--shape": ["18", "18", "18"],  # generate, motif generate: room for a 0.6 nm motif and its margin (test_motif_cli.py)
    "--n-boxes": ["2"],           # generate: 2 boxes, so multi-box files and exports are exercised
    "--relax": ["0.01"],          # export: minimisation and 20 NPT steps (the option's minimum is one step)
    "--iterations": ["1"],        # motif generate: one turn-and-regenerate iteration
    "--draws": ["1"],             # calibrate --error-rates: one held-out draw
    "--profile": [PROFILE],       # validate, pytest gate: the small gate profile above
}

# Size options a documented command does not show but whose defaults are far too large for CI,
# appended after its documented options (pattern on the documented command -> options).
ADDED = {
    # evaluate scores 16 crops of 32^3 voxels by default (16 s with a 2-layer model, mostly the split into
    # occupancy and orientation); 2 crops take about 1 s
    r"^map-suite evaluate ": ["--crops", "2"],
    # toy: the default 32-site grids, 80 samples and 400 steps take 20 s; tests/test_cli_toy.py's sizes
    r"^map-suite toy ": ["--size", "12", "--n-data", "10", "--n-generate", "4", "--steps", "20", "--layers", "1",
                         "--filters", "4", "--crop", "8", "--batch", "4"],
    # foreign: --small is the tool's own test size (2 frames per ensemble instead of 40 after 25-50 ps of MD)
    r"^python -m validation\.gate\.foreign ": ["--small"],
    # error rates: 20 power draws per foreign ensemble by default (100 structure judgements); one each
    r"^python -m validation\.gate\.calibrate .*--error-rates": ["--power-draws", "1"],
    # null draws: 1000 by default (the 1 - alpha/k quantile); three, in the working folder
    r"^python -m validation\.gate\.calibrate .*--null": ["--draws", "3", "--work", "null-work"],
}

# Placeholders of GATE.md, as the values the chain has: its model, its frames, its foreign ensembles.
PLACEHOLDERS = {"MODEL.pt": "model.pt", "FRAMES.npz": "water.npz"}
FOREIGN = "foreign/"  # DIR where GATE.md means the folder of foreign ensembles

# Shipped inputs whose use costs far more than the command's own work, replaced by small models of
# the same kind. The shipped default model (12 layers x 16 filters) samples a 0.7 nm gate box in a
# larger canvas (its burn-in margin is its receptive field): 80 s of sampling for the small gate
# profile, 11 s for a 16^3 generate. Commands that use it implicitly (no --model) keep their argv; the file
# `default_model_path()` returns is the chain's own model.pt (trained by the README's train
# command), so their code path ("no --model: the shipped model") runs as documented.
# The two-stage benchmark model takes 30 s for the structure group; a 1-layer two-stage model
# trained on the chain's frames stands in (a value replaced, as SMALL does). Training on the shipped
# training set (400 frames) spends most of a minute voxelising it; the chain's frames of the same
# water (the README's simulate command) stand in where a command names it.
STAND_INS = {"benchmarks/runs/two_stage.pt": "two_stage.pt", "map_core/data/water_classical_216.npz": "water.npz"}

# Inputs the documents assume exist, made by the suite's own commands (not documented ones): made
# after the stage named, before the first command of a later stage.
SETUP = {
    "map-suite train": [
        ["export", "water.npz", "--format", "gro", "--out", "water.gro"],  # README: `validate --boxes water.gro`
        # tests/test_two_stage.py's sizes
        ["train", "--data", "water.npz", "--out", "two_stage.pt", "--kind", "two-stage", "--encoding", "water", "--voxel",
         "0.05", "--layers", "1", "--filters", "4", "--crop", "12", "--batch", "1", "--steps", "1", "--test-crops", "1",
         "--reach", "0.25", "--no-progress"],
    ],
}

# The order of the chain: a command runs after every command of an earlier stage (whose outputs it reads).
STAGES = ["map-suite simulate", "map-suite train", "map-suite evaluate", "map-suite generate", "map-suite export",
          "map-suite toy", "map-suite motif scan", "map-suite motif generate", "python -m validation.gate.foreign",
          "python -m validation.gate.calibrate", "map-suite validate", "map-suite report", "python -m pytest validation"]

# Commands whose exact equivalent runs elsewhere: pattern on the documented command -> where.
# "tests/FILE.py::NAME": that test exists (its def is there); ".ci/run::COMMAND": CI runs COMMAND.
ELSEWHERE = {
    # the test suite itself (CI's first command); `-m "not slow"` is the marker subset of it
    r'^python -m pytest (-m "not slow" )?tests$': ".ci/run::python -m pytest tests",
    # CI's second command, verbatim (the gate of the shipped model at smoke scale: 2-3 minutes)
    r"^python -m pytest validation --profile smoke( --expected-failures map_core/data/default_model_known_failures.toml)?$":
        ".ci/run::python -m pytest validation --profile smoke --expected-failures "
        "map_core/data/default_model_known_failures.toml",
    # the pytest gate of a model with --profile and --out (README): the same options, plus --gate-cache and
    # --expected-failures, on a small model and profile; GATE.md's `python -m pytest validation --profile smoke
    # [--model MODEL.pt] [--reference FRAMES.npz] [--out DIR]` runs here with the same options and --reference
    r"^python -m pytest validation --model model\.pt --profile quick --out reports/model-quick$":
        "tests/test_report.py::test_pytest_gate_expected_failures_turn_known_failures_into_xfail",
    # torchrun --standalone --nproc_per_node 2 -m validation.cli train ...: two gloo processes, the same launcher
    # and entry point (python -m torch.distributed.run is torchrun), on a small model
    r"^torchrun --standalone --nproc_per_node 2 -m validation\.cli train ":
        "tests/test_ddp.py::test_two_gloo_processes_train_the_single_process_weights",
    # generate --scheduler local:N: batches on a local Dask cluster of worker processes, the same file as one process
    r"^map-suite generate --scheduler local:":
        "tests/test_scaleout.py::test_generate_on_a_local_cluster_writes_the_single_process_file",
    # validate --scheduler: sampling batches on a Dask cluster give the single-process results (the local:N
    # cluster itself is the generate test's); here its workers would start and find every batch cached
    r"^map-suite validate --scheduler ":
        "tests/test_scaleout.py::test_validate_on_a_cluster_gives_the_single_process_results",
}


def elsewhere(line: str):
    return next((target for pattern, target in ELSEWHERE.items() if re.search(pattern, line)), None)


def stage(line: str):
    return next((k for k, prefix in enumerate(STAGES) if line.startswith(prefix + " ")), None)


def shrink(line: str) -> list:
    """The small equivalent of a documented command, as an argv (the program's words first)."""
    argv = [a.strip("[]") for a in shlex.split(line)]  # GATE.md's [--model MODEL.pt]: the optional part given
    argv = [a for a in argv if a]
    out, k = [], 0
    while k < len(argv):
        arg = argv[k]
        out.append(arg)
        k += 1
        if arg in SMALL:
            values = []
            while k < len(argv) and not argv[k].startswith("-"):
                values.append(argv[k])
                k += 1
            out += values if SMALL[arg] is None else SMALL[arg]
    out = [PLACEHOLDERS.get(a, STAND_INS.get(a, a)) for a in out]
    # shipped files named from the repository root, where the documents' commands run
    out = [str(ROOT / a) if a.startswith(("map_core/", "benchmarks/")) else a for a in out]
    if out[:3] == ["python", "-m", "validation.gate.calibrate"] and len(out) > 3 and out[3] in PROFILE_NAMES:
        out[3] = PROFILE  # the calibration tool names its profile without an option
    for i, arg in enumerate(out):  # DIR of the foreign ensembles; DIR of --out stays a folder of that name
        if arg == "DIR" and (out[i - 1] == "--foreign" or out[:3] == ["python", "-m", "validation.gate.foreign"]):
            out[i] = FOREIGN
    for pattern, extra in ADDED.items():
        if re.search(pattern, line):
            out += extra
    return out


def _value(argv, option, default=None):
    return argv[argv.index(option) + 1] if option in argv else default


def promised(argv) -> list:
    """The files a run of `argv` must write (relative to the working folder)."""
    if "--help" in argv:
        return []
    out = _value(argv, "--out")
    if argv[0] == "python":
        if argv[2] == "validation.gate.foreign":
            return [f"{argv[3]}/{name}.npz" for name in ("reoriented", "expanded3", "tip3p", "tip4pew", "qtip4pf_330K")]
        if argv[2] == "validation.gate.calibrate" and "--write" in argv:
            # redirected from validation/gate/profiles/ (see `_run_in_process`)
            return ["null_draws.json" if "--null" in argv else "error_rates.json"]
        if argv[2] == "pytest":
            report = out or f"reports/gate-{PROFILE_NAME}"  # the pytest gate's default --out
            return [f"{report}/results.json", f"{report}/report.html"]
        return []
    if argv[1] == "motif":
        return [out] if argv[2] == "scan" else [f"{out}/motif.json", f"{out}/motif.html"]
    if argv[1] in ("simulate", "train", "generate", "export"):
        return [out]
    if argv[1] == "validate":
        return [f"{out}/results.json", f"{out}/report.html"]
    if argv[1] == "report":
        return [str(Path(out or Path(argv[2]).parent) / "report.html")]
    if argv[1] == "toy":
        return [f"{out or 'toy_out'}/{_value(argv, '--system')}.json"]
    return []  # evaluate, calibrate: printed results (checked: something printed)


@dataclass
class Run:
    argv: list
    rc: object = None
    seconds: float = 0.0
    cpu: float = 0.0
    out: str = ""
    err: str = ""
    missing: list = field(default_factory=list)

    def verdict(self) -> str:
        """'' if the run did what the document promises, else why not."""
        gate = self.argv[1] == "validate" or self.argv[:3] == ["python", "-m", "pytest"]
        ok = (0, 1) if gate else (0,)  # a gate's exit code is its verdict; 2 (CLI) or 4 (pytest) is a refusal
        if self.rc not in ok:
            tail = "\n".join((self.err or self.out).strip().splitlines()[-12:])
            return f"exit code {self.rc} (expected {' or '.join(map(str, ok))}):\n{tail}"
        if self.missing:
            return f"did not write {', '.join(self.missing)}"
        if not self.out.strip():
            return "printed nothing"
        return ""


def _run_in_process(argv, work: Path) -> tuple:
    """(exit code, stdout, stderr) of a `map-suite` or `python -m MODULE` command run in this process."""
    if argv[0] == "map-suite":
        entry = map_suite
        rest = argv[1:]
    else:
        entry = importlib.import_module(argv[2]).main
        rest = argv[3:]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.MonkeyPatch.context() as mp:
        if "--write" in argv:  # the recorded error rates are part of the repository: written here instead
            target = work / "error_rates.json"
            mp.setattr(calibrate, "write_error_rates", lambda result: rates.write_error_rates(result, target))
            mp.setattr(calibrate, "ERROR_RATES_PATH", target)
            mp.setattr(calibrate, "write_null", lambda record: thresholds.write_null(record, work / "null_draws.json"))
            mp.setattr(calibrate, "NULL_PATH", work / "null_draws.json")
        try:
            rc = entry(rest)
        except SystemExit as exc:  # argparse: --help (0) and bad arguments (2)
            rc = exc.code
        except Exception:  # noqa: BLE001 - a crash is this command's result
            rc = "crash"
            err.write(traceback.format_exc())
    return rc, out.getvalue(), err.getvalue()


def _run_pytest(argv, work: Path) -> tuple:
    """`python -m pytest validation ...` as a subprocess in the working folder; `validation` is the repository's."""
    args = [str(ROOT / "validation") if a == "validation" else a for a in argv[3:]]
    result = subprocess.run([sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider"], cwd=work,
                            env={**SUBPROCESS_ENV, "MAP_SUITE_CACHE": str(work / "cache")}, capture_output=True,
                            text=True, timeout=600)
    return result.returncode, result.stdout, result.stderr


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the wall time depends on the machine's load)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def run_command(argv, work: Path) -> Run:
    run = Run(argv)
    for path in promised(argv):  # a file an earlier command wrote does not count for this one
        (work / path).unlink(missing_ok=True)
    t0, c0 = time.perf_counter(), _cpu()
    runner = _run_pytest if argv[:3] == ["python", "-m", "pytest"] else _run_in_process
    run.rc, run.out, run.err = runner(argv, work)
    run.seconds, run.cpu = time.perf_counter() - t0, _cpu() - c0
    run.missing = [p for p in promised(argv) if not (work / p).is_file()]
    return run


def runnable() -> dict:
    """documented command -> its small argv, for every documented command not mapped elsewhere."""
    return {line: shrink(line) for _, line in documented_commands() if elsewhere(line) is None and stage(line) is not None}


def ordered() -> list:
    """(command, small argv) of every run, in the chain's order (stage, then the command's text)."""
    return sorted(runnable().items(), key=lambda item: (stage(item[0]), item[0]))


class Chain:
    """The README's chain in one working folder. `result(command)` runs every command before it that
    has not run yet, then it (each once: a command shown in two documents runs once), and the SETUP
    steps of the stages passed on the way; each run sees the working folder as its current folder,
    the folder's own gate cache and the chain's model.pt as the shipped default model (STAND_INS)."""

    def __init__(self, work: Path):
        self.work = work
        (work / PROFILE).write_text(PROFILE_TEXT)
        self.todo = ordered()
        self.runs, self.by_argv, self.setups = {}, {}, {}

    def _run(self, argv) -> Run:
        threads = torch.get_num_threads()
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(self.work)
            mp.setenv("MAP_SUITE_CACHE", str(self.work / "cache"))
            mp.setattr(default_model, "DEFAULT_MODEL", self.work / "model.pt")
            torch.set_num_threads(1)
            try:
                run = run_command(argv, self.work)
            finally:
                torch.set_num_threads(threads)  # also undoes a command's --threads
        print(f"{run.seconds:6.1f} s ({run.cpu:5.1f} s CPU) rc {run.rc}: {' '.join(argv)}", file=sys.stderr)
        return run

    def result(self, line: str) -> Run:
        for earlier, argv in self.todo:
            if earlier not in self.runs:
                for name in STAGES[:stage(earlier)]:  # the inputs the earlier stages' SETUP makes
                    for setup in SETUP.get(name, []):
                        if tuple(setup) not in self.setups:
                            self.setups[tuple(setup)] = self._run(["map-suite", *setup])
                if tuple(argv) not in self.by_argv:
                    self.by_argv[tuple(argv)] = self._run(argv)
                self.runs[earlier] = self.by_argv[tuple(argv)]
            if earlier == line:
                return self.runs[line]
        raise KeyError(line)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    return Chain(tmp_path_factory.mktemp("readme"))


@pytest.mark.slow  # OpenMM, whole gate runs and pytest subprocesses (README: `-m "not slow"` leaves these out)
@pytest.mark.parametrize("line", [line for line, _ in ordered()], ids=str)  # in the chain's order: --durations shows each
def test_documented_command_runs(chain, line):
    run = chain.result(line)
    made = [f"`map-suite {' '.join(s)}`: {r.verdict()}" for s, r in chain.setups.items() if r.verdict()]
    problem = run.verdict()
    assert problem == "", (f"`{line}`, run as `{' '.join(run.argv)}`: {problem}"
                           + ("\ninputs the documents assume, not made: " + "; ".join(made) if made else ""))


def test_every_documented_command_is_run_or_mapped():
    """A command added to a document later fails here until it has a run (a STAGES entry) or a mapping."""
    orphans = [f"{doc}: {line}" for doc, line in documented_commands() if elsewhere(line) is None and stage(line) is None]
    assert not orphans, "documented commands that nothing runs:\n" + "\n".join(orphans)
    for pattern, target in ELSEWHERE.items():
        assert any(re.search(pattern, line) for _, line in documented_commands()), f"{pattern} maps no documented command"
        where, name = target.split("::")
        text = (ROOT / where).read_text()
        if where == ".ci/run":
            assert any(row.strip().startswith(name) for row in text.splitlines()), f".ci/run does not run `{name}`"
        else:
            assert re.search(rf"^def {re.escape(name)}\(", text, re.M), f"{where} has no test {name}"


def test_the_gate_profile_of_the_runs_is_small_and_runs_md(tmp_path):
    """PROFILE_TEXT is the crash-test profile with MD on (a changed TINY_PROFILE cannot silently turn it off)."""
    (tmp_path / PROFILE).write_text(PROFILE_TEXT)
    profile = load_profile(tmp_path / PROFILE)
    assert profile.name == PROFILE_NAME and profile["md"]["enabled"] and profile["md.rpmd"]["enabled"]
    assert profile["sampling"]["n_boxes"] == 2 and profile["md.classical"]["npt_ps"] <= 0.2


def test_shrinking_keeps_every_documented_option():
    """The small argv has every option of the documented command, in the same program and command."""
    for line, argv in runnable().items():
        documented = [a.strip("[]") for a in shlex.split(line)]
        assert argv[:2] == documented[:2], line
        assert [a for a in documented if a.startswith("--")] == [a for a in argv if a.startswith("--")][
            :len([a for a in documented if a.startswith("--")])], line
