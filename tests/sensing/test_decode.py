"""The subscriber's JSON reading gives what json.loads gives, values and errors alike."""

from __future__ import annotations

import json

import pytest

from cim.sensing.subscriber import decode_json

PAYLOADS = [
    b'{"phenomenonTime":"2026-12-01T08:00:00Z","result":0.42}',
    b'{"result": "\xe7\xa7\xaf\xe6\xb0\xb4"}  \n',  # UTF-8 text, trailing whitespace
    b'  {"result": 1}',  # leading whitespace
    '\ufeff{"result": 1}'.encode(),  # UTF-8 byte order mark
    '{"result": 1}'.encode("utf-16-le"),  # another encoding json.loads detects
    b'{"result": 1} {"result": 2}',  # extra data
    b'{"result": 1',  # truncated
    b"",  # empty
    b"\xff\xfe\xfa",  # not text
    b"[1, 2]",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_decode_json_matches_json_loads(payload: bytes) -> None:
    try:
        expected: object = json.loads(payload)
    except ValueError as exc:
        with pytest.raises(type(exc)) as raised:
            decode_json(payload)
        assert str(raised.value) == str(exc)
        return
    assert decode_json(payload) == expected
