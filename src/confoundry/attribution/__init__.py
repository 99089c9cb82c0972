"""Attribution engines (Captum, SHAP), agreement between explanations, domain expectations,
effect curves, the shadow glass-box and sanity checks."""

from .._explanation import AttributionResult
from .._result import deprecated_aliases
from ._agreement import AgreementResult, compare_attributions
from ._effects import EffectCurveResult, effect_curve
from ._engines import attribute
from ._expectations import ExpectationResult, check_expectations
from ._mass import MassByGroupResult, mass_by_group
from ._methods import ATTRIBUTION_METHODS
from ._sanity import SanityResult, sanity_check
from ._shadow import ShadowGlassBoxResult, shadow_glassbox
from ._share import attribution_mass

#: old names, served with a DeprecationWarning for one release.
_DEPRECATED = {
    "Attribution": AttributionResult,
    "Agreement": AgreementResult,
    "EffectCurve": EffectCurveResult,
    "ShadowGlassBox": ShadowGlassBoxResult,
}
__getattr__ = deprecated_aliases(__name__, _DEPRECATED)

__all__ = ["ATTRIBUTION_METHODS", "AgreementResult", "AttributionResult", "EffectCurveResult",
           "ExpectationResult", "MassByGroupResult", "SanityResult", "ShadowGlassBoxResult",
           "attribute", "attribution_mass", "check_expectations", "compare_attributions",
           "effect_curve", "mass_by_group", "sanity_check", "shadow_glassbox"]
