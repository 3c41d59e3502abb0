"""Same-person and different-person distances from labelled embeddings, the rates a threshold gives
(same-person pairs it rejects, different-person pairs it accepts), and a suggested threshold: the
largest that accepts no more different-person pairs than the deployment allows."""

from dataclasses import dataclass
from itertools import combinations

import numpy as np

REPORTED_THRESHOLDS = (0.5, 0.55, 0.6, 0.65)
GRID = np.round(np.arange(0.30, 0.801, 0.01), 2)


@dataclass(frozen=True)
class Rates:
    threshold: float
    same_rejected: float | None  # share of same-person pairs above the threshold (None: no such pairs)
    different_accepted: float | None  # share of different-person pairs at or below it


@dataclass(frozen=True)
class Calibration:
    same: np.ndarray
    different: np.ndarray
    rates: list[Rates]
    suggested: Rates | None

    def summary(self) -> dict:
        def stats(d: np.ndarray) -> dict:
            return {"pairs": int(d.size)} | ({"median": round(float(np.median(d)), 3), "p95": round(float(np.percentile(d, 95)), 3)} if d.size else {})

        return {
            "same_person": stats(self.same),
            "different_people": stats(self.different),
            "rates": [vars(r) for r in self.rates],
            "suggested_threshold": vars(self.suggested) if self.suggested else None,
        }


def pair_distances(people: dict[str, list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of one person's photos, and every pair across two people."""
    same = [np.linalg.norm(a - b) for faces in people.values() for a, b in combinations(faces, 2)]
    different = [np.linalg.norm(a - b) for p, q in combinations(people, 2) for a in people[p] for b in people[q]]
    return np.array(same, dtype=float), np.array(different, dtype=float)


def rates_at(threshold: float, same: np.ndarray, different: np.ndarray) -> Rates:
    share = lambda hits, d: round(float(hits.sum() / d.size), 4) if d.size else None  # noqa: E731
    return Rates(float(threshold), share(same > threshold, same), share(different <= threshold, different))


def calibrate(people: dict[str, list[np.ndarray]], max_different_accepted: float = 0.001) -> Calibration:
    same, different = pair_distances(people)
    rates = [rates_at(t, same, different) for t in REPORTED_THRESHOLDS]
    suggested = None
    if same.size and different.size:
        allowed = [rates_at(t, same, different) for t in GRID if rates_at(t, same, different).different_accepted <= max_different_accepted]
        suggested = max(allowed, key=lambda r: r.threshold, default=None)
    return Calibration(same, different, rates, suggested)
