"""Label selectors parse and match as Kubernetes defines them."""

import pytest

from gadgetbook.errors import GadgetError
from gadgetbook.targets.selector import Selector


@pytest.mark.parametrize("text,labels,want", [
    ("app=api", {"app": "api"}, True),
    ("app=api", {"app": "db"}, False),
    ("app==api,tier=web", {"app": "api", "tier": "web"}, True),
    ("app=api,tier=web", {"app": "api"}, False),
    ("app!=api", {"app": "db"}, True),
    ("app!=api", {}, True),
    ("app in (api, db)", {"app": "db"}, True),
    ("app in (api,db)", {"app": "web"}, False),
    ("app notin (api)", {"app": "web"}, True),
    ("app", {"app": ""}, True),
    ("!app", {"app": "x"}, False),
    ("example.com/team=a-b_c.d", {"example.com/team": "a-b_c.d"}, True),
])
def test_matches(text, labels, want):
    assert Selector.parse(text).matches(labels) is want


@pytest.mark.parametrize("text", ["", "app=(x", "=x", "app in api", "a=b,,c=d", "app=x y"])
def test_malformed_selector_is_one_sentence(text):
    with pytest.raises(GadgetError, match="Cannot read the selector"):
        Selector.parse(text)
