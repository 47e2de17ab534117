"""The values of frames, checked once for every reader and writer (issue 29).

Two steps, both ending any defect in one MapSuiteError line that names the file:

- `check_arrays`: the arrays of a frames file as numpy read them, before they are converted
  (a conversion would hide the defect: float32 of a string array parses it, int32 of an int64
  molecule id wraps it round, '<U2' of a long name cuts it short, and an int64 sum of counts can
  wrap round to the right total). `parse_meta` reads the ``meta`` JSON text.
- `check_frames_values`: a `Frames` object, whatever made it (a frames file, a foreign format of
  ``validation.md.imports``, a writer about to save it). ``map_core.atoms.frames.check_frames``
  is the entry point that `load_frames`, `save_frames` and `read_boxes` call.

What is checked, and the bounds (lengths nm):

========================= ===================================================================
field                     accepted
========================= ===================================================================
positions                 real numbers (float or integer dtype), (N_f, 3) per frame, finite,
                          within POSITION_REACH box lengths of the box (MD frames may be unwrapped)
elements                  a string array; each an element symbol, case exact (``ase.data``),
                          or a virtual site (VIRTUAL_SITE_SYMBOLS)
molecule                  integers, -1 (no molecule) or 0 <= id < N_f; one id holds at most one
                          water's atoms (MOLECULE_AT_MOST)
counts                    integers, 0 <= c <= len(positions), adding up (exactly) to it
box                       real numbers, (F, 3), finite, BOX_NM[0] <= L <= BOX_NM[1]
meta                      a JSON object; known keys typed and bounded (META_RULES)
========================= ===================================================================
"""

from __future__ import annotations

import functools
import json
import math
import numbers

import numpy as np

from map_core.errors import MapSuiteError
from map_core.values import shown_value

# Voxel edges, nm (meta voxel_nm): from the smallest voxel a checkpoint may have (0.001 nm,
# map_core.model.checkpoint.VOXEL_NM_MIN; the seed paper's is 0.025 nm) to 1 nm, where one voxel holds
# several waters. Generated boxes record their model's voxel, so this range must hold the checkpoints'.
VOXEL_NM = (0.001, 1.0)
# Box edges, nm. Smallest: one voxel of the smallest voxel (a generated box may be a few voxels);
# largest: 1000 nm is about 3e10 waters, far past the largest water MD (~100 nm), and keeps
# (box / voxel)^3 below 2^63 at the smallest voxel. Memory is a separate budget
# (map_core.atoms.voxels.check_voxel_budget; the gate's periodic images: validation.gate.inputs).
BOX_NM = (VOXEL_NM[0], 1000.0)
# Positions may lie this many box lengths outside their box. MD frames may be unwrapped: a water
# diffuses about sqrt(6 D t) = 120 nm in 1 us (D = 2.3e-9 m^2/s), 65 lengths of the shipped 1.86 nm
# box; shipped files hold wrapped MD frames (0 lengths out) and generated open boxes (hydrogens up
# to 0.035 lengths out). 1000 is generous and still refuses what no atom of the box can hold
# (1e30, float32's largest).
POSITION_REACH = 1000
# Virtual sites of water models that a file may state as an element (imports.py drops them on reading):
# mdtraj's VS, OpenMM's PDB writer's EP, ASE's dummy X.
VIRTUAL_SITE_SYMBOLS = ("X", "VS", "EP")
# A molecule id numbers one water molecule of its frame: at most its O, its two H and two virtual
# sites (TIP5P's lone pairs). Fewer are fine (a water cut at a face keeps fewer atoms); more, or any
# other element, cannot be one water (this project's frames hold water).
MOLECULE_AT_MOST = {"O": 1, "H": 2, **{s: 2 for s in VIRTUAL_SITE_SYMBOLS}}
TEMPERATURE_K = (1.0, 1.0e4)  # MD, K: path-integral ice goes down to ~10 K; 1e4 K is far past any water
SOFTMAX_TEMPERATURE = (0.0, 1.0e4)  # generated boxes: 0 is argmax sampling
BEADS_MAX = 10_000  # RPMD beads: the seed paper uses 32; path-integral water rarely goes past 128
SEED_MAX = 2**63 - 1  # as --seed (map_core.arguments.SEED)
SAMPLED_METHODS = ("map", "map-motif")  # meta method of generated boxes: temperature is a softmax one, 0 = argmax


# --- the arrays of a file, before conversion ------------------------------------------------------


