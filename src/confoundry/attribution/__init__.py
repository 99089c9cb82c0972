"""Attribution engines (Captum, SHAP), agreement between explanations, domain expectations,
effect curves, the shadow glass-box and sanity checks."""

from ._agreement import Agreement, compare_attributions
from ._effects import EffectCurve, ShadowGlassBox, effect_curve, shadow_glassbox
from ._engines import METHODS as ATTRIBUTION_METHODS
from ._engines import attribute
from ._expectations import ExpectationResult, check_expectations
from ._mass import MassByGroupResult, attribution_mass, mass_by_group
from ._sanity import SanityResult, sanity_check

__all__ = ["ATTRIBUTION_METHODS", "Agreement", "EffectCurve", "ExpectationResult",
           "MassByGroupResult", "SanityResult", "ShadowGlassBox", "attribute", "attribution_mass", "check_expectations",
           "compare_attributions", "effect_curve", "mass_by_group", "sanity_check",
           "shadow_glassbox"]
