"""The input contract between a model and whoever feeds it.

Every model in edgecls takes raw pixels (0-255 as float32, NHWC); normalisation lives
inside the model. This spec travels with the model (Keras model card, ONNX metadata) so
that training, export validation and the runtime all prepare images identically.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class InputSpec:
    height: int
    width: int
    channels: int  # 1 = grey (ITU-R 601 luma), 3 = RGB
    layout: str = "NHWC"
    dtype: str = "float32"
    pixel_min: float = 0.0
    pixel_max: float = 255.0

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"image size must be positive, got {self.height}x{self.width}")
        if self.layout not in ("NHWC", "NCHW"):
            raise ValueError(f"layout must be NHWC or NCHW, got {self.layout}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Per-image shape in the model's layout (no batch axis)."""
        if self.layout == "NCHW":
            return (self.channels, self.height, self.width)
        return (self.height, self.width, self.channels)

    @property
    def pil_mode(self) -> str:
        return "L" if self.channels == 1 else "RGB"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InputSpec":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)
