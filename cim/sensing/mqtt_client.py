"""A paho-mqtt client tuned for a subscriber that receives tens of thousands of QoS 1 messages a second.

paho reads each packet with two or three ``recv`` calls (command byte, length bytes, body) and writes
each PUBACK as a packet of its own, waking its network thread for every one. This client reads the socket
256 KiB at a time (paho handles the buffered bytes through the socket's ``pending()``, as it does for TLS),
reads every packet already buffered in one pass of the network loop, and acknowledges a whole batch of
messages as one write (:meth:`FastClient.ack_many`); complete QoS 0/1 PUBLISH packets in the buffer are
decoded without paho's per-message objects (:attr:`FastClient.on_fast_publish`). Everything else (the MQTT
state machine, sessions, reconnects, keep-alive) is paho's own; only paho's socket-level hooks
(``_create_socket``, ``_packet_read``, ``_packet_queue``, ``_in_packet``, stable through paho-mqtt 2.x) are used.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt

READ_CHUNK = 256 * 1024
_PUBACK = 0x40
_MAX_PACKETS_PER_READ = 2000  # then the loop writes (acks) and checks keep-alive before reading on


class BufferedSocket:
    """A connected socket whose ``recv`` serves paho's small reads from one large read."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes: buffered ones first, else one large read of the socket."""
        if self._pos >= len(self._buf):
            data = self._sock.recv(READ_CHUNK)  # BlockingIOError when nothing is there: paho waits
            if not data:
                return b""
            self._buf, self._pos = data, 0
        start = self._pos
        self._pos = min(start + bufsize, len(self._buf))
        return self._buf[start : self._pos]

    def pending(self) -> int:
        """Bytes read from the socket and not yet handed out (paho then reads without waiting)."""
        return len(self._buf) - self._pos

    def take_publish(self) -> tuple[int, bytes] | None:
        """(fixed-header byte, rest of the packet) of a QoS 0/1 PUBLISH packet wholly in the buffer, which
        is then consumed; None (nothing consumed) for any other packet or one that is not complete here."""
        buf, pos = self._buf, self._pos
        end = len(buf)
        if pos >= end or buf[pos] & 0xF0 != 0x30 or (buf[pos] >> 1) & 3 > 1:
            return None
        length, mult, i = 0, 1, pos + 1
        while True:
            if i >= end or i > pos + 4:
                return None
            byte = buf[i]
            length += (byte & 127) * mult
            mult *= 128
            i += 1
            if not byte & 128:
                break
        if i + length > end:
            return None
        self._pos = i + length
        return buf[pos], buf[i : i + length]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class FastClient(mqtt.Client):
    """paho's client with buffered reads and batched acknowledgements (plain TCP transport only).

    With ``on_fast_publish`` set (``(mid, qos, topic, payload)``, MQTT 5), QoS 0/1 PUBLISH packets already
    in the buffer are decoded here and handed to it directly (their properties are skipped); every other
    packet, and one split across reads, goes through paho's own decoder and callbacks.
    """

    on_fast_publish: Callable[[int, int, str, bytes], None] | None = None

    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        if self._ssl or self._transport != "tcp":
            return sock
        return BufferedSocket(sock)

    def _packet_read(self) -> mqtt.MQTTErrorCode:
        sock, handler = self._sock, self.on_fast_publish
        if (
            handler is None
            or not isinstance(sock, BufferedSocket)
            or self._in_packet["command"] != 0
            or self._protocol != mqtt.MQTTv5
        ):
            return super()._packet_read()
        packet = sock.take_publish()
        if packet is None:
            return super()._packet_read()
        header, body = packet
        try:
            slen = (body[0] << 8) | body[1]
            topic = body[2 : 2 + slen].decode("utf-8", "replace")
            i = 2 + slen
            mid = 0
            qos = (header >> 1) & 3
            if qos:
                mid = (body[i] << 8) | body[i + 1]
                i += 2
            props, mult = 0, 1
            while True:  # the properties' length (a variable byte integer), then the properties: skipped
                byte = body[i]
                i += 1
                props += (byte & 127) * mult
                mult *= 128
                if not byte & 128:
                    break
        except IndexError:
            return mqtt.MQTTErrorCode.MQTT_ERR_PROTOCOL
        with self._msgtime_mutex:
            self._last_bytes_received = time.monotonic()
        handler(mid, qos, topic, body[i + props :])
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """Read every complete packet already buffered (up to a bound), not only one."""
        rc = super().loop_read(max_packets)
        for _ in range(_MAX_PACKETS_PER_READ):
            sock = self._sock
            if rc != mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS or sock is None or not isinstance(sock, BufferedSocket):
                break
            if sock.pending() == 0:
                break
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == mqtt.MQTTErrorCode.MQTT_ERR_AGAIN:
                return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        return rc

    def ack_many(self, mids: Sequence[int]) -> None:
        """Acknowledge QoS 1 messages (``manual_ack=True``) with one write of their PUBACK packets."""
        if not mids:
            return
        packet = struct.pack(f"!{len(mids)}I", *[(_PUBACK << 24) | (2 << 16) | m for m in mids])
        self._packet_queue(_PUBACK, packet, 0, 0)
