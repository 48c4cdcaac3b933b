"""The subscriber's buffered MQTT reads: whole PUBLISH packets are taken from the buffer, anything else
(another packet type, QoS 2, a packet split across reads) is left to paho."""

from __future__ import annotations

import struct

from cim.sensing.mqtt_client import BufferedSocket


def _publish(topic: str, payload: bytes, *, qos: int = 1, mid: int = 7, props: bytes = b"") -> bytes:
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + (struct.pack("!H", mid) if qos else b"") + bytes([len(props)]) + props
    body += payload
    length, out = len(body), bytearray()
    while True:  # remaining length as a variable byte integer
        byte, length = length % 128, length // 128
        out.append(byte | (128 if length else 0))
        if not length:
            break
    return bytes([0x30 | (qos << 1)]) + bytes(out) + body


class _Chunks:
    """A socket whose recv returns the given chunks one by one."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)

    def recv(self, _n: int) -> bytes:
        if not self.chunks:
            raise BlockingIOError
        return self.chunks.pop(0)


def test_whole_publish_packets_are_taken_and_others_left_to_paho() -> None:
    big = b"x" * 300  # a two-byte remaining length
    one, two = _publish("v1.1/Datastreams(3)/Observations", b"{}"), _publish("v1.1/Observations", big, mid=9)
    ping = bytes([0xD0, 0])
    sock = BufferedSocket(_Chunks(one + two + ping + _publish("a", b"q2", qos=2)))
    assert sock.take_publish() is None and sock.recv(1) == one[:1]  # buffer empty: nothing to take yet
    sock.recv(len(one) - 1)
    header, body = sock.take_publish() or (0, b"")
    assert header == 0x32 and body == two[3:] and body.endswith(big)
    assert sock.take_publish() is None  # PINGRESP: paho's
    assert sock.recv(2) == ping
    assert sock.take_publish() is None  # QoS 2: paho's


def test_a_publish_split_across_reads_is_left_to_paho() -> None:
    packet = _publish("v1.1/Observations", b'{"result": 1}')
    sock = BufferedSocket(_Chunks(packet[:10], packet[10:]))
    assert sock.recv(1) == packet[:1]
    sock._pos = 0  # look at the first, partial chunk again
    assert sock.take_publish() is None and sock.pending() == 10
