"""Typed step payloads, GENERATED from contracts/*.schema.json by dev_support/generate_payloads.py:
do not edit. Run `python -m dev_support.generate_payloads` in gpu-worker/ after `npm run contracts`
(tests/test_payloads.py fails while this file is stale).

The types name the fields; the constraints (ranges, patterns, no unknown fields) are the schemas',
checked at run time by contracts/validation.py before a step sees its payload.
"""

from typing import Literal, NotRequired, TypedDict


# The GPU steps with contracts (<step>.input/result); which queues carry them: contracts/steps.json.
StepName = Literal[
    "caption_identity",
    "check_identity_photos",
    "evaluate_identity",
    "generate",
    "prepare_identity",
    "prompt",
    "report",
    "train_identity",
    "validate",
]
STEP_NAMES: tuple[StepName, ...] = ("caption_identity", "check_identity_photos", "evaluate_identity", "generate", "prepare_identity", "prompt", "report", "train_identity", "validate")


class Trace(TypedDict):
    traceparent: str
    tracestate: NotRequired[str]


class Photo(TypedDict):
    key: str


class CaptionIdentityInput(TypedDict):
    trace: NotRequired[Trace]
    identityId: str
    photos: list[Photo]
    triggerToken: str


class CaptionIdentityResultPhoto(TypedDict):
    key: str
    caption: str


class CaptionIdentityResult(TypedDict):
    photos: list[CaptionIdentityResultPhoto]


class CheckIdentityPhotosInput(TypedDict):
    trace: NotRequired[Trace]
    identityId: str
    photoKeys: list[str]


class CheckIdentityPhotosResultPhoto(TypedDict):
    accepted: bool
    reason: NotRequired[str]
    faceBox: NotRequired[list[int]]


class CheckIdentityPhotosResult(TypedDict):
    photos: list[CheckIdentityPhotosResultPhoto]


class EvaluateIdentityInput(TypedDict):
    trace: NotRequired[Trace]
    identityId: str
    embeddingsKey: str
    loraKey: str
    prompts: NotRequired[list[str]]
    count: NotRequired[int]
    seed: int
    size: int
    steps: NotRequired[int]
    triggerToken: str
    outputPrefix: str


class Render(TypedDict):
    key: str
    prompt: str
    withLora: bool
    faceFound: bool
    distance: float | None


class RendersWithFace(TypedDict):
    withLora: int
    withoutLora: int


class Summary(TypedDict):
    medianDistanceWithLora: float | None
    medianDistanceWithoutLora: float | None
    rendersWithFace: RendersWithFace


class EvaluateIdentityResult(TypedDict):
    renders: list[Render]
    summary: Summary
    timings: NotRequired[dict[str, float]]


Upscale = Literal[1, 2, 4]


OutputFormat = Literal["png", "webp"]


class Lora(TypedDict):
    repo: str
    weight_name: NotRequired[str]
    scale: float


class IdentityLora(TypedDict):
    key: str
    triggerToken: str
    scale: float


class Destination(TypedDict):
    bucket: str
    prefix: NotRequired[str]
    region: NotRequired[str]
    endpoint: NotRequired[str]


class GenerateInput(TypedDict):
    trace: NotRequired[Trace]
    jobId: str
    attempt: int
    prompt: str
    negativePrompt: NotRequired[str]
    seed: int
    width: int
    height: int
    upscale: NotRequired[Upscale]
    numImages: int
    steps: NotRequired[int]
    guidance: NotRequired[float]
    outputFormat: NotRequired[OutputFormat]
    referenceImageKey: NotRequired[str]
    referenceImageKeys: NotRequired[list[str]]
    loras: list[Lora]
    identityLora: NotRequired[IdentityLora]
    destination: NotRequired[Destination]
    secrets: NotRequired[str]
    outputPrefix: str


class GeneratedImage(TypedDict):
    key: str
    bucket: NotRequired[str]
    width: int
    height: int
    contentType: str


Method = Literal["native", "super_resolution", "resize"]


class SuperResolutionPass(TypedDict):
    model: str
    scale: int


class Pixels(TypedDict):
    nativeWidth: int
    nativeHeight: int
    method: Method
    factor: float
    upscalers: NotRequired[list[SuperResolutionPass]]
    seconds: float