def parse_meta(raw, path) -> dict:
    """The ``meta`` array of a frames file (a 0-d string holding JSON) as a dict; None: {}."""
    if raw is None:
        return {}
    if raw.dtype.kind not in "US" or raw.shape != ():
        raise MapSuiteError(f"meta must be one JSON text, not an array of {raw.dtype} {raw.shape}", path)
    try:
        text = str(raw[()].decode("ascii") if raw.dtype.kind == "S" else raw[()])
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad bytes, integers past 4300 digits
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise MapSuiteError(f"meta is not valid JSON ({first})", path) from None
    if not isinstance(meta, dict):
        raise MapSuiteError(f"meta must be a JSON object (keys and values), not a JSON {_json_kind(meta)}", path)
    return meta


def check_arrays(arrays: dict, path) -> np.ndarray:
    """Check the frames arrays of a file as read, before any conversion; return atoms per frame (F,) int64.

    arrays: 'positions' (sum N, 3) with 'counts' (F,), or (F, N, 3) (fixed layout); 'elements'
    (sum N,) or (N,); 'molecule' (same shape as elements, optional); 'box' (F, 3) nm."""
    positions, elements, box = arrays["positions"], arrays["elements"], arrays["box"]
    molecule, counts = arrays.get("molecule"), arrays.get("counts")
    _real_array(positions, "positions", path)
    _real_array(box, "box", path)
    _string_array(elements, "elements", path)
    if positions.ndim == 3 and positions.shape[2] == 3:  # fixed layout: one composition
        n_frames, n_atoms = positions.shape[:2]
        if elements.shape != (n_atoms,):
            raise MapSuiteError(f"elements of shape {elements.shape} for positions {positions.shape}: expected ({n_atoms},)", path)
        per_frame = np.full(n_frames, n_atoms, dtype=np.int64)
        if counts is not None and not np.array_equal(_counts(counts, n_frames * n_atoms, path), per_frame):
            raise MapSuiteError(f"counts disagree with positions of shape {positions.shape} (fixed layout)", path)
    elif positions.ndim == 2 and positions.shape[1] == 3:  # ragged layout
        if counts is None:
            raise MapSuiteError(f"positions of shape {positions.shape} without counts", path)
        if elements.shape != (len(positions),):
            raise MapSuiteError(f"{len(positions)} positions but elements of shape {elements.shape}", path)
        per_frame = _counts(counts, len(positions), path)
    else:
        raise MapSuiteError(f"positions must be (atoms, 3) or (frames, atoms, 3), not {positions.shape}", path)
    if molecule is not None:
        _integer_array(molecule, "molecule", path)
        if molecule.shape != elements.shape:
            raise MapSuiteError(f"molecule ids of shape {molecule.shape} for elements {elements.shape}", path)
        if molecule.size and (molecule.min() < -1 or molecule.max() > np.iinfo(np.int32).max):
            raise MapSuiteError(f"molecule ids must be -1 or a molecule's index, not {molecule.min()}..{molecule.max()}", path)
    if box.shape != (len(per_frame), 3) and not (len(per_frame) == 1 and box.shape == (3,)):
        raise MapSuiteError(f"box has shape {box.shape}, expected ({len(per_frame)}, 3)", path)
    check_elements(elements, path)  # before '<U2' would cut a long name to a valid one
    return per_frame


def _counts(counts: np.ndarray, n_positions: int, path) -> np.ndarray:
    """(F,) int64 atoms per frame: integers in 0..n_positions that add up to n_positions exactly."""
    _integer_array(counts, "counts", path)
    if counts.ndim != 1:
        raise MapSuiteError(f"counts must be one number per frame, not of shape {counts.shape}", path)
    if len(counts) == 0:
        raise MapSuiteError("no frames", path)
    bad = np.flatnonzero((counts < 0) | (counts > n_positions))
    if len(bad):
        raise MapSuiteError(f"frame {bad[0]} has a count of {counts[bad[0]]} atoms; counts are 0..{n_positions} "
                            "(the atoms in the file)", path)
    total = sum(counts.tolist())  # Python ints: an int64 sum of huge counts can wrap round to the right total
    if total != n_positions:
        raise MapSuiteError(f"counts add up to {total} atoms, not the {n_positions} positions", path)
    return counts.astype(np.int64)


# --- a Frames object -------------------------------------------------------------------------------


