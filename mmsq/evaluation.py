"""How good the verdicts are, against a ground truth: precision and recall per verdict."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mmsq.verdicts import VERDICTS, Verdict

__all__ = ["CONFUSABLE", "Evaluation", "evaluate"]

#: The verdicts whose mix-ups cost the most (a help SMS to a full or switched-off handset).
CONFUSABLE: tuple[str, ...] = (
    Verdict.TERMINAL_MISCONFIGURED.value,
    Verdict.TERMINAL_CAPACITY.value,
    Verdict.UNREACHABLE.value,
)


@dataclass(frozen=True)
class Evaluation:
    """``per_verdict``: verdict, support (truth), predicted, true_positives, precision, recall;
    ``confusion``: rows are the expected verdicts, columns the predicted ones (CONFUSABLE and
    "other"). Subscribers missing from either side are counted in ``unmatched``."""

    per_verdict: pd.DataFrame
    confusion: pd.DataFrame
    matched: int
    unmatched_truth: int
    unmatched_predicted: int
    accuracy: float

    def as_dict(self) -> dict[str, object]:
        return {
            "matched": self.matched,
            "unmatched_truth": self.unmatched_truth,
            "unmatched_predicted": self.unmatched_predicted,
            "accuracy": round(self.accuracy, 4),
            "per_verdict": self.per_verdict.to_dict(orient="records"),
            "confusion": self.confusion.to_dict(),
        }


def evaluate(predicted: pd.DataFrame, truth: pd.DataFrame) -> Evaluation:
    """Compare ``predicted`` (msisdn, verdict) with ``truth`` (msisdn, expected_verdict)."""
    p = predicted[["msisdn", "verdict"]].drop_duplicates("msisdn")
    t = truth[["msisdn", "expected_verdict"]].drop_duplicates("msisdn")
    both = p.merge(t, on="msisdn", how="inner")
    hit = both["verdict"] == both["expected_verdict"]
    rows = []
    labels = [v for v in VERDICTS if v in set(both["verdict"]) | set(both["expected_verdict"])]
    for v in labels:
        support = int((both["expected_verdict"] == v).sum())
        predicted_n = int((both["verdict"] == v).sum())
        tp = int((hit & (both["verdict"] == v)).sum())
        rows.append(
            {
                "verdict": v,
                "support": support,
                "predicted": predicted_n,
                "true_positives": tp,
                "precision": round(tp / predicted_n, 4) if predicted_n else None,
                "recall": round(tp / support, 4) if support else None,
            }
        )
    other = "other"
    exp = both["expected_verdict"].where(both["expected_verdict"].isin(CONFUSABLE), other)
    got = both["verdict"].where(both["verdict"].isin(CONFUSABLE), other)
    confusion = (
        pd.crosstab(exp, got)
        .reindex(index=[*CONFUSABLE, other], columns=[*CONFUSABLE, other], fill_value=0)
        .astype(int)
    )
    confusion.index.name = "expected"
    confusion.columns.name = "predicted"
    return Evaluation(
        per_verdict=pd.DataFrame(
            rows,
            columns=["verdict", "support", "predicted", "true_positives", "precision", "recall"],
        ),
        confusion=confusion,
        matched=len(both),
        unmatched_truth=int((~t["msisdn"].isin(p["msisdn"])).sum()),
        unmatched_predicted=int((~p["msisdn"].isin(t["msisdn"])).sum()),
        accuracy=float(hit.mean()) if len(both) else 0.0,
    )
