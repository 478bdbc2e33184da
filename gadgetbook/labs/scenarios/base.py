"""What every lab's scenario shares: live (it starts real workloads and removes them) or replayed (recordings
shipped with gadgetbook, where eBPF cannot run), a folder for its runs, the facts its checks need, and the
questions a notebook checks answers against."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from gadgetbook.errors import GadgetError
from gadgetbook.labs.check import Question, Verdict

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"
FACTS = "facts.json"
# GADGETBOOK_LABS_REPLAY=1: replay the recordings even where eBPF runs. GADGETBOOK_LABS_RECORD=1: run live and
# write the runs (--save {lab.runs}/...) and facts into the recordings shipped with gadgetbook.
REPLAY_ENV, RECORD_ENV = "GADGETBOOK_LABS_REPLAY", "GADGETBOOK_LABS_RECORD"


def can_trace() -> bool:
    """Whether gadgets can run here (root or the BPF capabilities, and a kernel with BTF)."""
    from gadgetbook.kernel.gadget import check_privileges

    try:
        check_privileges()
    except GadgetError:
        return False
    return True


class Scenario:
    """A lab's scenario. Subclasses name the lab (`lab`), say what they need (`needs`, for the sentence shown
    where it cannot run), start their workloads in `setup()` (each removal registered with `on_close`) and
    define `questions()`.

    Live, `runs` is a temporary folder of the lab's own (recordings made with `--save {lab.runs}/x.parquet`)
    and `facts` describes what was started; replayed, both come from the recordings shipped with gadgetbook.
    Everything started is removed by `close()`: called by the notebook's last cell, and again when the kernel
    exits, even after a cell failed half-way.
    """

    lab: ClassVar[str] = ""
    needs: ClassVar[str] = "root and eBPF"
    replayable: ClassVar[bool] = True

    def __init__(self, live: bool | None = None) -> None:
        self._cleanups: list[Callable[[], None]] = []
        self._closed = False
        self.recording = os.environ.get(RECORD_ENV) == "1"
        self.live = self._decide(live)
        self.facts: dict[str, Any] = {}
        if not self.live:
            self.runs = RECORDINGS / self.lab
            self.facts = json.loads((self.runs / FACTS).read_text())
            return
        atexit.register(self.close)
        if self.recording:
            self.runs = RECORDINGS / self.lab
            shutil.rmtree(self.runs, ignore_errors=True)
            self.runs.mkdir(parents=True)
        else:
            self.runs = Path(tempfile.mkdtemp(prefix=f"gadgetbook-lab-{self.lab}-"))
            self.on_close(lambda: shutil.rmtree(self.runs, ignore_errors=True))
        try:
            self.setup()
        except BaseException:
            with contextlib.suppress(Exception):  # the setup's own error is the one to tell
                self.close()
            raise
        self.save_facts()

    def _decide(self, live: bool | None) -> bool:
        recorded = (RECORDINGS / self.lab / FACTS).is_file()
        if live is None:
            live = self.recording or (os.environ.get(REPLAY_ENV) != "1" and can_trace())
        if not live and not (self.replayable and recorded):
            raise GadgetError(f"This lab needs {self.needs}, and it has no recordings to replay; run it where "
                              "gadgets run (as root on Linux with BTF).")
        return live

    # -- what subclasses fill in --

    def setup(self) -> None:
        """Start the workloads; register each removal with on_close; fill self.facts."""

    def questions(self) -> dict[str, Question]:
        return {}

    # -- for notebooks --

    @property
    def mode(self) -> str:
        return "live" if self.live else "replay"

    def check(self, question: str, answer: Any, strict: bool | None = None) -> Verdict:
        """The verdict on an answer to one of the lab's questions (by its key)."""
        questions = self.questions()
        if question not in questions:
            raise GadgetError(f"The lab has no question {question!r}; its questions: {', '.join(questions)}.")
        return questions[question].check(answer, strict=strict)

    def save_facts(self) -> None:
        """Write the facts beside the runs (a recording carries them to replays)."""
        (self.runs / FACTS).write_text(json.dumps(self.facts, indent=1, sort_keys=True) + "\n")

    def on_close(self, action: Callable[[], None]) -> None:
        """Run `action` when the lab closes (last registered, first run)."""
        self._cleanups.append(action)

    def close(self) -> None:
        """Remove everything the lab started: containers by id, networks, files. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        errors = []
        while self._cleanups:
            try:
                self._cleanups.pop()()
            except Exception as exc:  # the other removals still run; the first failure is raised below
                errors.append(exc)
        atexit.unregister(self.close)
        if errors:
            raise errors[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "" if self.live else f", replaying {self.runs}"
        return f"{type(self).__name__}({self.mode}{where}, {self.facts.get('selector', '')})"