def check_frames_values(frames, path=None, allow_empty_frames: bool = False) -> None:
    """Check every field of `frames` (map_core.atoms.frames.Frames) and their relations (module docstring)."""
    check_meta(frames.meta, path)
    n_frames = len(frames)
    if n_frames == 0:
        raise MapSuiteError("no frames", path)
    if len(frames.elements) != n_frames or len(frames.molecule) != n_frames:
        raise MapSuiteError(f"{n_frames} frames of positions but {len(frames.elements)} of elements and "
                            f"{len(frames.molecule)} of molecule ids", path)
    box = check_box(frames.box, n_frames, path)
    counts = np.zeros(n_frames, dtype=np.int64)
    for f, (pos, elem, mol) in enumerate(zip(frames.positions, frames.elements, frames.molecule)):
        pos, elem, mol = np.asarray(pos), np.asarray(elem), np.asarray(mol)
        _real_array(pos, f"frame {f}: positions", path)
        _string_array(elem, f"frame {f}: elements", path)
        _integer_array(mol, f"frame {f}: molecule ids", path)
        if pos.ndim != 2 or pos.shape[1] != 3:
            raise MapSuiteError(f"frame {f}: positions of shape {pos.shape}, expected (atoms, 3)", path)
        if elem.shape != (len(pos),) or mol.shape != (len(pos),):
            raise MapSuiteError(f"frame {f}: {len(pos)} positions but {elem.size} elements, {mol.size} molecule ids", path)
        if len(pos) == 0 and not allow_empty_frames:
            raise MapSuiteError(f"frame {f} has no atoms", path)
        counts[f] = len(pos)
    if counts.sum() == 0:
        return
    elements = np.concatenate([np.asarray(e) for e in frames.elements])
    check_elements(elements, path)
    check_positions([np.asarray(p) for p in frames.positions], box, path)
    check_molecules(np.concatenate([np.asarray(m, dtype=np.int64) for m in frames.molecule]), elements, counts, path)


def check_box(box, n_frames: int, path) -> np.ndarray:
    """(F, 3) float64 edge lengths nm: real, finite, within BOX_NM."""
    box = np.asarray(box)
    _real_array(box, "box", path)
    if box.shape != (n_frames, 3):
        raise MapSuiteError(f"box has shape {box.shape}, expected ({n_frames}, 3)", path)
    with np.errstate(over="ignore", invalid="ignore"):  # a long double past float64 becomes inf: refused below
        box = box.astype(np.float64)
    lo, hi = BOX_NM
    bad = np.flatnonzero(~np.all(np.isfinite(box) & (box > 0), axis=1))
    if len(bad):
        raise MapSuiteError(f"box lengths must be finite and positive; frame {bad[0]} has {_lengths(box[bad[0]])} nm", path)
    bad = np.flatnonzero(np.any((box < lo) | (box > hi), axis=1))
    if len(bad):
        raise MapSuiteError(f"frame {bad[0]}'s box of {_lengths(box[bad[0]])} nm is outside the plausible {lo:g} to "
                            f"{hi:g} nm per edge", path)
    return box


def check_positions(positions: list, box: np.ndarray, path) -> None:
    """Per frame (N_f, 3) positions nm: finite, within POSITION_REACH box lengths of their box (F, 3)."""
    for f, pos in enumerate(positions):
        if not len(pos):
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            pos = pos.astype(np.float64)
        if not np.all(np.isfinite(pos)):
            raise MapSuiteError(f"frame {f} has non-finite (NaN or inf) positions", path)
        reach = POSITION_REACH * box[f]
        if np.any(pos < -reach) or np.any(pos > box[f] + reach):
            far = float(np.max(np.maximum(-pos, pos - box[f])))
            raise MapSuiteError(f"frame {f} has an atom {far:.3g} nm outside its box of {_lengths(box[f])} nm "
                                f"(more than {POSITION_REACH} box lengths: not a position of this box)", path)


