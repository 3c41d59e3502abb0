"""Step `validate`: deterministic checks (dimensions, blank/noise, one adequate face, identity
distance to the reference photos: the median over all of them, identity/gate.py) plus the VLM's judgement of the request, for each candidate image of the
attempt; the best candidate's verdict is the attempt's, every candidate's is recorded. Every check
reports what it measured, and the VLM's feedback goes to the next attempt's prompt. The cheap checks
run first: a candidate that fails a gating one is never shown to the VLM (it cannot pass anyway)."""

import asyncio
import threading
from collections import OrderedDict

from bullmq import AbortSignal, Job
from PIL import Image

from ..checks.faces import Face, FaceAnalyzer
from ..checks.image_quality import grey_stddev, high_frequency_ratio
from ..contracts.payloads import Check, ValidateInput, ValidateResult
from ..contracts.references import reference_keys
from ..contracts.vocabulary import phrases
from ..identity.embeddings import identity_faces
from ..identity.gate import distance_to_identity
from ..images import decode_rgb
from ..object_store import ObjectStore
from ..settings import WorkerSettings
from ..step_worker import StepProcessor
from ..vlm.answers import JUDGE_ANSWER, JUDGED_ASPECTS
from ..vlm.backend import VlmBackend, ask_json_batch
from ..vlm.templates import render


def _check(name: str, passed: bool, value, threshold: float | None = None, detail: str | None = None) -> Check:
    check: Check = {"name": name, "passed": bool(passed), "value": value}
    if threshold is not None:
        check["threshold"] = threshold
    if detail:
        check["detail"] = detail
    return check


class ReferenceFaces:
    """The largest face of each reference photo, by its S3 key: a job's photo is read and its face
    embedded once per worker process, not on every attempt. Bounded, least recently used first out."""

    def __init__(self, store: ObjectStore, faces: FaceAnalyzer, capacity: int = 256):
        self._store, self._faces, self._capacity = store, faces, capacity
        self._cache: OrderedDict[str, Face | None] = OrderedDict()
        self._lock = threading.Lock()  # steps call it from worker threads
        self.computed = 0  # how many were computed (the rest came from the cache)

    def largest(self, key: str) -> Face | None:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        reference = decode_rgb(self._store.get_bytes(key), "reference image")
        face = max(self._faces.faces(reference), key=lambda f: f.side, default=None)
        with self._lock:
            self.computed += 1
            self._cache[key] = face
            if len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
        return face


def identity_check(settings: WorkerSettings, reference_faces: list[Face | None], face: Face | None) -> Check:
    """The portrait's face against every reference photo's face (None: that photo has none): the
    median distance over the photos with a face is the value (with one photo, its distance, as the
    gate always was), each photo's own distance is kept in `distances`, in the photos' order."""
    usable = [f for f in reference_faces if f is not None]
    gate = distance_to_identity(face.embedding, [f.embedding for f in usable]) if face and usable else None
    distances: list[float | None] = [None] * len(reference_faces)
    if gate:
        with_face = [i for i, f in enumerate(reference_faces) if f is not None]
        for i, d in zip(with_face, gate.each):
            distances[i] = round(d, 4)
    distance = round(gate.median, 4) if gate else None
    if not face:
        detail = "no face in the generated image"
    elif not usable:
        detail = "no face in the reference photo" if len(reference_faces) == 1 else "no face in any reference photo"
    elif len(reference_faces) == 1:
        detail = "embedding distance to the reference face"
    else:
        listed = ", ".join("no face" if d is None else str(d) for d in distances)
        detail = f"median embedding distance to {len(usable)} reference faces; each photo: {listed}"
    check = _check("identity_distance", distance is not None and distance <= settings.identity_max_distance, distance,
                   settings.identity_max_distance, detail)
    first = reference_faces[0] if reference_faces else None
    check["faceBoxes"] = {"reference": list(first.box) if first else None, "image": list(face.box) if face else None}
    check["distances"] = distances
    return check


def deterministic_checks(settings: WorkerSettings, faces: FaceAnalyzer, image, reference_faces: list[Face | None], expected: tuple[int, int]) -> list[Check]:
    width, height = image.size
    stddev, noise = grey_stddev(image), high_frequency_ratio(image)
    checks = [
        _check("dimensions", (width, height) == expected, f"{width}x{height}", detail=f"expected {expected[0]}x{expected[1]}"),
        _check("not_blank", stddev >= settings.blank_min_stddev, round(stddev, 2), settings.blank_min_stddev,
               "grey-level standard deviation"),
        _check("not_noise", noise <= settings.noise_max_ratio, round(noise, 3), settings.noise_max_ratio,
               "share of pixel-to-pixel variation; independent noise is about 1"),
    ]
    found = faces.faces(image)
    checks.append(_check("face_count", len(found) == 1, len(found), detail="exactly one face must be visible"))
    largest = max(found, key=lambda f: f.side, default=None)
    side_ratio = round(largest.side / min(width, height), 3) if largest else None
    checks.append(_check("face_size", side_ratio is not None and side_ratio >= settings.face_min_side_ratio, side_ratio,
                         settings.face_min_side_ratio, "face box side / image short side"))
    checks.append(identity_check(settings, reference_faces, largest))
    return checks


