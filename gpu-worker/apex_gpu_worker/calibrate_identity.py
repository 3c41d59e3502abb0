"""npm run calibrate-identity -- DIR: the identity gate measured on a deployment's own photos.

DIR holds one folder per person (any names), each with that person's photos (JPEG, PNG, WebP).
Each photo's largest face is embedded with the model the gate uses; a photo without a face is
named and left out. Prints the same-person and different-person distances, the rates at the usual
thresholds, and the largest threshold that accepts at most --max-different-accepted of the
different-person pairs (APEX_GPU_IDENTITY_MAX_DISTANCE)."""

import argparse
import json
import sys
from pathlib import Path

from PIL import Image, ImageOps

from .checks.faces import FaceAnalyzer
from .identity.calibration import calibrate

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def embed_people(root: Path, analyzer: FaceAnalyzer) -> tuple[dict, list[str]]:
    people, skipped = {}, []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        faces = []
        for photo in sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES):
            found = analyzer.faces(ImageOps.exif_transpose(Image.open(photo)))
            if not found:
                skipped.append(f"{folder.name}/{photo.name}: no face found")
                continue
            faces.append(max(found, key=lambda f: f.side).embedding)
        if faces:
            people[folder.name] = faces
    return people, skipped


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="npm run calibrate-identity --", description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="one folder per person, each with that person's photos")
    parser.add_argument("--max-different-accepted", type=float, default=0.001, help="the share of different-person pairs the gate may accept (default 0.001)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        parser.error(f"{args.dir} is not a folder")
    people, skipped = embed_people(args.dir, FaceAnalyzer())
    result = {"people": len(people), "photos": sum(map(len, people.values())), "skipped": skipped,
              **calibrate(people, args.max_different_accepted).summary()}
    if args.json:
        print(json.dumps(result, indent=2))
        return result
    same, different = result["same_person"], result["different_people"]
    print(f"{result['people']} people, {result['photos']} photos with a face" + (f"; left out: {'; '.join(skipped)}" if skipped else ""))
    for name, stats in (("same person", same), ("different people", different)):
        print(f"{name}: {stats['pairs']} pairs" + (f", median {stats['median']}, 95th percentile {stats['p95']}" if stats["pairs"] else ""))
    percent = lambda share, digits: "n/a" if share is None else f"{100 * share:.{digits}f} %"  # noqa: E731
    for r in result["rates"]:
        print(f"at {r['threshold']:.2f}: {percent(r['same_rejected'], 1)} of same-person pairs rejected, "
              f"{percent(r['different_accepted'], 2)} of different-person pairs accepted")
    suggested = result["suggested_threshold"]
    if suggested:
        print(f"suggested APEX_GPU_IDENTITY_MAX_DISTANCE={suggested['threshold']:.2f} "
              f"(accepts {100 * suggested['different_accepted']:.2f} % of different people, rejects {100 * suggested['same_rejected']:.1f} % of the same person)")
    else:
        print("no threshold suggested: that needs photos of at least two people, two of one of them"
              if not (same["pairs"] and different["pairs"]) else "no threshold on 0.30-0.80 accepts so few different-person pairs")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
