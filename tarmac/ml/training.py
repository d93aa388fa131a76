"""Training: the time split, the model, the baseline and the figures that judge them.

Pure functions over pandas frames read from gold.training_set, so that the asset, the tests and a
notebook train the same model the same way. The model is one scikit-learn pipeline that takes the
registry's feature columns as they are in gold (strings for categories, NULLs as missing), so the
batch scorer and the serving path feed it exactly what the training set held.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from tarmac.features.registry import categorical_features, model_features
from tarmac.quality.monitoring import save_figure
from tarmac.settings.ml import BaselineSettings, ModelParameters, TimeSplit
from tarmac.warehouse import read_only

LABEL = "is_delayed"
PERIODS = ("train", "validate", "test")


def load_training_set(warehouse: Path, first_day: str, last_day: str) -> pd.DataFrame:
    """gold.training_set for the local days first..last, in a stable order (flight date, id)."""
    columns = ", ".join(["flight_id", "flight_date", *model_features(), LABEL])
    with read_only(warehouse) as con:
        frame = con.execute(
            f"select {columns} from gold.training_set where flight_date between ? and ? order by flight_date, flight_id",
            [first_day, last_day],
        ).df()
    frame["flight_date"] = pd.to_datetime(frame["flight_date"]).dt.date
    return frame


def split_by_time(frame: pd.DataFrame, split: TimeSplit) -> dict[str, pd.DataFrame]:
    """The three periods of the split; each must hold both classes, or the figures mean nothing."""
    periods = {"train": split.train, "validate": split.validate_, "test": split.test}
    out = {}
    for name, period in periods.items():
        part = frame[(frame["flight_date"] >= period.start) & (frame["flight_date"] <= period.end)]
        if part.empty or part[LABEL].nunique() < 2:
            raise ValueError(
                f"the {name} period {period.start}..{period.end} has {len(part)} labelled flights "
                f"({part[LABEL].sum() if len(part) else 0} delayed): materialize gold.training_set for it "
                "or change ml.split in the settings"
            )
        out[name] = part.reset_index(drop=True)
    return out


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input: registry features, categories as strings (None when missing), numbers as floats."""
    categorical = categorical_features()
    out = pd.DataFrame(index=frame.index)
    for name in model_features():
        column = frame[name]
        if name in categorical:
            out[name] = column.astype(object).where(column.notna(), None)
        else:
            out[name] = pd.to_numeric(column, errors="raise").astype("float64")
    return out


