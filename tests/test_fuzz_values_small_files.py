"""Well-formed small files with hostile values (issue 29): known-failures files (TOML, read by
`pytest validation --expected-failures`) and Dask scheduler files (JSON, read by `--scheduler FILE`).
Each is a valid file of its kind (the shipped known-failures file; a scheduler file as `dask scheduler
--scheduler-file` writes it) with one field set to a number, a value of the wrong type, an overflowing
integer, deep nesting, or text that is not a check name or a scheduler address. The reader either
returns what its callers use, of the right type, or raises one MapSuiteError line naming the file.
"""

import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hostile import DEEP_JSON, FUZZ, HOSTILE_NUMBER, HUGE_DIGITS, WRONG_JSON_TYPE, WRONG_TOML_TYPE, toml_value
from hypothesis import given
from hypothesis import strategies as st

from map_core.cluster import SCHEMES, read_scheduler_file
from map_core.errors import MapSuiteError
from map_core.model.default import default_model_path
from validation.cli.main import main
from validation.gate.expected import ALL_CHECKS, load_expected_failures

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = ROOT / "map_core" / "data" / "default_model_known_failures.toml"
KNOWN = tomllib.loads(EXPECTED.read_text())


def assert_one_line(exc: MapSuiteError, path) -> None:
    assert str(path) in str(exc) and "\n" not in str(exc), str(exc)


# --- known-failures files --------------------------------------------------------------------------------

def known_text(data: dict) -> str:
    lines = []
    for name, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{json.dumps(name)}]")
            lines.extend(f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items())
        else:
            lines.insert(0, f"{json.dumps(name)} = {toml_value(table)}")
    return "\n".join(lines) + "\n"


@st.composite
def hostile_known_failures(draw):
    """(data, must_refuse): the shipped file with a reason, a check name or a whole table spoiled."""
    data = json.loads(json.dumps(KNOWN))
    profile = draw(st.sampled_from(sorted(data)))
    what = draw(st.sampled_from(["reason", "check", "table"]))
    if what == "reason":
        check = draw(st.sampled_from(sorted(data[profile])))
        value = draw(st.one_of(HOSTILE_NUMBER, WRONG_TOML_TYPE, st.sampled_from(["", "   ", "x" * 5000, "ok"])))
        data[profile][check] = value
        return data, not (isinstance(value, str) and value.strip() and len(value) <= 2000)
    if what == "check":
        name = draw(st.one_of(st.text(min_size=1, max_size=12), st.sampled_from(["G_OO", "g_OO ", "orphans", "md"])))
        data[profile][name] = "measured"
        return data, name not in ALL_CHECKS
    value = draw(st.one_of(HOSTILE_NUMBER, WRONG_TOML_TYPE))
    data[profile] = value
    return data, not isinstance(value, dict) or any(k not in ALL_CHECKS for k in value)


@FUZZ
@given(case=hostile_known_failures(), profile=st.sampled_from(["smoke", "quick", "paper"]))
def test_known_failures_values_are_checked(tmp_path_factory, case, profile):
    data, refuse = case
    path = tmp_path_factory.mktemp("known") / "known.toml"
    path.write_text(known_text(data))
    try:
        found = load_expected_failures(path, profile)
    except MapSuiteError as exc:
        assert_one_line(exc, path)
        return
    assert not refuse, f"accepted: {str(data)[:200]}"
    assert all(name in ALL_CHECKS and isinstance(why, str) and why.strip() for name, why in found.items())


@pytest.mark.parametrize("text", [
    '[smoke]\nenergy = 5\n', '[smoke]\nenergy = ""\n', '[smoke]\nenergy = ["a"]\n', '[smoke]\nenergy = {why = "a"}\n',
    '[quick]\nno_such_check = "x"\n', 'smoke = "energy"\n', f'[smoke]\nenergy = {HUGE_DIGITS}\n',
    f'[smoke]\nenergy = {"[" * 100_000}{"]" * 100_000}\n',
], ids=["number", "empty", "array", "table", "unknown-other-table", "not-a-table", "huge", "deep"])
def test_known_failures_defects_are_refused_whichever_profile_is_read(tmp_path, text):
    path = tmp_path / "known.toml"
    path.write_text(text)
    with pytest.raises(MapSuiteError) as info:
        load_expected_failures(path, "smoke")
    assert_one_line(info.value, path)


def test_the_shipped_known_failures_file_loads():
    for profile in ("smoke", "quick", "gpu"):
        assert load_expected_failures(EXPECTED, profile) == KNOWN.get(profile, {})


