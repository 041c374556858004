"""Diffusers-style pipelines, one per task, on one shared denoising core (`unigs.pipelines.core`)."""

from __future__ import annotations

from typing import Any

from unigs.conditions import check_task
from unigs.pipelines.base import UniGSPipeline, UniGSPipelineOutput
from unigs.pipelines.entity import UniGSEntityPipeline
from unigs.pipelines.guided_inpainting import UniGSGuidedInpaintOutput, UniGSGuidedInpaintPipeline
from unigs.pipelines.inpainting import UniGSInpaintPipeline
from unigs.pipelines.mask_completion import UniGSMaskCompletionPipeline
from unigs.pipelines.referring import UniGSReferringPipeline
from unigs.pipelines.synthesis import UniGSSynthesisPipeline
from unigs.pipelines.two_stage import UniGSTwoStageOutput, UniGSTwoStagePipeline

# task name (conditions.TASKS) -> pipeline class. A plain dict, no registry.
PIPELINES: dict[str, type[UniGSPipeline]] = {
    "inpainting": UniGSInpaintPipeline,
    "synthesis": UniGSSynthesisPipeline,
    "referring": UniGSReferringPipeline,
    "entity": UniGSEntityPipeline,
}


def pipeline_for_task(task: str, components: Any) -> UniGSPipeline:
    """The pipeline of `task` built from `UniGSComponents`; an unknown task raises a ValueError naming it."""
    return PIPELINES[check_task(task)].from_components(components)


__all__ = [
    "PIPELINES",
    "UniGSEntityPipeline",
    "UniGSGuidedInpaintOutput",
    "UniGSGuidedInpaintPipeline",
    "UniGSInpaintPipeline",
    "UniGSMaskCompletionPipeline",
    "UniGSPipeline",
    "UniGSPipelineOutput",
    "UniGSReferringPipeline",
    "UniGSSynthesisPipeline",
    "UniGSTwoStageOutput",
    "UniGSTwoStagePipeline",
    "pipeline_for_task",
]
