"""What every advisor returns: documents (plain dicts, as the API takes them), their YAML, the events they
came from, and notes; shown in a notebook once, as highlighted YAML with a download link."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


@dataclass
class Advice:
    """Subclasses name their documents (`documents`), the file a download gets, and how to count them."""

    events: Any = None  # the DataFrame the advice was written from
    notes: list[str] = field(default_factory=list)

    file_name: ClassVar[str] = "advice.yaml"
    noun: ClassVar[tuple[str, str]] = ("document", "documents")
    flow_style: ClassVar[bool | None] = False  # None: short lists inline ([ALL]), as yaml.safe_dump has it

    @property
    def documents(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def comments(self, index: int) -> list[str]:
        """Lines written as YAML comments above the index-th document (what was left out, and why)."""
        return []

    @property
    def yaml(self) -> str:
        import yaml

        parts = []
        for i, doc in enumerate(self.documents):
            head = "".join(f"# {line}\n" for line in self.comments(i))
            parts.append(head + yaml.safe_dump(doc, sort_keys=False, default_flow_style=self.flow_style))
        return "---\n".join(parts)

    def save(self, path: str | Path) -> Path:
        """Write the YAML (every document) to a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.yaml)
        return path

    def __str__(self) -> str:
        return self.yaml

    def _count(self) -> str:
        n = len(self.documents)
        return f"{n} {self.noun[0] if n == 1 else self.noun[1]}"

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.yaml.encode()).decode()
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (
            '<div class="gadgetbook-policy">'
            f"<b>{self._count()}</b> "
            f'&middot; <a download="{self.file_name}" href="data:application/x-yaml;base64,{data}">'
            f"download {self.file_name}</a>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + highlighted_yaml(self.yaml) + "</div>"
        )


def highlighted_yaml(text: str) -> str:
    """YAML as HTML with Pygments' colours written inline; plain <pre> where Pygments is missing."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import YamlLexer
    except ImportError:
        return f"<pre>{html.escape(text)}</pre>"
    return highlight(text, YamlLexer(), HtmlFormatter(noclasses=True, nobackground=True, cssclass="gadgetbook-yaml"))

