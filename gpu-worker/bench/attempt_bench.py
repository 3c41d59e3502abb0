"""One portrait attempt on one GPU with every model it uses resident: the VLM (SmolVLM 2.2B) writes
the edit instruction from the person's photo, the editing model (torch.compile'd, the person's
identity LoRA hotswapped in) renders the portrait from the framed photo, and validation checks it
(image statistics, faces and identity on the CPU; the VLM's judgement on the GPU). Full-size
architectures with random bf16 weights, through the worker's own engine, VLM backend (constrained
JSON decoding) and checks.

Random weights never end an answer early, so each VLM answer is cut at --answer-tokens (the stated
answer length), and the VLM is also timed on its own: prefill (the answer's first token, image
tiles included) and the time per further token, with and without the JSON constraint. A random
render holds no face, so the first --with-face candidates are validated as the photo, which holds
one, as a real portrait would (--with-face 0: every candidate stopped at the face gate). The
attempts of a row are one job's: the first describes the person from the photo, the later ones
write from that description and the previous verdict's feedback. Each attempt prints what it asked
of the VLM (calls, prompt tokens, decoded tokens) beside the seconds of each part.

    python -m bench.attempt_bench --out $OUT/attempt.json             # in gpu-worker/, on a GPU
    python -m bench.attempt_bench --tiny --size 128 --answer-tokens 16 --runs 1   # the same code on a CPU
"""

import json
import tempfile
from pathlib import Path

import torch

from apex_gpu_worker.checks.faces import FaceAnalyzer, largest_face_box
from apex_gpu_worker.contracts.vocabulary import phrases
from apex_gpu_worker.devices import resolve_device, resolve_dtype
from apex_gpu_worker.diffusion.engine import GenerationRequest
from apex_gpu_worker.diffusion.reference import prepare_reference
from apex_gpu_worker.images import decode_rgb, encode
from apex_gpu_worker.runtime import VLM_ANSWERS
from apex_gpu_worker.settings import WorkerSettings
from apex_gpu_worker.steps.prompt import PersonDescriptions, write_prompt
from apex_gpu_worker.steps.validate import best_candidate, deterministic_checks, judge_candidates
from apex_gpu_worker.vlm.answers import JUDGE_ANSWER, PROMPT_ANSWER
from apex_gpu_worker.vlm.templates import render

from . import architectures, harness

PARAMETERS = {"purpose": "professional_linkedin", "attire": "business_casual", "background": "neutral_studio",
              "vibe": "confident", "lighting": "studio_softbox"}
BENCH_JOB = "65a1b2c3d4e5f60718293a4b"
# What the editing model is given: random weights write no usable instruction, and every prompt is
# padded to the text encoder's fixed length anyway.
EDIT_PROMPT = "Change the attire to a business casual blazer and the background to a neutral studio; keep the face, hair and age."


class CountedGenerate:
    """Wraps the VLM's generate to record each call's rows (answers asked at once), prompt length
    (padded, per row) and the tokens it decoded over all rows (a row that ended early is padded)."""

    def __init__(self, model, pad_token_id: int | None):
        self.calls: list[dict] = []
        self._generate = model.generate
        self._pad = pad_token_id
        model.generate = self

    def __call__(self, **inputs):
        output = self._generate(**inputs)
        rows, prompt = inputs["input_ids"].shape
        answers = output[:, prompt:]
        decoded = int((answers != self._pad).sum()) if self._pad is not None else answers.numel()
        self.calls.append({"rows": rows, "prompt_tokens": prompt, "answer_tokens": decoded})
        return output


