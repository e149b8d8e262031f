"""At most one push per document per principal per minute (DESIGN.md §1.12), in bounded memory.

A facilitator sending the same prompt twice, or an owner toggling a grant back and forth, must
not buzz a phone each time; the push service's ``Topic`` collapses what is still undelivered,
this collapses what would be sent. Keys live in one insertion-ordered map: expired ones are
dropped from its old end as new ones come, and past ``max_keys`` the oldest goes even if its
minute is not over (that principal could then get a second push within the minute: bounded
memory wins over the exact rule). Per node: with several nodes behind a load balancer each
keeps its own minute, so a principal can get one push per node per minute at most.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

__all__ = ["PushThrottle"]


class PushThrottle:
    def __init__(
        self,
        window_seconds: float = 60.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window_seconds
        self.max_keys = max_keys
        self._clock = clock
        self._last: OrderedDict[Hashable, float] = OrderedDict()

    def admit(self, key: Hashable) -> bool:
        """Whether a push for ``key`` may go now; if so, the next one waits a window."""
        now = self._clock()
        last = self._last
        while last:
            oldest, at = next(iter(last.items()))
            if now - at < self.window and len(last) < self.max_keys:
                break
            del last[oldest]
        at = last.get(key)
        if at is not None and now - at < self.window:
            return False
        last.pop(key, None)
        last[key] = now  # at the young end
        return True

    def forget(self, key: Hashable) -> None:
        """The push admitted for ``key`` was not queued after all: do not hold it back."""
        self._last.pop(key, None)

    def __len__(self) -> int:
        return len(self._last)
