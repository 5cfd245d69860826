"""`--framing` and `--parse`: a choice for every port, or per port.

Each flag is repeatable, `METHOD` (every port) or `PORT=METHOD` (that
port, which wins over the every-port choice); its environment variable holds
the same items comma-separated. The supervisor and the tcp workers read
them with these converters, so both spell the names and the errors once."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import cli

FRAMING_METHODS = ("newline", "octet-count", "syslog", "length32")
DEFAULT_FRAMING = "newline"
PARSERS = ("syslog",)

Item = tuple[int | None, str]  # (port, or None for every port; choice)


def _one_of(choices: tuple[str, ...]) -> str:
    return ", ".join(choices[:-1]) + " or " + choices[-1] if len(choices) > 1 else choices[0]


def item_of(choices: tuple[str, ...], what: str) -> Callable[[str], Item]:
    """A converter for one `CHOICE` / `PORT=CHOICE` value; raises cli.BadValue."""
    def parse(text: str) -> Item:
        port_text, sep, choice = text.strip().rpartition("=")
        port = cli.fixed_port(port_text.strip()) if sep else None
        choice = choice.strip().lower()
        if choice not in choices:
            raise cli.BadValue(f"unknown {what} (expected {_one_of(choices)}, "
                               f"or PORT={choices[0]})", text)
        return port, choice
    return parse


framing_item = item_of(FRAMING_METHODS, "framing method")
parse_item = item_of(PARSERS, "parser")


def env_items(text: str, item: Callable[[str], Item]) -> list[Item]:
    """The comma-separated items of an environment variable (blanks skipped)."""
    return [item(part) for part in text.split(",") if part.strip()]


@dataclass(frozen=True)
class PerPort:
    """A choice for every port (`default`, None: none) and per-port ones."""

    default: str | None = None
    ports: tuple[tuple[int, str], ...] = ()

    @classmethod
    def of(cls, items: Iterable[Item], default: str | None = None) -> PerPort:
        """Combine items; raises cli.BadValue when one port (or "every port")
        is given two different choices."""
        every: str | None = None
        ports: dict[int, str] = {}
        for port, choice in items:
            if port is None:
                if every is not None and every != choice:
                    raise cli.BadValue(f"given twice for every port ({every}, {choice})",
                                       choice)
                every = choice
            else:
                if ports.get(port, choice) != choice:
                    raise cli.BadValue(f"given twice for port {port} ({ports[port]}, "
                                       f"{choice})", f"{port}={choice}")
                ports[port] = choice
        return cls(every if every is not None else default, tuple(sorted(ports.items())))

    def for_port(self, port: int) -> str | None:
        for p, choice in self.ports:
            if p == port:
                return choice
        return self.default

    def items(self) -> list[str]:
        """The choices as items (`METHOD`, `PORT=METHOD`): flag values, or a
        config-file list."""
        every = [self.default] if self.default is not None else []
        return every + [f"{port}={choice}" for port, choice in self.ports]

    def to_args(self, flag: str) -> list[str]:
        """The flags that give the same choices (to hand to a child)."""
        return [word for item in self.items() for word in (flag, item)]


def framing_choice(flag_items: list[Item] | None, env_text: str) -> PerPort:
    """--framing: the flags if any were given, else TCPWS_FRAMING; newline by default."""
    items = flag_items if flag_items else env_items(env_text, framing_item)
    return PerPort.of(items, DEFAULT_FRAMING)


def parse_choice(flag_items: list[Item] | None, env_text: str) -> PerPort:
    """--parse: the flags if any were given, else TCPWS_PARSE; none by default."""
    items = flag_items if flag_items else env_items(env_text, parse_item)
    return PerPort.of(items)
