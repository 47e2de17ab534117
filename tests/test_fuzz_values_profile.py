"""Well-formed gate profiles with hostile values (issue 29): every numeric key of a shipped profile gets
NaN, +-inf, 0, negative, huge, tiny and overflowing numbers and values of the wrong TOML type, in a
complete copy of the shipped file or in a user file that `extends` it. `load_profile` either returns a
profile whose every value is in range and whose estimated cost fits (validation.gate.profile_budget),
or raises one MapSuiteError line naming the FILE and the KEY; never another exception, never a hang.
A few cases go through `map-suite validate` in process: exit 2, one stderr line, nothing written.
"""

import json
import math
import time

import pytest
from gate_helpers import TINY_PROFILE
from hostile import FUZZ, HOSTILE_NUMBER, WRONG_TOML_TYPE, toml_value
from hypothesis import given
from hypothesis import strategies as st

from map_core.errors import MapSuiteError
from validation.cli.main import main
from validation.gate.profile import SCHEMA, SHIPPED, _read_toml, load_profile, shipped_path
from validation.gate.profile_budget import MAX_RUN_DAYS, profile_costs

SHIPPED_DATA = {name: _read_toml(shipped_path(name), name) for name in SHIPPED}


def _shipped_value(data: dict, section: str, key: str):
    top, _, sub = section.partition(".")
    return (data[top].get(sub, {}) if sub else data[top]).get(key)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# (section, key) of every number in the shipped profiles ("md.classical" for nested tables); INT_KEYS: the integers
NUMERIC_KEYS = sorted((s, k) for s, keys in SCHEMA.items() for k in keys if _is_number(_shipped_value(SHIPPED_DATA["smoke"], s, k)))
INT_KEYS = {(s, k) for s, k in NUMERIC_KEYS if isinstance(_shipped_value(SHIPPED_DATA["smoke"], s, k), int)}


# --- a profile as TOML text --------------------------------------------------------------------------

def toml_text(data: dict) -> str:
    """A profile dict (nested tables as nested dicts) as TOML."""
    lines = []

    def table(name, body):
        scalars = {k: v for k, v in body.items() if not isinstance(v, dict) or k in SCHEMA.get(name, {})}
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in scalars.items())
        for k, v in body.items():
            if k not in scalars:
                table(f"{name}.{k}", v)

    for name, body in data.items():
        if isinstance(body, dict):
            table(name, body)
        else:
            lines.insert(0, f"{name} = {toml_value(body)}")
    return "\n".join(lines) + "\n"


def with_value(data: dict, section: str, key: str, value) -> dict:
    out = json.loads(json.dumps(data))  # a deep copy (the shipped values are plain TOML)
    top, _, sub = section.partition(".")
    (out[top][sub] if sub else out[top])[key] = value
    return out


def override(base: str, section: str, key: str, value) -> str:
    """A user file that extends a shipped profile and sets one key."""
    return f'extends = "{base}"\n[{section}]\n{key} = {toml_value(value)}\n'


def assert_refused(path, key: str, run=load_profile):
    t0 = time.perf_counter()
    with pytest.raises(MapSuiteError) as info:
        run(path)
    message = str(info.value)
    assert str(path) in message and key in message and "\n" not in message, message
    assert time.perf_counter() - t0 < 10, "a refusal must come before any work"
    return message


def shown(value) -> str:
    return f"an integer of {len(toml_value(value))} digits" if isinstance(value, int) and abs(value) > 10**100 else repr(value)


