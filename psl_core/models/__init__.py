"""Split-able models (ordered lists of named blocks) and their measured cost profiles (methods §1)."""

from psl_core.models.norms import NORM_KINDS, InvalidNormError, SegmentBatchNorm, group_count, make_norm
from psl_core.models.profile import (
    BlockCost,
    CutSummary,
    ModelProfile,
    cut_summary,
    cut_table,
    profile_arch,
    profile_model,
)
from psl_core.models.zoo import (
    ARCHITECTURES,
    ArchInfo,
    BlockModel,
    InvalidCutError,
    InvalidModelError,
    block_names_for,
    build_model,
    count_parameters,
    resolve_cut_index,
)

__all__ = [
    "ARCHITECTURES",
    "NORM_KINDS",
    "ArchInfo",
    "BlockCost",
    "BlockModel",
    "CutSummary",
    "InvalidCutError",
    "InvalidModelError",
    "InvalidNormError",
    "ModelProfile",
    "SegmentBatchNorm",
    "block_names_for",
    "build_model",
    "count_parameters",
    "cut_summary",
    "cut_table",
    "group_count",
    "make_norm",
    "profile_arch",
    "profile_model",
    "resolve_cut_index",
]
