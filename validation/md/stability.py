"""Stability rules checked at every state-log report of an MD run (after MLIPAudit's stability
test): a NaN, a temperature jump, or a molecule that has left its neighbours fails the run.

The NaN and absolute blow-up rules (``blowup_temperature_k``) live in ``validation.md.reporters``;
this module adds the two rules that need the run's history, as small pure functions plus
:func:`check_stability`, which carries that history in a JSON-serialisable dict so that it is
saved with the checkpoint and a resumed run reaches the same verdict.

Rules (numbers are module constants):

* temperature jump: the kinetic temperature rose since the previous report *to* more than
  the target + tolerance, tolerance = max(``JUMP_FRACTION`` x target, ``JUMP_SIGMAS`` x
  target x sqrt(2 / dof)) (0.25 x target, 6 standard deviations of the canonical
  instantaneous temperature; 75 K at 300 K for 100 molecules or more, 155 K for 30, 300 K
  for 8). Drops are not flagged: after thermalising a minimised box the kinetic temperature
  halves within tens of fs (equipartition into the potential), which is no instability.
* isolated molecule: a water's oxygen has had no other oxygen within ``ISOLATION_NM``
  (0.5 nm, beyond the first minimum of g_OO at ~0.34 nm) at every report for at least
  ``ISOLATION_PS`` (1 ps, longer than a thermal excursion into a cavity: at 300 K a water's
  centre moves ~0.37 nm/ps per axis).

Lengths nm, temperatures K, times ps.
"""

from __future__ import annotations

import math

import numpy as np

from map_core.atoms.neighbors import pairs_within

JUMP_FRACTION = 0.25  # of the target temperature: the floor of the jump tolerance
# Standard deviations of the instantaneous kinetic temperature in the canonical ensemble,
# T sqrt(2/dof). With T at the target before the jump, a chi-square(dof) kinetic energy
# exceeds target + tolerance with probability < 1.1e-6 per report for 8 waters (dof 72),
# < 1e-7 for 30 and < 1e-12 for 216.
JUMP_SIGMAS = 6.0
# Largest nearest O-O distance in map_core/data/water_classical_216.npz (400 frames of 216
# molecules, q-TIP4P/F at 300 K): 0.345 nm over all 86,400 molecule-frames (per-frame maxima
# 0.287-0.345 nm, median 0.298 nm). 0.5 nm leaves 0.15 nm of margin and lies beyond the first
# shell: a molecule with no oxygen this close has left the liquid.
ISOLATION_NM = 0.5
ISOLATION_PS = 1.0


def jump_tolerance_k(target_k: float, dof: int) -> float:
    """Allowed rise, K, of the kinetic temperature above max(previous report, target):
    max(JUMP_FRACTION x target, JUMP_SIGMAS x target x sqrt(2 / dof)); `dof` is the number of
    kinetic degrees of freedom (9 per flexible water without constraints)."""
    return max(JUMP_FRACTION * target_k, JUMP_SIGMAS * target_k * math.sqrt(2.0 / max(int(dof), 1)))


def temperature_jump(previous_k: float | None, current_k: float, target_k: float, dof: int) -> str | None:
    """A one-line reason if the temperature jumped between two consecutive reports, else None.

    Jump: current_k > max(previous_k, target_k) + jump_tolerance_k(target_k, dof), i.e. a rise
    of more than the tolerance since the previous report that also ends more than the
    tolerance above the target. previous_k None (the first report of a run) never trips.
    Temperatures K; dof: kinetic degrees of freedom.
    """
    if previous_k is None:
        return None
    tolerance = jump_tolerance_k(target_k, dof)
    if current_k > max(previous_k, target_k) + tolerance:
        return (f"temperature jumped from {previous_k:.0f} K to {current_k:.0f} K since the previous report "
                f"(more than {tolerance:.0f} K above max(previous, target {target_k:.0f} K))")
    return None


def oxygen_positions(positions_nm, n_waters: int) -> np.ndarray:
    """(n_waters, 3) oxygen positions, nm, from (n_waters x k, 3) positions of k particles per
    molecule with O first (k = 3: O, H1, H2 as in frames and trajectories; k = 4: O, H1, H2, M
    as in the OpenMM system)."""
    pos = np.asarray(positions_nm, dtype=np.float64).reshape(-1, 3)
    if n_waters < 1 or len(pos) % n_waters or len(pos) // n_waters not in (3, 4):
        raise ValueError(f"{len(pos)} positions are not 3 or 4 particles for each of {n_waters} waters")
    return pos[:: len(pos) // n_waters]


def isolated_molecules(positions_nm, box_nm, n_waters: int, r_nm: float = ISOLATION_NM) -> np.ndarray:
    """Indices (sorted, int) of the water molecules whose oxygen has no other oxygen closer than
    `r_nm` under the periodic minimum image.

    positions_nm: (3 n, 3) O, H1, H2 or (4 n, 3) O, H1, H2, M per molecule, wrapped or not;
    box_nm: (3,) orthorhombic box edges; r_nm: the neighbour radius, nm.
    """
    oxygens = oxygen_positions(positions_nm, n_waters)
    i, j, _ = pairs_within(oxygens, oxygens, r_nm, np.asarray(box_nm, dtype=np.float64).reshape(3))
    neighbours = np.bincount(i[i != j], minlength=n_waters)
    return np.flatnonzero(neighbours == 0)


def persistent_isolation(isolated, since: dict, time_ps: float,
                         persist_ps: float = ISOLATION_PS) -> tuple:
    """Update the isolation history and name a molecule isolated for `persist_ps` or longer.

    isolated: indices isolated at this report; since: {str(index): time_ps of the first report of
    its current isolated spell}; time_ps: this report's time. Returns (reason or None, the new
    `since`); a molecule with a neighbour at this report leaves `since`.
    """
    new = {str(int(k)): float(since.get(str(int(k)), time_ps)) for k in isolated}
    lasting = [(t0, int(k)) for k, t0 in new.items() if time_ps - t0 >= persist_ps - 1e-9]
    if not lasting:
        return None, new
    t0, index = min(lasting)
    others = f" ({len(lasting) - 1} more)" if len(lasting) > 1 else ""
    return (f"molecule {index} (0-based) has had no other oxygen within {ISOLATION_NM:g} nm at every report since "
            f"t = {t0:.4f} ps ({time_ps - t0:.3f} ps >= {persist_ps:g} ps): it left its neighbours{others}"), new


def check_stability(state: dict | None, time_ps: float, temperature_k: float, positions_nm, box_nm,
                    n_waters: int, target_k: float, dof: int) -> tuple:
    """Apply the temperature-jump and isolated-molecule rules to one report.

    state: the dict this function returned at the previous report (None at the first report of
    a run); time_ps: the report's time; temperature_k: its kinetic temperature; positions_nm,
    box_nm, n_waters: as :func:`isolated_molecules`; target_k: the thermostat's temperature; dof:
    kinetic degrees of freedom. Returns (reason or None, new state); the state is plain JSON
    (``{"temperature_k": float, "isolated_since_ps": {index: ps}}``) to be saved with a checkpoint.
    """
    state = state or {}
    reason = temperature_jump(state.get("temperature_k"), temperature_k, target_k, dof)
    lonely = isolated_molecules(positions_nm, box_nm, n_waters)
    lonely_reason, since = persistent_isolation(lonely, state.get("isolated_since_ps", {}), time_ps)
    new = {"temperature_k": float(temperature_k), "isolated_since_ps": since}
    return reason or lonely_reason, new
