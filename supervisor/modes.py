"""The mode of a slot: exactly one of the values below at a time.

    Starting ─ready─▶ Serving ─replace()─▶ Replacing ─new ready / failed─▶ Serving
       ▲                 │ exit
       └── BackingOff ◀──┘
    any of them ─stop()─▶ Stopping ─▶ Exited        (give-up: Starting ─▶ Exited)

Only the slot's own task moves between modes, with two exceptions that come
from outside and act on nothing: `stop()` wraps the current mode in
Stopping, and `replace()` turns Serving into Replacing. The task fills in
the processes it spawns (`Starting.child`, `Replacing.new`) on the mode
object itself, so a Stopping that wrapped it still sees them and stops them."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import ClassVar

from supervisor.child import Child


class SlotState(enum.StrEnum):
    """The state `python -m supervisor status` shows."""

    STARTING = "starting"
    READY = "ready"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    EXITED = "exited"


class _Base:
    state: ClassVar[SlotState]

    def shown(self) -> Child | None:
        """The process `status` shows for the slot."""
        return None

    def to_stop(self) -> list[Child]:
        """The processes a stop must end, in order: a replacement still
        starting first, the served process last. One whose exit was already
        handled (BackingOff) is not among them."""
        return []


@dataclass
class Starting(_Base):
    """A process is being spawned (`child` still None) or is not ready yet."""

    state: ClassVar[SlotState] = SlotState.STARTING
    child: Child | None = None

    def hold(self, child: Child) -> None:
        self.child = child

    def shown(self) -> Child | None:
        return self.child

    def to_stop(self) -> list[Child]:
        return [self.child] if self.child is not None else []


@dataclass
class BackingOff(_Base):
    """The last process exited or failed; waiting before the next start."""

    state: ClassVar[SlotState] = SlotState.BACKOFF


@dataclass
class Serving(_Base):
    """`child` is ready and serves."""

    state: ClassVar[SlotState] = SlotState.READY
    child: Child

    def shown(self) -> Child | None:
        return self.child

    def to_stop(self) -> list[Child]:
        return [self.child]


@dataclass
class Replacing(_Base):
    """Rolling restart: `new` starts next to `old`, which keeps serving; once
    `new` is ready (`swapped`) it is the one served and `old` is being
    stopped. `done` tells every caller of `replace()` how it went."""

    state: ClassVar[SlotState] = SlotState.READY
    old: Child
    done: asyncio.Future[bool]
    new: Child | None = None
    swapped: bool = False

    def hold(self, child: Child) -> None:
        self.new = child

    def shown(self) -> Child | None:
        return self.new if self.swapped else self.old

    def to_stop(self) -> list[Child]:
        if self.swapped:  # the slot's task is stopping the old one itself
            assert self.new is not None
            return [self.new]
        return [self.new, self.old] if self.new is not None else [self.old]


@dataclass
class Stopping(_Base):
    """Stopping for good: SIGTERM, then SIGKILL after `budget` s (at once
    when `force` is set), for the processes of the mode it interrupted."""

    state: ClassVar[SlotState] = SlotState.STOPPING
    budget: float
    force: asyncio.Event
    was: Mode

    def shown(self) -> Child | None:
        return self.was.shown()


@dataclass
class Exited(_Base):
    """Nothing runs here any more (stopped, or gave up)."""

    state: ClassVar[SlotState] = SlotState.EXITED


Mode = Starting | BackingOff | Serving | Replacing | Stopping | Exited
