"""H-bond rings (King's criterion): hand-built graphs, a cyclic water hexamer and hexagonal ice Ih."""

import networkx as nx
import numpy as np
import pytest

from map_core.errors import MapSuiteError
from validation.observables.hbonds import compute_hbonds
from validation.observables.rings import compute_rings, hbond_network, king_rings, ring_sizes

R_OO_ICE = 0.276  # nm, O-O distance of ice Ih
R_OH = 0.0957  # nm, each H on the O-O line it bonds along


def sizes(rings):
    return sorted(len(r) for r in rings)


def as_frame(oxygens, hydrogens, box):
    """(positions, elements, molecule, box) of waters O, H, H; hydrogens (M, 2, 3)."""
    pos = np.concatenate([oxygens[:, None], hydrogens], axis=1).reshape(-1, 3)
    return pos, np.tile(["O", "H", "H"], len(oxygens)), np.repeat(np.arange(len(oxygens)), 3), np.asarray(box, float)


# --- hand-built graphs ------------------------------------------------------------------------
def test_fused_square_and_pentagon_give_both_rings_and_the_envelope_of_the_shared_nodes():
    # square u-v-s1-s2 and pentagon u-v-p1-p2-p3 share the edge u-v. At u the angle s2-u-p3 has
    # no shorter ring than the 7-membered envelope, so King's criterion keeps it (Franzblau's
    # shortest-path rings would not); every other angle selects the square or the pentagon.
    g = nx.Graph([("u", "v"), ("v", "s1"), ("s1", "s2"), ("s2", "u"),
                  ("v", "p1"), ("p1", "p2"), ("p2", "p3"), ("p3", "u")])
    assert sizes(king_rings(g, directed=False)) == [4, 5, 7]
    assert sizes(king_rings(g, max_size=6, directed=False)) == [4, 5]
    assert sizes(king_rings(g, directed=False, centres=["s1", "p2"])) == [4, 5]  # no reflex angle there


def test_cube_has_only_its_six_faces():
    # the cube graph also has 6- and 8-cycles, but every angle closes through its own face
    rings = king_rings(nx.hypercube_graph(3), directed=False)
    assert sizes(rings) == [4] * 6


def test_ring_sizes_at_the_bounds():
    assert sizes(king_rings(nx.cycle_graph(3), directed=False)) == [3]
    assert sizes(king_rings(nx.cycle_graph(10), max_size=10, directed=False)) == [10]  # its far side is 5 bonds away
    assert king_rings(nx.cycle_graph(11), max_size=10, directed=False) == []
    assert king_rings(nx.DiGraph([(0, 1), (1, 0)])) == []  # a mutual pair is not a ring


def test_direction_matters_for_directed_rings():
    cycle = nx.DiGraph([(0, 1), (1, 2), (2, 3), (3, 0)])
    assert sizes(king_rings(cycle)) == [4]
    one_reversed = nx.DiGraph([(0, 1), (1, 2), (2, 3), (0, 3)])
    assert king_rings(one_reversed) == []
    assert sizes(king_rings(one_reversed, directed=False)) == [4]
    with pytest.raises(MapSuiteError, match="directed graph"):
        king_rings(nx.Graph(one_reversed))


# --- a cyclic water hexamer in an open box ----------------------------------------------------
def hexamer(reverse_one: bool):
    """Six waters on a planar hexagon (side 0.276 nm), each donating to the next; with
    reverse_one, molecule 0 donates to 5 instead of receiving from it (5 donates nowhere)."""
    angles = np.arange(6) * np.pi / 3
    oxy = 1.5 + R_OO_ICE * np.stack([np.cos(angles), np.sin(angles), np.zeros(6)], axis=1)
    up = np.array([0.0, 0.0, R_OH])  # the free H, out of the plane
    hyd = np.stack([oxy + up, oxy + up], axis=1)
    for i in range(6):
        if not (reverse_one and i == 5):
            hyd[i, 0] = oxy[i] + R_OH * (oxy[(i + 1) % 6] - oxy[i]) / R_OO_ICE
    if reverse_one:
        hyd[0, 1] = oxy[0] + R_OH * (oxy[5] - oxy[0]) / R_OO_ICE
        hyd[5, 1] = oxy[5] - up
    return as_frame(oxy, hyd, [3.0, 3.0, 3.0])


def test_cyclic_hexamer_is_one_six_ring_per_six_molecules_and_loses_it_when_one_bond_turns():
    expected = np.zeros(8)
    expected[ring_sizes() == 6] = 1 / 6
    ring = hexamer(reverse_one=False)
    assert hbond_network(ring, periodic=False).number_of_edges() == 6
    np.testing.assert_allclose(compute_rings(ring, periodic=False), expected)
    np.testing.assert_allclose(compute_rings(ring, periodic=False, directed=False), expected)
    broken = hexamer(reverse_one=True)
    donated = dict(hbond_network(broken, periodic=False).out_degree())
    assert (donated[0], donated[5]) == (2, 0)
    np.testing.assert_allclose(compute_rings(broken, periodic=False), 0.0)
    np.testing.assert_allclose(compute_rings(broken, periodic=False, directed=False), expected)


# --- hexagonal ice Ih ---------------------------------------------------------------------------
def ice_ih(cells):
    """Ice Ih of n_a x n_b x n_c orthorhombic cells (8 molecules each; a = sqrt(8/3) r_OO,
    b = sqrt(3) a, c = sqrt(8/3) a, c axis along z), H on the O-O lines obeying the ice rules."""
    a = np.sqrt(8 / 3) * R_OO_ICE
    cell = np.array([a, np.sqrt(3) * a, np.sqrt(8 / 3) * a])
    basis = np.array([[0, 1 / 3, 0], [0, 1 / 3, 3 / 8], [1 / 2, 1 / 6, 1 / 2], [1 / 2, 1 / 6, 7 / 8],
                      [1 / 2, 5 / 6, 0], [1 / 2, 5 / 6, 3 / 8], [0, 2 / 3, 1 / 2], [0, 2 / 3, 7 / 8]])
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in cells], indexing="ij"), -1).reshape(-1, 1, 3)
    oxy = ((grid + basis) * cell).reshape(-1, 3)
    box = cell * np.asarray(cells)
    delta = oxy[None, :, :] - oxy[:, None, :]
    delta -= box * np.round(delta / box)
    near = np.linalg.norm(delta, axis=-1)
    bonds = nx.Graph([(i, j) for i, j in zip(*np.nonzero((near > 0) & (near < 0.3)))])
    assert all(d == 4 for _, d in bonds.degree())
    # Every node has 4 bonds, so an Euler circuit exists; orienting each bond along it gives every
    # molecule 2 out (its H) and 2 in: the Bernal-Fowler ice rules.
    hyd = [[] for _ in oxy]
    for i, j in nx.eulerian_circuit(bonds):
        hyd[i].append(oxy[i] + R_OH * delta[i, j] / np.linalg.norm(delta[i, j]))
    return as_frame(oxy, np.array(hyd), box)


@pytest.mark.parametrize("cells", [(2, 1, 1), (3, 2, 2)])
def test_ice_ih_has_four_hbonds_per_molecule_and_only_six_rings(cells):
    ice = ice_ih(cells)
    assert compute_hbonds(ice).tolist() == [[2, 2]] * (8 * np.prod(cells))
    rings = compute_rings(ice, directed=False)
    expected = np.zeros(8)
    expected[ring_sizes() == 6] = 2.0  # 12 six-rings through each molecule, 6 molecules each
    np.testing.assert_allclose(rings, expected)
