"""Why an export cannot be made: the export subtree of :class:`autolog.errors.AutologError`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from autolog.errors import AutologError


class ExportError(AutologError):
    """Base class for exports refused because of what was asked for."""


class UnknownExportFormat(ExportError):
    """Raised when a format name is not one this kind of export writes."""

    def __init__(self, name: str, formats: Sequence[str], *, scope: str) -> None:
        super().__init__(f"no {scope} export format {name!r}; formats: {', '.join(formats)}")
        self.name = name
        self.formats = tuple(formats)
        self.scope = scope


class InvalidExportOption(ExportError):
    """Raised when an export option or selection filter is malformed."""

    def __init__(self, option: str, reason: str) -> None:
        super().__init__(f"{option}: {reason}")
        self.option = option
        self.reason = reason


class ItemsNotLogged(ExportError):
    """Raised when items asked for by id or status are not at a final status yet."""

    def __init__(self, statuses: Mapping[str, str], *, final: str) -> None:
        shown = ", ".join(f"{item_id!r} is at {status!r}" for item_id, status in list(statuses.items())[:5])
        more = f" and {len(statuses) - 5} more" if len(statuses) > 5 else ""
        super().__init__(f"not logged yet: {shown}{more}; exports need {final!r}")
        self.statuses = dict(statuses)


class MixedFrameRates(ExportError):
    """Raised when one ALE would hold clips of several frame rates (an ALE has one ``FPS``)."""

    def __init__(self, counts: Mapping[str, int]) -> None:
        listed = ", ".join(f"{count} at {label} fps" for label, count in sorted(counts.items()))
        super().__init__(f"an ALE holds one frame rate and this selection has several ({listed}); "
                         f"export one rate at a time with fps={sorted(counts)[0]}")
        self.counts = dict(counts)


class NotExportable(ExportError):
    """Raised when an item has nothing a format can hold (an EDL of a clip without picture)."""

    def __init__(self, item_id: str, format_name: str, reason: str) -> None:
        super().__init__(f"item {item_id!r} cannot be exported as {format_name}: {reason}")
        self.item_id = item_id
        self.format_name = format_name
        self.reason = reason
