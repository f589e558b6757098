"""What a policy asks to be masked."""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.masking.vocabulary import PATTERN_NAMES

UNSCANNABLE_BINARY_CHOICES = ("withhold", "keep")


@dataclass(frozen=True)
class MaskingSettings:
    """What to mask. Secret data is always masked; policies may except pattern families.

    ``secret_data`` exists so the policy schema can spell ``secret_data: always``; turning it
    off is refused. ``patterns`` defaults to every built-in family (fail closed).
    ``unscannable_binary``: a ConfigMap ``binaryData`` value that is not text cannot be
    scanned; it is withheld (the default) unless the policy says ``keep``.
    """

    secret_data: bool = True
    patterns: tuple[str, ...] = tuple(sorted(PATTERN_NAMES))
    unscannable_binary: str = "withhold"
    families: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.secret_data is not True:
            raise ValueError("Secret data masking is always on and cannot be turned off")
        unknown = sorted(set(self.patterns) - PATTERN_NAMES)
        if unknown:
            raise ValueError(
                f"unknown masking pattern(s) {', '.join(unknown)}; "
                f"choose from {', '.join(sorted(PATTERN_NAMES))}"
            )
        if self.unscannable_binary not in UNSCANNABLE_BINARY_CHOICES:
            raise ValueError(
                f"unscannable_binary must be one of {', '.join(UNSCANNABLE_BINARY_CHOICES)}"
            )
        object.__setattr__(self, "families", frozenset(self.patterns))

    @classmethod
    def excepting(
        cls, excepted: tuple[str, ...] = (), unscannable_binary: str = "withhold"
    ) -> MaskingSettings:
        """Every family but ``excepted``: a family added later is on for these settings too."""
        unknown = sorted(set(excepted) - PATTERN_NAMES)
        if unknown:
            raise ValueError(
                f"unknown masking pattern(s) {', '.join(unknown)}; "
                f"choose from {', '.join(sorted(PATTERN_NAMES))}"
            )
        patterns = tuple(sorted(PATTERN_NAMES - set(excepted)))
        return cls(patterns=patterns, unscannable_binary=unscannable_binary)


DEFAULT_SETTINGS = MaskingSettings()
