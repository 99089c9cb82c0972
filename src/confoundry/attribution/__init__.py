"""confoundry.attribution (being built; see the project's issues)."""

__all__: list[str] = []
