"""A simulated pneumonia cohort with the asthma paradox and a known ground truth.

The real data behind the story (Cooper et al. 1997; Caruana et al. 2015) are not public, so this
module simulates a cohort whose causal structure is known exactly: every patient's risk of death
without aggressive care, with it, and the care they actually received. The features, hospitals,
parameters and the true risk function live in :mod:`._pneumonia_truth` (references there).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.utils import Bunch

from .._utils import check_random_state
from ..data._validation import check_positive_int, describe
from ._pneumonia_truth import (
    _FEATURES,
    _HOSPITALS,
    _POLICY_FEATURES,
    DEFAULT_PARAMS,
    FEATURE_NAMES,
    N_COOPER,
    N_TEST_COOPER,
    N_TRAIN_COOPER,
    _feature_effects,
    organ_dysfunction,
    untreated_log_odds,
)

__all__ = ["DEFAULT_PARAMS", "FEATURE_NAMES", "N_COOPER", "N_TEST_COOPER", "N_TRAIN_COOPER",
           "organ_dysfunction", "simulate_pneumonia", "untreated_log_odds"]


def _bern(rng: np.random.Generator, logit: np.ndarray) -> np.ndarray:
    return (rng.random(len(logit)) < expit(logit)).astype(np.float64)


def _simulate_features(rng: np.random.Generator, hosp: np.ndarray) -> dict[str, np.ndarray]:
    """Patient features given hospital codes (distributions are assumptions, loosely matched to
    inpatient pneumonia cohorts)."""
    n = len(hosp)
    H = _HOSPITALS

    def per_h(key: str, default: float = 0.0, sub: str | None = None) -> np.ndarray:
        if sub is None:
            vals = np.array([h[key] for h in H], dtype=np.float64)
        else:
            vals = np.array([h[key].get(sub, default) for h in H], dtype=np.float64)
        return vals[hosp]

    def prev(name: str) -> np.ndarray:
        return per_h("prevalence", 0.0, name)

    Z = rng.standard_normal((n, 16))
    sev = Z[:, 0] + per_h("severity_shift")  # latent acute severity (never observed)
    age = np.clip(np.round(70 + per_h("age_shift") + 15 * Z[:, 1]), 18, 100)
    a = (age - 70) / 10
    male = _bern(rng, 0.0 + prev("male"))
    nursing = _bern(rng, -2.4 + 0.8 * a + prev("nursing_home"))
    asthma = _bern(rng, -2.5 - 0.25 * a + prev("asthma"))
    copd = _bern(rng, -1.3 + 0.2 * a + 0.4 * male + prev("copd"))
    heart = _bern(rng, -1.6 + 0.4 * a + 0.4 * male + prev("heart_disease"))
    chf = _bern(rng, -2.2 + 0.4 * a + 1.0 * heart)
    diabetes = _bern(rng, -1.7 + 0.1 * a)
    cancer = _bern(rng, -2.6 + 0.2 * a + prev("cancer"))
    liver = _bern(rng, -3.4 + prev("liver_disease"))
    renal = _bern(rng, -2.6 + 0.3 * a + 0.5 * diabetes)
    cerebro = _bern(rng, -2.4 + 0.4 * a)
    chest_pain = _bern(rng, -1.0 - 0.25 * a + 0.8 * heart)
    ams = _bern(rng, -2.6 + 0.35 * a + 0.6 * sev + 0.7 * cerebro + 0.6 * nursing)
    effusion = _bern(rng, -2.2 + 0.4 * sev + 0.5 * chf + 0.6 * cancer)
    multilobar = _bern(rng, -1.3 + 0.4 * sev)

    temperature = np.round(37.9 + 0.85 * Z[:, 2] - 0.1 * a, 1)
    heart_rate = np.round(np.clip(92 + 17 * Z[:, 3] + 5 * sev, 35, 180))
    resp = np.round(np.clip(22 + 5 * Z[:, 4] + 2.5 * sev, 8, 60))
    sbp = np.round(np.clip(128 - 7 * sev + 22 * Z[:, 5] + 3 * a, 50, 240))
    log_bun = np.log(17) + 0.5 * Z[:, 6] + 0.2 * sev + 0.6 * renal + 0.08 * a
    bun = np.round(np.clip(np.exp(log_bun), 2, 200))
    creat = np.round(np.exp(0.7 * (log_bun - np.log(17)) + 0.3 * Z[:, 7] + 0.4 * renal
                            + 0.1 * male), 1).clip(0.3, 15)
    sodium = np.round(np.clip(137.5 + 3.8 * Z[:, 8] - 0.5 * sev, 110, 170))
    potassium = np.round(np.clip(4.2 + 0.5 * Z[:, 9] + 0.3 * renal, 2.0, 8.0), 1)
    glucose = np.round(np.clip(np.exp(np.log(125) + 0.3 * Z[:, 10] + 0.5 * diabetes
                                      + 0.05 * sev), 40, 900))
    wbc = np.round(np.clip(np.exp(np.log(11.5) + 0.45 * Z[:, 11] + 0.1 * sev), 0.5, 80), 1)
    hct = np.round(np.clip(38.5 + 5 * Z[:, 12] - 2.5 * cancer - 2 * renal, 15, 60), 1)
    albumin = np.round(np.clip(3.4 + 0.5 * Z[:, 13] - 0.2 * sev - 0.3 * nursing - 0.5 * liver,
                               1.0, 5.5), 1)
    ph = np.round(7.41 + 0.045 * Z[:, 14] - 0.015 * sev, 2)
    po2 = np.round(np.clip(72 + 14 * Z[:, 15] - 4 * sev - 7 * copd, 30, 150))
    pco2 = np.round(np.clip(38 + 5.5 * rng.standard_normal(n) + 9 * copd + 1.5 * sev
                            - 40 * (ph - 7.41), 15, 100))
    cols = {
        "age": age, "male": male, "nursing_home": nursing, "asthma": asthma, "copd": copd,
        "heart_disease": heart, "chf": chf, "diabetes": diabetes, "cancer": cancer,
        "liver_disease": liver, "renal_disease": renal, "cerebrovascular": cerebro,
        "chest_pain": chest_pain, "altered_mental_status": ams, "pleural_effusion": effusion,
        "multilobar": multilobar, "temperature": temperature, "heart_rate": heart_rate,
        "respiratory_rate": resp, "systolic_bp": sbp, "bun": bun, "creatinine": creat,
        "sodium": sodium, "potassium": potassium, "glucose": glucose, "wbc": wbc,
        "hematocrit": hct, "albumin": albumin, "ph": ph, "po2": po2, "pco2": pco2,
    }
    return {k: cols[k] for k in FEATURE_NAMES}



_DESCR = """\
Simulated pneumonia cohort with the asthma paradox (confoundry.datasets.simulate_pneumonia)
--------------------------------------------------------------------------------------------
Patients admitted with pneumonia to five hospitals that differ in case mix and care policy.
Each patient has {d} features (demographics, comorbidities, symptoms, vital signs, labs and blood
gases, radiograph findings; units in ``feature_descriptions``), the care received (metadata:
``hospital``, ``aggressive_care``, ``icu_admission``; never model inputs) and in-hospital death.