def training_set_digest(frame: pd.DataFrame) -> str:
    """A content hash of the rows a model learned from (order-independent of how they were read)."""
    ordered = frame.sort_values("flight_id").reset_index(drop=True)
    hashed = pd.util.hash_pandas_object(ordered.astype(str), index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def fit_model(periods: dict[str, pd.DataFrame], params: ModelParameters) -> Pipeline:
    """Fit the encoder on train, then the boosted trees with early stopping on the validation period.

    Seeded and single-pass: the same rows and parameters give the same model.
    """
    categorical = categorical_features()
    encoder = ColumnTransformer(
        [(
            "categories",
            OrdinalEncoder(
                handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
            ),
            categorical,
        )],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    train_x = encoder.fit_transform(model_input(periods["train"]))
    valid_x = encoder.transform(model_input(periods["validate"]))
    classifier = HistGradientBoostingClassifier(
        learning_rate=params.learning_rate,
        max_iter=params.max_iter,
        max_leaf_nodes=params.max_leaf_nodes,
        min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        categorical_features=categorical,
        early_stopping=True,
        n_iter_no_change=params.n_iter_no_change,
        scoring="loss",
        random_state=params.random_state,
    )
    classifier.fit(
        train_x, periods["train"][LABEL].astype(int), X_val=valid_x, y_val=periods["validate"][LABEL].astype(int)
    )
    return Pipeline([("encode", encoder), ("classify", classifier)])


def delay_probability(model: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(model_input(frame))[:, 1]


@dataclass(frozen=True)
class Baseline:
    """Historical delay rate by carrier x local departure hour, learned on the training period."""

    rates: dict[tuple[str, int], float]
    carrier_rates: dict[str, float]
    overall: float

    @classmethod
    def fit(cls, train: pd.DataFrame, settings: BaselineSettings) -> Baseline:
        y = train[LABEL].astype(float)
        overall = float(y.mean())
        by_carrier = train.assign(y=y).groupby("carrier")["y"].agg(["sum", "count"])
        carrier_rates = {c: float(r["sum"] / r["count"]) for c, r in by_carrier.iterrows()}
        cells = train.assign(y=y).groupby(["carrier", "dep_hour_local"])["y"].agg(["sum", "count"])
        prior = settings.prior_flights
        rates = {
            (carrier, int(hour)): float((r["sum"] + prior * carrier_rates[carrier]) / (r["count"] + prior))
            for (carrier, hour), r in cells.iterrows()
        }
        return cls(rates, carrier_rates, overall)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.array([
            self.rates.get((c, int(h)), self.carrier_rates.get(c, self.overall))
            for c, h in zip(frame["carrier"], frame["dep_hour_local"])
        ])


def evaluate(model: Pipeline, baseline: Baseline, periods: dict[str, pd.DataFrame]) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Model and baseline on the validation and test periods: metrics named `[baseline_]<period>_<metric>`,
    and the scores they came from, keyed the same way."""
    metrics: dict[str, float] = {}
    scores: dict[str, np.ndarray] = {}
    for period in ("validate", "test"):
        y = periods[period][LABEL]
        for prefix, scorer in (("", lambda f: delay_probability(model, f)), ("baseline_", baseline.predict)):
            scores[f"{prefix}{period}"] = scorer(periods[period])
            metrics.update({f"{prefix}{period}_{k}": v for k, v in classification_metrics(y, scores[f"{prefix}{period}"]).items()})
    metrics["train_rows"] = float(len(periods["train"]))
    metrics["boosting_iterations"] = float(model.named_steps["classify"].n_iter_)
    return metrics, scores


def classification_metrics(y_true: pd.Series, probability: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), log loss and Brier score, with the period's size."""
    y = y_true.astype(int).to_numpy()
    p = np.clip(probability, 1e-6, 1 - 1e-6)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "positive_rate": float(y.mean()),
        "rows": float(len(y)),
    }


def calibration_plot(curves: dict[str, tuple[pd.Series, np.ndarray]], title: str, path: Path, bins: int = 10) -> Path:
    """Reliability diagram: observed delay rate per bin of predicted probability, one line per scorer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve


    fig, ax = plt.subplots(figsize=(5, 5), dpi=90)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    for name, (y, p) in curves.items():
        observed, predicted = calibration_curve(y.astype(int), p, n_bins=bins, strategy="quantile")
        ax.plot(predicted, observed, marker="o", label=name)
    ax.set_xlabel("mean predicted delay probability")
    ax.set_ylabel("observed share delayed (arr_delay >= 15)")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    return save_figure(fig, path)


def score_histogram(probability: np.ndarray, bins: int) -> dict[str, list[float]]:
    """Quantile bin edges of a score distribution and each bin's share: the reference for score drift."""
    edges = np.unique(np.quantile(probability, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = 0.0, 1.0
    counts, _ = np.histogram(probability, bins=edges)
    return {"edges": [float(e) for e in edges], "shares": [float(c) / len(probability) for c in counts]}


def window_psi_null(reference: dict[str, list[float]], days: pd.Series, probability: np.ndarray,
                    window_days: int) -> list[float]:
    """What normal score drift was for this model: the PSI against `reference` of every window of
    `window_days` consecutive days of the period it was scored on (monitoring judges each day on
    such a window), sorted."""
    from tarmac.ml.monitoring import psi

    day = pd.to_datetime(days).dt.normalize().to_numpy()
    first, last = day.min(), day.max()
    out = []
    start = first
    while start + np.timedelta64(window_days - 1, "D") <= last:
        inside = (day >= start) & (day <= start + np.timedelta64(window_days - 1, "D"))
        if inside.any():
            out.append(round(psi(reference, probability[inside]), 6))
        start += np.timedelta64(1, "D")
    return sorted(out)
