"""LAMMPS data files and dumps with a type map, `--frames N` and triclinic cells (issue 27).

Every input is built here from the shipped MD test frames (216 q-TIP4P/F molecules): LAMMPS data
files by ASE's writer (atom styles full and atomic, with and without a Masses section, TIP4P's
implicit M site as an extra type), dumps without an element column by hand, triclinic cells by
mdtraj (GRO, PDB) and ASE (extended XYZ, LAMMPS data).
"""

import mdtraj
import numpy as np
import pytest
from ase import Atoms
from ase.io import write as ase_write

from map_core.errors import MapSuiteError
from validation.cli.main import main
from validation.md.imports import parse_types, read_boxes

LAMMPS_NM = 1e-6  # ASE writes data-file positions with %.16g... of Å: exact to well under this


def _atoms(frames, k=0, cell_angles=(90, 90, 90), with_molecules=True):
    """frame k of `frames` as ase.Atoms (Å), molecule ids as `mol-id` (data files) and `mol`."""
    box = frames.box[k] * 10.0
    atoms = Atoms(symbols=list(frames.elements[k]), positions=frames.positions[k] * 10.0,
                  cell=list(box) + list(cell_angles), pbc=True)
    if with_molecules:
        atoms.new_array("mol-id", frames.molecule[k].astype(int) + 1)
    return atoms


def _same_waters(read, frames, k=0, tol=LAMMPS_NM):
    assert list(read.elements[0]) == list(frames.elements[k])
    np.testing.assert_allclose(read.positions[0], frames.positions[k], atol=tol)
    np.testing.assert_allclose(read.box[0], frames.box[k], atol=tol)
    assert (read.molecule[0] >= 0).all()
    assert len(np.unique(read.molecule[0])) == int(np.sum(frames.elements[k] == "O"))


def test_lammps_data_full_style_with_types_and_masses(tmp_path, md_frames):
    path = tmp_path / "water.data"
    ase_write(path, _atoms(md_frames), format="lammps-data", atom_style="full", specorder=["O", "H"], masses=True,
              units="real")
    _same_waters(read_boxes(path, types=parse_types("1=O,2=H")), md_frames)
    _same_waters(read_boxes(path), md_frames)  # no --types: ASE's element from each type's mass
    swapped = read_boxes(path, types=parse_types("1=H,2=O"))  # the map decides: a wrong one gives wrong atoms
    assert list(swapped.elements[0][:3]) == ["H", "O", "O"]


def test_lammps_data_atomic_style_groups_waters_and_drops_an_m_type(tmp_path, md_frames):
    atoms = _atoms(md_frames, with_molecules=False)
    m_sites = Atoms(symbols=["Li"] * 3, positions=atoms.positions[:3] + 0.1, cell=atoms.cell, pbc=True)  # type 3
    path = tmp_path / "water.lmp"
    ase_write(path, atoms + m_sites, format="lammps-data", atom_style="atomic", specorder=["O", "H", "Li"], units="real")
    read = read_boxes(path, types=parse_types("1=O,2=H,3=M"))
    assert read.meta["virtual_sites_dropped"] == [3]
    _same_waters(read, md_frames)
    with pytest.raises(MapSuiteError, match="without a Masses section needs --types"):  # ASE: 1 H, 2 He, 3 Li
        read_boxes(path)
    with pytest.raises(MapSuiteError, match="LAMMPS types 3 are not in --types"):
        read_boxes(path, types=parse_types("1=O,2=H"))


def _dump(path, frames, ks, columns=("id", "mol", "type", "x", "y", "z"), types={"O": 1, "H": 2}):
    with open(path, "w") as fh:
        for k in ks:
            box = frames.box[k] * 10.0
            fh.write(f"ITEM: TIMESTEP\n{k}\nITEM: NUMBER OF ATOMS\n{frames.counts[k]}\nITEM: BOX BOUNDS pp pp pp\n")
            fh.write("".join(f"0 {b:.6f}\n" for b in box))
            fh.write("ITEM: ATOMS " + " ".join(columns) + "\n")
            for i, (el, mol, xyz) in enumerate(zip(frames.elements[k], frames.molecule[k], frames.positions[k] * 10.0)):
                fields = {"id": i + 1, "mol": mol + 1, "type": types[el], "element": el}
                fh.write(" ".join(str(fields[c]) for c in columns[:-3]) + " %.6f %.6f %.6f\n" % tuple(xyz))


