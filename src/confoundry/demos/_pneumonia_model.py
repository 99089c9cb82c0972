"""The pneumonia case study's model: a PyTorch MLP with an honest, small hyperparameter search,
and the ground-truth danger table (who would be wrongly sent home)."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._result import Finding, ResultMixin
from .._utils import check_random_state, int_seed, progress, to_numpy, torch_seed
from ..data import ensure_data
from ..data._validation import check_positive_int, check_probability, describe

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]
    nn = None  # type: ignore[assignment]

#: The default search: width, depth, dropout and weight decay (AdamW). Small on purpose: the
#: whole demo has three minutes on two CPU cores.
DEFAULT_CONFIGS: tuple[dict[str, Any], ...] = (
    {"width": 64, "depth": 1, "dropout": 0.3, "weight_decay": 1e-1, "lr": 1e-3, "bins": 12},
    {"width": 64, "depth": 2, "dropout": 0.3, "weight_decay": 1e-1, "lr": 1e-3, "bins": 12},
    {"width": 128, "depth": 1, "dropout": 0.4, "weight_decay": 1e-1, "lr": 1e-3, "bins": 16},
    {"width": 64, "depth": 1, "dropout": 0.2, "weight_decay": 1e-2, "lr": 2e-3, "bins": 0},
)
#: ``bins`` > 0 feeds every feature also through a piecewise-linear encoding on that many
#: quantile bins of the fitting rows (Gorishniy et al., NeurIPS 2022): the first layer can
#: then represent threshold-like and U-shaped effects directly, which plain MLPs learn slowly
#: on ~10k rows. The last configuration is a plain MLP, kept in the search for reference.
_CONFIG_KEYS = ("width", "depth", "dropout", "weight_decay", "lr", "bins")


class PneumoniaMLP(nn.Module if nn is not None else object):  # type: ignore[misc]
    """Multilayer perceptron with the standardisation inside, returning one logit per row.

    The module takes raw feature tensors ``(n, d)`` (float32, the columns of the training
    table in order) and returns ``(n, 1)`` logits of death. Every ReLU is its own module, so
    Captum's DeepLift sees each non-linearity once.

    Parameters
    ----------
    mean, std : array-like of shape (d,)
        Standardisation statistics of the training features (stored as buffers).
    width, depth, dropout : int, int, float
    feature_names : sequence of str, optional

    Examples
    --------
    >>> import torch
    >>> m = PneumoniaMLP(mean=[0.0, 1.0], std=[1.0, 2.0], width=8, depth=1)
    >>> m(torch.zeros(3, 2)).shape
    torch.Size([3, 1])
    """

    def __init__(self, mean: Any, std: Any, *, width: int = 64, depth: int = 2,
                 dropout: float = 0.1, feature_names: Sequence[str] | None = None,
                 edges: Any = None) -> None:
        super().__init__()
        mean = torch.as_tensor(np.asarray(mean, dtype=np.float32))
        std = torch.as_tensor(np.asarray(std, dtype=np.float32))
        d = int(mean.shape[0])
        self.register_buffer("mean", mean)
        self.register_buffer("std", torch.where(std > 0, std, torch.ones_like(std)))
        n_in = d
        self.encode = edges is not None
        if self.encode:
            # piecewise-linear encoding (Gorishniy et al. 2022): feature j, bin t ->
            # clamp((x - lo_jt) / (hi_jt - lo_jt), 0, 1), written as two ReLU modules.
            e = torch.as_tensor(np.asarray(edges, dtype=np.float32))  # (d, bins + 1)
            width_ = (e[:, 1:] - e[:, :-1]).clamp_min(1e-6)
            self.register_buffer("lo", e[:, :-1])
            self.register_buffer("width_", width_)
            self.relu_a, self.relu_b = nn.ReLU(), nn.ReLU()
            n_in = d + d * (e.shape[1] - 1)
        layers: list[Any] = []
        for _ in range(depth):
            layers += [nn.Linear(n_in, width), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            n_in = width
        layers.append(nn.Linear(n_in, 1))
        self.net = nn.Sequential(*layers)
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.config = {"width": width, "depth": depth, "dropout": dropout,
                       "bins": 0 if edges is None else int(np.shape(edges)[1]) - 1}

    def forward(self, x: Any) -> Any:
        z = (x - self.mean) / self.std
        if self.encode:
            u = ((x[:, :, None] - self.lo) / self.width_).flatten(1)
            z = torch.cat([z, self.relu_a(u) - self.relu_b(u - 1.0)], dim=1)
        return self.net(z)


@dataclass(frozen=True, eq=False)
class MLPSearchResult(ResultMixin):
    """Record of :func:`train_pneumonia_mlp`'s hyperparameter search.

    Attributes
    ----------
    search : DataFrame
        One row per configuration: its hyperparameters, ``tuning_auroc`` with a bootstrap 95 %
        CI (``tuning_auroc_ci_low``, ``tuning_auroc_ci_high``), ``tuning_log_loss``,
        ``best_epoch``, ``epochs_run``, ``seconds``, ``n_fit``, ``n_tune``, ``selected``.
    history : DataFrame
        Long table ``config``, ``epoch``, ``train_loss``, ``tuning_loss``, ``tuning_auroc``.
    best_config : dict
    refit : bool
        Whether the returned model was refitted on all training rows for ``best_epoch`` epochs.
    seconds : float
        Wall time of the whole search (and refit).
    random_state : int or None
    deterministic : bool
        Whether ``torch.use_deterministic_algorithms(True)`` was in force during training.
    params : dict
        Provenance: the training settings (``max_epochs``, ``patience``, ``batch_size``,
        ``tuning_fraction``, ``random_state``, ...), the feature names and torch's version.
    """

    search: pd.DataFrame = field(metadata={"to_dict": False})  # it is to_dict()["table"]
    history: pd.DataFrame
    best_config: Mapping[str, Any]
    refit: bool
    seconds: float
    random_state: Any = None
    deterministic: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.search.copy()

    def findings(self) -> list[Finding]:
        best = self.search.loc[self.search["selected"]].iloc[0]
        out = [Finding(
            "hyperparameter_search", "info", 6,
            f"MLP tuned over {len(self.search)} configurations on a tuning split of "
            f"{int(best['n_tune'])} patients; selected tuning AUROC {best['tuning_auroc']:.3f} "
            f"(95% CI {best['tuning_auroc_ci_low']:.3f}-{best['tuning_auroc_ci_high']:.3f}).",
            subject="mlp", model="mlp",
            evidence={"best_config": dict(self.best_config),
                      "tuning_auroc": float(best["tuning_auroc"]),
                      "n_tune": int(best["n_tune"]), "n_configs": len(self.search)},
        )]
        if int(best["best_epoch"]) >= int(self.params.get("max_epochs", 10**9)):
            out.append(Finding(
                "not_converged", "low", 6,
                "The selected MLP was still improving at max_epochs; train longer.",
                subject="mlp", model="mlp",
                evidence={"best_epoch": int(best["best_epoch"]),
                          "max_epochs": int(self.params["max_epochs"])},
            ))
        return out

    def plot(self, ax: Any = None) -> Any:
        """Tuning AUROC by epoch, one line per configuration (the selected one bold)."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
        else:
            fig = ax.figure
        for i, g in self.history.groupby("config"):
            sel = bool(self.search.loc[self.search["config"] == i, "selected"].iloc[0])
            ax.plot(g["epoch"], g["tuning_auroc"], lw=2.5 if sel else 1,
                    label=self.search.loc[self.search["config"] == i, "label"].iloc[0]
                    + (" (selected)" if sel else ""))
        ax.set_xlabel("epoch")
        ax.set_ylabel("tuning AUROC")
        n_tune = int(self.search["n_tune"].iloc[0])
        ax.set_title(f"MLP hyperparameter search (tuning n = {n_tune})")
        ax.legend(fontsize=7)
        return fig


