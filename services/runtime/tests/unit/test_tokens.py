from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from service_runtime.auth import Principal, TokenCodec

ANN = Principal("client", "ann", "biz-1")


def test_a_token_names_its_principal_and_business() -> None:
    codec = TokenCodec("s" * 40)
    assert codec.verify(codec.issue(ANN)) == ANN


def test_an_expired_token_is_refused() -> None:
    codec = TokenCodec("s" * 40)
    old = codec.issue(ANN, ttl=timedelta(minutes=1), now=datetime(2020, 1, 1, tzinfo=UTC))
    with pytest.raises(jwt.ExpiredSignatureError):
        codec.verify(old)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(jwt.InvalidSignatureError):
        TokenCodec("a" * 40).verify(TokenCodec("b" * 40).issue(ANN))


def test_during_a_rotation_tokens_of_the_previous_secret_stay_valid_and_new_ones_use_the_new_secret() -> None:
    old_codec = TokenCodec("old" * 14)
    rotating = TokenCodec("new" * 14, previous="old" * 14)
    assert rotating.verify(old_codec.issue(ANN)) == ANN
    fresh = rotating.issue(ANN)
    assert TokenCodec("new" * 14).verify(fresh) == ANN
    with pytest.raises(jwt.InvalidSignatureError):
        old_codec.verify(fresh)
