"""Molecular dynamics of q-TIP4P/F water in OpenMM: classical and ring-polymer, resumable.

- ``water_model``: the q-TIP4P/F System (Habershon, Markland, Manolopoulos 2009), M sites, force groups;
- ``boxes``: starting boxes of whole molecules and their topology;
- ``settings``: one run's settings (a dataclass, checked);
- ``platform``: the OpenMM platform by name or the fastest present;
- ``engine``: one context per stage (integrator, barostat, state in and out);
- ``run``: minimise -> NPT -> NVT in a work directory, resuming after a kill;
- ``reporters``: what a stage reports, at the settings' intervals (stability, state log, trajectory,
  checkpoint, progress), in the style of ``openmm.app``'s reporters;
- ``checkpoints``: the work directory's files, the run's identity and its checkpoint;
- ``budget``: the memory and disk a run needs, refused before any work when they are not free;
- ``volume``: the mean NPT box and molecules moved rigidly into it (the NVT box);
- ``summary``: summary.json of a finished or failed run;
- ``files``: the state log and DCD trajectories that survive a kill;
- ``rigid_water``: rigid TIP3P / TIP4P-Ew water from OpenMM's own force fields (foreign ensembles);
- ``trajectory``: a run read back as mdtraj or as map_core frames;
- ``simulate``: a fresh box simulated into a frames file (training data);
- ``export``: frames as PDB, DCD, XTC, GRO, extended XYZ or a LAMMPS dump;
- ``relax``: a repaired box minimised and run in NPT towards the liquid's density (``export --relax``);
- ``stats``: block averages of correlated series.
"""

from validation.md.boxes import ideal_molecule, make_water_box, make_waters_whole, random_rotation, water_topology
from validation.md.budget import check_md_fits, md_budget
from validation.md.checkpoints import load_md_checkpoint
from validation.md.engine import Engine, make_integrator
from validation.md.export import FORMATS, export_frames
from validation.md.platform import pick_platform
from validation.md.rigid_water import openmm_water
from validation.md.run import run_md
from validation.md.settings import PRESSURE_BAR, TEMPERATURE_K, MDSettings
from validation.md.simulate import simulate_frames
from validation.md.stats import block_average
from validation.md.trajectory import load_trajectory, positions_to_frames, trajectory_to_frames
from validation.md.volume import rescale_molecules
from validation.md.water_model import PARAMS, build_system, with_m_sites

__all__ = [
    "FORMATS", "PARAMS", "PRESSURE_BAR", "TEMPERATURE_K", "Engine", "MDSettings", "block_average", "build_system",
    "check_md_fits", "export_frames", "ideal_molecule", "load_md_checkpoint", "load_trajectory", "make_integrator",
    "make_water_box", "make_waters_whole", "md_budget", "openmm_water", "pick_platform", "positions_to_frames",
    "random_rotation", "rescale_molecules", "run_md", "simulate_frames", "trajectory_to_frames", "water_topology",
    "with_m_sites",
]