def test_lammps_dump_without_elements_needs_types(tmp_path, md_frames):
    path = tmp_path / "water.lammpstrj"
    _dump(path, md_frames, [0, 1])
    read = read_boxes(path, types=parse_types("1=O,2=H"))
    assert len(read) == 2
    _same_waters(read.select([1]), md_frames, k=1, tol=1e-6)
    with pytest.raises(MapSuiteError, match="needs --types"):
        read_boxes(path)
    with pytest.raises(MapSuiteError, match="LAMMPS types 2 are not in --types"):
        read_boxes(path, types=parse_types("1=O"))


@pytest.mark.parametrize("text, message", [("1=O,1=H", "distinct"), ("0=O", "positive"), ("1=Na", "'Na'"),
                                           ("O=1", "TYPE=ELEMENT"), ("1=O;2=H", "'O;2=H'")])
def test_bad_type_maps_are_refused(text, message):
    with pytest.raises(MapSuiteError, match=message):
        parse_types(text)


def test_frames_n_keeps_n_evenly_spaced_frames(md_frames, tmp_path):
    path = tmp_path / "traj.gro"
    traj = mdtraj.Trajectory(np.stack(md_frames.positions[:5]), _topology(md_frames),
                             unitcell_lengths=md_frames.box[:5], unitcell_angles=np.full((5, 3), 90.0))
    traj.save_gro(str(path))
    read = read_boxes(path, frames=3)
    assert len(read) == 3 and read.meta["frames_in_file"] == 5
    np.testing.assert_allclose([p[0] for p in read.positions], [md_frames.positions[k][0] for k in (0, 2, 4)], atol=6e-4)
    assert len(read_boxes(path, frames=9)) == 5  # more than the file holds: every frame


def _topology(frames):
    top = mdtraj.Topology()
    chain = top.add_chain()
    for mol in np.unique(frames.molecule[0]):
        residue = top.add_residue("HOH", chain)
        for i in np.flatnonzero(frames.molecule[0] == mol):
            top.add_atom("O" if frames.elements[0][i] == "O" else f"H{i % 2 + 1}",
                         mdtraj.element.get_by_symbol(str(frames.elements[0][i])), residue)
    return top


@pytest.mark.parametrize("suffix", ["gro", "pdb", "xyz", "data"])
def test_triclinic_cells_are_refused_naming_the_angles(md_frames, tmp_path, suffix):
    path = tmp_path / f"tri.{suffix}"
    if suffix in ("gro", "pdb"):
        traj = mdtraj.Trajectory(md_frames.positions[0][None], _topology(md_frames), unitcell_lengths=md_frames.box[:1],
                                 unitcell_angles=np.array([[90.0, 90.0, 60.0]]))
        traj.save(str(path))
    else:
        fmt = {"xyz": "extxyz", "data": "lammps-data"}[suffix]
        ase_write(path, _atoms(md_frames, cell_angles=(90, 90, 60)), format=fmt, **({"atom_style": "full", "masses": True} if suffix == "data" else {}))
    with pytest.raises(MapSuiteError, match=r"triclinic box \(cell angles 90, 90, 60 degrees\)"):
        read_boxes(path)


def test_validate_cli_takes_types_and_frames(md_frames, tmp_path, capsys):
    """The options reach the reader: a bad map and a data file of a foreign element end in one line, exit 2."""
    path = tmp_path / "water.data"
    ase_write(path, _atoms(md_frames), format="lammps-data", atom_style="full", specorder=["O", "H"], masses=True)
    code = main(["validate", "--boxes", str(path), "--types", "1=O,2=Na", "--frames", "1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "'Na'" in err[0] and "water.data" in err[0], err
    assert not (tmp_path / "r").exists()
