"""Ground truth of the simulated pneumonia cohort: features, hospitals, parameters, risk.

What :func:`confoundry.datasets.simulate_pneumonia` draws from (its generative parameters and
the true untreated log-odds of death), kept apart from the simulator so that the causal model
reads on its own.

The real data behind the story (Cooper et al. 1997; Caruana et al. 2015) are not public, so the
cohort is simulated with a causal structure known exactly: every patient's risk of death without
aggressive care, with it, and the care they actually received.

References
----------
Cooper1997
    Cooper GF, Aliferis CF, Ambrosino R, et al. An evaluation of machine-learning methods for
    predicting pneumonia mortality. Artificial Intelligence in Medicine 9 (1997) 107-138.
    14,199 inpatients with pneumonia (MedisGroups, 78 US hospitals, 1989), 9,847 for training and
    4,352 for testing, about 10.6 % in-hospital deaths (approximate figure), 46 features.
Caruana2015
    Caruana R, Lou Y, Gehrke J, et al. Intelligible models for healthcare: predicting pneumonia
    risk and hospital 30-day readmission. KDD 2015. Asthma, chest pain and heart disease appeared
    protective because those patients received faster, more aggressive care (asthmatics were often
    admitted directly to the ICU); neural nets were the most accurate models.
Fine1997
    Fine MJ, Auble TE, Yealy DM, et al. A prediction rule to identify low-risk patients with
    community-acquired pneumonia. NEJM 336 (1997) 243-250 (PORT cohort; Pneumonia Severity Index).
    Risk factors and their clinical thresholds (respiratory rate >= 30/min, systolic BP < 90 mmHg,
    temperature < 35 or >= 40 C, pulse >= 125/min, arterial pH < 7.35, BUN >= 30 mg/dL,
    sodium < 130 mmol/L, glucose >= 250 mg/dL, haematocrit < 30 %, pO2 < 60 mmHg).
Lengerich2022
    Lengerich BJ, Caruana R, Nunnally ME, Kellis M. Death by round numbers: glass-box machine
    learning uncovers biases in medical practice. medRxiv 2022. Steps in risk at round-number
    thresholds of age and labs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from ..data._validation import describe

#: Sizes of the Cooper et al. (1997) cohort and split.
N_COOPER, N_TRAIN_COOPER, N_TEST_COOPER = 14199, 9847, 4352

_C97, _C15, _F97, _L22, _ASSUME = "Cooper1997", "Caruana2015", "Fine1997", "Lengerich2022", \
    "assumption"

# name, kind, unit, description, where the feature (not its simulated coefficient) comes from
_FEATURES: tuple[tuple[str, str, str, str, str], ...] = (
    ("age", "continuous", "years", "age at admission", _F97),
    ("male", "binary", "0/1", "male sex", _F97),
    ("nursing_home", "binary", "0/1", "admitted from a nursing home", _F97),
    ("asthma", "binary", "0/1", "history of asthma", _C15),
    ("copd", "binary", "0/1", "chronic obstructive pulmonary disease", _C97),
    ("heart_disease", "binary", "0/1", "history of (ischaemic) heart disease", _C15),
    ("chf", "binary", "0/1", "congestive heart failure", _F97),
    ("diabetes", "binary", "0/1", "diabetes mellitus", _C97),
    ("cancer", "binary", "0/1", "active neoplastic disease", _F97),
    ("liver_disease", "binary", "0/1", "chronic liver disease", _F97),
    ("renal_disease", "binary", "0/1", "chronic renal disease", _F97),
    ("cerebrovascular", "binary", "0/1", "cerebrovascular disease", _F97),
    ("chest_pain", "binary", "0/1", "chest pain at presentation", _C15),
    ("altered_mental_status", "binary", "0/1", "altered mental status (confusion)", _F97),
    ("pleural_effusion", "binary", "0/1", "pleural effusion on chest radiograph", _F97),
    ("multilobar", "binary", "0/1", "multilobar infiltrate on chest radiograph", _C97),
    ("temperature", "continuous", "degC", "body temperature", _F97),
    ("heart_rate", "continuous", "beats/min", "pulse", _F97),
    ("respiratory_rate", "continuous", "breaths/min", "respiratory rate", _F97),
    ("systolic_bp", "continuous", "mmHg", "systolic blood pressure", _F97),
    ("bun", "continuous", "mg/dL", "blood urea nitrogen", _F97),
    ("creatinine", "continuous", "mg/dL", "serum creatinine", _C97),
    ("sodium", "continuous", "mmol/L", "serum sodium", _F97),
    ("potassium", "continuous", "mmol/L", "serum potassium", _C97),
    ("glucose", "continuous", "mg/dL", "blood glucose", _F97),
    ("wbc", "continuous", "10^9/L", "white blood cell count", _C97),
    ("hematocrit", "continuous", "%", "haematocrit", _F97),
    ("albumin", "continuous", "g/dL", "serum albumin", _C97),
    ("ph", "continuous", "pH units", "arterial pH", _F97),
    ("po2", "continuous", "mmHg", "arterial partial pressure of oxygen", _F97),
    ("pco2", "continuous", "mmHg", "arterial partial pressure of carbon dioxide", _C97),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f[0] for f in _FEATURES)

#: Hospitals: share of patients, case mix (age shift in years, shift of the latent acute
#: severity in SD, log-odds shifts of comorbidity prevalence) and care policy (intercept of the
#: log-odds of aggressive care, and how strongly the asthma / chest pain / heart disease
#: escalation protocol is applied, 0..1). All assumptions, chosen so that hospitals differ.
_HOSPITALS: tuple[dict[str, Any], ...] = (
    {"name": "university", "share": 0.26, "age_shift": 1.0, "severity_shift": 0.15,
     "prevalence": {"cancer": 0.5, "liver_disease": 0.3}, "care_intercept": -1.9,
     "protocol": 1.0},
    {"name": "urban", "share": 0.24, "age_shift": -7.0, "severity_shift": 0.0,
     "prevalence": {"asthma": 0.6, "nursing_home": -0.5, "liver_disease": 0.4},
     "care_intercept": -2.2, "protocol": 1.0},
    {"name": "suburban", "share": 0.20, "age_shift": 0.0, "severity_shift": -0.15,
     "prevalence": {}, "care_intercept": -2.4, "protocol": 0.9},
    {"name": "rural", "share": 0.16, "age_shift": 4.0, "severity_shift": 0.1,
     "prevalence": {"copd": 0.5, "nursing_home": 0.3, "asthma": -0.3},
     "care_intercept": -2.9, "protocol": 0.7},
    {"name": "veterans", "share": 0.14, "age_shift": 5.0, "severity_shift": 0.2,
     "prevalence": {"heart_disease": 0.5, "male": 2.0, "copd": 0.3},
     "care_intercept": -2.7, "protocol": 0.5},
)

#: Every number of the generative model. ``sources`` says which come from publications.
DEFAULT_PARAMS: dict[str, Any] = {
    "intercept": -6.85,  # calibrated (assumption) so that overall mortality is about 10.6 %
    # --- untreated log-odds of death: binary risk factors (log odds ratios). The factors come
    # from Fine1997 (PSI) and Caruana2015; their sizes are assumptions loosely following the PSI
    # points (10 points ~ 0.25 log-odds).
    "risk": {
        "male": 0.2, "nursing_home": 0.5, "asthma": 0.5, "copd": 0.3, "heart_disease": 0.45,
        "chf": 0.45, "diabetes": 0.2, "cancer": 1.0, "liver_disease": 0.8, "renal_disease": 0.35,
        "cerebrovascular": 0.35, "chest_pain": 0.35, "altered_mental_status": 0.8,
        "pleural_effusion": 0.35, "multilobar": 0.4,
    },
    # --- non-linear terms (forms from Fine1997 thresholds; sizes are assumptions)
    "age_slope": 0.03,            # per year, centred at 70
    "age_curve": 0.003,           # per year^2 above 75 (accelerating risk in the very old)
    "age_step65": 0.25,           # step at the round number 65 (Lengerich2022-style)
    "temperature_u": 1.2,         # per degC^2 away from 37.8 (U shape), capped at 3
    "temperature_extreme": 0.2,   # temperature < 35 or >= 40 C (Fine1997 threshold)
    "heart_rate_high": 0.3,       # pulse >= 125 /min (Fine1997 threshold)
    "heart_rate_u": 2e-4,         # per (beats/min)^2 away from 85 (U shape)
    "respiratory_rate_high": 0.3,  # >= 30 /min (Fine1997 threshold)
    "respiratory_rate_curve": 0.006,  # per (breaths/min)^2 above 18 (convex)
    "systolic_bp_low": 0.6,       # < 90 mmHg (Fine1997 threshold)
    "systolic_bp_u": 4e-4,      # per mmHg^2 away from 125 (U shape)
    "bun_high": 0.4,              # >= 30 mg/dL (Fine1997 threshold)
    "bun_log": 0.3,               # per log-unit of BUN / 17 mg/dL
    "sodium_low": 0.3,            # < 130 mmol/L (Fine1997 threshold)
    "sodium_u": 0.05,             # per (mmol/L)^2 away from 139 (U shape), capped at 2
    "potassium_u": 0.8,           # per (mmol/L)^2 away from 4.3, capped at 2.5
    "glucose_high": 0.3,          # >= 250 mg/dL (Fine1997 threshold)
    "wbc_low": 0.3,               # < 4 x 10^9/L (assumption)
    "wbc_u": 0.8,                 # per log(WBC / 10)^2 (U shape on the log scale)
    "hematocrit_low": 0.3,        # < 30 % (Fine1997 threshold)
    "albumin_slope": -0.5,        # per g/dL, centred at 3.4 (assumption)
    "ph_low": 0.5,                # arterial pH < 7.35 (Fine1997 threshold)
    "po2_low": 0.4,               # pO2 < 60 mmHg (Fine1997 threshold)
    "pco2_high": 0.9,             # pCO2 > 50 mmHg (assumption) ...
    "pco2_high_copd_factor": 0.3,  # ... only 30 % as dangerous with COPD (chronic hypercapnia)
    "pco2_low": 0.4,              # pCO2 < 30 mmHg (assumption)
    # --- thresholds: 0 gives hard steps at the PSI thresholds; s > 0 replaces every step by a
    # logistic ramp s times a clinically small width wide (e.g. 5 mmHg for systolic BP, 3 mg/dL
    # for BUN). Physiology changes smoothly; hard steps are a scoring convention (assumption).
    "threshold_softness": 0.0,
    # --- interactions (assumptions)
    "heart_disease_x_hypotension": 0.6,   # heart disease and SBP < 90 (cardiogenic shock)
    "cancer_x_leukopenia": 0.8,           # cancer and WBC < 4 (neutropenia)
    "ams_x_age": 0.015,                   # altered mental status, per year above 70
    # --- multi-organ dysfunction (assumption, after the organ-failure scores SOFA/MODS, in
    # which mortality rises steeply with the number of failing organ systems): a smooth
    # derangement index D sums soft-thresholded deviations of breathing (respiratory rate,
    # pO2), circulation (systolic BP, pulse), kidneys (BUN), acid-base (pH) and the brain
    # (altered mental status); its square adds synergy between every pair of systems, a smooth
    # interaction of many features that an additive model cannot represent.
    "organ_linear": 0.0,          # per unit of D
    "organ_synergy": 0.0,         # per unit of D^2
    # --- care: aggressive care (early ICU-level treatment) lowers the log-odds of death by
    # this much for everyone (assumption; Caruana2015 gives no effect size).
    "care_effect": -2.2,
    # --- care policy: log-odds of aggressive care = hospital intercept
    #     + care_severity * (untreated log-odds - cohort mean) + noise
    #     + protocol * policy_strength * boost[feature]
    "care_severity": 0.3,         # clinicians see part of the severity (assumption; with 0.3
    # care is driven more by protocol and hospital policy than by severity, so that treated
    # patients die less often overall, about 8 % vs 14 %, as in an effective-care setting)
    "care_noise_sd": 0.5,         # unobserved clinical judgement (assumption)
    "care_boost": {"asthma": 5.0, "chest_pain": 3.5, "heart_disease": 3.5},  # Caruana2015
    # direction; sizes are assumptions chosen so that the observed association is protective.
    "policy_strength": 1.0,
    # ICU admission (a marker recorded in metadata; the effect on death is carried by care)
    "icu_intercept": 0.2, "icu_severity": 0.6, "icu_asthma": 0.8,
    "sources": {
        "n, n_train, n_test, mortality ~10.6 %, 46 features": _C97,
        "asthma, chest pain, heart disease look protective because of aggressive care": _C15,
        "risk factors and thresholds": _F97,
        "round-number steps (age 65)": _L22,
        "all coefficients, distributions, hospitals, care effect and policy": _ASSUME,
    },
}

_POLICY_FEATURES = ("asthma", "chest_pain", "heart_disease")


def _get(X: Any, name: str) -> np.ndarray:
    return np.asarray(X[name], dtype=np.float64)


def untreated_log_odds(X: Any, params: Mapping[str, Any] | None = None) -> np.ndarray:
    """True log-odds of death without aggressive care, a function of the features only.

    Parameters
    ----------
    X : DataFrame or mapping of feature name to array
        Must hold every column of ``FEATURE_NAMES``.
    params : dict, optional
        Generative parameters (default ``DEFAULT_PARAMS``).

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> from confoundry.datasets import simulate_pneumonia
    >>> d = simulate_pneumonia(200, random_state=0)
    >>> X1 = d.X.assign(asthma=1.0); X0 = d.X.assign(asthma=0.0)
    >>> delta = untreated_log_odds(X1) - untreated_log_odds(X0)
    >>> bool(np.allclose(delta, 0.5))
    True
    """
    p = DEFAULT_PARAMS if params is None else params
    missing = [c for c in FEATURE_NAMES if c not in X]
    if missing:
        raise ValueError(f"X={describe(X)} lacks the feature(s) {missing}; expected every column "
                         f"of confoundry.datasets pneumonia FEATURE_NAMES.")
    r = p["risk"]
    soft = float(p.get("threshold_softness", 0.0))
    z = np.full(len(np.asarray(X["age"])), float(p["intercept"]))
    for name, beta in r.items():
        z += beta * _get(X, name)
    age = _get(X, "age")
    z += p["age_slope"] * (age - 70) + p["age_curve"] * np.maximum(age - 75, 0) ** 2
    z += p["age_step65"] * _above(age, 65, 2.0, soft)
    t = _get(X, "temperature")
    z += np.minimum(p["temperature_u"] * (t - 37.8) ** 2, 3.0)
    z += p["temperature_extreme"] * np.maximum(_below(t, 35, 0.3, soft), _above(t, 40, 0.3, soft))
    hr, rr = _get(X, "heart_rate"), _get(X, "respiratory_rate")
    z += p["heart_rate_high"] * _above(hr, 125, 5.0, soft) + p["heart_rate_u"] * (hr - 85) ** 2
    z += p["respiratory_rate_high"] * _above(rr, 30, 2.0, soft)
    z += p["respiratory_rate_curve"] * np.maximum(rr - 18, 0) ** 2
    sbp = _get(X, "systolic_bp")
    hypot = _below(sbp, 90, 5.0, soft)
    z += p["systolic_bp_low"] * hypot + p["systolic_bp_u"] * (sbp - 125) ** 2
    bun = _get(X, "bun")
    z += p["bun_high"] * _above(bun, 30, 3.0, soft) + p["bun_log"] * np.log(bun / 17.0)
    na = _get(X, "sodium")
    z += p["sodium_low"] * _below(na, 130, 1.5, soft) + np.minimum(p["sodium_u"] * (na - 139) ** 2, 2.0)
    z += np.minimum(p["potassium_u"] * (_get(X, "potassium") - 4.3) ** 2, 2.5)
    z += p["glucose_high"] * _above(_get(X, "glucose"), 250, 20.0, soft)
    wbc = _get(X, "wbc")
    leukopenia = _below(wbc, 4, 0.4, soft)
    z += p["wbc_low"] * leukopenia + p["wbc_u"] * np.log(wbc / 10.0) ** 2
    z += p["hematocrit_low"] * _below(_get(X, "hematocrit"), 30, 1.5, soft)
    z += p["albumin_slope"] * (_get(X, "albumin") - 3.4)
    z += p["ph_low"] * _below(_get(X, "ph"), 7.35, 0.02, soft)
    z += p["po2_low"] * _below(_get(X, "po2"), 60, 4.0, soft)
    pco2, copd = _get(X, "pco2"), _get(X, "copd")
    z += p["pco2_high"] * _above(pco2, 50, 2.5, soft) * (1 - (1 - p["pco2_high_copd_factor"]) * copd)
    z += p["pco2_low"] * _below(pco2, 30, 2.5, soft)
    z += p["heart_disease_x_hypotension"] * _get(X, "heart_disease") * hypot
    z += p["cancer_x_leukopenia"] * _get(X, "cancer") * leukopenia
    z += p["ams_x_age"] * _get(X, "altered_mental_status") * (age - 70)
    if p.get("organ_linear", 0.0) or p.get("organ_synergy", 0.0):
        D = organ_dysfunction(X)
        z += p.get("organ_linear", 0.0) * D + p.get("organ_synergy", 0.0) * D ** 2
        z += p.get("organ_shock", 0.0) * expit(3.0 * (D - p.get("organ_shock_at", 3.0)))
    return z


def _softplus(x: np.ndarray, k: float = 3.0) -> np.ndarray:
    """Soft threshold max(x, 0), smoothed over about 1/k units."""
    return np.logaddexp(0.0, k * x) / k


def organ_dysfunction(X: Any) -> np.ndarray:
    """Smooth multi-organ derangement index D >= 0 (an assumption of the simulator).

    Sum over organ systems of soft-thresholded deviations, each about 1 per clinically marked
    derangement: respiratory rate above 26/min and pO2 below 62 mmHg (breathing), systolic BP
    below 100 mmHg and pulse above 115/min (circulation), BUN above 30 mg/dL (kidneys), pH
    below 7.35 (acid-base), and altered mental status (brain).

    Examples
    --------
    >>> from confoundry.datasets import simulate_pneumonia
    >>> d = simulate_pneumonia(300, random_state=0)
    >>> D = organ_dysfunction(d.X)
    >>> bool((D >= 0).all()) and D.shape == (300,)
    True
    """
    sp = _softplus
    rr, po2 = _get(X, "respiratory_rate"), _get(X, "po2")
    sbp, hr = _get(X, "systolic_bp"), _get(X, "heart_rate")
    bun, ph = _get(X, "bun"), _get(X, "ph")
    ams = _get(X, "altered_mental_status")
    return (sp((rr - 26) / 3) + sp((62 - po2) / 6) + sp((100 - sbp) / 8) + sp((hr - 115) / 8)
            + sp(np.log(bun / 30) / 0.25) + sp((7.35 - ph) / 0.03) + ams)


def _above(x: np.ndarray, at: float, scale: float, soft: float) -> np.ndarray:
    """Step up at ``at``: hard (x >= at) when ``soft`` is 0, else a logistic ramp whose width
    is ``scale * soft`` (in the feature's unit)."""
    if soft <= 0:
        return (x >= at).astype(np.float64)
    return expit((x - at) / (scale * soft))


def _below(x: np.ndarray, at: float, scale: float, soft: float) -> np.ndarray:
    """Step down at ``at`` (x < at when ``soft`` is 0), see :func:`_above`."""
    if soft <= 0:
        return (x < at).astype(np.float64)
    return expit((at - x) / (scale * soft))


def _feature_effects(X: pd.DataFrame, params: Mapping[str, Any], n_eval: int = 2000,
                     n_grid: int = 25) -> pd.DataFrame:
    """True causal effect of each feature on the untreated log-odds (interventional contrasts
    averaged over the cohort's other features)."""
    Xe = X.iloc[:n_eval]
    m = len(Xe)
    kinds = {f[0]: f[1] for f in _FEATURES}
    sources = {f[0]: f[4] for f in _FEATURES}
    rows = []
    base = {c: Xe[c].to_numpy() for c in FEATURE_NAMES}
    for name in FEATURE_NAMES:
        col = X[name].to_numpy()
        if kinds[name] == "binary":
            grid = np.array([0.0, 1.0])
            lo_v, hi_v, contrast = 0.0, 1.0, "0 -> 1"
        else:
            lo_v, hi_v = np.quantile(col, [0.1, 0.9])
            grid = np.unique(np.concatenate([np.quantile(col, np.linspace(0.01, 0.99, n_grid)),
                                             [lo_v, hi_v]]))
            contrast = f"p10 ({lo_v:.4g}) -> p90 ({hi_v:.4g})"
        stacked = {c: np.tile(v, len(grid)) for c, v in base.items()}
        stacked[name] = np.repeat(grid, m)
        curve = untreated_log_odds(stacked, params).reshape(len(grid), m).mean(axis=1)
        effect = float(curve[np.searchsorted(grid, hi_v)] - curve[np.searchsorted(grid, lo_v)])
        rng_ = float(curve.max() - curve.min())
        diffs = np.diff(curve)
        if rng_ < 1e-9:
            shape = "none"
        elif np.all(diffs >= -1e-9):
            shape = "increasing"
        elif np.all(diffs <= 1e-9):
            shape = "decreasing"
        else:
            shape = "non-monotone"
        boost = params["care_boost"].get(name, 0.0) * params["policy_strength"]
        rows.append({
            "feature": name, "kind": kinds[name], "effect_logit": effect,
            "odds_ratio": float(np.exp(effect)), "contrast": contrast,
            "effect_range_logit": rng_, "shape": shape, "care_boost_logit": float(boost),
            "source": sources[name] if name in ("asthma", "chest_pain", "heart_disease")
            else f"feature: {sources[name]}; size: assumption",
        })
    return pd.DataFrame(rows)

