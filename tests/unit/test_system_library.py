"""Host C libraries opened through ctypes: a present one opens, a missing one is one sentence naming its package."""

import pytest

from gadgetbook.errors import GadgetError
from gadgetbook.kernel.system_library import open_library


def test_a_library_of_the_host_opens():
    assert open_library("libcap.so.2", "libcap2", GadgetError).cap_to_name


def test_a_missing_library_names_the_package_that_brings_it():
    with pytest.raises(GadgetError) as err:
        open_library("libgadgetbook-absent.so.9", "libgadgetbook-absent9", GadgetError)
    assert str(err.value) == ("libgadgetbook-absent.so.9 was not found; install it "
                              "(Debian: apt-get install libgadgetbook-absent9).")
