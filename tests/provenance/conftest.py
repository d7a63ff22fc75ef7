"""Fixtures for provenance tests."""
from __future__ import annotations

import pytest

from prov_helpers import write_set


@pytest.fixture
def keydir(tmp_path):
    from mammosynth.provenance.keys import new_keypair

    new_keypair(tmp_path / "keys")
    return tmp_path / "keys"


@pytest.fixture
def signed_set(tmp_path, keydir):
    return write_set(tmp_path / "set", key=keydir)
