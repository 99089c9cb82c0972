"""``Bunch``: a dict whose keys are also attributes (like ``sklearn.utils.Bunch``)."""

from __future__ import annotations

from typing import Any


class Bunch(dict):
    """A dictionary with attribute access, returned by the simulators.

    Examples
    --------
    >>> b = Bunch(X=1, y=2)
    >>> b.X, b["y"], sorted(b)
    (1, 2, ['X', 'y'])
    >>> b.z = 3
    >>> b["z"]
    3
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(kwargs)

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(
                f"this Bunch has no key {key!r}; available keys are {sorted(self)}."
            ) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | {str(k) for k in self})

    # dict's pickling is fine; keep attribute-style copies cheap
    def __getstate__(self) -> dict[str, Any]:
        return dict(self)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.update(state)

    def __repr__(self) -> str:
        return f"Bunch(keys={sorted(self)})"
