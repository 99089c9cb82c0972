"""The Audit's door: every argument checked against the data and the model before any step runs.

``Audit.__init__`` validates types and values one by one; this module checks what needs the
data and the model together: the model's output width against the task, the expectation
directions, the probed layer, and metadata that cannot be probed (identifiers). A bad input is
an error naming the argument now, never a failed step minutes later.
"""

from __future__ import annotations

import warnings
from typing import Any

from ..attribution._expectations import expectation_direction
from ..data._coerce import metadata_also_inputs
from ..probes._outputs import resolve_layer
from ..probes._probe import check_probe_metadata


def check_audit_inputs(audit: Any) -> None:
    """Check (and normalise) what :class:`~confoundry.Audit` was given; raises on bad input."""
    audit.expectations = {f: expectation_direction(f, d) for f, d in audit.expectations.items()}
    data = audit.data
    n_classes = None if data.classes is None else len(data.classes)
    audit.adapter.check_outputs(data.X, task=str(data.task), n_classes=n_classes)
    if audit.layer is not None:
        if not audit.adapter.is_torch:
            raise TypeError(f"layer={audit.layer!r} was given but the model is not a "
                            "torch.nn.Module; expected a torch model to probe its activations "
                            "(or layer=None).")
        resolve_layer(audit.adapter, audit.model, audit.layer)
    check_probe_metadata(data.metadata, data.metadata_kinds)
    also = metadata_also_inputs(data)
    if also:
        which = "; ".join(f"'{c}' is {d}" for c, d in also.items())
        warnings.warn(f"metadata column(s) that are also model inputs: {which}. Their probes "
                      "will find that the outputs depend on them, which is expected rather "
                      "than confounding; their rows are marked in the report. Drop them from "
                      "metadata= unless that is what you want to see.", UserWarning,
                      stacklevel=3)
