"""Hydrogen-bond rings: shortest-path rings (King's criterion) of the H-bond network.

The network has one node per complete molecule and one edge donor -> acceptor for every pair
bonded by the gate's criterion (:func:`validation.observables.hbonds.hbond_pairs`, the code path of
``compute_hbonds``: O...O < 0.35 nm, angle(O_D->H, O_D->O_A) < 30 deg).

Rings follow King's shortest-path criterion (S. V. King, Nature 213, 1112 (1967)): for each
node i and each pair of its bonds j-i-k, the ring of that angle is i plus a shortest path from j
to k that avoids i; when several shortest paths tie, each gives a ring. A ring is counted once,
however many of its angles select it. King's criterion keeps some rings that stricter
definitions drop: where a square and a pentagon share an edge, the reflex angle at each shared
node selects the 7-membered envelope (Franzblau's shortest-path rings and primitive rings do not).
Papers also normalise differently (distinct rings per molecule here; elsewhere the smallest ring
of each angle, or the fraction of molecules in an n-ring), which moves the peak: in a 216-molecule
q-TIP4P/F box at 300 K the undirected distinct rings peak at 8, the smallest ring per angle at 6.

* ``directed=True`` (the default, because the issue defines the network as donor -> acceptor):
  a ring is a directed cycle of H-bonds, each molecule accepting from the one before it and
  donating to the one after; the angle is p -> i -> s and the path runs from s to p along bonds.
* ``directed=False``: bond directions are ignored. This is the variant most studies of water
  report (see e.g. A. Rahman and F. H. Stillinger, J. Am. Chem. Soc. 95, 7943 (1973)); it is the
  one to compare with the literature. Liquid water has many more undirected than directed rings.

Periodic boxes are searched in their periodic images, so a ring is a closed loop in space: a
cycle that winds through the box (possible for large rings in small boxes) is not a ring, and
a shortcut through a periodic image is seen. Open boxes (``periodic=False``) see only the bonds
inside the box, so rings near the faces can come out larger than they are.

networkx gives the breadth-first searches (``single_source_shortest_path_length``,
``predecessor``). matscipy's ``rings.ring_statistics`` (not installed, not a dependency) counts
Franzblau's shortest-path rings of an undirected covalent network built with a distance cutoff
from an ase.Atoms; it has neither directed bonds, the angular H-bond criterion nor King's
criterion, so it is not used.
"""

from __future__ import annotations

from itertools import combinations, product
from typing import TYPE_CHECKING

import numpy as np

from map_core.atoms.neighbors import minimum_image
from map_core.errors import MapSuiteError
from validation.observables.frame_tools import as_frames, distance_to_faces, frame, wrap
from validation.observables.hbonds import ANGLE, R_OO, hbond_pairs

if TYPE_CHECKING:
    import networkx as nx

MIN_SIZE = 3  # a ring needs three molecules (a mutual pair is a 2-cycle, not a ring)


def hbond_network(data, periodic: bool = True, r_oo: float = R_OO, angle: float = ANGLE,
                  frame_index: int = 0) -> nx.DiGraph:
    """Directed H-bond network of one frame (``frame_index``), edges donor -> acceptor.

    Nodes 0..M-1 are the complete molecules in the order of ``water_molecules`` (the rows of
    ``compute_hbonds`` for a periodic box), with ``position``: (3,) float64 oxygen position, nm
    (wrapped into the box when periodic). Edge attributes: ``shift``, (3,) int, the periodic image
    of the acceptor that is bonded (its oxygen at ``position + shift * box``; zeros for open
    boxes), and ``bonds``, how many of the donor's H point to it (1 or 2). ``graph.graph`` holds
    ``box`` ((3,) nm) and ``periodic``. Lengths nm, angle radians.
    """
    frames = as_frames(data)
    return _network(*frame(frames, frame_index), periodic, r_oo, angle)


