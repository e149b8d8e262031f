"""The sealed envelope and the master key file (storage/sealing.py, storage/key_ring.py)."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from storage.key_ring import MasterKeyError, read_master_key, unwrap, wrap
from storage.sealing import (
    OVERHEAD,
    Kind,
    associated_data,
    generation_of,
    is_sealed,
    open_sealed,
    seal,
)

KEY = AESGCM(bytes(range(32)))
names = st.text(min_size=1, max_size=40)
numbers = st.integers(min_value=0, max_value=2**62)
kinds = st.sampled_from([Kind.UPDATE, Kind.SNAPSHOT, Kind.VERSION])


@given(st.binary(max_size=5000), names, names, kinds, numbers, st.integers(0, 2**32 - 1))
def test_a_sealed_row_opens_in_its_place_only(data, tenant, name, kind, number, generation):
    where = associated_data(tenant, name, kind, number)
    sealed = seal(KEY, generation, where, data)
    assert is_sealed(sealed) and generation_of(sealed) == generation
    assert len(sealed) == len(data) + OVERHEAD
    assert open_sealed(KEY, sealed, where) == data
    for elsewhere in (
        associated_data(tenant + "x", name, kind, number),
        associated_data(tenant, name + "x", kind, number),
        associated_data(
            tenant, name, Kind.VERSION if kind != Kind.VERSION else Kind.UPDATE, number
        ),
        associated_data(tenant, name, kind, number + 1),
    ):
        with pytest.raises(ValueError, match="authentication failed"):
            open_sealed(KEY, sealed, elsewhere)


@given(names, names)
def test_fields_cannot_slide_into_each_other(a, b):
    # "ab" + "c" and "a" + "bc" must not encode alike: every field is length-prefixed.
    assert associated_data(a + b, "", Kind.UPDATE, 1) != associated_data(a, b, Kind.UPDATE, 1)


def test_another_key_or_a_changed_byte_does_not_open():
    where = associated_data("acme", "alice/j", Kind.UPDATE, 1)
    sealed = seal(KEY, 1, where, b"secret")
    with pytest.raises(ValueError):
        open_sealed(AESGCM(os.urandom(32)), sealed, where)
    for i in range(len(sealed)):
        changed = bytearray(sealed)
        changed[i] ^= 1
        with pytest.raises(ValueError):
            open_sealed(KEY, bytes(changed), where)


def test_two_seals_of_the_same_bytes_differ():
    where = associated_data("acme", "alice/j", Kind.UPDATE, 1)
    assert seal(KEY, 1, where, b"x") != seal(KEY, 1, where, b"x")  # a random nonce each


@given(st.binary(min_size=1, max_size=200))
def test_plaintext_updates_are_not_mistaken_for_sealed_rows(update):
    # A Yjs update starting with ff 53 would declare over a million clients; real ones (and the
    # empty update) do not.
    if update[:2] != b"\xffS":
        assert not is_sealed(update)
    assert not is_sealed(b"\x00\x00")


@given(names, st.integers(1, 1000))
def test_a_wrapped_key_opens_for_its_tenant_and_generation_only(tenant, generation):
    master = AESGCM(os.urandom(32))
    key = AESGCM.generate_key(256)
    wrapped = wrap(master, tenant, generation, key)
    assert unwrap(master, tenant, generation, wrapped) == key
    with pytest.raises(ValueError):
        unwrap(master, tenant + "x", generation, wrapped)
    with pytest.raises(ValueError):
        unwrap(master, tenant, generation + 1, wrapped)


def test_master_key_file(tmp_path):
    good = tmp_path / "master.key"
    key = os.urandom(32)
    good.write_text(base64.b64encode(key).decode() + "\n")
    good.chmod(0o600)
    assert read_master_key(good) == key
    short = tmp_path / "short.key"
    short.write_text(base64.b64encode(os.urandom(16)).decode())
    with pytest.raises(MasterKeyError, match="16 bytes, not 32"):
        read_master_key(short)
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not base64 at all!")
    with pytest.raises(MasterKeyError, match="not base64"):
        read_master_key(garbage)
    with pytest.raises(MasterKeyError, match="No such file"):
        read_master_key(tmp_path / "missing.key")