class GenerateResult(TypedDict):
    images: list[GeneratedImage]
    seed: int
    timings: NotRequired[dict[str, float]]
    pixels: NotRequired[Pixels]


class PrepareIdentityInput(TypedDict):
    trace: NotRequired[Trace]
    identityId: str
    photoKeys: list[str]
    resolution: int
    triggerToken: str
    outputPrefix: str


class PrepareIdentityResult(TypedDict):
    photos: list[CaptionIdentityResultPhoto]
    embeddingsKey: str


Purpose = Literal[
    "professional_linkedin",
    "corporate_headshot",
    "executive_portrait",
    "academic_profile",
    "creative_portfolio",
    "personal_branding",
    "social_media",
    "dating_profile",
]


Attire = Literal[
    "business_formal",
    "business_casual",
    "smart_casual",
    "casual",
    "creative",
    "keep_original",
]


Background = Literal[
    "modern_office",
    "neutral_studio",
    "solid_white",
    "solid_dark",
    "outdoor_urban",
    "outdoor_nature",
    "library",
]


Vibe = Literal["confident", "approachable", "authoritative", "friendly", "creative", "calm"]


Lighting = Literal[
    "studio_softbox",
    "natural_window",
    "golden_hour",
    "rembrandt",
    "high_key",
    "low_key",
]


Resolution = Literal["1k", "2k", "4k"]


class Parameters(TypedDict):
    purpose: Purpose
    attire: Attire
    background: Background
    vibe: Vibe
    lighting: Lighting
    resolution: Resolution


class Previous(TypedDict):
    prompt: str
    feedback: str


class PromptInput(TypedDict):
    trace: NotRequired[Trace]
    jobId: str
    attempt: int
    parameters: Parameters
    referenceImageKey: str
    previous: Previous | None


class PromptResult(TypedDict):
    prompt: str
    negativePrompt: NotRequired[str]


class FaceBoxes(TypedDict):
    reference: list[int] | None
    image: list[int] | None


class Check(TypedDict):
    name: str
    passed: bool
    value: float | str | bool | None
    threshold: NotRequired[float]
    detail: NotRequired[str]
    faceBoxes: NotRequired[FaceBoxes]
    distances: NotRequired[list[float | None]]


Status = Literal["judged", "skipped"]


class Judgement(TypedDict):
    status: Status
    reason: NotRequired[str]


class Candidate(TypedDict):
    passed: bool
    score: float
    checks: list[Check]
    feedback: str
    judgement: NotRequired[Judgement]
    imageKey: str


class Verdict(TypedDict):
    passed: bool
    score: float
    checks: list[Check]
    feedback: str
    judgement: NotRequired[Judgement]
    best: int
    candidates: NotRequired[list[Candidate]]


class Attempt(TypedDict):
    attempt: int
    prompt: str
    imageKeys: list[str]
    verdict: Verdict


class ReportInput(TypedDict):
    trace: NotRequired[Trace]
    jobId: str
    parameters: Parameters
    referenceImageKey: str
    attempts: list[Attempt]


class FailedCheck(TypedDict):
    name: str
    count: int


class ReportResult(TypedDict):
    summary: str
    failedChecks: list[FailedCheck]
    suggestions: list[str]


class Recipe(TypedDict):
    steps: int
    rank: int
    learningRate: float
    resolution: int
    seed: int
    checkpointEvery: int


class TrainIdentityInput(TypedDict):
    trace: NotRequired[Trace]
    identityId: str
    photos: list[CaptionIdentityResultPhoto]
    recipe: Recipe
    checkpointKey: str
    loraKey: str


class TrainIdentityResult(TypedDict):
    loraKey: str
    stepsDone: int
    lossAverage: float
    recentLosses: list[float]
    resumedFromStep: int
    timings: NotRequired[dict[str, float]]


class ValidateInput(TypedDict):
    trace: NotRequired[Trace]
    jobId: str
    attempt: int
    parameters: Parameters
    referenceImageKey: str
    referenceImageKeys: NotRequired[list[str]]
    identityEmbeddingsKey: NotRequired[str]
    imageKeys: list[str]
    prompt: str
    expectedWidth: int
    expectedHeight: int


class ValidateResult(TypedDict):
    passed: bool
    score: float
    checks: list[Check]
    feedback: str
    judgement: NotRequired[Judgement]
    best: NotRequired[int]
    candidates: NotRequired[list[Candidate]]