def _network(pos, el, mol, box, periodic, r_oo, angle) -> nx.DiGraph:
    w, bonds = hbond_pairs(pos, el, mol, box, periodic, r_oo, angle)
    oxy = wrap(pos[w[:, 0]], box) if periodic else pos[w[:, 0]]
    import networkx as nx  # local: 0.1 s to import, which every `map-suite` start (the gate's measures) need not pay

    graph = nx.DiGraph(box=np.asarray(box, dtype=np.float64), periodic=periodic)
    graph.add_nodes_from((m, {"position": oxy[m]}) for m in range(len(w)))
    d, a = bonds[:, 0], bonds[:, 1]
    if periodic:  # which image of the acceptor the minimum-image bond reaches
        reach = oxy[d] + minimum_image(oxy[a] - oxy[d], box)
        shifts = np.rint((reach - oxy[a]) / box).astype(np.int64)
    else:
        shifts = np.zeros((len(bonds), 3), dtype=np.int64)
    for donor, acceptor, shift in zip(d.tolist(), a.tolist(), shifts):
        if graph.has_edge(donor, acceptor):
            graph[donor][acceptor]["bonds"] += 1
        else:
            graph.add_edge(donor, acceptor, shift=shift, bonds=1)
    return graph


def king_rings(graph: nx.Graph, max_size: int = 10, directed: bool = True, centres=None) -> list[tuple]:
    """Distinct rings of ``MIN_SIZE``..``max_size`` members selected by King's criterion.

    graph: a networkx graph (a DiGraph when ``directed``; with ``directed=False`` the directions
    of a DiGraph are ignored). centres: the nodes whose angles are searched (default all); a ring
    selected only at other nodes is not reported. Returns one tuple of nodes per ring, in ring
    order (for directed rings, along the bonds), each ring once.
    """
    if directed and not graph.is_directed():
        raise MapSuiteError("directed rings need a directed graph (nx.DiGraph)")
    if not directed and graph.is_directed():
        graph = graph.to_undirected(as_view=True)
    rings = {}
    for i in graph if centres is None else centres:
        for ring in _rings_through(graph, i, max_size, directed):
            rings.setdefault(_ring_key(ring, directed), ring)
    return list(rings.values())