def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    """AUROC of scores ``s`` for 0/1 labels ``y`` (the shared :mod:`confoundry.stats` metric)."""
    from ..stats import weighted_metrics

    return float(weighted_metrics(y, s, None, task="binary", metrics=["auroc"])["auroc"][0])


def _check_configs(configs: Any) -> list[dict[str, Any]]:
    if configs is None:
        return [dict(c) for c in DEFAULT_CONFIGS]
    if isinstance(configs, Mapping) or not isinstance(configs, Sequence) or len(configs) == 0:
        raise ValueError(f"configs={describe(configs)} is not valid; expected a non-empty list of "
                         f"dicts with keys among {_CONFIG_KEYS}.")
    out = []
    for c in configs:
        if not isinstance(c, Mapping) or set(c) - set(_CONFIG_KEYS):
            raise ValueError(f"configs holds {describe(c)}; expected a dict with keys among "
                             f"{_CONFIG_KEYS}.")
        out.append(dict(c))
    return out


def _edges(X: np.ndarray, bins: int) -> np.ndarray | None:
    """Quantile bin edges (d, bins + 1) for the piecewise-linear encoding; binary and
    constant columns get one bin spanning their range."""
    if not bins:
        return None
    q = np.quantile(X, np.linspace(0, 1, bins + 1), axis=0).T.astype(np.float64)
    q = np.maximum.accumulate(q, axis=1)
    lo, hi = X.min(axis=0), X.max(axis=0)
    for j in range(X.shape[1]):
        if len(np.unique(q[j])) < 3:  # binary / few levels: a single ramp lo..hi
            q[j] = np.linspace(lo[j], max(hi[j], lo[j] + 1e-6), bins + 1)
    return q


