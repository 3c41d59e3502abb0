"""The identity gate's calibration: rates and the suggested threshold from embeddings whose
distances are known, and `npm run calibrate-identity` on folders of generated photos."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps
from skimage import data

from apex_gpu_worker.identity.calibration import calibrate, pair_distances

REPO_ROOT = Path(__file__).resolve().parents[2]


def at(*coordinates: float) -> np.ndarray:
    """A 128-d embedding at these first coordinates (the rest 0): distances are plain to read."""
    v = np.zeros(128)
    v[: len(coordinates)] = coordinates
    return v


def test_pairs_are_every_pair_within_a_person_and_every_pair_across_two():
    same, different = pair_distances({"a": [at(0), at(0.3), at(0.5)], "b": [at(2.0)]})
    assert sorted(np.round(same, 6)) == [0.2, 0.3, 0.5]
    assert sorted(np.round(different, 6)) == [1.5, 1.7, 2.0]


def test_rates_at_the_usual_thresholds_count_what_each_would_reject_and_accept():
    # same-person distances 0.4, 0.58, 0.18; different-person 0.62, 0.22, 0.04 (two look-alike pairs)
    people = {"a": [at(0), at(0.4), at(0.58)], "b": [at(0.62)]}
    result = calibrate(people).summary()
    rates = {r["threshold"]: r for r in result["rates"]}
    assert rates[0.5] == {"threshold": 0.5, "same_rejected": round(1 / 3, 4), "different_accepted": round(2 / 3, 4)}
    assert rates[0.6]["same_rejected"] == 0.0
    assert result["same_person"] == {"pairs": 3, "median": 0.4, "p95": pytest.approx(0.562, abs=1e-3)}


@pytest.mark.parametrize(
    "allowed, expected",
    [
        (0.0, 0.49),  # the first different-person pair sits at 0.50: the largest threshold below it
        (0.25, 0.58),  # one of four different-person pairs may pass: up to just below the second (~0.583)
        (1.0, 0.8),  # anything goes: the grid's top
    ],
)
def test_the_suggested_threshold_is_the_largest_that_accepts_no_more_different_people_than_allowed(allowed, expected):
    people = {"a": [at(0), at(0.3)], "b": [at(0.0, 0.5), at(0.0, 0.6)]}
    # different pairs: |a0-b0| 0.5, |a0-b1| 0.6, |a1-b0| ~0.583, |a1-b1| ~0.671
    result = calibrate(people, max_different_accepted=allowed).summary()
    suggested = result["suggested_threshold"]["threshold"]
    assert suggested == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("people", [{"a": [at(0), at(0.3)]}, {"a": [at(0)], "b": [at(1)]}, {}])
def test_no_threshold_is_suggested_without_both_kinds_of_pairs(people):
    assert calibrate(people).summary()["suggested_threshold"] is None


def variants(photo: Image.Image) -> list[Image.Image]:
    """The same person as several photos: crops, a mirror, darker and brighter, smaller."""
    w, h = photo.size
    return [
        photo.crop((40, 0, w - 40, h - 80)),
        ImageOps.mirror(photo),
        ImageEnhance.Brightness(photo).enhance(0.7),
        ImageEnhance.Brightness(photo).enhance(1.3),
        photo.resize((w * 3 // 4, h * 3 // 4)),
    ]


def test_npm_run_calibrate_identity_measures_a_folder_of_people_and_names_photos_without_a_face(tmp_path):
    person = tmp_path / "photos" / "astronaut"
    person.mkdir(parents=True)
    for i, image in enumerate(variants(Image.fromarray(data.astronaut()))):
        image.save(person / f"{i}.{'png' if i % 2 else 'jpg'}")
    Image.fromarray(data.coffee()).save(person / "coffee.jpg")  # no face: named and left out
    result = subprocess.run(
        # From another folder, as a user would: DIR is read from where npm was started.
        ["npm", "--prefix", str(REPO_ROOT), "run", "--silent", "calibrate-identity", "--", "photos", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["people"], report["photos"]) == (1, 5)
    assert report["skipped"] == ["astronaut/coffee.jpg: no face found"]
    assert report["same_person"]["pairs"] == 10
    assert report["same_person"]["p95"] < 0.6  # dlib's model keeps one person's photos together
    assert report["different_people"] == {"pairs": 0}
    assert report["suggested_threshold"] is None
