"""Which Pulse messages a listener wants, and where in the message stream it stands.

Pure values shared by everything that selects messages — the event stream's
subscribers (API and web), the hooks' bindings — so that matching is one
piece of code, whoever asks.
"""

from __future__ import annotations

from dataclasses import dataclass

from cairn.domain.pulse_messages import PulseMessage


class RoutingKeyPattern:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more words.

    Matched as a set of pattern states advanced one key word at a time, the
    set held as the bits of an int: a constant number of integer operations
    per word, whatever the pattern, no recursion. Runs of ``#`` are one ``#``.
    """

    def __init__(self, pattern: str):
        self.pattern = pattern
        words: list[str] = []
        for word in pattern.split("."):
            if not (word == "#" and words and words[-1] == "#"):
                words.append(word)
        self.words = tuple(words)
        self._hash = self._star = 0
        self._literal: dict[str, int] = {}
        for i, word in enumerate(words):
            if word == "#":
                self._hash |= 1 << i
            elif word == "*":
                self._star |= 1 << i
            else:
                self._literal[word] = self._literal.get(word, 0) | 1 << i
        self._accept = 1 << len(words)

    def _closure(self, states: int) -> int:
        # A `#` may match no word: its state also stands at the next one.
        # No two `#` are adjacent, so one shift reaches every such state.
        return states | (states & self._hash) << 1

    def match(self, key: str) -> bool:
        states = self._closure(1)
        for word in key.split("."):
            advancing = states & (self._star | self._literal.get(word, 0))
            states = self._closure((states & self._hash) | advancing << 1)
            if not states:
                return False
        return bool(states & self._accept)


@dataclass(frozen=True)
class StreamFilter:
    exchanges: frozenset[str]
    routing_key: RoutingKeyPattern

    def matches(self, message: PulseMessage) -> bool:
        if self.exchanges and message.exchange not in self.exchanges:
            return False
        return any(self.routing_key.match(key) for key in (message.routing_key, *message.cc))


#: The index that places a position after all of an event's messages.
AFTER_ALL = 1 << 30


@dataclass(frozen=True, order=True)
class Position:
    """A message's place in the stream: its event's log position, and its index among that event's messages."""

    notification: int
    index: int

    def __str__(self) -> str:
        return f"{self.notification}.{self.index}"

    @classmethod
    def after_event(cls, notification: int) -> Position:
        """The position just past every message of event ``notification``."""
        return cls(notification, AFTER_ALL)

    def resume_id(self) -> str:
        """This position as a client sends it back: a bare notification id when it is past a whole event."""
        return str(self.notification) if self.index == AFTER_ALL else str(self)

    @classmethod
    def parse(cls, text: str) -> Position:
        head, _, index = text.strip().partition(".")
        if not head.isdigit() or (index and not index.isdigit()):
            raise ValueError(f"not a stream position: {text!r}")
        # A bare notification id means "everything after that event".
        return cls(int(head), int(index) if index else AFTER_ALL)
