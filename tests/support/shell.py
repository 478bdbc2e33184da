"""The real IPython shell the magic tests drive, with gadgetbook loaded; one per test session.

IPython's test shell starts once and then replaces `globalipapp.get_ipython`: asking the module each time
(never a name imported from it) gives every test module the same shell.
"""

from __future__ import annotations

from IPython.testing import globalipapp


def gadgetbook_shell():
    shell = globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "gadgetbook")
    return shell
