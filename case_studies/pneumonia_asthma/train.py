"""Pneumonia/asthma case study: simulate, train, compare, and count the danger.

Simulates the cohort (14,199 patients, 9,847 train / 4,352 test as in Cooper et al. 1997),
trains the PyTorch MLP with a small hyperparameter search on a tuning split carved from the
training data, fits a logistic regression for reference, and prints (and writes) a results
table: AUROC of both models with bootstrap CIs and their paired difference, the observed vs the
true effect of asthma, chest pain and heart disease, and how many asthmatic test patients with a
high untreated risk the MLP would send home at a triage threshold.

It then runs the full audit (``confoundry.demos.run_pneumonia_demo``: glass-box baselines,
expectations, attributions, shadow glass-box, probes on the hospital and care columns, domain
splits, controls, ground-truth sections) and writes ``report.html`` and ``report.json`` next to
the results, with the audit's headline numbers appended to ``results.md``.

Run::

    python case_studies/pneumonia_asthma/train.py --out case_studies/pneumonia_asthma/results

Every number in this folder's README comes from ``results/results.md``, written by this script.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from confoundry._result import to_jsonable
from confoundry.datasets import simulate_pneumonia
from confoundry.demos import danger_table, train_pneumonia_mlp
from confoundry.stats import Z95, bootstrap_metrics, paired_bootstrap

PARADOX_FEATURES = ("asthma", "chest_pain", "heart_disease")


def md(df: pd.DataFrame, fmt: str = ".3f") -> str:
    """A pandas frame as a Markdown table (no optional dependency)."""
    def cell(v: object) -> str:
        if isinstance(v, (float, np.floating)):
            return format(float(v), fmt)
        return str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def logistic_coefficients(X: pd.DataFrame, y: pd.Series, features: list[str]) -> pd.DataFrame:
    """Unpenalised logistic regression of y on X: per-unit log-odds coefficients of
    ``features`` with Wald 95 % CIs and p-values."""
    from scipy.stats import norm

    mu, sd = X.mean(), X.std().replace(0, 1)
    Z = ((X - mu) / sd).to_numpy()
    m = LogisticRegression(C=np.inf, max_iter=5000).fit(Z, y)
    A = np.column_stack([np.ones(len(Z)), Z])
    p = m.predict_proba(Z)[:, 1]
    cov = np.linalg.inv(A.T @ (A * (p * (1 - p))[:, None]))
    se = np.sqrt(np.diag(cov))[1:] / sd.to_numpy()
    beta = m.coef_[0] / sd.to_numpy()
    out = pd.DataFrame({"feature": X.columns, "coef": beta, "se": se})
    out["ci_low"], out["ci_high"] = out.coef - Z95 * out.se, out.coef + Z95 * out.se
    out["p_value"] = 2 * norm.sf(np.abs(out.coef / out.se))
    return out.set_index("feature").loc[features].reset_index()


def model_effect(predict_logit, X: pd.DataFrame, feature: str) -> tuple[float, float]:
    """Mean change of the model's logit when ``feature`` is set 1 vs 0 for every patient, and
    the standard error of that mean."""
    d = predict_logit(X.assign(**{feature: 1.0})) - predict_logit(X.assign(**{feature: 0.0}))
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def audit_lines(res) -> list[str]:
    """The full audit's headline numbers as Markdown lines."""
    out = ["## The full audit (`confoundry.demos.run_pneumonia_demo`, written to report.html)",
           "", f"Verdict: {res.verdict()['text']}", ""]
    comp = res.results.get("comparison")
    if comp is not None:
        f = comp.to_frame()
        keep = [c for c in ("model", "baseline", "metric", "model_value", "baseline_value",
                            "difference", "ci_low", "ci_high", "q_value", "n") if c in f]
        f = f[f["metric"] == "auroc"] if "metric" in f else f
        out += ["MLP against each glass-box baseline on the test set (paired bootstrap):", "",
                md(f[keep], ".4f"), ""]
    exp = res.results.get("expectations")
    if exp is not None:
        f = exp.to_frame()
        out += ["Expectations (asthma, chest pain, heart disease, age must raise the risk):", "",
                md(f.drop(columns=[c for c in f if f[c].dtype == object and c not in
                                   ("model", "feature", "expected", "observed", "verdict")]),
                   ".3f"), ""]
    probes = res.results.get("probes")
    if probes is not None:
        f = probes.to_frame()
        f = f[f["probe"].isin(["label_association", "output_conditional"])]
        out += ["Confounder probes (care and hospital are never model inputs):", "",
                md(f[["metadata", "probe", "effect_size_name", "effect_size", "p_value",
                      "q_value", "significant", "n"]], ".4g"), ""]
    top = res.summary().head(12)
    out += ["Top findings of the audit:", "",
            md(top[["severity", "kind", "title"]]), "",
            "Per-step times (s): " + ", ".join(
                f"{r.name} {r.seconds:.1f}" for r in res.steps_frame().itertuples()), ""]
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=14199)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-epochs", type=int, default=80)
    ap.add_argument("--threshold", type=float, default=0.1,
                    help="triage threshold on the predicted risk of death (default 0.1)")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=None, help="folder for results.md/json")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--no-audit", action="store_true", help="skip the full cf.Audit report")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()

    data = simulate_pneumonia(args.n, random_state=args.seed)
    tr, te = data.train, data.test
    print(f"cohort: n = {len(data.X)} ({len(tr.X)} train / {len(te.X)} test), "
          f"{data.X.shape[1]} features, mortality {data.y.mean():.1%}, "
          f"aggressive care {data.metadata.aggressive_care.mean():.1%}")

    # --- models ---------------------------------------------------------------
    mlp, search = train_pneumonia_mlp(tr.X, tr.y, random_state=args.seed,
                                      max_epochs=args.max_epochs, verbose=not args.quiet)

    def mlp_logit(X: pd.DataFrame) -> np.ndarray:
        with torch.no_grad():
            return mlp(torch.as_tensor(X.to_numpy(np.float32)))[:, 0].numpy().astype(float)

    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(tr.X, tr.y)

    def lr_logit(X: pd.DataFrame) -> np.ndarray:
        return logreg.decision_function(X)

    s_mlp, s_lr = expit(mlp_logit(te.X)), expit(lr_logit(te.X))
    y = te.y.to_numpy()

    # --- accuracy with CIs --------------------------------------------------------
    metrics = ["auroc", "auprc", "brier"]
    perf = pd.concat([
        bootstrap_metrics(y, s, task="binary", metrics=metrics, n_boot=args.n_boot,
                          random_state=args.seed).assign(model=name)
        for name, s in (("mlp", s_mlp), ("logistic", s_lr))
    ])
    paired = paired_bootstrap(y, s_mlp, s_lr, task="binary", metrics=metrics,
                              n_boot=args.n_boot, random_state=args.seed)

    # --- the paradox: observed vs true effects -----------------------------------
    eff_true = data.feature_effects.set_index("feature")
    adj = logistic_coefficients(data.X, data.y, list(PARADOX_FEATURES)).set_index("feature")
    rows = []
    for f in PARADOX_FEATURES:
        marg = logistic_coefficients(data.X[[f]], data.y, [f]).iloc[0]
        m_eff, m_se = model_effect(mlp_logit, te.X, f)
        l_eff, _ = model_effect(lr_logit, te.X, f)
        rows.append({
            "feature": f, "prevalence": float(data.X[f].mean()),
            "true_untreated_effect": float(eff_true.loc[f, "effect_logit"]),
            "observed_marginal": float(marg.coef), "marginal_ci_low": float(marg.ci_low),
            "marginal_ci_high": float(marg.ci_high),
            "observed_adjusted": float(adj.loc[f, "coef"]),
            "adjusted_ci_low": float(adj.loc[f, "ci_low"]),
            "adjusted_ci_high": float(adj.loc[f, "ci_high"]),
            "adjusted_p": float(adj.loc[f, "p_value"]),
            "mlp_effect": m_eff, "mlp_effect_se": m_se, "logistic_effect": l_eff,
            "care_rate_with": float(data.metadata.aggressive_care[data.X[f] == 1].mean()),
            "care_rate_without": float(data.metadata.aggressive_care[data.X[f] == 0].mean()),
        })
    paradox = pd.DataFrame(rows)

    # --- the danger: who would be sent home ----------------------------------------
    asthma = te.X["asthma"].to_numpy() == 1
    danger = {name: danger_table(s, te.ground_truth, asthma, threshold=args.threshold)
              for name, s in (("mlp", s_mlp), ("logistic", s_lr))}
    seconds = time.perf_counter() - t0

    # --- report -------------------------------------------------------------------
    pd.set_option("display.width", 140)
    lines = ["# Pneumonia/asthma case study: results", "",
             f"Generated by `case_studies/pneumonia_asthma/train.py --seed {args.seed}` "
             f"(n = {len(data.X)}, {seconds:.0f} s).", "",
             "## MLP hyperparameter search (tuning split)", "",
             search.to_frame()[["label", "tuning_auroc", "tuning_auroc_ci_low",
                                "tuning_auroc_ci_high", "best_epoch", "seconds",
                                "selected"]].pipe(md, ".3f"), "",
             f"## Test-set accuracy (n = {len(y)}, {int(y.sum())} deaths; 95% bootstrap CIs, "
             f"{args.n_boot} replicates)", "",
             perf[["model", "metric", "estimate", "ci_low", "ci_high"]].pipe(md, ".4f"), "",
             "Paired difference MLP - logistic (same resamples):", "",
             paired[["metric", "difference", "ci_low", "ci_high", "p_value"]].pipe(md, ".4f"), "",
             "## The paradox: effects on the log-odds of death", "",
             "`true_untreated_effect` is the simulator's ground truth; `observed_*` are "
             "logistic-regression coefficients on the whole cohort (marginal, and adjusted for "
             "all 31 features); `mlp_effect` / `logistic_effect` are the mean change of each "
             "model's logit when the feature is switched from 0 to 1 for every test patient.",
             "",
             paradox[["feature", "prevalence", "true_untreated_effect", "observed_marginal",
                      "observed_adjusted", "adjusted_ci_low", "adjusted_ci_high", "mlp_effect",
                      "logistic_effect", "care_rate_with", "care_rate_without"]].pipe(md, ".3f"), "",
             f"## The danger: triage at a predicted risk of {args.threshold:.0%}", "",
             "High risk = true risk of death without aggressive care at or above the "
             "threshold; wrongly sent home = high risk but predicted below it.", ""]
    for name, dt in danger.items():
        c = dt.comparison
        lines += [f"**{name}** (Fisher exact test, asthma vs no asthma: p = {c['p_value']:.2g})",
                  "", dt.to_frame()[["group", "n", "n_high_risk", "n_wrongly_sent_home",
                                     "wrongly_sent_home_rate", "rate_ci_low", "rate_ci_high",
                                     "expected_deaths_sent_home"]].pipe(md, ".3f"), ""]
    if not args.no_audit:
        from confoundry.demos import run_pneumonia_demo

        out_html = None if args.out is None else args.out / "report.html"
        out_json = None if args.out is None else args.out / "report.json"
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
        audit = run_pneumonia_demo(out_html, out_json, n=args.n, random_state=args.seed,
                                   verbose=not args.quiet)
        lines += audit_lines(audit)
    text = "\n".join(lines)
    print(text)

    results = {"seed": args.seed, "n": len(data.X), "seconds": seconds,
               "search": search.to_dict(), "performance": perf, "paired": paired,
               "paradox": paradox, "danger": {k: v.to_dict() for k, v in danger.items()}}
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.md").write_text(text + "\n", encoding="utf-8")
        (args.out / "results.json").write_text(json.dumps(to_jsonable(results), indent=2),
                                               encoding="utf-8")
        import matplotlib

        matplotlib.use("Agg")
        fig = danger["mlp"].plot()
        fig.savefig(args.out / "danger_mlp.png", dpi=120)
        print(f"wrote {args.out}/results.md, results.json, danger_mlp.png")
    return results


if __name__ == "__main__":
    main()
