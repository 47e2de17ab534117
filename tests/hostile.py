"""Hostile values for the structured fuzz suite (issue 29): hypothesis strategies that build the
*values* a well-formed file can carry. Each test_fuzz_values_*.py file puts them into one field of a
valid file of its kind and asserts the command's contract: exit 2 (or MapSuiteError in process), one
line naming the file, nothing left behind, and no verdict on input that should have been refused.

`EXAMPLES` examples per kind run in CI; `MAP_SUITE_FUZZ_EXAMPLES=2000 python -m pytest tests/test_fuzz_values_*.py`
is the slow variant (thousands per kind).
"""

import os

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("MAP_SUITE_FUZZ_EXAMPLES", "30"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

NON_FINITE = st.sampled_from([float("nan"), float("inf"), float("-inf")])
ZERO_OR_NEGATIVE = st.sampled_from([0.0, -0.0, -1e-300, -1.0, -1e30])
HUGE_FLOAT = st.sampled_from([1e12, 1e30, 1e300, np.finfo(np.float64).max])
TINY_FLOAT = st.sampled_from([1e-12, 1e-30, 5e-324])
HUGE_INT = st.sampled_from([2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, 10**5000])
NEGATIVE_INT = st.sampled_from([-1, -(2**31), -(2**63)])

# any number a field of a well-formed file may hold that no physical box, model or profile has
HOSTILE_FLOAT = st.one_of(NON_FINITE, ZERO_OR_NEGATIVE, HUGE_FLOAT, TINY_FLOAT)
HOSTILE_INT = st.one_of(HUGE_INT, NEGATIVE_INT, st.just(0))
HOSTILE_NUMBER = st.one_of(HOSTILE_FLOAT, HOSTILE_INT)

# wrong JSON / TOML types in place of a number, a string or a table
WRONG_JSON_TYPE = st.one_of(st.none(), st.booleans(), st.text(max_size=8), st.lists(st.integers(), max_size=3),
                            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
WRONG_TOML_TYPE = st.one_of(st.booleans(), st.text(max_size=8), st.lists(st.integers(), max_size=3),
                            st.dictionaries(st.text(min_size=1, max_size=3), st.integers(), max_size=2))


def hostile_array(shape: tuple, dtype=np.float32):
    """A strategy for arrays of `shape` holding one hostile value somewhere among valid ones."""
    n = int(np.prod(shape))

    @st.composite
    def build(draw):
        values = np.ones(shape, dtype=dtype).reshape(-1)
        index = draw(st.integers(0, max(n - 1, 0)))
        value = draw(HOSTILE_FLOAT)
        with np.errstate(over="ignore", invalid="ignore"):
            values[index] = value
        return values.reshape(shape)

    return build()


# --- frames files and box files (issue 29, part 1: test_fuzz_values_frames.py, test_fuzz_values_boxes.py) ---

# values no atom of a box (edges 0.001..1000 nm) can have: past 1000 box lengths from it, or not finite
NOT_A_POSITION = st.one_of(NON_FINITE, HUGE_FLOAT, st.sampled_from([-1e12, -1e30, -np.finfo(np.float64).max]))
# text that is no element symbol: wrong case, water atom *names*, padding, unknown symbols, anything else
NOT_AN_ELEMENT = st.one_of(
    st.sampled_from(["o", "h", "oh", "OW", "HW", "Ow", " O", "O ", "", "Q", "Xx", "M", "LP", "OW1", "H1", "Oxygen"]),
    st.text(min_size=1, max_size=4).filter(lambda s: s.strip("\x00") and s not in _ELEMENT_SYMBOLS))
# what a numeric array of a well-formed .npz may be stored as instead of real numbers
WRONG_NUMBER_DTYPE = st.sampled_from(["text", "bytes", "complex", "bool", "datetime", "record"])
# Beware: hypothesis writes repr(strategy) when a .filter rejects a draw, and repr(10**5000) raises ValueError
# (Python's 4300-digit limit); so never .filter HUGE_INT, HOSTILE_INT or HOSTILE_NUMBER: use assume() instead.


def _element_symbols() -> frozenset:
    from ase.data import chemical_symbols

    return frozenset(chemical_symbols) | {"VS", "EP"}


_ELEMENT_SYMBOLS = _element_symbols()


def with_dtype(array, kind: str) -> np.ndarray:
    """`array` (real numbers) stored as `kind` (one of WRONG_NUMBER_DTYPE), same shape."""
    a = np.asarray(array)
    if kind == "text":
        return a.astype(str)
    if kind == "bytes":
        return a.astype("S32")
    if kind == "complex":
        return a.astype(np.complex128) + 1j
    if kind == "bool":
        return a != 0
    if kind == "datetime":
        return a.astype(np.int64).astype("datetime64[s]")
    out = np.zeros(a.shape, dtype=[("value", np.float64)])
    out["value"] = a
    return out


# --- hostile output paths (issue 29, part 3: tests/test_fuzz_values_outputs.py and the others) -------------------
# What a user may pass as --out that no command can write. A strategy draws a recipe; `make_output_path` makes it
# real inside a fresh folder and returns the text to pass (None where this machine cannot make it: an unwritable
# folder for root, who may write anywhere, on a machine without a read-only file system to point at).
FILE_OUTPUT_DEFECTS = ("existing folder", "below a file", "below a file, deeper", "empty", "blank", "trailing slash",
                       "unwritable folder", "name too long", "a device")
FOLDER_OUTPUT_DEFECTS = ("existing file", "below a file", "below a file, deeper", "empty", "blank", "unwritable folder",
                         "name too long")
SAFE_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=12)


def hostile_output_path(kind: str = "file"):
    """A strategy for (defect, name) recipes of outputs of `kind` ("file" or "folder") that cannot be written."""
    return st.tuples(st.sampled_from(FILE_OUTPUT_DEFECTS if kind == "file" else FOLDER_OUTPUT_DEFECTS), SAFE_NAME)


def make_output_path(recipe, folder, suffix: str = ""):
    """The --out text of `recipe` (from `hostile_output_path`) made real in `folder` (fresh, writable); or None."""
    defect, name = recipe
    folder = str(folder)
    target = os.path.join(folder, name + suffix)
    if defect in ("existing folder", "trailing slash"):
        os.mkdir(target)
        return target + ("/" if defect == "trailing slash" else "")
    if defect == "existing file":
        with open(target, "w") as fh:
            fh.write("an earlier file\n")
        return target
    if defect.startswith("below a file"):
        with open(os.path.join(folder, name), "w") as fh:
            fh.write("a file, not a folder\n")
        return os.path.join(folder, name, *(["sub"] if defect.endswith("deeper") else []), "out" + suffix)
    if defect == "empty":
        return ""
    if defect == "blank":
        return "   "
    if defect == "name too long":
        return os.path.join(folder, "n" * 300 + suffix)
    if defect == "a device":
        return os.devnull
    if defect == "unwritable folder":
        locked = os.path.join(folder, f"locked_{name}")
        os.mkdir(locked)
        os.chmod(locked, 0o555)
        if not os.access(locked, os.W_OK):
            return os.path.join(locked, "out" + suffix)
        os.chmod(locked, 0o755)  # root writes anywhere: a read-only file system is the only unwritable folder
        for readonly in ("/proc/sys", "/sys/kernel"):
            if os.path.isdir(readonly) and not os.access(readonly, os.W_OK):
                return os.path.join(readonly, f"map_suite_{name}{suffix}")
        return None
    raise ValueError(f"unknown defect {defect!r}")


def unlock(folder) -> None:
    """Make every folder under `folder` writable again (after "unwritable folder"), so that it can be removed."""
    for root, dirs, _ in os.walk(folder):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)


