"""Lab 1, processes and files: a backup job that keeps failing, beside a web server that checks its own health."""

from __future__ import annotations

from gadgetbook.labs.check import Question, columns, rows, values
from gadgetbook.labs.scenarios.containers import ContainerScenario

JOB = "/backup.sh"
MISSING = "/etc/backup/credentials"
# The job's programs by full path: busybox's sh runs an applet named without a path through /proc/self/exe,
# which would show every program as `exe`.
JOB_SCRIPT = f"""/bin/cat {MISSING} >/dev/null 2>&1
/bin/tar -cf /tmp/backup.tar /data
/bin/gzip -f /tmp/backup.tar
"""
JOB_PROGRAMS = {"sh", "cat", "tar", "gzip", "sleep"}


class ProcessesLab(ContainerScenario):
    """`backup` runs /backup.sh twice a second (it cannot read its credentials); `web` serves HTTP and fetches
    its own page every second."""

    lab = "processes"

    def start(self) -> None:
        self.file(JOB, JOB_SCRIPT, 0o755)
        self.file("/etc/group", "root:x:0:\n")  # tar names the owners of what it archives
        self.file("/data/orders.csv", "id,total\n1,9.50\n2,12.00\n")
        self.file("/data/customers.csv", "id,name\n1,Ada\n2,Linus\n")
        self.container("backup", f"while true; do /bin/sh {JOB}; /bin/sleep 0.5; done")
        self.container("web", "/bin/httpd -p 8080 -h /www; while true; do "
                              "/bin/wget -q -O /dev/null http://127.0.0.1:8080/; /bin/sleep 1; done")

    def questions(self) -> dict[str, Question]:
        backup = self.name("backup")
        return {
            "programs": Question(
                f"Which programs does the backup container ({backup}) run?",
                columns("comm"), values("comm", JOB_PROGRAMS),
                hint="Keep the rows of the backup container (execs.container == ...), then the distinct comm "
                     "values: execs[...][['comm']].drop_duplicates()."),
            "failed": Question(
                "Which file does the backup job fail to open, and with which error?",
                columns("path", "error"), rows(1), values("path", {MISSING}), values("error", {"ENOENT"}),
                hint="A failed open has an error name (opens.error != ''); keep the backup container's rows and "
                     "one row per distinct path and error."),
            "parent": Question(
                "Which command line started the program that fails?",
                columns("args"), values("args", {f"/bin/sh {JOB}"}),
                hint="The failing program's ppid is its parent's pid: find the rows of execs whose pid is the ppid "
                     "of a row whose args name the missing file (merge execs with itself, or use isin)."),
        }