def _train_one(cfg: Mapping[str, Any], Xf: Any, yf: Any, Xt: Any | None, yt: np.ndarray | None,
               *, mean: np.ndarray, std: np.ndarray, names: list[str], seed: int,
               max_epochs: int, patience: int, batch_size: int, lr: float,
               fixed_epochs: int | None = None) -> tuple[Any, dict[str, Any], list[dict]]:
    """Train one configuration (early stopping on the tuning rows, or a fixed epoch count)."""
    rng = np.random.default_rng(seed)
    with torch_seed(seed):
        model = PneumoniaMLP(mean, std, width=int(cfg.get("width", 64)),
                             depth=int(cfg.get("depth", 2)), dropout=float(cfg.get("dropout", 0)),
                             feature_names=names,
                             edges=_edges(Xf.numpy(), int(cfg.get("bins", 0) or 0)))
    opt = torch.optim.AdamW(model.parameters(), lr=float(cfg.get("lr", lr)),
                            weight_decay=float(cfg.get("weight_decay", 0.0)))
    loss_fn = nn.BCEWithLogitsLoss()
    n = Xf.shape[0]
    epochs = fixed_epochs if fixed_epochs is not None else max_epochs
    best = {"auroc": -np.inf, "loss": np.inf, "epoch": 0, "state": None}
    history: list[dict] = []
    bad = 0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.from_numpy(rng.permutation(n))
        total = 0.0
        with torch_seed(seed + epoch):  # dropout masks
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(Xf[idx]), yf[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
        row = {"epoch": epoch, "train_loss": total / n}
        if Xt is not None:
            model.eval()
            with torch.no_grad():
                logit = model(Xt)[:, 0]
                tl = float(loss_fn(logit, torch.as_tensor(yt, dtype=torch.float32)))
            auc = _auroc(yt, logit.numpy())
            row.update(tuning_loss=tl, tuning_auroc=auc)
            if tl < best["loss"] - 1e-5:
                best.update(loss=tl, auroc=auc, epoch=epoch,
                            state=copy.deepcopy(model.state_dict()))
                bad = 0
            else:
                bad += 1
        history.append(row)
        if Xt is not None and bad >= patience:
            break
    if Xt is not None and best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()
    return model, {"best_epoch": best["epoch"] if Xt is not None else epochs,
                   "epochs_run": len(history), "tuning_loss": best["loss"],
                   "tuning_auroc": best["auroc"]}, history


def train_pneumonia_mlp(
    X_train: Any,
    y_train: Any,
    *,
    random_state: Any = 0,
    search: bool = True,
    max_epochs: int = 80,
    verbose: bool = True,
    configs: Sequence[Mapping[str, Any]] | None = None,
    tuning_fraction: float = 0.2,
    patience: int = 10,
    batch_size: int = 256,
    lr: float = 2e-3,
    refit: bool = False,
) -> tuple[Any, MLPSearchResult]:
    """Train the case study's PyTorch MLP with a small, honest hyperparameter search.

    A stratified tuning split (``tuning_fraction`` of the training rows) is carved from the
    training data; every configuration is trained with AdamW on the rest, early-stopped on the
    tuning log-loss (best weights restored), and the configuration with the highest tuning
    AUROC is kept. The test set is never seen. Seeds are derived from ``random_state`` and
    ``torch.use_deterministic_algorithms(True)`` is requested during training (the previous
    setting and the global torch RNG are restored afterwards).

    Parameters
    ----------
    X_train : DataFrame or ndarray (n, d)
        Raw features; the model standardises them itself.
    y_train : array-like of 0/1, shape (n,)
    random_state : int, Generator or None, default 0
    search : bool, default True
        False trains only the first configuration (still early-stopped on the tuning split).
    max_epochs : int, default 80
    verbose : bool, default True
        Progress bar over configurations.
    configs : list of dict, optional
        Configurations to search (keys among width, depth, dropout, weight_decay, lr, bins:
        the number of quantile bins of the piecewise-linear input encoding, 0 for none); default
        ``DEFAULT_CONFIGS``.
    tuning_fraction : float, default 0.2
    patience : int, default 10
        Epochs without improvement of the tuning log-loss before stopping.
    batch_size : int, default 256
    lr : float, default 2e-3
        Learning rate, unless a configuration sets its own.
    refit : bool, default False
        Refit the selected configuration on all training rows for its best epoch count (the
        tuning rows are then used for training too; no early stopping).

    Returns
    -------
    model : PneumoniaMLP
        In eval mode; takes raw float32 feature tensors, returns ``(n, 1)`` logits.
    record : MLPSearchResult

    Examples
    --------
    >>> from confoundry.datasets import simulate_pneumonia
    >>> d = simulate_pneumonia(1500, random_state=0)
    >>> model, rec = train_pneumonia_mlp(d.train.X, d.train.y, search=False, max_epochs=5,
    ...                                  verbose=False)
    >>> model.training, rec.to_frame().shape[0]
    (False, 1)
    """
    if torch is None:  # pragma: no cover
        raise ImportError("train_pneumonia_mlp needs PyTorch.")
    data = ensure_data(X_train, y_train, task="binary")
    if not data.is_tabular:
        raise ValueError(f"X_train={describe(X_train)} is not a 2-D table; expected tabular "
                         "features (n, d).")
    if data.y is None:
        raise ValueError("y_train=None is not valid; expected 0/1 labels.")
    y = np.asarray(data.y).astype(np.float64)
    if not np.isin(y, (0.0, 1.0)).all() or len(np.unique(y)) < 2:
        raise ValueError(f"y_train={describe(y_train)} is not valid; expected binary 0/1 labels "
                         "with both classes present.")
    max_epochs = check_positive_int(max_epochs, "max_epochs")
    patience = check_positive_int(patience, "patience")
    batch_size = check_positive_int(batch_size, "batch_size")
    tuning_fraction = check_probability(tuning_fraction, "tuning_fraction")
    cfgs = _check_configs(configs)
    if not search:
        cfgs = cfgs[:1]
    seed0 = random_state if isinstance(random_state, (int, np.integer)) else None
    rng = check_random_state(random_state)

    X = np.ascontiguousarray(to_numpy(data.X), dtype=np.float32)
    names = list(data.feature_names)
    # stratified tuning split
    tune = np.zeros(len(y), dtype=bool)
    for level in (0.0, 1.0):
        idx = np.flatnonzero(y == level)
        k = max(1, int(round(tuning_fraction * len(idx))))
        tune[rng.choice(idx, size=k, replace=False)] = True
    fit = ~tune
    if min(y[fit].sum(), (1 - y[fit]).sum(), y[tune].sum(), (1 - y[tune]).sum()) < 1:
        raise ValueError(f"y_train has too few rows of one class ({int(y.sum())} positives of "
                         f"{len(y)}) to carve a tuning split; expected both classes in both parts.")
    mean, std = X[fit].mean(axis=0), X[fit].std(axis=0)
    Xf, yf = torch.from_numpy(X[fit]), torch.from_numpy(y[fit].astype(np.float32))[:, None]
    Xt, yt = torch.from_numpy(X[tune]), y[tune]
    seeds = [int_seed(rng) for _ in cfgs]
    refit_seed = int_seed(rng)

    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    t0 = time.perf_counter()
    rows, hist, models = [], [], []
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
        for i, cfg in enumerate(progress(cfgs, desc="MLP search", verbose=verbose)):
            t1 = time.perf_counter()
            model, info, h = _train_one(cfg, Xf, yf, Xt, yt, mean=mean, std=std, names=names,
                                        seed=seeds[i], max_epochs=max_epochs, patience=patience,
                                        batch_size=batch_size, lr=lr)
            models.append(model)
            rows.append({"config": i, **{k: cfg.get(k, np.nan) for k in _CONFIG_KEYS}, **info,
                         "seconds": time.perf_counter() - t1})
            hist += [{"config": i, **r} for r in h]
        best_i = int(np.argmax([r["tuning_auroc"] for r in rows]))
        model = models[best_i]
        if refit:
            mean_all, std_all = X.mean(axis=0), X.std(axis=0)
            model, _, _ = _train_one(
                cfgs[best_i], torch.from_numpy(X), torch.from_numpy(y.astype(np.float32))[:, None],
                None, None, mean=mean_all, std=std_all, names=names, seed=refit_seed,
                max_epochs=max_epochs, patience=patience, batch_size=batch_size, lr=lr,
                fixed_epochs=max(1, rows[best_i]["best_epoch"]))
    finally:
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
    seconds = time.perf_counter() - t0

    # tuning AUROC with bootstrap CIs (same resamples for every configuration)
    from ..stats import bootstrap_metrics

    for i, m in enumerate(models):
        with torch.no_grad():
            s = m(Xt)[:, 0].numpy().astype(np.float64)
        ci = bootstrap_metrics(yt, 1 / (1 + np.exp(-s)), task="binary", metrics=["auroc"],
                               n_boot=200, random_state=seeds[0])
        rows[i]["tuning_auroc_ci_low"] = float(ci.loc[0, "ci_low"])
        rows[i]["tuning_auroc_ci_high"] = float(ci.loc[0, "ci_high"])
    frame = pd.DataFrame(rows)
    frame["n_fit"], frame["n_tune"] = int(fit.sum()), int(tune.sum())
    frame["selected"] = frame["config"] == best_i
    frame["label"] = [
        f"w{int(r['width']) if pd.notna(r['width']) else 64}-d"
        f"{int(r['depth']) if pd.notna(r['depth']) else 2}-p{r['dropout']}-wd{r['weight_decay']}"
        + (f"-ple{int(r['bins'])}" if pd.notna(r["bins"]) and r["bins"] else "")
        for _, r in frame.iterrows()
    ]
    cols = ["config", "label", *_CONFIG_KEYS, "tuning_auroc", "tuning_auroc_ci_low",
            "tuning_auroc_ci_high", "tuning_log_loss", "best_epoch", "epochs_run", "seconds",
            "n_fit", "n_tune", "selected"]
    frame = frame.rename(columns={"tuning_loss": "tuning_log_loss"})[cols]
    model.eval()
    record = MLPSearchResult(
        search=frame, history=pd.DataFrame(hist), best_config=dict(cfgs[best_i]), refit=refit,
        seconds=seconds, random_state=seed0, deterministic=True,
        params={"max_epochs": max_epochs, "patience": patience, "batch_size": batch_size,
                "lr": lr, "tuning_fraction": tuning_fraction, "optimizer": "AdamW",
                "selection": "tuning AUROC", "early_stopping": "tuning log-loss",
                "random_state": seed0, "n_features": len(names), "feature_names": names,
                "torch_version": torch.__version__},
    )
    return model, record
