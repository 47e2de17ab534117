"""Water models with massless virtual sites (issue 27): TIP4P-Ew and TIP5P boxes made by OpenMM and written as
PDB or GRO by OpenMM, mdtraj or by hand in GROMACS, AMBER and CHARMM naming, with or without an element column,
read as their O and H atoms, the sites dropped and counted; ions and sites that name a massive element are
still refused in one line.

Every input is built here: a 1.2 nm box solvated by OpenMM's Modeller with its own force-field files
(tip3p.xml, tip4pew.xml, tip5p.xml), then written by each program's writer or by fixed-column text.
"""

import re

import mdtraj
import numpy as np
import openmm
import pytest
from ase import Atoms
from ase.io import write as ase_write
from openmm import app, unit

from map_core.errors import MapSuiteError
from validation.md.imports import read_boxes

BOX_NM = 1.2
SITES = {"tip3p": 0, "tip4pew": 1, "tip5p": 2}  # massless sites per molecule
PDB_NM = 6e-5  # PDB keeps 0.001 Å
GRO_NM = 6e-4  # GRO keeps 0.001 nm


def _solvated(model: str, ionic_molar: float = 0.0):
    """(topology, positions (N, 3) nm) of a BOX_NM cube of `model` water made by OpenMM's Modeller."""
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(app.ForceField(f"{model}.xml"), model=model, boxSize=openmm.Vec3(BOX_NM, BOX_NM, BOX_NM) * unit.nanometer,
                        ionicStrength=ionic_molar * unit.molar)
    return modeller.topology, np.array(modeller.positions.value_in_unit(unit.nanometer))


@pytest.fixture(scope="module")
def boxes():
    return {model: _solvated(model) for model in SITES}


# names of the O, H, H and site atoms of a water in other programs' files: (residue, names)
NAMING = {
    "gromacs": {"tip4pew": ("SOL", ("OW", "HW1", "HW2", "MW")), "tip5p": ("SOL", ("OW", "HW1", "HW2", "LP1", "LP2"))},
    "amber": {"tip4pew": ("WAT", ("O", "H1", "H2", "EPW")), "tip5p": ("WAT", ("O", "H1", "H2", "EP1", "EP2"))},
    "charmm": {"tip5p": ("TIP5", ("OH2", "H1", "H2", "LP1", "LP2"))},
    # a residue name of no list: the atom names alone make the sites (mdtraj finds no element for MW, M; V for VS1)
    "unlisted": {"tip4pew": ("WTR", ("OW", "HW1", "HW2", "MW")), "tip5p": ("WTR", ("O", "H1", "H2", "VS1", "VS2"))},
}


def _rows(topology, positions, naming=None):
    """(residue name, residue number, atom name, element or '', xyz nm) per atom, renamed by `naming`."""
    rows = []
    for atom in topology.atoms():
        residue, names = naming if naming is not None else (atom.residue.name, None)
        name = names[list(atom.residue.atoms()).index(atom)] if names is not None else atom.name
        element = atom.element.symbol if atom.element is not None else "EP"
        rows.append((residue, atom.residue.index + 1, name, element, positions[atom.index]))
    return rows


def _write_pdb(path, models, elements=True):
    """A PDB by fixed columns, one MODEL per (rows, box nm) where several are given; the element column (77-78)
    blank unless `elements`."""
    lines = []
    for k, (rows, box) in enumerate(models):
        lines.append(f"CRYST1{box * 10:9.3f}{box * 10:9.3f}{box * 10:9.3f}  90.00  90.00  90.00 P 1           1")
        if len(models) > 1:
            lines.append(f"MODEL     {k + 1:4d}")
        for i, (residue, number, name, element, xyz) in enumerate(rows):
            name = f" {name:<3}" if len(name) < 4 else name
            x, y, z = xyz * 10
            lines.append(f"HETATM{i + 1:5d} {name:4} {residue:<4}A{number % 10000:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00"
                         f"          {element if elements else '':>2}")
        if len(models) > 1:
            lines.append("ENDMDL")
    path.write_text("\n".join(lines + ["END", ""]))
    return path


def _write_gro(path, rows, box):
    lines = ["water written by hand in GROMACS naming", f"{len(rows):5d}"]
    for i, (residue, number, name, _, (x, y, z)) in enumerate(rows):
        lines.append(f"{number % 100000:5d}{residue:<5}{name:>5}{(i + 1) % 100000:5d}{x:8.3f}{y:8.3f}{z:8.3f}")
    lines.append(f"{box:10.5f}{box:10.5f}{box:10.5f}")
    path.write_text("\n".join(lines + [""]))
    return path


def _openmm_pdb(path, topology, positions):
    with open(path, "w") as fh:
        app.PDBFile.writeFile(topology, positions * unit.nanometer, fh)
    return path


def _mdtraj(path, topology, positions):
    traj = mdtraj.Trajectory(positions[None], mdtraj.Topology.from_openmm(topology),
                             unitcell_lengths=np.full((1, 3), BOX_NM), unitcell_angles=np.full((1, 3), 90.0))
    traj.save(str(path))
    return path