def tree(folder) -> dict:
    """{relative path: bytes or 'folder'} of everything under `folder`: what a refusal must leave as it was."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), folder)] = "folder"
        for f in files:
            path = os.path.join(root, f)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, folder)] = fh.read()
    return out


# --- hostile frames content for `map-suite export` (tests/test_fuzz_values_export.py) --------------------------------
# Each spoils one field of valid frames in a way a frames file may carry but an exporter cannot write.
EXPORT_ELEMENT_DEFECTS = st.sampled_from(["C", "Na", "Cl", "X", "EP", "VS", "D", "He"])  # writable by some formats only
EXPORT_MOLECULE_DEFECTS = st.sampled_from(["incomplete water", "lone oxygen", "lone hydrogens", "two waters, one id"])


# --- hostile values written into TOML and JSON files (tests/test_fuzz_values_profile.py, _results.py,
# _small_files.py: gate profiles, known-failures files, results.json, Dask scheduler files) ------------------
HUGE_DIGITS = "1" + "0" * 5000  # an integer literal past Python's 4300-digit int-string limit
DEEP_JSON = "[" * 100_000 + "]" * 100_000  # nesting past Python's recursion limit


def _digits(n: int) -> str:
    """str(n) of a non-negative integer past Python's int-string limit, a thousand digits at a time."""
    if n < 10**4000:
        return str(n)
    high, low = divmod(n, 10**1000)
    return _digits(high) + str(low).zfill(1000)


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    return '"' + "".join(f"\\u{ord(c):04x}" if c in '"\\' or ord(c) < 0x20 or ord(c) == 0x7F else c for c in text) + '"'


def toml_value(v) -> str:
    """TOML text of any value the strategies above draw (10**5000 included: written out in full)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return ("-" if v < 0 else "") + _digits(abs(v))
    if isinstance(v, float):
        if np.isnan(v):
            return "nan"
        return ("inf" if v > 0 else "-inf") if np.isinf(v) else repr(float(v))  # np.float64's repr is not TOML
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_string(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))