def must_refuse(section: str, key: str, value) -> bool:
    """Values no numeric key may hold: the wrong type, NaN or inf, and integers that no size,
    count or seed can be (negative, or 10**30 and up: every such key is bounded by the budget)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return True
    if isinstance(value, float) and not math.isfinite(value):
        return True
    return (section, key) in INT_KEYS and isinstance(value, int) and (value < 0 or value >= 10**30)


def check_one(path, section, key, value):
    try:
        profile = load_profile(path)
    except MapSuiteError as exc:
        message = str(exc)
        assert str(path) in message and "\n" not in message, message
        assert key in message, f"the refusal of [{section}] {key} = {shown(value)} does not name the key: {message}"
        return
    assert not must_refuse(section, key, value), f"[{section}] {key} = {shown(value)} was accepted"
    assert profile[section][key] == value or (isinstance(value, float) and math.isnan(value))
    assert sum(c.seconds for c in profile_costs(profile.data)) <= MAX_RUN_DAYS * 86400


HOSTILE = st.one_of(HOSTILE_NUMBER, WRONG_TOML_TYPE, st.sampled_from([10**12, 10**30, 10**5000, 2**64, -(10**30)]))


@FUZZ
@given(base=st.sampled_from(SHIPPED), where=st.sampled_from(NUMERIC_KEYS), value=HOSTILE, as_user_file=st.booleans())
def test_hostile_values_are_refused_naming_file_and_key(tmp_path_factory, base, where, value, as_user_file):
    section, key = where
    path = tmp_path_factory.mktemp("profile") / "hostile.toml"
    path.write_text(override(base, section, key, value) if as_user_file
                    else toml_text(with_value(SHIPPED_DATA[base], section, key, value)))
    check_one(path, section, key, value)


# The values a new user tried (issue 29): each hung, crashed or allocated terabytes before.
SEEN = [
    ("profile", "seed", 10**30), ("sampling", "n_boxes", 10**30), ("structure", "q_bins", 10**12),
    ("structure", "rdf_bin_nm", 1e-12), ("structure", "classifier_hidden", 10**12),
    ("structure", "classifier_folds", 10**9), ("structure", "classifier_epochs", 10**12),
    ("sampling", "region_nm", 1e300), ("sampling", "burn_in_fields", 1e300), ("reference", "windows", 10**12),
    ("markov", "seeded_boxes", 10**12), ("md", "timestep_fs", 1e-30), ("md.classical", "nvt_ps", 1e30),
    ("md.classical", "intra_substeps", 10**12), ("md.rpmd", "beads", 10**9), ("sampling", "temperature", 1e-300),
    ("structure", "classifier_max_samples", 10**30), ("profile", "seed", 10**5000), ("profile", "seed", -1),
    # wrong TOML types: a string, a table, an array and a bool where a number belongs
    ("sampling", "n_boxes", "4"), ("sampling", "n_boxes", {"a": 1}), ("sampling", "region_nm", [1.0]),
    ("sampling", "n_boxes", True), ("md", "box_nm", False), ("sampling", "temperature", float("nan")),
    ("md.rpmd", "nvt_ps", float("inf")), ("calibration", "voxel_nm", 0.0), ("calibration", "voxel_nm", -0.05),
    # the name becomes a folder (reports/gate-NAME)
    ("profile", "name", "../../elsewhere"), ("profile", "name", ""), ("profile", "name", 5),
]


@pytest.mark.parametrize("section, key, value", SEEN, ids=[f"{s}.{k}-{i}" for i, (s, k, _) in enumerate(SEEN)])
def test_values_seen_by_a_new_user_are_refused_at_load(tmp_path, section, key, value):
    path = tmp_path / "mine.toml"
    path.write_text(override("smoke", section, key, value))
    assert_refused(path, key)


# Keys that bound each other: each value alone is fine, together they are impossible.
RELATIONS = [
    ("[structure]\nclassifier_folds = 5\n", "classifier_folds"),  # smoke: 4 boxes a class
    ("[sampling]\nbatch = 8\n", "batch"),
    ("[md]\nmin_waters = 40\n", "min_waters"),  # a 1 nm box holds 33 waters
    ("[md]\ntraj_ps = 20.0\n", "traj_ps"),  # longer than the 12 ps classical run
    ("[md]\nbox_nm = 3.0\n", "box_nm"),
    ("[structure]\nrdf_r_max_nm = 0.9\n", "rdf_r_max_nm"),
    ("[md.rpmd]\nstart = \"repaired\"\n", "npt_ps"),
    # each alone takes hours at most; together: 10**7 epochs of 260 steps (33,000 molecules a class), weeks
    ("[sampling]\nn_boxes = 1000\n[reference]\nwindows = 1000\n[structure]\nclassifier_epochs = 10000000\n"
     + "classifier_max_samples = 100000\n", "classifier_epochs"),
]


@pytest.mark.parametrize("text, key", RELATIONS, ids=[k for _, k in RELATIONS])
def test_inconsistent_relations_are_refused(tmp_path, text, key):
    path = tmp_path / "mine.toml"
    path.write_text('extends = "smoke"\n' + text)
    assert_refused(path, key)


def test_a_seed_from_the_command_line_has_the_profile_seed_bound():
    """--seed takes the place of [profile] seed: the classifier feeds seed * 1000 + fold to torch.manual_seed."""
    smoke = load_profile("smoke")
    assert smoke.with_seed(12345).seed == 12345
    with pytest.raises(MapSuiteError, match="seed") as info:
        smoke.with_seed(2**62)
    assert str(shipped_path("smoke")) in str(info.value)


# --- valid input stays valid ----------------------------------------------------------------------------

TEST_PROFILES = {  # the profiles tests and benchmarks write (tests/gate_helpers.py and the files named)
    "crash-test": TINY_PROFILE,
    "md (test_scaleout, test_readme_commands)": TINY_PROFILE.replace("enabled = false\nbox_nm = 0.6", "box_nm = 0.7\nmin_waters = 8")
    + "[md.classical]\nnpt_ps = 0.2\nnvt_ps = 0.2\n[md.rpmd]\nbeads = 2\nnvt_ps = 0.04\n",
    "tiny (test_report)": 'extends = "smoke"\n[profile]\nname = "tiny"\ndescription = "pipeline test"\n[structure]\n'
    'classifier_epochs = 100\n[markov]\nseeded_boxes = 2\n[md]\nbox_nm = 0.8\ntraj_ps = 0.02\nmin_waters = 6\n'
    '[md.classical]\nnpt_ps = 1.0\nnvt_ps = 0.5\n[md.rpmd]\nbeads = 2\nnpt_ps = 0.02\nnvt_ps = 0.02\n',
    "load (benchmarks/bench_load.py)": 'extends = "smoke"\n[profile]\nname = "load"\n[sampling]\nn_boxes = 2\nbatch = 2\n'
    'region_nm = 0.8\n[reference]\nwindows = 2\n[structure]\nrdf_r_max_nm = 0.4\nsq_r_max_nm = 0.6\n[md]\n'
    'enabled = false\nbox_nm = 0.8\n',
    "temperature study (benchmarks/model_study.py)": 'extends = "quick"\n[sampling]\ntemperature = 0.9\n',
}


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads_within_its_budget(name):
    profile = load_profile(name)
    assert sum(c.seconds for c in profile_costs(profile.data)) < 3 * 3600  # the paper profile: ~1.2 h at the H200's rates


@pytest.mark.parametrize("name", TEST_PROFILES)
def test_the_profiles_tests_and_benchmarks_write_still_load(tmp_path, name):
    path = tmp_path / "p.toml"
    path.write_text(TEST_PROFILES[name])
    load_profile(path)


@pytest.mark.parametrize("name", SHIPPED)
def test_a_full_copy_written_by_this_test_loads_as_the_shipped_one(tmp_path, name):
    """The writer above is faithful: a hostile value is the only change a fuzzed file has."""
    path = tmp_path / f"{name}.toml"
    path.write_text(toml_text(SHIPPED_DATA[name]))
    assert load_profile(path).data == load_profile(name).data


# --- through the command line --------------------------------------------------------------------------

@pytest.mark.parametrize("section, key, value", [("sampling", "n_boxes", 10**30), ("structure", "classifier_folds", 10**9),
                                                 ("structure", "q_bins", 10**12), ("profile", "seed", "zero")])
def test_validate_refuses_in_one_line_and_writes_nothing(tmp_path, capsys, section, key, value):
    path = tmp_path / "mine.toml"
    path.write_text(override("quick", section, key, value))
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert main(["validate", "--profile", str(path), "--out", str(out), "--cache", str(cache), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and key in err, err
    assert not out.exists() and not cache.exists()
