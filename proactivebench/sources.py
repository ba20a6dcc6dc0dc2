"""The seven source datasets: one registry entry each, so no code branches on a source name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceInfo:
    name: str  # our short name, used in sample ids, folder names and configs
    official_name: str  # the authors' dataset key and jsonl stem
    acronym: str  # the authors' test-script / OEG-threshold key
    scenario: str
    license: str
    citation: str
    homepage: str


SOURCES: dict[str, SourceInfo] = {
    s.name: s
    for s in [
        SourceInfo(
            "rod", "Realistic-Occlusion-Dataset", "ROD", "occlusion", "other (see the ROD card)",
            "Lee et al., Hardwiring ViT Patch Selectivity into CNNs using Patch Mixing, arXiv:2306.17848, 2023",
            "https://huggingface.co/datasets/arielnlee/Realistic-Occlusion-Dataset",
        ),
        SourceInfo(
            "vsod", "OcclusionDataSet-MM20", "VSOD", "temporal_occlusion", "research use (see the authors' page)",
            "Liao et al., Occlusion Detection for Automatic Video Editing, ACM MM 2020",
            "https://junhua-liao.github.io/Occlusion-Detection/",
        ),
        SourceInfo(
            "mvpn", "MVP-N", "MVP-N", "viewpoint", "non-commercial research use",
            "Wang et al., MVP-N: A Dataset and Benchmark for Real-World Multi-View Object Classification, "
            "NeurIPS 2022 Datasets and Benchmarks",
            "https://github.com/SMNUResearch/MVP-N",
        ),
        SourceInfo(
            "imagenet_c", "ImageNet-C", "IN-C", "image_quality", "CC BY 4.0 (corruptions); ImageNet terms apply",
            "Hendrycks and Dietterich, Benchmarking Neural Network Robustness to Common Corruptions and "
            "Perturbations, ICLR 2019",
            "https://github.com/hendrycks/robustness",
        ),
        SourceInfo(
            "quickdraw", "QuickDraw", "QD", "details", "CC BY 4.0",
            "Ha and Eck, A Neural Representation of Sketch Drawings, ICLR 2018",
            "https://github.com/googlecreativelab/quickdraw-dataset",
        ),
        SourceInfo(
            "changeit", "ChangeIt", "CIT", "temporal", "MIT (annotations); videos are YouTube content",
            "Soucek et al., Look for the Change: Learning Object States and State-Modifying Actions from "
            "Untrimmed Web Videos, CVPR 2022",
            "https://github.com/soCzech/ChangeIt",
        ),
        SourceInfo(
            "coco", "coco2014", "COCO", "camera_movement", "CC BY 4.0 (annotations); Flickr terms for images",
            "Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014",
            "https://cocodataset.org",
        ),
    ]
}

SOURCE_NAMES: tuple[str, ...] = tuple(SOURCES)
BY_OFFICIAL_NAME: dict[str, SourceInfo] = {s.official_name: s for s in SOURCES.values()}
SCENARIO_NAMES: tuple[str, ...] = tuple(s.scenario for s in SOURCES.values())


def get_source(name: str) -> SourceInfo:
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown source {name!r}; expected one of {', '.join(SOURCE_NAMES)}") from None