Causal structure (ground truth known exactly):
  features --> untreated log-odds of death (non-linear: age, U-shaped temperature, blood pressure,
  potassium, sodium, pCO2; steps at round-number thresholds; interactions)
  features, hospital --> aggressive care (asthma, chest pain and heart disease trigger escalation)
  untreated log-odds + care_effect * aggressive_care --> death
Asthma, chest pain and heart disease truly *raise* the untreated risk, but they raise the chance
of aggressive care, which lowers mortality enough that their observed association with death is
protective: a model trained on these data learns ``HasAsthma(x) => LowerRisk(x)`` (Caruana et al.
2015). Sizes of the cohort and its split follow Cooper et al. (1997); risk factors and thresholds
follow the Pneumonia Severity Index (Fine et al. 1997); every coefficient is an assumption,
listed in ``params``.
"""


def simulate_pneumonia(
    n: int = N_COOPER,
    *,
    random_state: Any = None,
    n_train: int | None = None,
    care_effect: float | None = None,
    policy_strength: float | None = None,
    params: Mapping[str, Any] | None = None,
) -> Bunch:
    """Simulate a pneumonia cohort in which asthma looks protective but is harmful.

    Parameters
    ----------
    n : int, default 14199
        Number of patients (Cooper et al. 1997 had 14,199).
    random_state : None, int or numpy Generator
        Seed; the same seed gives the same cohort, split and outcomes.
    n_train : int, optional
        Size of the training part of the random split. Default: ``round(n * 9847 / 14199)``,
        which is 9,847 training and 4,352 test patients at the default ``n`` (the sizes of
        Cooper et al. 1997; that the split is random is an assumption).
    care_effect : float, optional
        Change of the log-odds of death caused by aggressive care (default -2.2, an
        assumption). 0 removes the benefit of care and with it the paradox.
    policy_strength : float, optional
        Multiplier (>= 0) of the escalation of care triggered by asthma, chest pain and heart
        disease (default 1). 0 gives a control cohort without the paradox.
    params : dict, optional
        Override any entry of ``DEFAULT_PARAMS`` (nested dicts are merged).

    Returns
    -------
    Bunch with keys (also attributes)

    X : DataFrame (n, 31), float64
        Model inputs; index ``patient_id`` 0..n-1.
    y : Series ``"death"``, int 0/1
    metadata : DataFrame
        ``hospital`` (str, 5 levels), ``aggressive_care`` (0/1), ``icu_admission`` (0/1):
        never model inputs.
    ground_truth : DataFrame, one row per patient
        ``untreated_log_odds``, ``untreated_risk`` (risk of death without aggressive care),
        ``treated_risk`` (with it), ``p_aggressive_care`` (the hospital's probability of giving
        it), ``expected_risk`` (risk averaged over the care the hospital would give: what the
        observational data identify), ``observed_risk`` (risk under the care actually received;
        ``y`` is a Bernoulli draw of it).
    feature_effects : DataFrame, one row per feature
        True causal effect on the untreated log-odds: ``effect_logit`` (binary 0 -> 1,
        continuous 10th -> 90th percentile, averaged over the cohort), ``odds_ratio``,
        ``effect_range_logit`` (range of the averaged effect curve), ``shape``
        (increasing / decreasing / non-monotone), ``care_boost_logit`` and ``source``.
    feature_descriptions : dict of str to str
        ``"description (unit)"`` per feature; ``feature_units`` and ``feature_kinds`` likewise.
    untreated_log_odds : callable
        ``f(X) -> ndarray``: the true untreated log-odds for any feature table.
    train, test : Bunch
        The random split, each with ``X``, ``y``, ``metadata``, ``ground_truth``.
    train_index, test_index : ndarray
        Row labels of the split.
    params : dict
        Every generative parameter, with ``sources``.
    DESCR : str

    Examples
    --------
    >>> d = simulate_pneumonia(random_state=0)
    >>> d.X.shape, len(d.train.X), len(d.test.X)
    ((14199, 31), 9847, 4352)
    >>> bool(0.08 < d.y.mean() < 0.13)
    True
    >>> eff = d.feature_effects.set_index("feature")
    >>> bool(eff.loc["asthma", "effect_logit"] > 0)      # truly harmful
    True
    >>> bool(d.y[d.X.asthma == 1].mean() < d.y[d.X.asthma == 0].mean())   # looks protective
    True
    """
    n = check_positive_int(n, "n", minimum=20)
    rng = check_random_state(random_state)
    p = copy.deepcopy(DEFAULT_PARAMS)
    if params is not None:
        if not isinstance(params, Mapping):
            raise TypeError(f"params={describe(params)} is not a mapping; expected a dict of "
                            "entries of DEFAULT_PARAMS.")
        for key, value in params.items():
            if key not in p:
                raise ValueError(f"params has the key {key!r}, which is not a parameter; "
                                 f"expected some of {sorted(p)}.")
            if isinstance(p[key], dict) and isinstance(value, Mapping):
                p[key].update(value)
            else:
                p[key] = value
    if care_effect is not None:
        p["care_effect"] = _check_float(care_effect, "care_effect")
    if policy_strength is not None:
        ps = _check_float(policy_strength, "policy_strength")
        if ps < 0:
            raise ValueError(f"policy_strength={policy_strength!r} is negative; expected a "
                             "number >= 0.")
        p["policy_strength"] = ps
    if n_train is None:
        n_train = int(round(n * N_TRAIN_COOPER / N_COOPER))
    else:
        n_train = check_positive_int(n_train, "n_train")
        if n_train >= n:
            raise ValueError(f"n_train={n_train} is not valid for n={n}; expected an integer "
                             "below n so that the test set is not empty.")

    shares = np.array([h["share"] for h in _HOSPITALS])
    hosp = rng.choice(len(_HOSPITALS), size=n, p=shares / shares.sum())
    cols = _simulate_features(rng, hosp)
    index = pd.RangeIndex(n, name="patient_id")
    X = pd.DataFrame(cols, index=index, dtype=np.float64)

    L = untreated_log_odds(cols, p)
    h_int = np.array([h["care_intercept"] for h in _HOSPITALS])[hosp]
    h_prot = np.array([h["protocol"] for h in _HOSPITALS])[hosp]
    boost = sum(p["care_boost"].get(f, 0.0) * cols[f] for f in _POLICY_FEATURES)
    care_logit = (h_int + p["care_severity"] * (L - L.mean())
                  + h_prot * p["policy_strength"] * boost)
    noise = p["care_noise_sd"] * rng.standard_normal(n)
    p_care = expit(care_logit + noise)
    care = (rng.random(n) < p_care).astype(np.int64)
    icu_logit = (p["icu_intercept"] + p["icu_severity"] * (L - L.mean())
                 + p["icu_asthma"] * cols["asthma"])
    icu = care * (rng.random(n) < expit(icu_logit)).astype(np.int64)

    untreated = expit(L)
    treated = expit(L + p["care_effect"])
    observed = np.where(care == 1, treated, untreated)
    death = (rng.random(n) < observed).astype(np.int64)

    y = pd.Series(death, index=index, name="death")
    metadata = pd.DataFrame({
        "hospital": np.array([h["name"] for h in _HOSPITALS], dtype=object)[hosp],
        "aggressive_care": care, "icu_admission": icu,
    }, index=index)
    ground_truth = pd.DataFrame({
        "untreated_log_odds": L, "untreated_risk": untreated, "treated_risk": treated,
        "p_aggressive_care": p_care,
        "expected_risk": p_care * treated + (1 - p_care) * untreated,
        "observed_risk": observed,
    }, index=index)

    perm = rng.permutation(n)
    train_index, test_index = np.sort(perm[:n_train]), np.sort(perm[n_train:])

    def part(rows: np.ndarray) -> Bunch:
        return Bunch(X=X.iloc[rows], y=y.iloc[rows], metadata=metadata.iloc[rows],
                     ground_truth=ground_truth.iloc[rows])

    info = {f[0]: f for f in _FEATURES}
    params_out = copy.deepcopy(p)
    params_out["hospitals"] = copy.deepcopy(list(_HOSPITALS))
    params_out["n"], params_out["n_train"] = n, n_train

    def risk_fn(X_: Any) -> np.ndarray:
        return untreated_log_odds(X_, params_out)

    risk_fn.__doc__ = untreated_log_odds.__doc__
    return Bunch(
        X=X, y=y, metadata=metadata, ground_truth=ground_truth,
        feature_effects=_feature_effects(X, p),
        feature_descriptions={k: f"{v[3]} ({v[2]})" for k, v in info.items()},
        feature_units={k: v[2] for k, v in info.items()},
        feature_kinds={k: v[1] for k, v in info.items()},
        untreated_log_odds=risk_fn,
        train=part(train_index), test=part(test_index),
        train_index=train_index, test_index=test_index,
        params=params_out, DESCR=_DESCR.format(d=len(FEATURE_NAMES)),
    )


def _check_float(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{name}={value!r} is a bool; expected a finite number.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={describe(value)} is not a number; expected a finite "
                        "float.") from None
    if not np.isfinite(v):
        raise ValueError(f"{name}={value!r} is not finite; expected a finite number.")
    return v
