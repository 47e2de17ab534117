"""Where the judged boxes come from: box sources, one object each, behind one interface.

A gate session asks its source for what it can provide instead of branching on what it judges:

- ``ModelSource``: boxes sampled from a MAP model (empty or outside boundary, profile
  temperature); it can also give the Markov-chain checks;
- ``GridSource``: given voxel grids of the model's geometry (controls: held-out training windows,
  foreign water voxelised like the model's boxes), judged in place of the model's samples; the
  Markov checks still sample the model;
- ``WindowSource``: boxes of atoms from any generator (``map-suite validate --boxes``) or fresh
  draws of reference frames (error rates), cut into windows of the judging geometry, as
  continuous positions or voxelised; no Markov checks (no model).

Each source also says how the reference windows are cut for it, so that both sides of every
comparison pass through the same functions. Grids (K, Z, Y, X) uint8, lengths nm.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from map_core.atoms.frames import Frames
from map_core.model.kinds import kind_of
from map_core.sampling.generate import SamplingJob
from validation.gate import streams
from validation.gate.boxes import (
    box_geometry,
    decode_grids,
    is_periodic,
    judging_geometry,
    sample_boxes,
    window_ensemble,
    window_grids,
)
from validation.gate.cache import key
from validation.gate.md import seed_box, window_seed_box


def mode_name(coder) -> str:
    """'continuous', or 'ENCODING@VOXEL' (e.g. 'water@0.05'): the judging mode of a coder (None: no voxels)."""
    return "continuous" if coder is None else f"{coder.name}@{coder.voxel_nm:g}"


def sampling_key(profile) -> dict:
    """The [sampling] settings the sampled boxes depend on: all but the device (CPU and CUDA draw the same boxes)."""
    return {k: v for k, v in profile["sampling"].items() if k != "device"}


class BoxSource:
    """Interface of a source. coder: the encoding both sides are voxelised with (None: continuous);
    markov: None when the source can give the Markov checks, else why they are not applicable."""

    coder = None
    markov: str | None = None

    def geometry(self, profile):
        """The BoxGeometry of the judged boxes and windows."""
        raise NotImplementedError

    def key(self, session) -> str:
        """Cache key of the judged ensemble."""
        raise NotImplementedError

    def whole_boxes(self, session) -> Frames:
        """The judged boxes, decoded (open boxes of the geometry's shape)."""
        raise NotImplementedError

    def reference_windows(self, session, which: str, n: int, tag: int) -> Frames:
        """`n` windows of the reference split `which`, cut as this source's boxes are."""
        raise NotImplementedError

    def mode_token(self):
        """The judging mode as it enters the reference windows' cache keys."""
        raise NotImplementedError

    def md_seed_box(self, session, box_nm: float) -> tuple:
        """(positions, box, repair report) of the MD run seeded from the judged boxes."""
        raise NotImplementedError

    def md_mode(self) -> tuple:
        """The judging mode as it enters the training-seeded MD run's cache key."""
        raise NotImplementedError

    def judged(self) -> str:
        """What results.json says was judged."""
        raise NotImplementedError

    def describe(self) -> dict:
        """Extra results.json fields of this source."""
        return {}

    def draw(self, session, frames, indices, seed: int, identity: str) -> "BoxSource":
        """A source of judged boxes cut from `frames` (at `indices`) as this source's own are, with
        windows of stream `seed`: fresh draws of held-out or foreign water for the error rates."""
        raise NotImplementedError


@dataclass
class ModelSource(BoxSource):
    """Boxes sampled from a model (map_core PixelCNN3D) with its checkpoint's path, sha256 and payload."""

    model: object
    path: Path
    sha256: str
    payload: dict

    def __post_init__(self):
        self.coder = self.model.config.coder()

    def geometry(self, profile):
        return box_geometry(self.model.config, profile["sampling"])

    def sample_key(self, session) -> str:
        """Cache key of the model's own samples."""
        return key("generated", self.sha256, sampling_key(session.profile), session.geometry.as_dict(), session.seed)

    def key(self, session) -> str:
        return self.sample_key(session)

    def sampled(self, session) -> np.ndarray:
        """(n_boxes, Z, Y, X) boxes sampled from the model, cached per batch."""
        s = session.profile["sampling"]
        job = SamplingJob(session.geometry.shape, s["n_boxes"], s["temperature"], session.seed, s["boundary"], s["batch"],
                          device=s["device"])
        return sample_boxes(self.model, job, session.cache.dir(self.sample_key(session)), session.progress, session.log,
                            session.client)

    def grids(self, session) -> np.ndarray:
        """The judged boxes as grids."""
        return self.sampled(session)

    def whole_boxes(self, session):
        return decode_grids(self.grids(session), self.coder)

    def reference_windows(self, session, which, n, tag):
        grids = session.reference.grids(which, session.geometry.shape, self.coder, n, streams.rng(session.seed, tag))
        return decode_grids(grids, self.coder)

    def mode_token(self):
        return self.coder.name

    def md_seed_box(self, session, box_nm):
        return seed_box(self.grids(session)[0], self.coder, session.geometry.region_lower_nm, box_nm)

    def md_mode(self) -> tuple:
        return self.coder.voxel_nm, self.coder.name

    def judged(self) -> str:
        return "model samples"

    def draw(self, session, frames, indices, seed, identity):
        grids = window_grids(frames, indices, session.geometry.shape, self.coder, session.profile["sampling"]["n_boxes"],
                             streams.rng(seed, streams.HELDOUT_WINDOWS))
        return GridSource.of(self, grids)

    def markov_planes(self) -> int:
        """Thickness (planes) of the Markov boundary test's blocks: one receptive-field depth."""
        return max(kind_of(self.model.config).receptive_field(self.model.config).planes_back, 1)


@dataclass
class GridSource(ModelSource):
    """Given grids (K, Z, Y, X) of the model's geometry judged instead of its samples."""

    given: np.ndarray = None

    def __post_init__(self):
        super().__post_init__()
        self.given = np.ascontiguousarray(self.given, dtype=np.uint8)

    @classmethod
    def of(cls, source: ModelSource, grids) -> "GridSource":
        return cls(model=source.model, path=source.path, sha256=source.sha256, payload=source.payload, given=grids)

    def key(self, session) -> str:
        return key("given", hashlib.sha256(self.given.tobytes()).hexdigest(), self.given.shape)

    def grids(self, session) -> np.ndarray:
        return self.given

    def judged(self) -> str:
        return "given boxes (control), not the model's samples"


@dataclass
class WindowSource(BoxSource):
    """Windows of boxes of atoms: a file of any generator's boxes (``--boxes``) or frames drawn for
    the error rates. frames: map_core Frames; identity: sha256 of the file (or of the draw);
    coder: voxelise both sides with it, or None for continuous positions; calibration: the
    profile's [calibration] voxel and encoding, which fix the windows' geometry without voxels;
    seed: the stream of the windows (None: the session's seed)."""

    frames: Frames
    path: Path
    identity: str
    coder: object
    seed: int | None = None
    indices: list | None = None
    model = None
    markov = "not applicable: the Markov-chain checks need the model that made the boxes"

    def geometry(self, profile):
        cal = profile["calibration"]
        voxel, encoding = (self.coder.voxel_nm, self.coder.name) if self.coder else (cal["voxel_nm"], cal["encoding"])
        return judging_geometry(voxel, encoding, profile["sampling"])

    def _indices(self):
        return range(len(self.frames)) if self.indices is None else self.indices

    def draw(self, session, frames, indices, seed, identity):
        return WindowSource(frames=frames, path=self.path, identity=identity, coder=self.coder, seed=seed,
                            indices=list(indices))

    def _seed(self, session) -> int:
        return session.seed if self.seed is None else self.seed

    def key(self, session) -> str:
        return key("given-boxes", self.identity, mode_name(self.coder), session.geometry.as_dict(),
                   session.profile["sampling"]["n_boxes"], self._seed(session))

    def whole_boxes(self, session):
        return window_ensemble(self.frames, self._indices(), session.geometry, self.coder,
                               session.profile["sampling"]["n_boxes"], streams.rng(self._seed(session), streams.GIVEN_WINDOWS))

    def reference_windows(self, session, which, n, tag):
        return session.reference.windows(which, session.geometry, self.coder, n, streams.rng(session.seed, tag))

    def mode_token(self):
        return mode_name(self.coder)

    def md_seed_box(self, session, box_nm):
        _, seeded = window_seed_box(self.frames, self._indices(), box_nm, self.coder,
                                    streams.rng(self._seed(session), streams.GIVEN_MD_SEED))
        return seeded

    def md_mode(self) -> tuple:
        return (mode_name(self.coder),)

    @property
    def judging(self) -> str:
        if self.coder is None:
            return "continuous positions (no voxels), both sides"
        return f"voxelised, both sides: {self.coder.name} classes at {self.coder.voxel_nm:g} nm"

    def judged(self) -> str:
        return f"boxes from {self.path.name} ({self.judging})"

    def describe(self) -> dict:
        return {"judging": {"mode": "continuous" if self.coder is None else "voxelised",
                            "encoding": None if self.coder is None else self.coder.name,
                            "voxel_nm": None if self.coder is None else self.coder.voxel_nm,
                            "boxes": len(self.frames), "periodic": is_periodic(self.frames)}}
