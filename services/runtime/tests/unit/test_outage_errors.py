"""Which database errors may be an outage (then a ping decides) and which are always the message's own."""

from __future__ import annotations

import pytest
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, WriteError

from service_runtime.mongo import may_be_outage


@pytest.mark.parametrize(
    ("error", "maybe"),
    [
        (OperationFailure("failed to connect to `user=postgres database=ferretdb`", 1), True),  # FerretDB, PG down
        (OperationFailure("no code given"), True),
        (OperationFailure("not authorized", 13), False),
        (WriteError("invalid value", 2), False),
        (DuplicateKeyError("E11000 duplicate key", 11000), False),
        (BulkWriteError({"writeErrors": [{"index": 0, "code": 1, "errmsg": "x"}]}), False),
        (ValueError("not a database error"), False),
    ],
)
def test_only_a_whole_command_refused_without_a_specific_code_may_be_an_outage(error: Exception, maybe: bool) -> None:
    assert may_be_outage(error) is maybe
