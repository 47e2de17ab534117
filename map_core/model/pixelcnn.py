"""The 3D gated PixelCNN of seed 000 (Fig. 2): depth, vertical and horizontal stacks, no blind spot.

Voxels are generated in raster order: planes z, then rows y, then columns x. Three stacks keep
the masked 3x3x3 kernel of the seed split so that nothing after the current voxel is seen and
nothing before it (within the receptive field) is missed:

- depth stack: kernels (r+1, k, k) over the current and previous planes. Its output is fed to
  the other stacks only after a shift of one plane, so they see planes < z.
- vertical stack: kernels (1, r+1, k) over the current and previous rows of the current plane;
  fed to the horizontal stack after a shift of one row, so it sees rows < y.
- horizontal stack: kernels (1, 1, r+1) over the current row, the input shifted by one column in
  the first layer so that the current voxel itself is never seen; residual connections after the
  first layer (seed 000, after van den Oord et al. 2016).

Depth feeds vertical and horizontal, vertical feeds horizontal, through 1x1x1 convolutions of
pre-activations. With r = kernel // 2 and L layers (R = L r) the output at (z, y, x) sees
exactly: planes z-1-R..z-1 over rows y-1-R..y+R and columns x-R..x+R; rows y-1-R..y-1 of the
current plane over columns x-R..x+R; columns x-1-R..x-1 of the current row
(`receptive_field`, and the property tests in tests/test_model_properties.py).

Inputs are one-hot class channels; the region outside the sample is the all-zero vector, and
every layer's features there are zero too (zero padding), so a sample is a finite world with
"outside" around it. Logits are over the real classes only; "outside" is never sampled. With
an encoding whose classes have input features (the "water" fragment classes,
``map_core.atoms.water_classes``: occupancy and the hydrogen directions) the one-hot input is
first mapped through that fixed per-class feature table (``input_table``), a voxel-wise linear
map that keeps "outside" at zero and leaves the causal structure unchanged.

This network is the one-stage model kind (``map_core.model.one_stage``); ``ModelConfig.kind``
names the kind a config builds (``map_core.model.kinds``).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from map_core.atoms.encoding import ENCODINGS, Encoding
from map_core.atoms.voxels import DEFAULT_VOXEL_NM, N_CLASSES

OUTSIDE = -1  # class id of voxels outside the sample in integer canvases


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a MAP PixelCNN. Seed 000 used layers=20, filters=20, kernel=3, relu, dropout 0.21."""

    layers: int = 8
    filters: int = 16
    kernel: int = 3
    activation: str = "gated"  # "gated" (tanh * sigmoid) or "relu"
    dropout: float = 0.21
    n_classes: int = N_CLASSES
    voxel_nm: float = DEFAULT_VOXEL_NM
    encoding: str = "atoms"  # a name of map_core.atoms.encoding.ENCODINGS; "atoms": empty, O, H
    kind: str = "one-stage"  # a name of map_core.model.kinds.KINDS; checkpoints without it are one-stage
    head: int = 0  # width of the output head's hidden layer (0: filters); the logits are of this rank
    reach_nm: float = 0.35  # two-stage kind: how far stage 2 looks for oxygens and earlier turns, nm

    def __post_init__(self):
        if self.layers < 1 or self.filters < 1:
            raise ValueError("layers and filters must be >= 1")
        if self.kernel < 3 or self.kernel % 2 == 0:
            raise ValueError("kernel must be odd and >= 3")
        if self.activation not in ("gated", "relu"):
            raise ValueError(f"activation must be 'gated' or 'relu', not {self.activation!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        if self.voxel_nm <= 0:
            raise ValueError("voxel_nm must be positive")
        if self.head < 0:
            raise ValueError("head must be >= 0 (0: as wide as filters)")
        if not self.reach_nm >= self.voxel_nm:
            raise ValueError(f"reach_nm must be at least one voxel ({self.voxel_nm} nm), got {self.reach_nm}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, not {self.encoding!r}")
        if not self.coder().fits(self.n_classes):
            raise ValueError(f"the {self.encoding} encoding has {self.coder().n_classes} classes, not {self.n_classes}")

    def coder(self) -> Encoding:
        """The voxel encoding of this model's classes (map_core.atoms.encoding)."""
        return Encoding(self.encoding, self.voxel_nm)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}")
        return cls(**data)


def one_hot(canvas: torch.Tensor, n_classes: int, dtype=torch.float32) -> torch.Tensor:
    """(B, Z, Y, X) integer canvas (OUTSIDE = -1) -> (B, n_classes, Z, Y, X) one-hot, outside all-zero."""
    canvas = canvas.long()
    hot = F.one_hot(canvas.clamp(min=0), n_classes).to(dtype)
    hot = hot * (canvas >= 0).unsqueeze(-1).to(dtype)
    return hot.permute(0, 4, 1, 2, 3).contiguous()


def shift(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Shift a (B, C, Z, Y, X) tensor by one step forward along dim 2, 3 or 4, zeros entering."""
    pad = [0, 0, 0, 0, 0, 0]
    pad[2 * (4 - dim)] = 1  # F.pad lists the last dimension first
    return F.pad(x, pad).narrow(dim, 0, x.shape[dim])


class CausalConv3d(nn.Module):
    """A 3D convolution with causal padding: `back` planes/rows/columns before, `sym` on both sides."""

    def __init__(self, c_in, c_out, kernel, pad):
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, kernel)
        self.pad = pad  # F.pad order: (x_lo, x_hi, y_lo, y_hi, z_lo, z_hi)

    def forward(self, x):
        return self.conv(F.pad(x, self.pad))


class Pointwise(nn.Conv3d):
    """A 1x1x1 convolution, (B, c_in, Z, Y, X) -> (B, c_out, Z, Y, X), computed as one batched matrix
    product. Same parameters and state-dict keys as nn.Conv3d(c_in, c_out, 1), so checkpoints are
    unchanged; but torch's CPU Conv3d takes its slow unfold-and-copy path for 1x1x1 kernels, which
    made these maps the largest share of a training step (benchmarks/profile_training.py)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 1)

    def forward(self, x):
        b, c = x.shape[:2]
        flat = x.reshape(b, c, -1)
        bias = self.bias.view(1, -1, 1).expand(b, -1, flat.shape[2])
        weight = self.weight.view(self.out_channels, c).expand(b, -1, -1)
        return torch.baddbmm(bias, weight, flat).view(b, self.out_channels, *x.shape[2:])


