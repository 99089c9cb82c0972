"""How severe a finding is: statistical support, an effect large enough to matter, enough rows.

A finding is as severe as its kind allows (its *ceiling*: ``high`` for "the deep model learned
the site", ``medium`` for "the dataset is confounded") only when all three hold:

1. the effect is **statistically supported**: its confidence interval excludes the null and its
   q-value (or p-value, for a single test) is below the level;
2. the effect is **large enough to matter**: at least the kind's documented minimum effect
   (:data:`SEVERITY_RULES`), e.g. an AUROC difference of 0.02 or a partial R² of 0.01;
3. it rests on **enough rows**: at least :data:`MIN_N` (the floor below which a domain or slice
   is "too small to judge").

A supported effect below the minimum stays visible one level lower (two levels when it is below a
quarter of the minimum), never above ``low``'s floor: a partial R² of 0.004 on a million rows is
real and minor. An effect that is not supported, or a group below the floor, is not graded
here: the result that measured it says so in its own words.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

#: the smallest group a ``high`` or ``medium`` finding may rest on (the domains' floor).
MIN_N = 20

_LEVELS = ("high", "medium", "low")


@dataclass(frozen=True)
class SeverityRule:
    """The ceiling, effect and minimum effect of one kind of finding."""

    kind: str
    ceiling: str
    effect: str
    min_effect: float
    why: str


#: One rule per graded kind of finding; :func:`severity_rules` shows them as a table.
SEVERITY_RULES: dict[str, SeverityRule] = {r.kind: r for r in (
    SeverityRule("baseline_outperforms", "high",
                 "difference of the headline metric (AUROC, macro AUROC or R²), baseline minus "
                 "model", 0.02,
                 "an AUROC gain below 0.02 rarely changes a clinical decision, and is within "
                 "the run-to-run spread of retraining a network"),
    SeverityRule("confounded_output", "high",
                 "partial R² of the outputs on the metadata given the label", 0.01,
                 "1% of the output's variance beyond the label: Cohen's 'small' effect (f² = "
                 "0.01)"),
    SeverityRule("confounded_embedding", "high",
                 "partial R² of the embedding on the metadata given the label", 0.01,
                 "as for the outputs"),
    SeverityRule("confounded_dataset", "medium",
                 "Cramér's V (categorical) or R² of ranks between metadata and label", 0.1,
                 "Cramér's V of 0.1 is Cohen's 'small' association"),
    SeverityRule("metadata_predicts_output", "medium",
                 "R² of the outputs on the metadata", 0.01, "Cohen's 'small' effect"),
    SeverityRule("metadata_predicts_error", "medium",
                 "partial R² of the per-sample loss on the metadata given the label", 0.01,
                 "Cohen's 'small' effect"),
    SeverityRule("expectation_violation", "high",
                 "|effect| of the feature on the output, in standard deviations of the output",
                 0.05,
                 "a twentieth of the output's spread: below it the wrong direction is real but "
                 "moves no prediction"),
    SeverityRule("domain_gap", "medium",
                 "difference of the headline metric between the best and worst domain", 0.02,
                 "as for baseline_outperforms"),
    SeverityRule("group_generalisation_gap", "high",
                 "internal minus held-out-group headline metric", 0.02,
                 "as for baseline_outperforms"),
    SeverityRule("failing_slice", "high",
                 "lift: the slice's error over the overall error", 2.0,
                 "twice the overall error, with the CI's lower end at least 1.5x (checked by "
                 "the slice finder)"),
    SeverityRule("memorisation", "high",
                 "real minus shuffled-label headline metric (the finding fires when it is not "
                 "above 0)", 0.0, "no minimum: doing no better than noise is the finding"),
    SeverityRule("membership_risk", "high",
                 "lower CI of the best attack's AUROC, minus 0.5", 0.05,
                 "an attack that beats chance by 0.05 AUROC singles out real people"),
    SeverityRule("overfitting", "high",
                 "model's train-to-test drop minus the baselines' drop", 0.02,
                 "as for baseline_outperforms"),
    SeverityRule("sanity_check_failed", "high",
                 "lower CI of the similarity between the attributions of two independently "
                 "randomised copies of the model", 0.95,
                 "copies that share no weights agree only when the explainer ignores the "
                 "model; a check that fails otherwise is medium (see the sanity check)"),
)}


def severity_rules() -> pd.DataFrame:
    """The rules that grade findings, one row per kind: ``kind``, ``ceiling`` (the most severe
    it can be), ``effect`` (what is measured), ``min_effect`` (the smallest effect that may
    reach the ceiling), ``min_n`` and ``why``.

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> t = severity_rules()
    >>> r = t.set_index("kind").loc["confounded_output"]
    >>> r["ceiling"], float(r["min_effect"]), int(r["min_n"])
    ('high', 0.01, 20)
    """
    return pd.DataFrame([{"kind": r.kind, "ceiling": r.ceiling, "effect": r.effect,
                          "min_effect": r.min_effect, "min_n": MIN_N, "why": r.why}
                         for r in SEVERITY_RULES.values()])


def grade(kind: str, effect: float, *, n: int | None = None, ceiling: str | None = None,
          min_effect: float | None = None) -> str:
    """The severity of a *statistically supported* finding of ``kind`` with ``effect``.

    ``effect`` is on the scale of the kind's rule (its absolute value is used); ``ceiling``
    lowers the kind's ceiling (e.g. a per-domain finding is at most ``medium``). Effects below
    the minimum drop one level (two below a quarter of it); groups below :data:`MIN_N` drop to
    ``low``. Never below ``low``.

    Examples
    --------
    >>> grade("confounded_output", 0.05, n=4000)
    'high'
    >>> grade("confounded_output", 0.004, n=4000)
    'medium'
    >>> grade("confounded_output", 0.001, n=4000)
    'low'
    >>> grade("baseline_outperforms", 0.1, n=500, ceiling="medium")
    'medium'
    >>> grade("confounded_output", 0.2, n=12)
    'low'
    """
    rule = SEVERITY_RULES[kind]
    top = _LEVELS.index(rule.ceiling)
    if ceiling is not None:
        top = max(top, _LEVELS.index(ceiling))
    floor = rule.min_effect if min_effect is None else float(min_effect)
    size = abs(float(effect))
    if not size == size:  # NaN: nothing to grade on
        return "low"
    drop = 0 if size >= floor else (1 if size >= floor / 4 else 2)
    if n is not None and n < MIN_N:
        drop = len(_LEVELS)
    return _LEVELS[min(top + drop, len(_LEVELS) - 1)]


def large_enough(kind: str, effect: float) -> bool:
    """Whether ``effect`` reaches the kind's minimum effect.

    Examples
    --------
    >>> large_enough("baseline_outperforms", 0.005), large_enough("baseline_outperforms", -0.03)
    (False, True)
    """
    return abs(float(effect)) >= SEVERITY_RULES[kind].min_effect
