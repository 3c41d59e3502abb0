#!/usr/bin/env python3
"""Submit a portrait, follow its progress, download the result.

    APEX_API_URL=http://localhost:8001 APEX_API_KEY=apx_... python3 portrait.py me.jpg [output folder]

Prints the job id, every step and the denoising progress, the final status, then saves the portrait
(or, when every attempt was rejected, the best attempt's image and the failure report's summary).
Exits 0 when it saved an image, 1 otherwise.
"""

import json
import sys
from pathlib import Path

from apex_client import ApiError, call, download, follow_events, new_idempotency_key, post_multipart

PARAMETERS = {"purpose": "corporate_headshot", "attire": "business_formal", "background": "neutral_studio", "resolution": "1k"}


def main(photo, out_dir):
    created = post_multipart("/jobs", {"parameters": json.dumps(PARAMETERS)}, {"image_file": photo}, headers={"Idempotency-Key": new_idempotency_key()})
    job_id = created["job_id"]
    print(f"job {job_id} created ({created['status']})")
    for event, data in follow_events(f"/jobs/{job_id}/events"):
        if event == "step":
            print(f"attempt {data.get('attempt')}: {data['step']} {data['status']}")
        elif event == "progress":
            print(f"attempt {data['attempt']}: denoising {data['denoise_step']}/{data['denoise_total']}")
    job = call("GET", f"/jobs/{job_id}")
    print(f"status: {job['status']}")
    for attempt in job["attempts"]:
        verdict = attempt["verdict"] or {}
        failed = [c["name"] for c in verdict.get("checks", []) if not c["passed"]]
        print(f"attempt {attempt['number']}: {attempt['status']}, score {verdict.get('score')}, failed checks: {', '.join(failed) or 'none'}")
    if job["status"] == "completed":
        url, name = job["result"]["url"], f"portrait-{job_id}"
    elif job["status"] == "failed_validation":
        print("report:", call("GET", f"/jobs/{job_id}/report")["report"]["summary"])
        best = job["result"]["attempt"]
        url, name = f"/jobs/{job_id}/attempts/{best}/image", f"portrait-{job_id}-attempt-{best}"
    else:
        print("error:", job["error"])
        return 1
    path, kind, size = download(url, Path(out_dir) / name)
    print(f"saved {path} ({kind}, {size} bytes)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    try:
        sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "."))
    except ApiError as err:
        sys.exit(f"API error: {err}")
