#!/usr/bin/env python3
"""Generate an image from a prompt with a LoRA from Hugging Face, then download it.

    APEX_API_URL=http://localhost:8001 APEX_API_KEY=apx_... python3 generation.py "a studio portrait" \\
        --lora owner/name:lora.safetensors:0.8 [--width 1024 --height 1024 --steps 28 --seed 7 --out .]

`--lora REPO[:WEIGHT_FILE][:SCALE]` may be given up to 8 times. Prints the generation id and its final
status, then saves every image from its presigned URL. Exits 0 when it saved them, 1 otherwise.
"""

import argparse
import sys
from pathlib import Path

from apex_client import ApiError, call, download, follow_events, new_idempotency_key


def lora(text):
    repo, _, rest = text.partition(":")
    weight_name, _, scale = rest.partition(":")
    return {"repo": repo, **({"weight_name": weight_name} if weight_name else {}), "scale": float(scale or 1)}


def main(args):
    request = {"prompt": args.prompt, "width": args.width, "height": args.height, "num_images": args.num_images, "loras": args.lora}
    for field in ("steps", "guidance", "seed"):
        if getattr(args, field) is not None:
            request[field] = getattr(args, field)
    created = call("POST", "/generations", request, headers={"Idempotency-Key": new_idempotency_key()})
    generation_id = created["generation_id"]
    print(f"generation {generation_id} created ({created['status']})")
    for event, data in follow_events(f"/generations/{generation_id}/events"):
        if event == "status":
            print(f"status: {data['status']}")
        elif event == "progress":
            print(f"denoising {data['denoise_step']}/{data['denoise_total']}")
    generation = call("GET", f"/generations/{generation_id}")
    if generation["status"] != "completed":
        print("error:", generation["error"])
        return 1
    print(f"seed {generation['seed']}, loras {', '.join(l['repo'] for l in generation['request']['loras']) or 'none'}")
    for i, image in enumerate(generation["images"]):
        path, kind, size = download(image["url"], Path(args.out) / f"generation-{generation_id}-{i}")
        print(f"saved {path} ({kind}, {size} bytes)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompt")
    parser.add_argument("--lora", type=lora, action="append", default=[], help="REPO[:WEIGHT_FILE][:SCALE]")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--guidance", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--num-images", type=int, default=1)
    parser.add_argument("--out", default=".")
    try:
        sys.exit(main(parser.parse_args()))
    except ApiError as err:
        sys.exit(f"API error: {err}")
