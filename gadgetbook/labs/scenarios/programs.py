"""Lab 5, a first BPF program: an indexer container that greps a source tree, for programs of one's own (%%bpf,
then %%bcc) to count and follow its opens."""

from __future__ import annotations

from gadgetbook.labs.check import Question, columns, holds, rows, values
from gadgetbook.labs.scenarios.containers import ContainerScenario

SOURCES = {
    "/src/README": "TODO: write the docs\n",
    "/src/app.py": "print('shop')  # TODO: a real app\n",
    "/src/util.py": "def add(a, b):\n    return a + b\n",
    "/src/lib/db.py": "# TODO: pool connections\n",
    "/src/lib/cache.py": "CACHE = {}\n",
}
# What one grep over the tree opens: the directories, then each file.
GREP_PATHS = {"/src", "/src/lib", *SOURCES}


def _agree(df) -> bool:
    return bool(len(df)) and bool((df["events"] == df["map"]).all())


class ProgramsLab(ContainerScenario):
    """`indexer` runs `grep -r TODO /src` and reads /src/README three times a second."""

    lab = "programs"
    needs = "root, eBPF and clang (and bcc with kernel headers for %%bcc)"
    replayable = False

    def start(self) -> None:
        for path, text in SOURCES.items():
            self.file(path, text)
        self.container("indexer", "while true; do /bin/grep -r -l TODO /src >/dev/null; "
                                  "/bin/cat /src/README >/dev/null; /bin/sleep 0.3; done")

    def questions(self) -> dict[str, Question]:
        def paths(key: str, where: str) -> Question:
            return Question(
                f"Which paths does grep open ({where})?",
                columns("path"), values("path", GREP_PATHS),
                hint=f"Keep the rows of {key} whose comm is grep, then the distinct path values.")

        return {
            "top": Question(
                "Which program in the indexer opens the most files?",
                columns("comm", "value"), rows(1), values("comm", {"grep"}),
                hint="The map's DataFrame has one row per key (comm) with its value: sort by value, largest first, "
                     "and keep the first row."),
            "paths": paths("opens.events", "your %%bpf program's events"),
            "agree": Question(
                "Do the map and the events count the same opens per program?",
                columns("comm", "events", "map"), rows(at_least=2),
                holds(_agree, "Some rows have different counts in `events` and `map`, or there are none."),
                hint="Count the events per comm (groupby(...).size()), join the map's value per comm, name the "
                     "columns events and map."),
            "bcc": paths("bcc_opens.events", "your %%bcc program's events"),
        }
