"""Water observables, ``compute_*(data, ...) -> ndarray`` in the style of mdtraj, lengths in nm.

Every function takes map_core Frames, an mdtraj Trajectory or the arrays of one frame, and
``periodic`` where it matters (generated boxes are open).

- ``frame_tools``: the accepted inputs, whole molecules, wrapping, sub-regions;
- ``density``, ``geometry`` (O-H, H-O-H, dipoles), ``rdf`` (periodic and the gate's edge-corrected
  open-box RDF), ``order`` (Steinhardt, tetrahedral), ``hbonds``, ``rings`` (H-bond rings, King's
  shortest-path criterion), ``energy`` (q-TIP4P/F, OpenMM);
- ``structure_factor``: S(q), partial S_ab (freud's Debye sum for periodic boxes, the transform of
  the edge-corrected g(r) for open ones) and the X-ray weighted total of water.
"""

from validation.observables.density import compute_density
from validation.observables.energy import compute_intermolecular_energy
from validation.observables.frame_tools import as_frames, crop_frames, molecule_counts, water_molecules
from validation.observables.geometry import (
    compute_dipole_magnitudes,
    compute_dipoles,
    compute_hoh_angles,
    compute_oh_distances,
)
from validation.observables.hbonds import compute_hbonds
from validation.observables.order import compute_steinhardt, compute_tetrahedral_order
from validation.observables.rdf import compute_rdf, first_peak, g_from_counts, open_rdf_counts
from validation.observables.rings import compute_rings, hbond_network
from validation.observables.structure_factor import (
    compute_structure_factor,
    compute_xray_structure_factor,
    first_peak_q,
    structure_factor_from_rdf,
    xray_form_factor,
)

__all__ = [
    "as_frames", "compute_density", "compute_dipole_magnitudes", "compute_dipoles", "compute_hbonds",
    "compute_hoh_angles", "compute_intermolecular_energy", "compute_oh_distances", "compute_rdf",
    "compute_rings", "compute_steinhardt", "compute_structure_factor", "compute_tetrahedral_order",
    "compute_xray_structure_factor", "crop_frames", "first_peak", "first_peak_q", "g_from_counts", "hbond_network",
    "molecule_counts", "open_rdf_counts", "structure_factor_from_rdf", "water_molecules", "xray_form_factor",
]