class StatedAnswers:
    """The worker's backend, decoding (and so timed and counted) as it does; what it hands the steps
    is an answer that meets the schema, in plausible words at every string's bound: random weights
    cut at the stated length write no JSON the steps could read."""

    FILLER = "short dark hair, brown eyes, light stubble, an oval face, a navy blazer, soft studio light; "

    def __init__(self, backend):
        self._backend = backend

    def complete(self, images, instruction, schema, temperature):
        self._backend.complete(images, instruction, schema, temperature)
        return json.dumps(self._answer(schema))

    def complete_batch(self, requests, schema, temperature):
        self._backend.complete_batch(requests, schema, temperature)
        return [json.dumps(self._answer(schema)) for _ in requests]

    def _answer(self, schema: dict):
        kind = schema["type"]
        if kind == "object":
            return {name: self._answer(value) for name, value in schema["properties"].items()}
        if kind == "array":
            return [self._answer(schema["items"]) for _ in range(schema["minItems"])]
        if kind == "string":
            return (self.FILLER * (schema["maxLength"] // len(self.FILLER) + 1))[: schema["maxLength"]].strip()
        return True


def attempt_counts(calls: list[dict]) -> dict:
    """What one attempt asked of the VLM: its generate calls (a batched call counts once), the
    prompt tokens it prefilled and the tokens it decoded, over every row of every call."""
    return {"vlm_calls": len(calls), "prompt_tokens": sum(c["prompt_tokens"] * c.get("rows", 1) for c in calls),
            "decoded_tokens": sum(c["answer_tokens"] for c in calls)}


def vlm_alone(model, processor, photo, instruction: str, long_answer: int, repeats: int) -> dict:
    """Prefill and per-token time of the model without the JSON constraint, greedy, forced to
    answer exactly 1 and long_answer + 1 tokens."""
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": instruction}]}],
                                         add_generation_prompt=True)
    inputs = processor(text=text, images=[photo], return_tensors="pt").to(model.device)

    def answer(tokens: int) -> float:
        with torch.inference_mode():
            return harness.timed(model.generate, **inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)[0]

    answer(long_answer + 1)  # warm-up
    first = [answer(1) for _ in range(repeats)]
    long = [answer(long_answer + 1) for _ in range(repeats)]
    per_token = (sum(long) / repeats - sum(first) / repeats) / long_answer
    return {"prompt_tokens": int(inputs["input_ids"].shape[1]), "image_tiles": int(inputs["pixel_values"].shape[1]),
            "prefill_seconds": harness.spread(first), "seconds_per_token": round(per_token, 5)}


def attempt(settings: WorkerSettings, vlm, faces: FaceAnalyzer, reference_face, engine, photo, lora, card: dict, args,
            descriptions: PersonDescriptions, previous: dict | None) -> tuple[dict, dict]:
    """One attempt of a job, through the prompt and validate steps' own code (S3 transfers left
    out): the prompt from the photo, or from the job's description once it has one; --best-of
    candidates rendered in one call; the cheap checks on each, then one batched judgement of those
    that cleared every gate. A random render holds no face: the first --with-face candidates are
    the photo instead, as a real model's portraits would be. Seconds per part, and the verdict."""
    parts, size = {}, args.size
    payload = {"jobId": BENCH_JOB, "attempt": 1 if previous is None else 2, "parameters": PARAMETERS,
               "referenceImageKey": "bench/photo.png", "previous": previous}
    parts["prompt_vlm"], _ = harness.timed(write_prompt, settings, vlm, descriptions, payload, lambda: photo)
    parts["generate_frame_reference_cpu"], face = harness.timed(largest_face_box, photo, settings.face_min_score)
    reference = prepare_reference(photo, size, size, face)
    request = GenerationRequest(prompt=EDIT_PROMPT, seed=5, width=size, height=size, num_images=args.best_of, steps=card["steps"],
                                guidance=card["guidance"], loras=[lora], references=(reference,))
    parts["generate_render"], generation = harness.timed(engine.generate, request, harness.never_cancelled)
    parts["generate_encode_png_cpu"], pngs = harness.timed(lambda: [encode(i, "png", {"prompt": EDIT_PROMPT}) for i in generation.images])
    parts["validate_decode_png_cpu"], images = harness.timed(lambda: [decode_rgb(png, "generated image") for png in pngs])
    images = [photo] * args.with_face + images[args.with_face:]
    parts["validate_cheap_checks_cpu"], candidates = harness.timed(
        lambda: [(image, deterministic_checks(settings, faces, image, [reference_face], (size, size))) for image in images])
    judged = {"jobId": BENCH_JOB, "attempt": payload["attempt"], "parameters": PARAMETERS, "prompt": EDIT_PROMPT}
    parts["validate_judge_vlm"], verdicts = harness.timed(judge_candidates, settings, vlm, candidates, judged)
    return parts, verdicts[best_candidate(verdicts)]


def measure_portrait_model(model: str, args, device: str, dtype, work: Path, vlm, faces: FaceAnalyzer, photo,
                           counted: CountedGenerate) -> dict:
    card = architectures.DIFFUSION_MODELS[model]
    pipe = architectures.diffusion_pipeline(model, device, dtype, args.tiny_dir, full_size=not args.tiny)
    loras = [harness.publish_random_lora(pipe, work / "loras", f"bench/{model}-person-{i}", rank=16, seed=i) for i in range(args.runs + 1)]
    settings = harness.bench_settings(work / "loras", compile=True, lora_max_rank=args.lora_rank)
    engine = harness.resident_engine(settings, pipe, model, work / "models", editing=True)
    # Validation embeds the job's reference face once (then cached for every attempt): timed apart.
    reference_seconds, found = harness.timed(faces.faces, photo)
    reference_face = max(found, key=lambda f: f.side, default=None)
    warmup_request = GenerationRequest(prompt=EDIT_PROMPT, seed=5, width=args.size, height=args.size, num_images=args.best_of,
                                       steps=args.warmup_steps, guidance=card["guidance"], loras=[loras[0]],
                                       references=(prepare_reference(photo, args.size, args.size, None),))
    warmup, _ = harness.timed(engine.generate, warmup_request, harness.never_cancelled)  # compiles; the VLM is warm already
    counted.calls.clear()
    # The attempts of one job: the first describes the person, each later one has the previous feedback.
    attempts, counts, judgements, previous, descriptions = [], [], [], None, PersonDescriptions()
    for lora in loras[1:]:
        before = len(counted.calls)
        parts, verdict = attempt(settings, StatedAnswers(vlm), faces, reference_face, engine, photo, lora, card, args, descriptions, previous)
        attempts.append(parts)
        counts.append(attempt_counts(counted.calls[before:]))
        judgements.append(verdict["judgement"]["status"])
        previous = {"prompt": EDIT_PROMPT, "feedback": verdict["feedback"]}
    mean = {part: round(sum(a[part] for a in attempts) / len(attempts), 3) for part in attempts[0]}
    gpu = sum(seconds for part, seconds in mean.items() if not part.endswith("_cpu"))
    row = {"portrait_model": model, "class": type(pipe).__name__, "size": args.size, "steps": card["steps"],
           "answer_tokens_stated": args.answer_tokens, "vlm_answers": list(counted.calls),
           "best_of": args.best_of, "with_face": args.with_face, "runs_best_judgement": judgements,
           "parts_seconds_mean": mean, "runs_vlm_counts": counts, "runs_total_seconds": [round(sum(a.values()), 3) for a in attempts],
           "runs_parts_seconds": [{part: round(seconds, 3) for part, seconds in a.items()} for a in attempts],
           "gpu_seconds": round(gpu, 3), "cpu_seconds": round(sum(mean.values()) - gpu, 3),
           "attempt_seconds": round(sum(mean.values()), 3), "warmup_seconds": round(warmup, 1),
           "once_per_job_reference_face_cpu_seconds": round(reference_seconds, 3), "reference_faces_found": len(found),
           "peak_memory_gib_with_vlm": harness.peak_memory_gib()}
    del engine, pipe
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = harness.bench_parser()
    parser.add_argument("--portrait-models", default="kontext,klein")
    parser.add_argument("--size", type=int, default=1024, help="the photo's and the portrait's side")
    parser.add_argument("--answer-tokens", type=int, default=200, help="the stated length of each VLM answer")
    parser.add_argument("--per-token-sample", type=int, default=64, help="tokens the VLM alone is timed over, beyond the first")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--lora-rank", type=int, default=128)
    parser.add_argument("--best-of", type=int, default=1, choices=range(1, 5), help="candidates rendered per attempt")
    parser.add_argument("--with-face", type=int, default=1, help="candidates validated as the photo (a face), as a real model's would be")
    parser.add_argument("--vlm-compile", action="store_true", help="as APEX_GPU_VLM_COMPILE: static KV cache and CUDA graphs (CUDA only)")
    args = parser.parse_args(argv)
    if not 0 <= args.with_face <= args.best_of:
        parser.error("--with-face counts candidates: 0 to --best-of")
    device = resolve_device("auto")
    dtype = resolve_dtype("auto", device)
    contracts = WorkerSettings().contracts_dir
    instructions = {"prompt": render("prompt_edit", **phrases(contracts, PARAMETERS), previous=""),
                    "judge": render("judge", prompt=EDIT_PROMPT, **phrases(contracts, PARAMETERS))}
    results = harness.Results(args.out, bench="attempt", lora_slots=1, best_of=args.best_of, with_face=args.with_face)
    harness.start_fresh()
    model, processor = architectures.vlm(device, dtype, args.tiny_dir, full_size=not args.tiny)
    photo = harness.reference_photo(args.size)
    results.add({"vlm": "alone, no JSON constraint", **vlm_alone(model, processor, photo, instructions["prompt"], args.per_token_sample, 2)})
    counted = CountedGenerate(model, processor.tokenizer.pad_token_id)
    first_token = harness.resident_vlm(model, processor, max_new_tokens=1)
    vlm = harness.resident_vlm(model, processor, max_new_tokens=args.answer_tokens, compile=args.vlm_compile)
    # As the worker does at start (runtime.warm_up): every grammar (and compiled decoding) built before the first answer.
    graphs_before = harness.compiled_graphs()
    warm_seconds, _ = harness.timed(vlm.warm, VLM_ANSWERS["prompt"] + VLM_ANSWERS["validate"])
    warm_graphs = harness.compiled_graphs() - graphs_before
    first_calls = {question: round(harness.timed(vlm.complete, [photo], instructions[question], schema, 0.0)[0], 3)
                   for question, schema in (("prompt", PROMPT_ANSWER), ("judge", JUDGE_ANSWER))}
    first = [harness.timed(first_token.complete, [photo], instructions["prompt"], PROMPT_ANSWER, 0.0)[0] for _ in range(2)]
    full = [harness.timed(vlm.complete, [photo], instructions["prompt"], PROMPT_ANSWER, 0.0)[0] for _ in range(2)]
    answered = counted.calls[-1]["answer_tokens"]
    results.add({"vlm": "worker backend, JSON-constrained (the prompt step's question)", "prompt_tokens": counted.calls[-1]["prompt_tokens"],
                 "answer_tokens": answered, "first_token_seconds": harness.spread(first), "answer_seconds": harness.spread(full),
                 "vlm_compile": args.vlm_compile, "warm_seconds": round(warm_seconds, 3), "warm_graphs": warm_graphs,
                 "graphs_compiled_after_warm": harness.compiled_graphs() - graphs_before - warm_graphs,
                 "first_answer_per_question_seconds": first_calls,
                 "seconds_per_token": round((sum(full) - sum(first)) / len(full) / max(1, answered - 1), 5),
                 "vlm_memory_gib": harness.peak_memory_gib()})
    faces = FaceAnalyzer(WorkerSettings().face_min_score)
    with tempfile.TemporaryDirectory(prefix="attempt-bench-") as work:
        for portrait_model in args.portrait_models.split(","):
            harness.start_fresh()  # the VLM stays resident, and in the peak
            results.add(measure_portrait_model(portrait_model, args, device, dtype, Path(work), vlm, faces, photo, counted))
    print(json.dumps({"attempt_seconds": {r["portrait_model"]: r["attempt_seconds"] for r in results.data["rows"] if "portrait_model" in r}}))
    return results.data


if __name__ == "__main__":
    main()