def failed_gates(settings: WorkerSettings, checks: list[Check]) -> list[Check]:
    """The gating checks among `checks` that failed (APEX_GPU_GATING_CHECKS; empty: every check gates)."""
    gating = set(settings.gating_checks) or {c["name"] for c in checks}
    return [c for c in checks if c["name"] in gating and not c["passed"]]


def _named(checks: list[Check]) -> str:
    return ", ".join(f"{c['name']} ({c['value']})" for c in checks)


def verdict(settings: WorkerSettings, checks: list[Check], vlm_feedback: str) -> ValidateResult:
    score = sum(c["passed"] for c in checks) / len(checks)
    passed = score >= settings.pass_score and not failed_gates(settings, checks)
    failed = [c for c in checks if not c["passed"]]
    feedback = vlm_feedback if not failed else f"{vlm_feedback} Failed checks: {_named(failed)}."
    return {"passed": passed, "score": round(score, 4), "checks": checks, "feedback": feedback.strip()[:2000]}


def unjudged_verdict(settings: WorkerSettings, checks: list[Check], gates: list[Check]) -> ValidateResult:
    """A candidate that failed a gating deterministic check cannot pass whatever the VLM says, so it
    is not shown to the VLM: its verdict rests on the deterministic checks, whose failures are the
    next attempt's feedback, and records why the judgement was skipped."""
    reason = f"failed gating checks: {_named(gates)}"
    return {**verdict(settings, checks, ""), "judgement": {"status": "skipped", "reason": reason[:2000]}}


def judged_verdict(settings: WorkerSettings, checks: list[Check], judged: dict) -> ValidateResult:
    checks = checks + [_check(f"vlm_{aspect}", judged[aspect]["ok"], judged[aspect]["ok"], detail=judged[aspect]["note"])
                       for aspect in JUDGED_ASPECTS]
    return {**verdict(settings, checks, judged["feedback"]), "judgement": {"status": "judged"}}


def best_candidate(verdicts: list[ValidateResult]) -> int:
    """A passing candidate beats any failing one; then one the VLM judged (it cleared every gate)
    beats one stopped at a gate; then the higher score; then the earlier one."""
    return max(range(len(verdicts)), key=lambda i: (verdicts[i]["passed"], verdicts[i]["judgement"]["status"] == "judged",
                                                    verdicts[i]["score"], -i))


def judge_candidates(settings: WorkerSettings, vlm: VlmBackend, candidates: list[tuple[Image.Image, list[Check]]],
                     payload: ValidateInput) -> list[ValidateResult]:
    """Each candidate's verdict from its image and its deterministic checks, which ran first: the
    VLM sees only the candidates that cleared every gate, all of them in one batched judgement."""
    gates = [failed_gates(settings, checks) for _, checks in candidates]
    judged = [image for (image, _), failed in zip(candidates, gates) if not failed]
    instruction = render("judge", prompt=payload["prompt"], **phrases(settings.contracts_dir, payload["parameters"]))
    answers = iter(ask_json_batch(vlm, [([image], instruction) for image in judged], JUDGE_ANSWER))
    return [unjudged_verdict(settings, checks, failed) if failed else judged_verdict(settings, checks, next(answers))
            for (_, checks), failed in zip(candidates, gates)]


def validate_step(settings: WorkerSettings, store: ObjectStore, vlm: VlmBackend, faces: FaceAnalyzer,
                  references: ReferenceFaces | None = None) -> StepProcessor[ValidateInput, ValidateResult]:
    references = references or ReferenceFaces(store, faces)

    async def checked(image_key: str, reference_faces: list[Face | None], payload: ValidateInput):
        image = decode_rgb(await asyncio.to_thread(store.get_bytes, image_key), "generated image")
        expected = (payload["expectedWidth"], payload["expectedHeight"])
        return image, await asyncio.to_thread(deterministic_checks, settings, faces, image, reference_faces, expected)

    async def run(payload: ValidateInput, job: Job, signal: AbortSignal) -> ValidateResult:
        if "identityEmbeddingsKey" in payload:  # an identity's portrait: every photo's face, as prepare_identity kept it
            reference_faces = identity_faces(await asyncio.to_thread(store.get_bytes, payload["identityEmbeddingsKey"]))
        else:
            reference_faces = [await asyncio.to_thread(references.largest, key) for key in reference_keys(payload)]
        candidates = [await checked(key, reference_faces, payload) for key in payload["imageKeys"]]
        verdicts = await asyncio.to_thread(judge_candidates, settings, vlm, candidates, payload)
        best = best_candidate(verdicts)
        return {**verdicts[best], "best": best,
                "candidates": [{**v, "imageKey": key} for v, key in zip(verdicts, payload["imageKeys"])]}

    return run
