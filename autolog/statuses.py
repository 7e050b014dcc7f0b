"""The item state machine: statuses, steps and the transitions between them.

The status strings are seed 000's, verbatim, because users search and sort by them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.StrEnum):
    """An item's place in the footage pipeline."""

    PENDING_FILE_INFO = "0 - Pending File Info"
    FILE_INFO_COMPLETE = "1 - File Info Complete"
    THUMBNAILS_COMPLETE = "2 - Thumbnails Complete"
    AWAITING_USER_INPUT = "Awaiting User Input"
    CREATING_FRAMES = "3 - Creating Frames"
    PROCESSING_FRAME_INFO = "5 - Processing Frame Info"
    GENERATING_DESCRIPTION = "6 - Generating Description"
    AVID_DESCRIPTION = "7 - Avid Description"

    @property
    def is_terminal(self) -> bool:
        """True when no step runs from this status."""
        return self is Status.AVID_DESCRIPTION

    @property
    def label(self) -> str:
        """The status without its leading number: ``Avid Description``, ``Awaiting User Input``."""
        return self.value.split(" - ", 1)[-1]


def parse_status(text: str) -> Status:
    """Return the status ``text`` names, as the CLI's ``--status`` and the API's ``?status=`` read it.

    Accepted, case and surrounding spaces aside: the full value (``7 - Avid Description``), its
    leading number (``7``), its label (``Avid Description``) or a prefix of the value or label
    that names one status only (``avid``, ``Await``).

    Raises:
        ValueError: it names no status, or (a prefix) several; the message lists the statuses.
    """
    wanted = text.strip().lower()
    for status in Status:
        if wanted and wanted in (status.value.lower(), status.label.lower(), status.value.split(" - ")[0]):
            return status
    matches = [status for status in Status
               if wanted and not wanted.isdigit()
               and (status.value.lower().startswith(wanted) or status.label.lower().startswith(wanted))]
    if len(matches) == 1:
        return matches[0]
    named = " or ".join(repr(status.value) for status in matches)
    choices = ", ".join(repr(status.value) for status in Status)
    if matches:
        raise ValueError(f"{text!r} could be {named}; give more of it")
    raise ValueError(f"expected a status's value, number or label (or a prefix naming one): {choices}; got {text!r}")


@dataclass(frozen=True)
class Step:
    """One processing step: the actor that runs it and the statuses it moves between."""

    number: int
    name: str
    actor_name: str
    queue_name: str
    #: The status an item must be at for this step to run.
    from_status: Status
    #: Every status the step may leave the item at on success.
    to_statuses: frozenset[Status]

    @property
    def seed_name(self) -> str:
        """Seed 000's name for the step's queue, as ``/queue/status`` shows it: ``step1_file_info``."""
        return f"step{self.number}_{self.name}"

    @property
    def picture(self) -> bool:
        """True for the steps that work on the picture (2 to 5), which audio-only items skip."""
        return 2 <= self.number <= 5

    @property
    def names(self) -> frozenset[str]:
        """Every name the step answers to: its name, actor, queue, seed name and number."""
        return frozenset({self.name, self.actor_name, self.queue_name, self.seed_name, str(self.number)})


#: The media kind (``ProbeResult.media_kind``) of an item with sound and no picture: a
#: production sound roll, or an audio file with cover art.
AUDIO_ONLY = "audio"

#: Step 1 sends audio-only items straight to transcription: they have no frames to make
#: or describe.
FILE_INFO = Step(1, "file_info", "autolog.probe", "probe", Status.PENDING_FILE_INFO,
                 frozenset({Status.FILE_INFO_COMPLETE, Status.GENERATING_DESCRIPTION}))
THUMBNAILS = Step(2, "thumbnails", "autolog.make_thumbnails", "thumbnails", Status.FILE_INFO_COMPLETE,
                  frozenset({Status.THUMBNAILS_COMPLETE}))
ASSESS = Step(3, "assess", "autolog.assess", "assess", Status.THUMBNAILS_COMPLETE,
              frozenset({Status.AWAITING_USER_INPUT, Status.CREATING_FRAMES}))
ANALYSIS = Step(4, "analysis", "autolog.analyze", "analysis", Status.CREATING_FRAMES,
                frozenset({Status.PROCESSING_FRAME_INFO}))
FRAMES = Step(5, "frames", "autolog.make_frames", "frames", Status.PROCESSING_FRAME_INFO,
              frozenset({Status.GENERATING_DESCRIPTION, Status.AVID_DESCRIPTION}))
TRANSCRIPTION = Step(6, "transcription", "autolog.transcribe", "transcription",
                     Status.GENERATING_DESCRIPTION, frozenset({Status.AVID_DESCRIPTION}))

#: The six steps in pipeline order.
STEPS: tuple[Step, ...] = (FILE_INFO, THUMBNAILS, ASSESS, ANALYSIS, FRAMES, TRANSCRIPTION)

#: The callback actor that enqueues the steps following a status write (``pipelines.callbacks``).
ROUTE_ACTOR = "autolog.route"


#: Each step by every name it answers to (``Step.names``): middleware looks a step up several
#: times per message.
_STEPS_BY_NAME: dict[str, Step] = {name: step for step in reversed(STEPS) for name in step.names}


def step_named(name: str) -> Step:
    """Return the step with the given name, actor name, queue name, seed name or number.

    Raises:
        KeyError: no step has that name.
    """
    return _STEPS_BY_NAME[name]


def step_for_status(status: Status) -> Step | None:
    """Return the step that runs from ``status``, or None where the pipeline waits or ends."""
    for step in STEPS:
        if step.from_status is status:
            return step
    return None


def is_allowed(step: Step, target: Status) -> bool:
    """Tell whether ``step`` may leave an item at ``target``."""
    return target in step.to_statuses