def _rings_through(graph, i, max_size: int, directed: bool):
    """King rings of the angles at node i, each beginning with i."""
    # Every ring of <= max_size members through i lies within max_size // 2 bonds of i, and so
    # does any path short enough to compete with it: the search can stay in that ball.
    import networkx as nx  # local, as in _network

    reach = nx.single_source_shortest_path_length(
        graph.to_undirected(as_view=True) if directed else graph, i, cutoff=max_size // 2)
    ball = graph.subgraph([n for n in reach if n != i])  # a view: copying the ball cost more than searching it
    if directed:  # angle p -> i -> s closed by a path s -> ... -> p
        angles = [(s, p) for s in graph.successors(i) for p in graph.predecessors(i) if p != s]
    else:
        angles = list(combinations(graph.neighbors(i), 2))
    starts = {s for s, _ in angles}
    pred = {s: nx.predecessor(ball, s, cutoff=max_size - 2) for s in starts}  # path of <= max_size - 1 nodes
    for s, p in angles:
        if p in pred[s]:
            for path in _shortest_paths(pred[s], s, p):
                yield (i,) + path


def _shortest_paths(pred: dict, source, target):
    """Every shortest path source -> target (node tuples) from a breadth-first predecessor map."""
    stack = [(target,)]
    while stack:
        path = stack.pop()
        if path[0] == source:
            yield path
        else:
            stack.extend((p,) + path for p in pred[path[0]])


def _ring_key(ring: tuple, directed: bool) -> frozenset:
    """The set of a ring's bonds: the same ring found from another node or angle has the same."""
    bonds = zip(ring, ring[1:] + ring[:1])
    return frozenset(bonds if directed else (frozenset(b) for b in bonds))


def compute_rings(data, periodic: bool = True, max_size: int = 10, directed: bool = True,
                  r_oo: float = R_OO, angle: float = ANGLE) -> np.ndarray:
    """(max_size - 2,) float64 H-bond rings of 3..max_size molecules per molecule (dimensionless).

    Element n - 3 is the number of distinct King rings of n molecules (see the module docstring
    for the criterion and ``directed``) divided by the number of molecules, over all frames
    together: hexagonal ice has 2.0 six-membered rings per molecule (12 rings through each
    molecule, each ring shared by 6). Equivalently, each ring gives 1/n to each of its members
    and the result is the mean over molecules; open boxes (``periodic=False``) use that form over
    the molecules compute_hbonds reports (those at least r_oo from every face). Lengths nm.
    """
    counts, molecules = ring_counts(data, periodic, max_size, directed, r_oo, angle)
    return counts / molecules if molecules else np.full(len(counts), np.nan)


def ring_counts(data, periodic: bool = True, max_size: int = 10, directed: bool = True,
                r_oo: float = R_OO, angle: float = ANGLE) -> tuple[np.ndarray, int]:
    """(counts (max_size - 2,) float64, molecules int): the sums behind :func:`compute_rings`, which
    add up over boxes (the gate sums them over windows): counts[n - 3] is the rings of n molecules,
    each counted by the fraction of its members that are reported; molecules the reported ones."""
    if max_size < MIN_SIZE:
        raise MapSuiteError(f"max_size must be at least {MIN_SIZE}, got {max_size}")
    frames = as_frames(data)
    counts = np.zeros(max_size - MIN_SIZE + 1)
    molecules = 0
    for f in range(len(frames)):
        pos, el, mol, box = frame(frames, f)
        graph = _network(pos, el, mol, box, periodic, r_oo, angle)
        if periodic:
            reported = np.ones(len(graph), dtype=bool)
            rings = _periodic_rings(graph, max_size, directed)
        else:
            positions = np.array([graph.nodes[m]["position"] for m in graph]).reshape(-1, 3)
            reported = distance_to_faces(positions, box) >= r_oo
            rings = king_rings(graph, max_size, directed)
        for ring in rings:
            counts[len(ring) - MIN_SIZE] += sum(reported[m] for m in ring) / len(ring)
        molecules += int(reported.sum())
    return counts, molecules


def _periodic_rings(graph: nx.DiGraph, max_size: int, directed: bool) -> list[tuple]:
    """King rings of a periodic network, one per ring up to translation, as molecule tuples."""
    cover = _periodic_images(graph, max_size)
    origin = (0, 0, 0)
    rings = {}
    for ring in king_rings(cover, max_size, directed, centres=[(m, origin) for m in graph]):
        # the same ring is found from each central member, translated: key it from its least node
        ref = np.array(min(ring)[1])
        moved = tuple((m, tuple((np.array(c) - ref).tolist())) for m, c in ring)
        rings.setdefault(_ring_key(moved, directed), tuple(m for m, _ in ring))
    return list(rings.values())


def _periodic_images(graph: nx.DiGraph, max_size: int) -> nx.DiGraph:
    """The network repeated over enough periodic images that the ball of max_size // 2 bonds
    around any node of the central box lies inside; nodes are (molecule, cell (3,) tuple)."""
    box = graph.graph["box"]
    longest = max((np.linalg.norm(graph.nodes[a]["position"] + s * box - graph.nodes[d]["position"])
                   for d, a, s in graph.edges(data="shift")), default=0.0)
    n = np.ceil(max_size // 2 * longest / box).astype(int)  # cells each side of the central one
    cells = list(product(*(range(-k, k + 1) for k in n)))
    import networkx as nx  # local, as in _network

    cover = nx.DiGraph()
    cover.add_nodes_from((m, c) for m in graph for c in cells)
    for d, a, s in graph.edges(data="shift"):
        for c in cells:
            target = tuple(int(x) for x in np.add(c, s))
            if all(abs(t) <= k for t, k in zip(target, n)):
                cover.add_edge((d, c), (a, target))
    return cover


def ring_sizes(max_size: int = 10) -> np.ndarray:
    """(max_size - 2,) int ring sizes 3..max_size, the x axis of :func:`compute_rings`."""
    return np.arange(MIN_SIZE, max_size + 1)

