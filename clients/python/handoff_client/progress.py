"""Progress bars for long uploads: tqdm or rich when installed, or any callable the caller gives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

try:
    import tqdm.auto as tqdm_auto
except ImportError:  # the optional "progress" extra
    tqdm_auto = None

try:
    import rich.progress as rich_progress
except ImportError:  # the optional "rich" extra
    rich_progress = None


class ProgressBar(Protocol):
    """What the client calls while it works: ``update(n)`` after n more images, then ``close()``."""

    def update(self, n: int) -> object: ...

    def close(self) -> object: ...


ProgressFactory = Callable[[int | None, str], ProgressBar]
ProgressOption = bool | str | ProgressFactory


class _Silent:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


class _RichBar:
    def __init__(self, total: int | None, description: str) -> None:
        self._progress = rich_progress.Progress(
            *rich_progress.Progress.get_default_columns(), rich_progress.MofNCompleteColumn()
        )
        self._task = self._progress.add_task(description, total=total)
        self._progress.start()

    def update(self, n: int) -> None:
        self._progress.advance(self._task, n)

    def close(self) -> None:
        self._progress.stop()


def progress_bar(option: ProgressOption, *, total: int | None, description: str) -> ProgressBar:
    """A bar for ``option``: False (none), True (tqdm, else rich, else none), "tqdm", "rich", or a
    callable ``(total, description) -> bar``."""
    if callable(option):
        return option(total, description)
    if option is False:
        return _Silent()
    if option not in (True, "tqdm", "rich"):
        raise ValueError(f"progress must be a bool, 'tqdm', 'rich' or a callable, not {option!r}")
    if option in (True, "tqdm") and tqdm_auto is not None:
        return tqdm_auto.tqdm(total=total, desc=description, unit="img")
    if option in (True, "rich") and rich_progress is not None:
        return _RichBar(total, description)
    if option is True:
        return _Silent()
    raise ImportError(f"progress={option!r} needs that package: pip install {option}")