class GatedLayer(nn.Module):
    """One layer of the three stacks. Channel counts: inputs `c_in`, outputs `filters`."""

    def __init__(self, c_in: int, filters: int, kernel: int, activation: str, first: bool):
        super().__init__()
        r = kernel // 2
        width = 2 * filters if activation == "gated" else filters
        self.activation = activation
        self.first = first
        self.depth = CausalConv3d(c_in, width, (r + 1, kernel, kernel), (r, r, r, r, r, 0))
        self.vertical = CausalConv3d(c_in, width, (1, r + 1, kernel), (r, r, r, 0, 0, 0))
        self.horizontal = CausalConv3d(c_in, width, (1, 1, r + 1), (r, 0, 0, 0, 0, 0))
        self.depth_to_vertical = Pointwise(width, width)
        self.depth_to_horizontal = Pointwise(width, width)
        self.vertical_to_horizontal = Pointwise(width, width)
        self.horizontal_out = Pointwise(filters, filters)
        self.structural = False  # linear activations, for receptive-field analysis only

    def act(self, x):
        if self.structural:
            return x[:, : x.shape[1] // 2] + x[:, x.shape[1] // 2 :] if self.activation == "gated" else x
        if self.activation == "gated":
            a, b = x.chunk(2, dim=1)
            return torch.tanh(a) * torch.sigmoid(b)
        return F.relu(x)

    def forward(self, d, v, h):
        d_pre = self.depth(d)
        d_seen = shift(d_pre, 2)  # planes < z only
        v_pre = self.vertical(v) + self.depth_to_vertical(d_seen)
        h_in = shift(h, 4) if self.first else h  # first layer: never the current voxel
        h_pre = self.horizontal(h_in) + self.vertical_to_horizontal(shift(v_pre, 3)) + self.depth_to_horizontal(d_seen)
        h_out = self.horizontal_out(self.act(h_pre))
        if not self.first:
            h_out = h_out + h
        return self.act(d_pre), self.act(v_pre), h_out


class PixelCNN3D(nn.Module):
    """MAP model: (B, n_classes, Z, Y, X) one-hot input -> (B, n_classes, Z, Y, X) logits.

    logits[:, :, z, y, x] depend only on voxels before (z, y, x) in raster order.
    """

    def __init__(self, config: ModelConfig, features=None):
        """features: (n_classes, F) input table instead of the encoding's (the two-stage kind's stage 1
        reads occupancy only)."""
        super().__init__()
        self.config = config
        c = config.n_classes
        f = config.filters
        head = config.head or f
        features = config.coder().input_features() if features is None else features
        # fixed, not learned, and not saved: it follows from the config
        self.register_buffer("input_table", None if features is None else torch.from_numpy(features), persistent=False)
        c_in = c if features is None else features.shape[1]
        self.layers = nn.ModuleList(
            [GatedLayer(c_in if i == 0 else f, f, config.kernel, config.activation, first=(i == 0)) for i in range(config.layers)]
        )
        self.head_hidden = Pointwise(f, head)
        self.dropout = nn.Dropout(config.dropout)
        self.head_out = Pointwise(head, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_table is not None:
            x = torch.einsum("bczyx,cf->bfzyx", x, self.input_table.to(x.dtype))
        return self.network(x)

    def logits(self, canvas: torch.Tensor) -> torch.Tensor:
        """(B, Z, Y, X) integer canvas (OUTSIDE = -1) -> logits; equals self(one_hot(canvas)) but looks
        the input features up without building a one-hot tensor of every class."""
        if self.input_table is None:
            return self(one_hot(canvas, self.config.n_classes, self.head_out.weight.dtype))
        canvas = canvas.long()
        x = F.embedding(canvas.clamp(min=0), self.input_table) * (canvas >= 0).unsqueeze(-1).to(self.input_table.dtype)
        return self.network(x.permute(0, 4, 1, 2, 3).contiguous())

    def network(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, Z, Y, X) input features -> (B, n_classes, Z, Y, X) logits."""
        d = v = h = x
        for layer in self.layers:
            d, v, h = layer(d, v, h)
        structural = self.layers[0].structural
        hidden = self.head_hidden(h if structural else F.relu(h))
        return self.head_out(self.dropout(hidden if structural else F.relu(hidden)))

    def set_structural(self, on: bool) -> None:
        for layer in self.layers:
            layer.structural = on


def input_matrix(model: PixelCNN3D) -> torch.Tensor:
    """(n_classes, C_in) float32 input vector of each class: the identity for one-hot inputs."""
    if model.input_table is not None:
        return model.input_table.float()
    return torch.eye(model.config.n_classes)


def eval_copy(model: PixelCNN3D, dtype) -> PixelCNN3D:
    """`model` in eval mode and `dtype`: itself if it already is, else a converted copy.

    Samplers and log_prob use this so that the caller's model is never changed.
    """
    if next(model.parameters()).dtype == dtype and not model.training:
        return model
    return copy.deepcopy(model).to(dtype).eval()