def _xtc_with_topology(path, topology, positions):
    """An XTC file and its topology (a PDB with the sites' element VS) beside it, as `map-suite export` writes them."""
    traj = mdtraj.Trajectory(positions[None], mdtraj.Topology.from_openmm(topology),
                             unitcell_lengths=np.full((1, 3), BOX_NM), unitcell_angles=np.full((1, 3), 90.0))
    traj.save_xtc(str(path))
    traj.save_pdb(str(path.with_suffix(".top.pdb")))
    return path


def _extxyz(path, topology, positions):
    """ASE's extended XYZ, the sites as ASE's dummy atoms (X)."""
    symbols = [a.element.symbol if a.element is not None else "X" for a in topology.atoms()]
    ase_write(str(path), Atoms(symbols, positions=positions * 10, cell=[BOX_NM * 10] * 3, pbc=True), format="extxyz")
    return path


# kind -> (model, writer(path, topology, positions) -> path, boxes in the file (slices of the residues), precision nm)
ALL = slice(None)
KINDS = {
    "tip3p-openmm.pdb": ("tip3p", _openmm_pdb, [ALL], PDB_NM),
    "tip4pew-openmm.pdb": ("tip4pew", _openmm_pdb, [ALL], PDB_NM),
    "tip4pew-mdtraj.pdb": ("tip4pew", _mdtraj, [ALL], PDB_NM),
    "tip4pew-mdtraj.gro": ("tip4pew", _mdtraj, [ALL], GRO_NM),
    "tip4pew-mdtraj.xtc": ("tip4pew", _xtc_with_topology, [ALL], GRO_NM),
    "tip5p-openmm.pdb": ("tip5p", _openmm_pdb, [ALL], PDB_NM),
    "tip5p-mdtraj.pdb": ("tip5p", _mdtraj, [ALL], PDB_NM),
    "tip5p-mdtraj.gro": ("tip5p", _mdtraj, [ALL], GRO_NM),
    "tip4pew-gromacs.gro": ("tip4pew", lambda p, t, x: _write_gro(p, _rows(t, x, NAMING["gromacs"]["tip4pew"]), BOX_NM),
                            [ALL], GRO_NM),
    "tip5p-gromacs.gro": ("tip5p", lambda p, t, x: _write_gro(p, _rows(t, x, NAMING["gromacs"]["tip5p"]), BOX_NM),
                          [ALL], GRO_NM),
    "tip4pew-openmm-no-elements.pdb": ("tip4pew", lambda p, t, x: _write_pdb(p, [(_rows(t, x), BOX_NM)], elements=False),
                                       [ALL], PDB_NM),
    "tip4pew-gromacs-no-elements.pdb": (
        "tip4pew", lambda p, t, x: _write_pdb(p, [(_rows(t, x, NAMING["gromacs"]["tip4pew"]), BOX_NM)], elements=False),
        [ALL], PDB_NM),
    "tip4pew-amber-no-elements.pdb": (
        "tip4pew", lambda p, t, x: _write_pdb(p, [(_rows(t, x, NAMING["amber"]["tip4pew"]), BOX_NM)], elements=False),
        [ALL], PDB_NM),
    "tip5p-amber-no-elements.pdb": (
        "tip5p", lambda p, t, x: _write_pdb(p, [(_rows(t, x, NAMING["amber"]["tip5p"]), BOX_NM)], elements=False),
        [ALL], PDB_NM),
    "tip5p-charmm-no-elements.pdb": (
        "tip5p", lambda p, t, x: _write_pdb(p, [(_rows(t, x, NAMING["charmm"]["tip5p"]), BOX_NM)], elements=False),
        [ALL], PDB_NM),
    "tip4pew-unlisted-residue.gro": (
        "tip4pew", lambda p, t, x: _write_gro(p, _rows(t, x, NAMING["unlisted"]["tip4pew"]), BOX_NM), [ALL], GRO_NM),
    "tip5p-unlisted-residue.gro": (
        "tip5p", lambda p, t, x: _write_gro(p, _rows(t, x, NAMING["unlisted"]["tip5p"]), BOX_NM), [ALL], GRO_NM),
    "tip5p-unlisted-residue-no-elements.pdb": (
        "tip5p", lambda p, t, x: _write_pdb(p, [(_rows(t, x, NAMING["unlisted"]["tip5p"]), BOX_NM)], elements=False),
        [ALL], PDB_NM),
    # models of different sizes (mdtraj reads equal models only): the fixed-column reader
    "tip4pew-models.pdb": ("tip4pew", lambda p, t, x: _write_pdb(p, [(_rows(t, x), BOX_NM),
                                                                      (_rows(t, x)[:4 * 20], BOX_NM)]),
                           [ALL, slice(0, 20)], PDB_NM),
    "tip4pew.xyz": ("tip4pew", _extxyz, [ALL], 1e-6),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_water_models_read_as_whole_waters_of_their_o_and_h(kind, boxes, tmp_path):
    model, write, parts, precision = KINDS[kind]
    topology, positions = boxes[model]
    path = write(tmp_path / kind, topology, positions)
    frames = read_boxes(path, top=path.with_suffix(".top.pdb") if path.suffix == ".xtc" else None)
    residues = list(topology.residues())
    assert len(frames) == len(parts) and frames.meta["periodic"] is True
    dropped = []
    for f, part in enumerate(parts):
        kept = residues[part]
        massive = [a.index for r in kept for a in r.atoms() if a.element is not None]  # O, H1, H2 in file order
        elements, molecule = frames.elements[f], frames.molecule[f]
        assert list(elements) == [a.element.symbol for r in kept for a in r.atoms() if a.element is not None]
        assert len(elements) == 3 * len(kept)
        assert np.all(molecule >= 0) and len(np.unique(molecule)) == len(kept)  # every molecule whole, one per residue
        for m in np.unique(molecule):
            assert sorted(elements[molecule == m]) == ["H", "H", "O"]
        np.testing.assert_allclose(frames.positions[f][elements == "O"], positions[massive][elements == "O"], atol=precision)
        np.testing.assert_allclose(frames.positions[f], positions[massive], atol=precision)
        np.testing.assert_allclose(frames.box[f], BOX_NM, atol=precision)
        dropped.append(SITES[model] * len(kept))
    assert frames.meta["virtual_sites_dropped"] == dropped


def _refused(path, *labels):
    with pytest.raises(MapSuiteError) as info:
        read_boxes(path)
    message = str(info.value)
    assert message.startswith(f"{path}: atoms other than water's: ") and "\n" not in message, message
    assert re.split(r": ", message, maxsplit=2)[-1].split(", ") == list(labels), message


def test_ions_are_refused_in_one_line(tmp_path):
    topology, positions = _solvated("tip4pew", ionic_molar=1.0)
    assert {r.name for r in topology.residues()} == {"HOH", "NA", "CL"}
    _refused(_openmm_pdb(tmp_path / "salt.pdb", topology, positions), "Cl", "Na")
    _refused(_mdtraj(tmp_path / "salt.gro", topology, positions), "CL", "NA")  # GRO: no elements, refused by name
    rows = _rows(topology, positions)
    _refused(_write_pdb(tmp_path / "salt-no-elements.pdb", [(rows, BOX_NM)], elements=False), "CL", "NA")
    _refused(_write_pdb(tmp_path / "salt-models.pdb", [(rows, BOX_NM), (rows[:8], BOX_NM)]), "Cl", "Na")


def test_sites_that_name_a_massive_element_are_refused(boxes, tmp_path):
    topology, positions = boxes["tip4pew"]
    rows = _rows(topology, positions)
    as_carbon = [(res, n, name, "C" if el == "EP" else el, xyz) for res, n, name, el, xyz in rows]
    _refused(_write_pdb(tmp_path / "m-carbon.pdb", [(as_carbon, BOX_NM)]), "C")
    gromacs = _rows(topology, positions, NAMING["gromacs"]["tip4pew"])
    as_magnesium = [(res, n, name, "MG" if name == "MW" else el, xyz) for res, n, name, el, xyz in gromacs]
    _refused(_write_pdb(tmp_path / "mw-magnesium.pdb", [(as_magnesium, BOX_NM)]), "Mg")
    _refused(_write_pdb(tmp_path / "m-carbon-models.pdb", [(as_carbon, BOX_NM), (as_carbon[:8], BOX_NM)]), "C")
    symbols = ["C" if a.element is None else a.element.symbol for a in topology.atoms()]
    ase_write(str(tmp_path / "m-carbon.xyz"), Atoms(symbols, positions=positions * 10, cell=[BOX_NM * 10] * 3, pbc=True))
    _refused(tmp_path / "m-carbon.xyz", "C")


def test_massless_atoms_of_unknown_names_are_sites_only_in_water_residues(boxes, tmp_path):
    """mdtraj finds no element for MG or XM in a GRO file (virtual site): a Mg ion is not dropped as a site,
    while a site of a water residue under a name of its own is."""
    topology, positions = boxes["tip4pew"]
    rows = _rows(topology, positions, NAMING["gromacs"]["tip4pew"])
    renamed = [(res, n, "XM" if name == "MW" else name, el, xyz) for res, n, name, el, xyz in rows]
    frames = read_boxes(_write_gro(tmp_path / "xm.gro", renamed, BOX_NM))
    assert frames.counts[0] == 3 * topology.getNumResidues() and np.all(frames.molecule[0] >= 0)
    assert frames.meta["virtual_sites_dropped"] == [topology.getNumResidues()]
    n = len(rows) + 1
    _refused(_write_gro(tmp_path / "mg.gro", rows + [("MG", n, "MG", "", np.full(3, 0.6))], BOX_NM), "MG")
    _refused(_write_gro(tmp_path / "xm-alone.gro", rows + [("XXX", n, "XM", "", np.full(3, 0.6))], BOX_NM), "XM")
