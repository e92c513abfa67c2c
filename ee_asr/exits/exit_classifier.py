"""A small learned exit classifier: from the scores an exit already has, the probability that
this exit is already as good as the last one (no more word errors).

Logistic regression on standardised features, fitted by Newton's method with an L2 penalty
(numpy only). The penalty is chosen by cross-validation over groups of speakers: each fold
holds out whole groups, so the chosen model is the one that predicts best for voices it did
not learn from, which is the test condition (the mini corpus' test voices are never heard in
training, while its dev set speaks training voices). Rows of the last exit are left out: the
policy never asks there. Stored as JSON in the experiment dir and read back for online use.
"""

import json
import math

import numpy as np

from ee_asr.common.errors import UserError

# No entropy: it costs an exp over every frame and token (as much as the rest of the scores
# together) and adds nothing the others lack (demo, held-out-voice CV log loss 0.5062 without, 0.5053 with)
FEATURES = ("maxprob", "seq_posterior", "log_seq_posterior", "blank_share", "disagreement",
            "log_frames", "depth", "depth_x_maxprob", "depth_x_log_seq_posterior", "depth_x_disagreement")
# the recorded scores the features are made of (exits/scores.py)
FEATURE_SCORES = ("maxprob", "seq_posterior", "blank_share", "disagreement", "frames")
PENALTIES = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)


def feature_vector(scores, layer, exit_layers):
    """One exit's features from its score dict (exits/scores.py) and its position."""
    missing = [k for k in FEATURE_SCORES if k not in scores]
    if missing:
        raise UserError(f"the exit classifier needs the score(s) {', '.join(missing)} at exit {layer}")
    seq = max(scores["seq_posterior"], 1e-30)
    depth = exit_layers.index(layer) / max(len(exit_layers) - 1, 1)
    # depth interactions: how much a confidence says depends on how deep the exit is (the
    # held-out-voice cross-validation of the demo preferred them: log loss 0.505 vs 0.507)
    derived = {"log_seq_posterior": math.log(seq), "log_frames": math.log(max(scores["frames"], 1.0)),
               "depth": depth, "depth_x_maxprob": depth * scores["maxprob"],
               "depth_x_log_seq_posterior": depth * math.log(seq),
               "depth_x_disagreement": depth * scores["disagreement"]}
    return [derived[f] if f in derived else float(scores[f]) for f in FEATURES]


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def fit_logistic(x, y, penalty, iters=50):
    """Weights (with bias last) of L2-penalised logistic regression; x standardised (N, F)."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    reg = np.full(xb.shape[1], penalty)
    reg[-1] = 0.0  # the bias is not penalised
    for _ in range(iters):
        p = _sigmoid(xb @ w)
        grad = xb.T @ (p - y) + reg * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def log_loss(p, y):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def group_folds(groups, n_folds):
    """Fold index per row: whole groups go to one fold, folds of similar size."""
    names = sorted(set(groups))
    rng = np.random.default_rng(0)
    order = [names[i] for i in rng.permutation(len(names))]
    fold_of = {g: i % n_folds for i, g in enumerate(order)}
    return np.array([fold_of[g] for g in groups])


class ExitClassifier:
    def __init__(self, weights, mean, std, exit_layers, info=None):
        self.weights, self.mean, self.std = np.asarray(weights), np.asarray(mean), np.asarray(std)
        self.exit_layers, self.info = list(exit_layers), info or {}

    def predict(self, x):
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.std
        return _sigmoid(z @ self.weights[:-1] + self.weights[-1])

    def predict_many(self, score_dicts, layer):
        """Probabilities for many utterances at one exit, in one matrix product."""
        return self.predict(np.array([feature_vector(s, layer, self.exit_layers) for s in score_dicts])).tolist()

    def predict_one(self, scores, layer):
        return float(self.predict(np.array([feature_vector(scores, layer, self.exit_layers)]))[0])

    @classmethod
    def fit(cls, rows, exit_layers, n_folds=5):
        """rows: [(score dict, layer, as_good (bool), group)] -> the classifier, its CV figures in .info."""
        rows = [r for r in rows if r[1] != exit_layers[-1]]
        if not rows:
            raise UserError("no rows below the last exit to fit the exit classifier on")
        x = np.array([feature_vector(s, layer, exit_layers) for s, layer, _, _ in rows])
        y = np.array([float(good) for _, _, good, _ in rows])
        groups = [g for *_, g in rows]
        mean, std = x.mean(0), x.std(0) + 1e-9
        z = (x - mean) / std
        n_folds = min(n_folds, len(set(groups)))
        cv = {}
        if n_folds >= 2 and 0 < y.mean() < 1:
            folds = group_folds(groups, n_folds)
            for penalty in PENALTIES:
                held = np.empty(len(y))
                for f in range(n_folds):
                    tr = folds != f
                    weights = fit_logistic(z[tr], y[tr], penalty)
                    held[~tr] = _sigmoid(np.hstack([z[~tr], np.ones(((~tr).sum(), 1))]) @ weights)
                cv[penalty] = log_loss(held, y)
        best = min(cv, key=cv.get) if cv else 1.0
        info = {"rows": len(y), "positive_share": float(y.mean()), "groups": len(set(groups)), "folds": n_folds,
                "penalty": best, "cv_log_loss": {f"{k:g}": v for k, v in cv.items()},
                "prior_log_loss": log_loss(np.full(len(y), y.mean()), y)}
        return cls(fit_logistic(z, y, best), mean, std, exit_layers, info)

    def to_json(self):
        return json.dumps({"features": list(FEATURES), "weights": self.weights.tolist(), "mean": self.mean.tolist(),
                           "std": self.std.tolist(), "exit_layers": self.exit_layers, "info": self.info}, indent=1)

    @classmethod
    def load(cls, path):
        try:
            d = json.loads(open(path).read())
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read the exit classifier {path}: {e}") from None
        if d.get("features") != list(FEATURES):
            raise UserError(f"{path} was fitted on features {d.get('features')}, this version uses {list(FEATURES)}: "
                            "fit it again (python -m ee_asr.bin.fit_exit_classifier)")
        return cls(d["weights"], d["mean"], d["std"], d["exit_layers"], d.get("info"))


CLASSIFIER_FILE = "exit_classifier.json"


def load_for_experiment(exp_dir):
    """The experiment's fitted classifier (<exp_dir>/exit_classifier.json); UserError naming the fix."""
    from pathlib import Path

    path = Path(exp_dir) / CLASSIFIER_FILE
    if not path.is_file():
        raise UserError(f"the learned policy needs {path}: fit it with "
                        f"python -m ee_asr.bin.fit_exit_classifier --exp-dir {exp_dir} --data-dir <dev dump dir>")
    return ExitClassifier.load(path)


def add_predictions(records, classifier):
    """Add `p_as_good` to per-exit records (exits.jsonl) that lack it, for offline sweeps."""
    exit_layers = classifier.exit_layers
    for r in records:
        if "p_as_good" not in r:
            r["p_as_good"] = classifier.predict_one(r, int(r["exit"])) if int(r["exit"]) in exit_layers else 1.0
    return records