def test_the_gate_refuses_a_bad_known_failures_file_before_any_work(tmp_path):
    """`pytest validation --expected-failures`: a pytest usage error (exit 4), one line naming the file."""
    path = tmp_path / "known.toml"
    path.write_text('[smoke]\nenergy = 7.5\n')
    out = tmp_path / "gate"
    run = subprocess.run([sys.executable, "-m", "pytest", "validation", "-q", "-p", "no:cacheprovider", "--profile", "smoke",
                          "--expected-failures", str(path), "--out", str(out), "--gate-cache", str(tmp_path / "cache")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    lines = [line for line in run.stderr.splitlines() if "map-suite gate" in line]
    assert run.returncode == 4 and len(lines) == 1 and str(path) in lines[0], run.stderr[-2000:]
    assert not out.exists() and not (tmp_path / "cache").exists()


# --- Dask scheduler files -------------------------------------------------------------------------------

SCHEDULER = {"type": "Scheduler", "id": "Scheduler-1", "address": "tcp://10.0.0.5:8786", "services": {"dashboard": 8787},
             "started": 1764630000.0, "n_workers": 0, "total_threads": 0, "total_memory": 0, "workers": {}}
GOOD_ADDRESSES = ["tcp://10.0.0.5:8786", "tcp://[::1]:8786", "tls://node-7.cluster.example:8786", "ws://h:1",
                  "inproc://10.0.0.5/1234/1"]
BAD_ADDRESSES = ["tcp://h:0", "tcp://h:65536", "tcp://h", "tcp://:8786", "http://h:8786", "tcp://h:port", "tcp://h:80/x",
                 "tcp://a b:1", "tcp://h:1\n", "tcp://h$:1", "inproc://", "://h:1", "tcp://" + "h" * 2000 + ":1"]
TYPES = {"type": str, "id": str, "services": dict, "started": (int, float), "workers": dict, "n_workers": int,
         "total_threads": int, "total_memory": int}


@st.composite
def hostile_scheduler_files(draw):
    """(text, must_refuse, good_address)."""
    info = dict(SCHEDULER)
    key = draw(st.sampled_from(["address", "address", *TYPES]))
    value = draw(st.one_of(HOSTILE_NUMBER, WRONG_JSON_TYPE, st.sampled_from(GOOD_ADDRESSES + BAD_ADDRESSES),
                           st.text(max_size=30), st.sampled_from(["<huge>", "<deep>"])))
    info[key] = value
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        text = json.dumps(info)
    finally:
        sys.set_int_max_str_digits(old)
    text = text.replace('"<huge>"', HUGE_DIGITS).replace('"<deep>"', DEEP_JSON)
    if key == "address":
        return text, value not in GOOD_ADDRESSES, value in GOOD_ADDRESSES
    wrong = not isinstance(value, TYPES[key]) or isinstance(value, bool) or value in ("<huge>", "<deep>") \
        or (isinstance(value, float) and math.isnan(value))
    return text, wrong, False


@FUZZ
@given(case=hostile_scheduler_files())
def test_scheduler_file_values_are_checked(tmp_path_factory, case):
    text, refuse, good = case
    path = tmp_path_factory.mktemp("scheduler") / "scheduler.json"
    path.write_text(text)
    try:
        address = read_scheduler_file(path)
    except MapSuiteError as exc:
        assert_one_line(exc, path)
        assert not good, f"a valid address was refused: {exc}"
        return
    assert not refuse, f"accepted: {text[:200]}"
    assert isinstance(address, str) and address.split("://")[0] in SCHEMES and not any(c.isspace() for c in address)


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_addresses_no_client_can_dial_are_refused(tmp_path, address):
    path = tmp_path / "scheduler.json"
    path.write_text(json.dumps({**SCHEDULER, "address": address}))
    with pytest.raises(MapSuiteError) as info:
        read_scheduler_file(path)
    assert_one_line(info.value, path)


@pytest.mark.parametrize("address", GOOD_ADDRESSES)
def test_the_addresses_dask_writes_are_read(tmp_path, address):
    path = tmp_path / "scheduler.json"
    path.write_text(json.dumps({**SCHEDULER, "address": address}, indent=2))
    assert read_scheduler_file(path) == address


@pytest.mark.parametrize("field", [("address", 8786), ("workers", []), ("started", "yesterday"), ("services", {"a": "x"})],
                         ids=lambda f: f[0])
def test_generate_refuses_a_bad_scheduler_file_in_one_line(tmp_path, capsys, field):
    path = tmp_path / "scheduler.json"
    path.write_text(json.dumps({**SCHEDULER, field[0]: field[1]}))
    out = tmp_path / "out" / "boxes.npz"
    assert main(["generate", "--model", str(default_model_path()), "--scheduler", str(path), "--out", str(out),
                 "--shape", "4", "4", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err, err
    assert not out.exists()