def check_elements(elements: np.ndarray, path) -> None:
    """Every symbol an element (``ase.data.chemical_symbols``, case exact) or a virtual site."""
    names = np.unique(elements)
    if names.dtype.kind == "S":
        names = np.array([n.decode("latin-1") for n in names.tolist()], dtype=str)
    unknown = [str(n) for n in names.tolist() if n not in element_symbols()]
    if unknown:
        shown = ", ".join(repr(n) for n in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise MapSuiteError(f"elements {shown} are not element symbols (case matters: O, H; virtual sites "
                            f"{', '.join(VIRTUAL_SITE_SYMBOLS)})", path)


@functools.cache
def element_symbols() -> frozenset:
    from ase.data import chemical_symbols  # local: ase is slow to import, and only this needs it here

    return frozenset(chemical_symbols[1:]) | frozenset(VIRTUAL_SITE_SYMBOLS)


def check_molecules(molecule: np.ndarray, elements: np.ndarray, counts: np.ndarray, path) -> None:
    """Molecule ids (sum N,) of frames of `counts` atoms: -1 or 0 <= id < N_f (ids number the molecules
    of a frame, and readers allocate by the largest), one id at most one water's atoms (MOLECULE_AT_MOST)."""
    ends = np.cumsum(counts)
    starts = ends - counts
    size = np.repeat(counts, counts)  # atoms in each atom's frame
    bad = np.flatnonzero((molecule < -1) | (molecule >= size))
    if len(bad):
        f = int(np.searchsorted(ends, bad[0], side="right"))
        raise MapSuiteError(f"frame {f}: molecule id {molecule[bad[0]]} is neither -1 (none) nor the index of one of "
                            f"its molecules (0..{counts[f] - 1})", path)
    member = molecule >= 0
    key = (np.repeat(starts, counts) + molecule)[member]  # one key per (frame, molecule id)
    symbols = elements[member]
    for symbol, most in [*MOLECULE_AT_MOST.items(), (None, 0)]:
        of = symbols == symbol if symbol else ~np.isin(symbols, list(MOLECULE_AT_MOST))
        held = np.bincount(key[of], minlength=1)
        k = int(np.argmax(held))
        if held[k] > most:
            f = int(np.searchsorted(ends, k, side="right"))
            what = f"{held[k]} {symbol} atoms" if symbol else f"an atom of {symbols[of][np.argmax(key[of] == k)]}"
            raise MapSuiteError(f"frame {f}: molecule {k - starts[f]} holds {what}; a molecule id is one water "
                                "(at most one O, two H and two virtual sites)", path)


# --- meta --------------------------------------------------------------------------------------------


def _number(v) -> bool:
    """A real JSON number (not a bool), finite."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        return False
    return isinstance(v, numbers.Integral) or math.isfinite(v)


def _integer(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _temperature(v, meta) -> bool:
    """K for MD; a softmax temperature for generated boxes (0 means argmax)."""
    lo, hi = SOFTMAX_TEMPERATURE if meta.get("method") in SAMPLED_METHODS else TEMPERATURE_K
    return _number(v) and lo <= v <= hi


# key -> (accepts(value, meta), what it must be)
META_RULES = {
    "voxel_nm": (lambda v, m: _number(v) and VOXEL_NM[0] <= v <= VOXEL_NM[1],
                 f"a voxel edge in nm, a number from {VOXEL_NM[0]:g} to {VOXEL_NM[1]:g}"),
    "temperature": (_temperature, (f"a temperature from {TEMPERATURE_K[0]:g} to {TEMPERATURE_K[1]:g} K (MD), or a "
                                   f"softmax temperature from {SOFTMAX_TEMPERATURE[0]:g} (generated boxes)")),
    "beads": (lambda v, m: _integer(v) and 1 <= v <= BEADS_MAX, f"a whole number of beads from 1 to {BEADS_MAX}"),
    "seed": (lambda v, m: _integer(v) and 0 <= v <= SEED_MAX, "a whole number from 0 to 2^63 - 1"),
    "periodic": (lambda v, m: isinstance(v, bool), "true or false"),
    "method": (lambda v, m: isinstance(v, str), "text"),
    "source": (lambda v, m: isinstance(v, str), "text"),
}


def check_meta(meta, path) -> None:
    """meta: a dict (a JSON object) whose known keys (META_RULES) hold values of their type and range."""
    if not isinstance(meta, dict):
        raise MapSuiteError(f"meta must be a JSON object (keys and values), not a JSON {_json_kind(meta)}", path)
    for key, (accepts, wanted) in META_RULES.items():
        if key in meta and not accepts(meta[key], meta):
            raise MapSuiteError(f"meta {key} is {shown_value(meta[key])}: it must be {wanted}", path)


# --- helpers -----------------------------------------------------------------------------------------


def _real_array(a: np.ndarray, name: str, path) -> None:
    if a.dtype.kind not in "fiu":  # not bool, complex, text, bytes, objects, records or dates
        raise MapSuiteError(f"{name} must be real numbers, not {_dtype(a)}", path)


def _integer_array(a: np.ndarray, name: str, path) -> None:
    if a.dtype.kind not in "iu":
        raise MapSuiteError(f"{name} must be integers, not {_dtype(a)}", path)


def _string_array(a: np.ndarray, name: str, path) -> None:
    if a.dtype.kind not in "US":
        raise MapSuiteError(f"{name} must be text (element symbols), not {_dtype(a)}", path)


def _dtype(a: np.ndarray) -> str:
    return {"b": "booleans", "c": "complex numbers", "U": "text", "S": "bytes", "O": "Python objects",
            "V": "records", "M": "dates", "m": "time spans"}.get(a.dtype.kind, str(a.dtype)) + f" ({a.dtype})"


def _json_kind(value) -> str:
    return {list: "list", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


def _lengths(edges) -> str:
    return " x ".join(f"{float(x):.4g}" for x in edges)
